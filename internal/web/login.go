package web

import (
	"errors"
	"math"
	"net/http"
	"strings"

	"github.com/sot-dev/sot"
	"github.com/sot-dev/sot/internal/password"
)

type loginData struct {
	Login string
	Next  string
}

func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		if _, err := h.keys.parseSession(c.Value, h.now()); err == nil {
			http.Redirect(w, r, "/", http.StatusSeeOther)
			return
		}
	}
	h.render(w, nil, http.StatusOK, "login", &view{Title: "Sign in", Data: loginData{Next: safeNext(r.URL.Query().Get("next"))}})
}

// login checks a password. Unknown logins and wrong passwords get the same
// answer in about the same time; failures are throttled per client address
// and login, and audited.
func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	login := strings.TrimSpace(r.PostFormValue("login"))
	pw := r.PostFormValue("password")
	data := loginData{Login: login, Next: safeNext(r.PostFormValue("next"))}
	fail := func(status int, msg string) {
		h.render(w, nil, status, "login", &view{Title: "Sign in", Error: msg, Data: data})
	}
	if login == "" || pw == "" {
		fail(http.StatusBadRequest, "Enter your login and password.")
		return
	}
	ip := clientIP(r, h.cfg.TrustedProxies)
	key := throttleKey(ip, login)
	now := h.now()
	if wait := h.throttle.wait(key, now); wait > 0 {
		minutes := int(math.Ceil(wait.Minutes()))
		w.Header().Set("Retry-After", itoa(int(math.Ceil(wait.Seconds()))))
		fail(http.StatusTooManyRequests, "Too many failed attempts. Try again in "+plural(minutes, "minute")+".")
		return
	}
	user, hash, err := h.cfg.Users.PasswordHash(r.Context(), login)
	switch {
	case err == nil && hash != "":
	case err == nil || errors.Is(err, sot.ErrNotFound):
		user, hash = nil, h.dummyHash
	default:
		h.log.ErrorContext(r.Context(), "web: login lookup", "err", err)
		fail(http.StatusInternalServerError, "Something went wrong on our side. Try again in a moment.")
		return
	}
	if err := password.Verify(hash, pw); err != nil || user == nil {
		if err != nil && !errors.Is(err, password.ErrMismatch) {
			h.log.ErrorContext(r.Context(), "web: verify password", "login", login, "err", err)
		}
		h.throttle.fail(key, now)
		ev := &sot.AuditEvent{
			Actor:   sot.Actor{Type: sot.ActorAnonymous, IP: ip},
			Action:  sot.ActionAuthFailed,
			Target:  "user:" + login,
			Details: map[string]any{"via": "web", "reason": "bad login or password"},
		}
		if err := h.cfg.Audit.RecordEvent(r.Context(), ev); err != nil {
			h.log.ErrorContext(r.Context(), "web: audit failed login", "err", err)
		}
		fail(http.StatusUnauthorized, "Wrong login or password.")
		return
	}
	h.throttle.reset(key)
	h.setCookie(w, sessionCookie, h.keys.newSession(user.ID, now.Add(sessionTTL)), "/", sessionTTL)
	next := data.Next
	if next == "" {
		next = "/"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

// safeNext keeps a post-login destination only when it is a path on this
// site, so the login form cannot be used to send users elsewhere.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") ||
		strings.ContainsAny(next, "\r\n") {
		return ""
	}
	return next
}

func (h *Handler) logout(w http.ResponseWriter, r *request) error {
	h.clearCookie(w, sessionCookie, "/")
	http.Redirect(w, r.Request, "/login", http.StatusSeeOther)
	return nil
}

// home sends the user to their first organization, or says they have none.
func (h *Handler) home(w http.ResponseWriter, r *request) error {
	orgs := h.switcherOrgs(r)
	if len(orgs) > 0 {
		http.Redirect(w, r.Request, "/orgs/"+orgs[0], http.StatusSeeOther)
		return nil
	}
	h.render(w, r, http.StatusOK, "home", &view{Title: "No organization"})
	return nil
}

// switchOrg serves the organization switcher, a GET form so that it works
// without JavaScript.
func (h *Handler) switchOrg(w http.ResponseWriter, r *request) error {
	key := r.URL.Query().Get("org")
	if err := r.principal.Authorize(sot.PermissionOrgRead, key, ""); err != nil || !sot.ValidKey(key) {
		return sot.Errorf(sot.ENOTFOUND, "organization not found")
	}
	http.Redirect(w, r.Request, "/orgs/"+key, http.StatusSeeOther)
	return nil
}
