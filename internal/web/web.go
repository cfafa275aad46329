// Package web is sot's server-rendered admin UI: login, organizations,
// projects, members, tokens, policy, trust policies, webhooks and audit
// log.
//
// Pages are html/template files embedded in the binary; styles and scripts
// are static files served by the UI itself, and the Content-Security-Policy
// allows nothing else, so the UI makes no request to any other origin.
//
// Sessions are signed, expiring cookies (no server-side state), so any
// replica that shares Config.SessionKey accepts them. State changes are
// protected twice against cross-site request forgery: by
// http.CrossOriginProtection, and by a per-session token in every form.
// Every authorization decision goes through sot.Principal.Authorize, and
// every state change through the services, which write the audit log.
package web

import (
	"context"
	"crypto/rand"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/sot-dev/sot"
	"github.com/sot-dev/sot/internal/password"
)

//go:embed templates static
var assets embed.FS

// Config is what the UI needs.
type Config struct {
	Users    sot.UserService
	Orgs     sot.OrgService
	Projects sot.ProjectService
	Tokens   sot.TokenService
	Audit    sot.AuditService
	Auth     sot.Authenticator
	// Lifecycle, when set, lets admins rotate a token's secret.
	Lifecycle sot.LifecycleService
	// TrustPolicies, when set, adds the trust policy pages (tokenless CI).
	TrustPolicies sot.TrustPolicyService
	// OIDC lists the issuers the operator trusts; nil or none makes the
	// trust policy pages say how to configure them.
	OIDC OIDCIssuers
	// Webhooks, when set, adds the webhook pages and, with Lifecycle,
	// rotation schedules on the token page.
	Webhooks sot.WebhookService
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
	// SecureCookies marks cookies Secure: set it when users reach the UI
	// over HTTPS (directly or through a proxy).
	SecureCookies bool
	// Version is shown in the footer.
	Version string
	// SessionKey signs session cookies and CSRF tokens and encrypts the
	// one-time display of new secrets: at least 32 random bytes, the same
	// on every replica. When empty, a random key is made, so sessions last
	// only as long as the process and work on one replica only.
	SessionKey []byte
	// TrustedProxies are the networks of reverse proxies whose
	// X-Forwarded-For is believed, for the client address that login
	// throttling and the audit log use.
	TrustedProxies []netip.Prefix
}

// OIDCIssuers is what the trust policy pages need of the OIDC verifier
// (*oidc.Verifier): which issuers the operator trusts.
type OIDCIssuers interface {
	Trusts(issuer string) bool
	Issuers() []string
}

// Handler serves the UI. It is an http.Handler meant to be mounted at "/".
type Handler struct {
	cfg       Config
	now       func() time.Time
	log       *slog.Logger
	keys      *keys
	throttle  *throttle
	pages     map[string]*pageTemplate
	handler   http.Handler
	dummyHash string // verified against when the login is unknown, to take the same time
}

// Login throttling: 5 failures per client address and login in 15 minutes,
// remembering at most 10,000 pairs.
const (
	loginMaxFailures = 5
	loginWindow      = 15 * time.Minute
	loginEntries     = 10_000
)

