// Package httpapi is sot's REST API (/api/v1, the SonarQube Cloud
// compatible endpoints, the authorization check) and its operational
// endpoints (/healthz, /readyz, /metrics), built with huma on the standard
// library's ServeMux.
//
// Every authorization decision goes through sot.Principal.Authorize; every
// sot error code becomes an HTTP status in one place (problemFor).
package httpapi

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/netip"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/danielgtaylor/huma/v2"
	"github.com/danielgtaylor/huma/v2/adapters/humago"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sot-dev/sot"
)

// Defaults of Config.
const (
	DefaultMaxReportBytes = 64 << 20
	// maxJSONBytes bounds JSON request bodies: a scope of 100,000 project
	// keys of a few dozen characters fits.
	maxJSONBytes = 8 << 20
)

// Config wires an API.
type Config struct {
	Users    sot.UserService
	Orgs     sot.OrgService
	Projects sot.ProjectService
	Tokens   sot.TokenService
	Audit    sot.AuditService
	Analyses sot.AnalysisService
	Auth     sot.Authenticator
	// HashPassword hashes a new user's password; it refuses (EINVALID) a
	// password that is too weak.
	HashPassword func(pw string) (string, error)
	// Ping reports whether storage is reachable, for /readyz.
	Ping func(ctx context.Context) error
	// Now is the clock; time.Now when nil.
	Now    func() time.Time
	Logger *slog.Logger
	// Version is reported by /api/server/version and the OpenAPI document.
	Version string
	// MaxReportBytes bounds an uploaded analysis report; DefaultMaxReportBytes when 0.
	MaxReportBytes int64
	// TrustedProxies are the networks of reverse proxies whose
	// X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	// AuthFailureLimit is how many bad credentials a client address may
	// send per minute before it gets 429; DefaultAuthFailureLimit when 0,
	// no limit when negative.
	AuthFailureLimit int
	// CheckPathTemplate, when set, lets GET /api/v1/check read the
	// organization and project from the X-Forwarded-Uri header, such as
	// "/{org}/{project}/..." (see ParsePathTemplate).
	CheckPathTemplate string
	// Lifecycle rotates tokens and revokes leaked ones; Webhooks manages
	// webhooks and their deliveries.
	Lifecycle sot.LifecycleService
	Webhooks  sot.WebhookService
	// GitHubKeys are the public keys of GitHub secret scanning, by key
	// identifier (see ParseGitHubKeys); none means every alert gets 401.
	GitHubKeys map[string]*ecdsa.PublicKey
	// RevokeLimit is how many public revoke calls a client address may
	// make per minute; DefaultRevokeLimit when 0.
	RevokeLimit int
	// TrustPolicies and OIDC serve tokenless CI: trust policies, and the
	// verifier of the ID tokens exchanged under them (nil: no issuer is
	// trusted, and every exchange gets 401).
	TrustPolicies sot.TrustPolicyService
	OIDC          sot.IDTokenVerifier
}

// API serves the REST API. It is an http.Handler for the paths "/api/",
// "/healthz", "/readyz" and "/metrics".
type API struct {
	cfg     Config
	now     func() time.Time
	log     *slog.Logger
	mux     *http.ServeMux
	huma    huma.API
	metrics *metrics
	check   *PathTemplate   // nil without Config.CheckPathTemplate
	limiter *failureLimiter // nil without a limit
	// revokeLimiter counts public revoke calls per client address.
	revokeLimiter *failureLimiter

	idPrefix string
	idSeq    atomic.Uint64
}

// New returns the API, with every route registered.
func New(cfg Config) (*API, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxReportBytes <= 0 {
		cfg.MaxReportBytes = DefaultMaxReportBytes
	}
	if cfg.AuthFailureLimit == 0 {
		cfg.AuthFailureLimit = DefaultAuthFailureLimit
	}
	if cfg.RevokeLimit <= 0 {
		cfg.RevokeLimit = DefaultRevokeLimit
	}
	if cfg.Ping == nil {
		cfg.Ping = func(context.Context) error { return nil }
	}
	var seed [4]byte
	rand.Read(seed[:])
	a := &API{
		cfg:      cfg,
		now:      cfg.Now,
		log:      cfg.Logger,
		mux:      http.NewServeMux(),
		metrics:  newMetrics(),
		idPrefix: hex.EncodeToString(seed[:]) + "-",
	}
	a.revokeLimiter = newFailureLimiter(cfg.RevokeLimit)
	if cfg.Lifecycle != nil {
		a.metrics.reg.MustRegister(newExpiringCollector(cfg.Lifecycle, cfg.Now))
	}
	if cfg.AuthFailureLimit > 0 {
		a.limiter = newFailureLimiter(cfg.AuthFailureLimit)
		l := a.limiter
		a.metrics.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sot_auth_failure_clients",
			Help: "Client addresses with failed authentications in the current window (each is refused with 429 once over --auth-failure-limit).",
		}, func() float64 { return float64(l.n.Load()) }))
	}
	if cfg.CheckPathTemplate != "" {
		t, err := ParsePathTemplate(cfg.CheckPathTemplate)
		if err != nil {
			return nil, fmt.Errorf("check path template: %w", err)
		}
		a.check = t
	}

	hc := huma.DefaultConfig("sot", cfg.Version)
	// curl -d sends application/x-www-form-urlencoded unless told otherwise.
	// The API speaks only JSON, so such a body is read as JSON (as GitHub's
	// API does) rather than refused.
	hc.Formats = maps.Clone(hc.Formats) // DefaultConfig shares one map between APIs
	jsonFormat := hc.Formats["application/json"]
	jsonFormat.Unmarshal = refuseNUL(jsonFormat.Unmarshal)
	hc.Formats["application/json"] = jsonFormat
	hc.Formats["json"] = jsonFormat
	hc.Formats["application/x-www-form-urlencoded"] = jsonFormat
	hc.Info.Description = "Scoped organization tokens: API tokens that belong to an organization, for CI pipelines."
	// Schemas are named for the wire shapes: tokenJSON is "Token".
	hc.Components.Schemas = huma.NewMapRegistry("#/components/schemas/", func(t reflect.Type, hint string) string {
		return strings.ReplaceAll(huma.DefaultSchemaNamer(t, hint), "JSON", "")
	})
	hc.OpenAPIPath = "/api/v1/openapi"
	hc.DocsPath = ""
	hc.SchemasPath = ""
	// No $schema links in bodies: the JSON shapes are a contract.
	hc.CreateHooks = nil
	hc.Components.SecuritySchemes = map[string]*huma.SecurityScheme{
		"bearer": {Type: "http", Scheme: "bearer", Description: "A token secret (sot_… or sotu_…)."},
		"basic":  {Type: "http", Scheme: "basic", Description: "The token secret as user name, empty password."},
	}
	hc.Security = []map[string][]string{{"bearer": {}}, {"basic": {}}}
	a.huma = humago.New(a.mux, hc)
	a.huma.UseMiddleware(a.authenticate)

	a.registerInstance()
	a.registerSelf()
	a.registerOrgs()
	a.registerTokens()
	a.registerRotation()
	a.registerWebhooks()
	a.registerLeaks()
	a.registerTrust()
	a.registerAnalyses()
	a.registerSonar()
	a.registerOps()
	a.documentCheck()
	a.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(info(r.Context()), w, sot.Errorf(sot.ENOTFOUND, "no such endpoint: %s %s", r.Method, r.URL.Path))
	})
	return a, nil
}

// Owns reports whether the API serves path: "/api/…", "/healthz",
// "/readyz" and "/metrics". Everything else is left to the web UI.
func Owns(path string) bool {
	return strings.HasPrefix(path, "/api/") || path == "/healthz" || path == "/readyz" || path == "/metrics"
}

// reqInfo is what the API knows about a request beyond http.Request. It is
// allocated once per request, with the response writer that records the
// status, and filled in as the request goes.
type reqInfo struct {
	statusWriter
	seq       uint64 // request number; the id is idPrefix + seq
	ip        netip.Addr
	principal *sot.Principal
	cause     error // the internal cause of a 5xx, for the log
}