// New returns the UI handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Users == nil || cfg.Orgs == nil || cfg.Projects == nil || cfg.Tokens == nil || cfg.Audit == nil || cfg.Auth == nil {
		return nil, errors.New("web: every service of Config is required")
	}
	h := &Handler{cfg: cfg, now: cfg.Now, log: cfg.Logger}
	if h.now == nil {
		h.now = time.Now
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	key := cfg.SessionKey
	switch {
	case len(key) == 0:
		key = make([]byte, 32)
		rand.Read(key)
		h.log.Warn("web: no session key configured; sessions end with this process and work on this replica only")
	case len(key) < 32:
		return nil, errors.New("web: SessionKey must be at least 32 bytes")
	}
	var err error
	if h.keys, err = deriveKeys(key); err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	if h.pages, err = parsePages(); err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	if h.dummyHash, err = password.Hash(password.Generate()); err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	h.throttle = newThrottle(loginMaxFailures, loginWindow, loginEntries)

	static, err := fs.Sub(assets, "static")
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /static/", http.StripPrefix("/static/", staticHandler(static)))
	mux.HandleFunc("GET /login", h.public(h.loginPage))
	mux.HandleFunc("POST /login", h.public(h.login))
	mux.HandleFunc("POST /logout", h.authed(h.logout))
	mux.HandleFunc("GET /{$}", h.authed(h.home))
	mux.HandleFunc("GET /switch", h.authed(h.switchOrg))

	mux.HandleFunc("GET /orgs/{org}", h.org(member, h.overview))
	mux.HandleFunc("GET /orgs/{org}/projects", h.org(member, h.projects))
	mux.HandleFunc("POST /orgs/{org}/projects", h.org(admin, h.createProject))
	mux.HandleFunc("GET /orgs/{org}/projects/{project}/delete", h.org(admin, h.confirmDeleteProject))
	mux.HandleFunc("POST /orgs/{org}/projects/{project}/delete", h.org(admin, h.deleteProject))
	mux.HandleFunc("GET /orgs/{org}/members", h.org(admin, h.members))
	mux.HandleFunc("POST /orgs/{org}/members", h.org(admin, h.setMember))
	mux.HandleFunc("POST /orgs/{org}/members/{login}/remove", h.org(admin, h.removeMember))
	mux.HandleFunc("GET /orgs/{org}/tokens", h.org(admin, h.tokens))
	mux.HandleFunc("GET /orgs/{org}/tokens/new", h.org(admin, h.newToken))
	mux.HandleFunc("POST /orgs/{org}/tokens", h.org(admin, h.createToken))
	mux.HandleFunc("GET /orgs/{org}/tokens/{id}", h.org(admin, h.tokenDetail))
	mux.HandleFunc("GET /orgs/{org}/tokens/{id}/created", h.org(admin, h.tokenCreated))
	mux.HandleFunc("POST /orgs/{org}/tokens/{id}", h.org(admin, h.updateToken))
	mux.HandleFunc("POST /orgs/{org}/tokens/{id}/scope", h.org(admin, h.updateTokenScope))
	if cfg.Lifecycle != nil {
		mux.HandleFunc("GET /orgs/{org}/tokens/{id}/rotate", h.org(admin, h.confirmRotate))
		mux.HandleFunc("POST /orgs/{org}/tokens/{id}/rotate", h.org(admin, h.rotateToken))
	}
	if cfg.Lifecycle != nil && cfg.Webhooks != nil {
		mux.HandleFunc("POST /orgs/{org}/tokens/{id}/rotation", h.org(admin, h.setRotation))
	}
	mux.HandleFunc("GET /orgs/{org}/tokens/{id}/revoke", h.org(admin, h.confirmRevoke))
	mux.HandleFunc("POST /orgs/{org}/tokens/{id}/revoke", h.org(admin, h.revokeToken))
	mux.HandleFunc("GET /orgs/{org}/scope-preview", h.org(admin, h.scopePreview))
	mux.HandleFunc("GET /orgs/{org}/settings", h.org(admin, h.settings))
	mux.HandleFunc("POST /orgs/{org}/settings", h.org(admin, h.saveSettings))
	mux.HandleFunc("GET /orgs/{org}/audit", h.org(admin, h.audit))
	if cfg.TrustPolicies != nil {
		mux.HandleFunc("GET /orgs/{org}/trust-policies", h.org(admin, h.trustPolicies))
		mux.HandleFunc("GET /orgs/{org}/trust-policies/new", h.org(admin, h.newTrustPolicy))
		mux.HandleFunc("POST /orgs/{org}/trust-policies", h.org(admin, h.createTrustPolicy))
		mux.HandleFunc("GET /orgs/{org}/trust-policies/{id}", h.org(admin, h.trustPolicy))
		mux.HandleFunc("POST /orgs/{org}/trust-policies/{id}", h.org(admin, h.updateTrustPolicy))
		mux.HandleFunc("GET /orgs/{org}/trust-policies/{id}/delete", h.org(admin, h.confirmDeleteTrustPolicy))
		mux.HandleFunc("POST /orgs/{org}/trust-policies/{id}/delete", h.org(admin, h.deleteTrustPolicy))
	}
	if cfg.Webhooks != nil {
		mux.HandleFunc("GET /orgs/{org}/webhooks", h.org(admin, h.webhooks))
		mux.HandleFunc("GET /orgs/{org}/webhooks/new", h.org(admin, h.newWebhook))
		mux.HandleFunc("POST /orgs/{org}/webhooks", h.org(admin, h.createWebhook))
		mux.HandleFunc("GET /orgs/{org}/webhooks/{id}", h.org(admin, h.webhook))
		mux.HandleFunc("GET /orgs/{org}/webhooks/{id}/created", h.org(admin, h.webhookCreated))
		mux.HandleFunc("POST /orgs/{org}/webhooks/{id}", h.org(admin, h.updateWebhook))
		mux.HandleFunc("GET /orgs/{org}/webhooks/{id}/delete", h.org(admin, h.confirmDeleteWebhook))
		mux.HandleFunc("POST /orgs/{org}/webhooks/{id}/delete", h.org(admin, h.deleteWebhook))
	}
	mux.HandleFunc("/", h.authed(h.notFound))

	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.renderStatus(w, nil, http.StatusForbidden, "This request came from another site and was refused.")
	}))
	h.handler = textGuard(securityHeaders(cop.Handler(mux)))
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.handler.ServeHTTP(w, r) }