type reqInfoKey struct{}

func info(ctx context.Context) *reqInfo {
	ri, _ := ctx.Value(reqInfoKey{}).(*reqInfo)
	return ri
}

// principal returns the authenticated caller. Operations that require a
// credential never run without one (see authenticate).
func principal(ctx context.Context) *sot.Principal {
	if ri := info(ctx); ri != nil {
		return ri.principal
	}
	return nil
}

// ServeHTTP serves a request: request id, client address, metrics and the
// request log around the routes. The check endpoint is served first, with
// no routing and no request context: it is the hot path.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	seq, ip := a.idSeq.Add(1), clientIP(r, a.cfg.TrustedProxies)
	// Any method: an nginx auth_request subrequest carries the method of
	// the request it guards (a POST upload is checked with a POST).
	if r.URL.Path == checkPath {
		// A reqInfo of its own that does not escape: no allocation.
		cri := reqInfo{seq: seq, ip: ip}
		status := a.serveCheck(w, r, &cri)
		elapsed := time.Since(start)
		a.metrics.observe(checkRoute, status, elapsed)
		// Log the hot path only when it fails badly.
		if status >= http.StatusInternalServerError {
			a.logRequest(r, &cri, checkRoute, status, elapsed)
		}
		return
	}
	ri := &reqInfo{seq: seq, ip: ip}
	id := a.requestID(ri)
	r = r.WithContext(context.WithValue(r.Context(), reqInfoKey{}, ri))
	ri.ResponseWriter = w
	w.Header().Set("X-Request-Id", id)
	if err := checkURL(r.URL); err != nil {
		writeError(ri, &ri.statusWriter, err)
	} else {
		a.mux.ServeHTTP(&ri.statusWriter, r)
	}
	status := ri.status
	if status == 0 {
		status = http.StatusOK
	}
	elapsed := time.Since(start)
	route := r.Pattern
	if route == "" {
		route = "unmatched"
	}
	a.metrics.observe(route, status, elapsed)
	a.logRequest(r, ri, route, status, elapsed)
}

// refuseNUL wraps a JSON decoder to refuse a body with a NUL character
// (\u0000) anywhere: no field of the API may hold one, and PostgreSQL
// refuses them in text (a 5xx). A raw NUL byte is already invalid JSON.
func refuseNUL(unmarshal func([]byte, any) error) func([]byte, any) error {
	return func(data []byte, v any) error {
		if bytes.Contains(data, escapedNUL) {
			return errNUL
		}
		return unmarshal(data, v)
	}
}

var (
	escapedNUL = []byte(`\u0000`)
	errNUL     = errors.New("a string holds a NUL character (\\u0000)")
)

// checkURL refuses a path or query that is not valid UTF-8 or not validly
// encoded, before any handler sees it: PostgreSQL refuses invalid UTF-8
// (a 5xx), and a query the standard library would silently drop is not
// what the client meant.
func checkURL(u *url.URL) error {
	if !sot.ValidText(u.Path) {
		return errBadPath
	}
	if u.RawQuery == "" {
		return nil
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return sot.Invalid("invalid query string", sot.FieldError{Field: "query", Message: err.Error()})
	}
	for k, vs := range q {
		if !sot.ValidText(k) {
			return errBadQuery
		}
		for _, v := range vs {
			if !sot.ValidText(v) {
				return errBadQuery
			}
		}
	}
	return nil
}

var (
	errBadPath  = sot.Invalid("the path is not valid UTF-8 or holds a NUL", sot.FieldError{Field: "path", Message: "not valid UTF-8, or a NUL"})
	errBadQuery = sot.Invalid("the query string is not valid UTF-8 or holds a NUL", sot.FieldError{Field: "query", Message: "not valid UTF-8, or a NUL"})
)

func (a *API) requestID(ri *reqInfo) string { return a.idPrefix + strconv.FormatUint(ri.seq, 10) }

// logRequest writes the request log line: never a credential, only who
// the caller is.
func (a *API) logRequest(r *http.Request, ri *reqInfo, route string, status int, elapsed time.Duration) {
	level := slog.LevelInfo
	if status >= http.StatusInternalServerError {
		level = slog.LevelError
	}
	attrs := []slog.Attr{
		slog.String("request_id", a.requestID(ri)),
		slog.String("method", r.Method),
		slog.String("route", route),
		slog.String("path", r.URL.Path),
		slog.Int("status", status),
		slog.Duration("duration", elapsed),
		slog.String("ip", ri.ip.String()),
	}
	if ri.principal != nil {
		act := ri.principal.Actor("")
		attrs = append(attrs, slog.String("actor_type", string(act.Type)), slog.Int64("actor_id", act.ID))
	}
	if ri.cause != nil {
		attrs = append(attrs, slog.String("error", ri.cause.Error()))
	}
	a.log.LogAttrs(r.Context(), level, "http request", attrs...)
}

// statusWriter records the status of a response.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (flush, deadlines).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// authMode says whether an operation needs a credential.
type authMode int

const (
	authRequired authMode = iota
	authOptional          // authenticate when a credential is given; never refuse
)

const authKey = "auth"

// authenticate is the huma middleware that turns the request's credential
// into the principal, before any body is read.
func (a *API) authenticate(ctx huma.Context, next func(huma.Context)) {
	mode, _ := ctx.Operation().Metadata[authKey].(authMode)
	ri := info(ctx.Context())
	secret, ok := credential(ctx.Header("Authorization"))
	if !ok {
		if mode == authOptional {
			next(ctx)
			return
		}
		a.metrics.authOutcome("missing")
		huma.WriteErr(a.huma, ctx, 0, "", errAuthRequired)
		return
	}
	p, err := a.authSecret(ctx.Context(), secret, ri.ip)
	if err != nil {
		if mode == authOptional {
			next(ctx)
			return
		}
		huma.WriteErr(a.huma, ctx, 0, "", err)
		return
	}
	ri.principal = p
	next(huma.WithContext(ctx, sot.WithActor(ctx.Context(), p.Actor(ri.ip.String()))))
}

var errAuthRequired = &sot.Error{Code: sot.EUNAUTHENTICATED, Message: "authentication required: send Authorization: Bearer <token>"}

// authSecret authenticates a secret, counts the outcome, and refuses a
// client address that sent too many bad credentials.
func (a *API) authSecret(ctx context.Context, secret string, ip netip.Addr) (*sot.Principal, error) {
	// idle first: with no failures on record the clock need not be read.
	if a.limiter != nil && !a.limiter.idle() {
		if d := a.limiter.wait(ip, a.now()); d > 0 {
			a.metrics.authOutcome("rate_limited")
			return nil, rateLimited(d)
		}
	}
	p, err := a.cfg.Auth.AuthenticateSecret(ctx, secret, ip)
	a.metrics.authOutcome(authReason(err))
	if a.limiter != nil && sot.ErrorCode(err) == sot.EUNAUTHENTICATED {
		a.limiter.fail(ip, a.now())
	}
	return p, err
}

// authReason names an authentication outcome for the metrics.
func authReason(err error) string {
	if err == nil {
		return "ok"
	}
	switch sot.ErrorCode(err) {
	case sot.EUNAUTHENTICATED:
		switch msg := sot.ErrorMessage(err); {
		case msg == "token expired":
			return "expired"
		case msg == "token revoked":
			return "revoked"
		case msg == "token rotated":
			return "rotated"
		case msg == "unknown token":
			return "unknown"
		case len(msg) >= 15 && msg[:15] == "malformed token":
			return "malformed"
		}
		return "invalid"
	case sot.EPLAN:
		return "plan_required"
	case sot.EFORBIDDEN:
		return "ip_not_allowed"
	case sot.ERATELIMITED:
		return "rate_limited"
	}
	return "error"
}