// contentSecurityPolicy allows the UI's own files and nothing else: no
// inline script, no third-party origin, no framing.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", contentSecurityPolicy)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "same-origin")
		next.ServeHTTP(w, r)
	})
}

func staticHandler(static fs.FS) http.Handler {
	files := http.FileServerFS(static)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The files change only with the binary; an hour keeps pages fast
		// without serving stale assets for long after an upgrade.
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	})
}

// request is an authenticated request with what handlers need.
type request struct {
	*http.Request
	session   *session
	ip        string // the client's address
	principal *sot.Principal
	user      *sot.User
	csrf      string
	org       *sot.Org // set on /orgs/{org}/ routes
	orgAdmin  bool     // the user administers org
}

// ctx returns the request's context carrying the audit actor.
func (r *request) ctx() context.Context {
	return sot.WithActor(r.Context(), r.principal.Actor(r.ip))
}

// clientIP returns the client's address: the peer of the connection,
// unless that peer is a trusted proxy, in which case the last address of
// X-Forwarded-For that is not a trusted proxy (the hops before it could be
// forged by the client).
func clientIP(r *http.Request, trusted []netip.Prefix) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	addr := peer.Unmap()
	if !inPrefixes(addr, trusted) {
		return addr.String()
	}
	values := r.Header.Values("X-Forwarded-For")
	for i := len(values) - 1; i >= 0; i-- {
		hops := strings.Split(values[i], ",")
		for j := len(hops) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(hops[j]))
			if err != nil {
				return addr.String()
			}
			addr = a.Unmap()
			if !inPrefixes(addr, trusted) {
				return addr.String()
			}
		}
	}
	return addr.String()
}

func inPrefixes(a netip.Addr, prefixes []netip.Prefix) bool {
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (h *Handler) public(fn func(http.ResponseWriter, *http.Request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		fn(w, r)
	}
}

// authed requires a valid session (redirecting to the login page without
// one) and, for state changes, the session's CSRF token in the form.
func (h *Handler) authed(fn func(http.ResponseWriter, *request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		req, ok := h.authenticate(w, r)
		if !ok {
			return
		}
		if !safeMethod(r.Method) {
			r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
			if err := r.ParseForm(); err != nil {
				if _, tooLarge := errors.AsType[*http.MaxBytesError](err); tooLarge {
					h.renderStatus(w, req, http.StatusRequestEntityTooLarge, "The form is too large.")
				} else {
					h.renderStatus(w, req, http.StatusBadRequest, "The form could not be read.")
				}
				return
			}
			if !h.keys.checkCSRF(req.session, r.PostFormValue("csrf")) {
				h.renderStatus(w, req, http.StatusForbidden, "The form expired or did not come from this site. Reload the page and try again.")
				return
			}
		}
		h.serve(w, req, fn)
	}
}

// maxFormBytes bounds a form body. Selecting thousands of projects sends
// the search query, not the keys, so forms stay small.
const maxFormBytes = 1 << 20

type access int

const (
	member access = iota // any member of the organization (and instance admins)
	admin                // organization admins (and instance admins)
)

// org is authed for /orgs/{org}/ routes: it loads the organization and
// decides access with Principal.Authorize. An organization the user cannot
// see is "not found", as in the API.
func (h *Handler) org(need access, fn func(http.ResponseWriter, *request) error) http.HandlerFunc {
	return h.authed(func(w http.ResponseWriter, r *request) error {
		key := r.PathValue("org")
		if err := r.principal.Authorize(sot.PermissionOrgRead, key, ""); err != nil {
			return err
		}
		org, err := h.cfg.Orgs.FindOrg(r.Context(), key)
		if err != nil {
			return err
		}
		r.org = org
		r.orgAdmin = r.principal.Authorize(sot.PermissionOrgAdmin, key, "") == nil
		if need == admin {
			if err := r.principal.Authorize(sot.PermissionOrgAdmin, key, ""); err != nil {
				return err
			}
		}
		return fn(w, r)
	})
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// authenticate verifies the session cookie and loads the user's current
// principal. Without a valid session it redirects to the login page.
func (h *Handler) authenticate(w http.ResponseWriter, r *http.Request) (*request, bool) {
	var s *session
	if c, err := r.Cookie(sessionCookie); err == nil {
		s, _ = h.keys.parseSession(c.Value, h.now())
	}
	var p *sot.Principal
	if s != nil {
		var err error
		p, err = h.cfg.Auth.UserPrincipal(r.Context(), s.userID)
		switch {
		case err == nil:
		case sot.ErrorCode(err) == sot.EINTERNAL:
			h.log.ErrorContext(r.Context(), "web: load session user", "err", err)
			h.renderStatus(w, nil, http.StatusInternalServerError, "Something went wrong on our side. Try again in a moment.")
			return nil, false
		default:
			p = nil // the user is gone: the session is void
		}
	}
	if p == nil || p.User == nil {
		h.clearCookie(w, sessionCookie, "/")
		target := "/login"
		if r.Method == http.MethodGet && r.URL.Path != "/" {
			target += "?next=" + urlQueryEscape(r.URL.RequestURI())
		}
		http.Redirect(w, r, target, http.StatusSeeOther)
		return nil, false
	}
	return &request{Request: r, session: s, ip: clientIP(r, h.cfg.TrustedProxies), principal: p, user: p.User,
		csrf: h.keys.csrfToken(s)}, true
}

// serve runs fn and turns the error it returns into a page: the domain
// error's safe message with its status, or a generic 500 that is logged.
func (h *Handler) serve(w http.ResponseWriter, r *request, fn func(http.ResponseWriter, *request) error) {
	err := fn(w, r)
	if err == nil {
		return
	}
	status := statusOf(err)
	msg := sot.ErrorMessage(err)
	if status == http.StatusInternalServerError {
		h.log.ErrorContext(r.Context(), "web: request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		msg = "Something went wrong on our side. Try again in a moment."
	}
	h.renderStatus(w, r, status, msg)
}

// statusOf maps a domain error code to an HTTP status, once for the UI.
func statusOf(err error) int {
	switch sot.ErrorCode(err) {
	case sot.EINVALID, sot.EPOLICY:
		return http.StatusBadRequest
	case sot.ENOTFOUND:
		return http.StatusNotFound
	case sot.ECONFLICT:
		return http.StatusConflict
	case sot.EUNAUTHENTICATED:
		return http.StatusUnauthorized
	case sot.EFORBIDDEN, sot.EPLAN:
		return http.StatusForbidden
	case sot.ETOOLARGE:
		return http.StatusRequestEntityTooLarge
	case sot.ERATELIMITED:
		return http.StatusTooManyRequests
	}
	return http.StatusInternalServerError
}

func (h *Handler) notFound(w http.ResponseWriter, r *request) error {
	return sot.Errorf(sot.ENOTFOUND, "page not found")
}

func (h *Handler) setCookie(w http.ResponseWriter, name, value, path string, maxAge time.Duration) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: path, MaxAge: int(maxAge / time.Second),
		HttpOnly: true, Secure: h.cfg.SecureCookies, SameSite: http.SameSiteLaxMode,
	})
}

func (h *Handler) clearCookie(w http.ResponseWriter, name, path string) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: "", Path: path, MaxAge: -1,
		HttpOnly: true, Secure: h.cfg.SecureCookies, SameSite: http.SameSiteLaxMode,
	})
}
