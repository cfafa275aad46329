package web

import (
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sot-dev/sot"
	"github.com/sot-dev/sot/internal/auth"
	"github.com/sot-dev/sot/internal/oidc"
	"github.com/sot-dev/sot/internal/store"
)

// uiAccess is what a UI route requires.
type uiAccess int

const (
	uiPublic uiAccess = iota // anyone
	uiAuthed                 // any signed-in user
	uiMember                 // a member of the organization
	uiAdmin                  // an admin of the organization
)

// uiRoute declares a route of the UI matrix.
type uiRoute struct {
	access uiAccess
	// form is the POST form (the CSRF token is added); {n} becomes a
	// unique number.
	form string
	// prep makes the object a request deletes, and returns path
	// parameters to use instead of the defaults.
	prep func(m *uiMatrix, org string) map[string]string
	// path, when set, is the request path instead of the pattern's.
	path string
	// loginOK: success is a redirect to the login page (signing out).
	loginOK bool
}

// uiRoutes declares every route that New registers, keyed by its pattern.
// TestUIAuthorizationMatrix reads the patterns from web.go: a route added
// there without an entry here fails it.
var uiRoutes = map[string]uiRoute{
	"GET /static/":              {access: uiPublic},
	"GET /login":                {access: uiPublic},
	"POST /login":               {access: uiPublic, form: "login=nobody&password=wrong-password"},
	"POST /logout":              {access: uiAuthed, loginOK: true},
	"GET /{$}":                  {access: uiAuthed},
	"GET /switch":               {access: uiMember, path: "/switch?org={org}"},
	"/":                         {access: uiAuthed},
	"GET /orgs/{org}":           {access: uiMember},
	"GET /orgs/{org}/projects":  {access: uiMember},
	"POST /orgs/{org}/projects": {access: uiAdmin, form: "key=p{n}&name=P"},
	"GET /orgs/{org}/projects/{project}/delete":  {access: uiAdmin},
	"POST /orgs/{org}/projects/{project}/delete": {access: uiAdmin, prep: uiPrepProject},
	"GET /orgs/{org}/members":                    {access: uiAdmin},
	"POST /orgs/{org}/members":                   {access: uiAdmin, form: "login=dave&role=member"},
	"POST /orgs/{org}/members/{login}/remove":    {access: uiAdmin, prep: uiPrepMember},
	"GET /orgs/{org}/tokens":                     {access: uiAdmin},
	"GET /orgs/{org}/tokens/new":                 {access: uiAdmin},
	"POST /orgs/{org}/tokens":                    {access: uiAdmin, form: "name=t{n}&permissions=scan&scope=all&expiry=30d"},
	"GET /orgs/{org}/tokens/{id}":                {access: uiAdmin},
	"GET /orgs/{org}/tokens/{id}/created":        {access: uiAdmin},
	"POST /orgs/{org}/tokens/{id}":               {access: uiAdmin, form: "name=r{n}"},
	"POST /orgs/{org}/tokens/{id}/scope":         {access: uiAdmin, form: "scope=all"},
	"GET /orgs/{org}/tokens/{id}/rotate":         {access: uiAdmin},
	"POST /orgs/{org}/tokens/{id}/rotate":        {access: uiAdmin, prep: uiPrepToken},
	"GET /orgs/{org}/tokens/{id}/revoke":         {access: uiAdmin},
	"POST /orgs/{org}/tokens/{id}/revoke":        {access: uiAdmin, prep: uiPrepToken},
	"GET /orgs/{org}/scope-preview":              {access: uiAdmin},
	"GET /orgs/{org}/settings":                   {access: uiAdmin},
	"POST /orgs/{org}/settings":                  {access: uiAdmin, form: "max_lifetime_days=90"},
	"GET /orgs/{org}/audit":                      {access: uiAdmin},
	"POST /orgs/{org}/tokens/{id}/rotation":      {access: uiAdmin, form: "every="},
	"GET /orgs/{org}/trust-policies":             {access: uiAdmin},
	"GET /orgs/{org}/trust-policies/new":         {access: uiAdmin},
	"POST /orgs/{org}/trust-policies": {access: uiAdmin,
		form: "name=tp{n}&issuer=" + url.QueryEscape(uiIssuer) + "&conditions=repository_id%3D1&permission=scan&scope_mode=all&ttl=15m"},
	"GET /orgs/{org}/trust-policies/{id}": {access: uiAdmin, prep: uiPrepPolicy},
	"POST /orgs/{org}/trust-policies/{id}": {access: uiAdmin, prep: uiPrepPolicy,
		form: "name=tp{n}&issuer=" + url.QueryEscape(uiIssuer) + "&conditions=repository_id%3D2&permission=browse&scope_mode=all&ttl=1h"},
	"GET /orgs/{org}/trust-policies/{id}/delete":  {access: uiAdmin, prep: uiPrepPolicy},
	"POST /orgs/{org}/trust-policies/{id}/delete": {access: uiAdmin, prep: uiPrepPolicy},
	"GET /orgs/{org}/webhooks":                    {access: uiAdmin},
	"GET /orgs/{org}/webhooks/new":                {access: uiAdmin},
	"POST /orgs/{org}/webhooks":                   {access: uiAdmin, form: "url=https%3A%2F%2Fhooks.example.com%2F{n}&event=token.created"},
	"GET /orgs/{org}/webhooks/{id}":               {access: uiAdmin, prep: uiPrepWebhook},
	"GET /orgs/{org}/webhooks/{id}/created":       {access: uiAdmin, prep: uiPrepWebhook},
	"POST /orgs/{org}/webhooks/{id}":              {access: uiAdmin, prep: uiPrepWebhook, form: "url=https%3A%2F%2Fhooks.example.com%2Fe{n}&event=token.revoked"},
	"GET /orgs/{org}/webhooks/{id}/delete":        {access: uiAdmin, prep: uiPrepWebhook},
	"POST /orgs/{org}/webhooks/{id}/delete":       {access: uiAdmin, prep: uiPrepWebhook},
}

// uiIssuer is the OIDC issuer the matrix's server trusts.
const uiIssuer = "https://token.actions.githubusercontent.com"

// registeredPatterns returns the patterns web.go registers on its mux.
func registeredPatterns(t *testing.T) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "web.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok || len(call.Args) == 0 {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok || (sel.Sel.Name != "Handle" && sel.Sel.Name != "HandleFunc") {
			return true
		}
		if x, ok := sel.X.(*ast.Ident); !ok || x.Name != "mux" {
			return true
		}
		if lit, ok := call.Args[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
			s, err := strconv.Unquote(lit.Value)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
		return true
	})
	if len(out) < 10 {
		t.Fatalf("found only %d routes in web.go", len(out))
	}
	return out
}

// uiCaller is a principal of the UI matrix.
type uiCaller struct {
	name string
	// cookie is the session cookie ("" for none); bearer, an
	// Authorization header the UI must ignore.
	cookie, bearer string
	// csrf: the caller sends its session's CSRF token with forms.
	csrf     bool
	valid    bool
	instance bool
	role     sot.Role // in "acme"
}

type uiMatrix struct {
	t    *testing.T
	ctx  context.Context
	db   *store.DB
	h    *Handler
	srv  *httptest.Server
	seq  int
	ids  map[string]string // org → a token id
	orgs map[string]*sot.Org
}

// allowed returns whether c may use a route of access a on org, and the
// status of a refusal.
func (c uiCaller) allowed(a uiAccess, org string) (bool, int) {
	switch {
	case a == uiPublic:
		return true, 0
	case !c.valid:
		return false, http.StatusSeeOther // to the login page
	case a == uiAuthed, c.instance:
		return true, 0
	case org != "acme" || c.role == "":
		return false, http.StatusNotFound
	case a == uiAdmin && c.role != sot.RoleAdmin:
		return false, http.StatusForbidden
	}
	return true, 0
}

func TestUIAuthorizationMatrix(t *testing.T) {
	patterns := registeredPatterns(t)
	for _, p := range patterns {
		if _, ok := uiRoutes[p]; !ok {
			t.Errorf("UI route %q has no entry in uiRoutes: declare who may use it", p)
		}
	}
	for p := range uiRoutes {
		if !slices.Contains(patterns, p) {
			t.Errorf("uiRoutes declares %q, which web.go does not register", p)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	ctx := context.Background()
	db, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "sot.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	au := auth.New(auth.Config{Tokens: db, Users: db, Orgs: db, Audit: db, Bus: db})
	actx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- au.Run(actx) }()
	t.Cleanup(func() { cancel(); <-done })
	key := []byte(strings.Repeat("k", 32))
	verifier, err := oidc.New(oidc.Config{Issuers: []string{uiIssuer}})
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Config{Users: db, Orgs: db, Projects: db, Tokens: db, Audit: db, Auth: au, Lifecycle: db,
		TrustPolicies: db, Webhooks: db, OIDC: verifier, SessionKey: key})
	if err != nil {
		t.Fatal(err)
	}
	m := &uiMatrix{t: t, ctx: ctx, db: db, h: h, srv: httptest.NewServer(h), ids: map[string]string{}, orgs: map[string]*sot.Org{}}
	t.Cleanup(m.srv.Close)

	users := map[string]*sot.User{}
	for _, u := range []struct {
		login string
		admin bool
	}{{"root", true}, {"alice", false}, {"bob", false}, {"carol", false}, {"dave", false}} {
		users[u.login] = &sot.User{Login: u.login, Name: u.login, Admin: u.admin}
		if err := db.CreateUser(ctx, users[u.login], "x"); err != nil {
			t.Fatal(err)
		}
	}
	for _, key := range []string{"acme", "other"} {
		o := &sot.Org{Key: key, Name: key, Plan: sot.PlanTeam}
		if err := db.CreateOrg(ctx, o, users["root"].ID); err != nil {
			t.Fatal(err)
		}
		m.orgs[key] = o
		for _, p := range []string{"web"} {
			if err := db.CreateProject(ctx, &sot.Project{Org: key, Key: p, Name: p}); err != nil {
				t.Fatal(err)
			}
		}
		m.ids[key] = m.token(key)
		if _, _, err := db.SetMember(ctx, key, "dave", sot.RoleMember); err != nil {
			t.Fatal(err)
		}
	}
	for login, role := range map[string]sot.Role{"alice": sot.RoleAdmin, "bob": sot.RoleMember} {
		if _, _, err := db.SetMember(ctx, "acme", login, role); err != nil {
			t.Fatal(err)
		}
	}
	session := func(login string) string {
		return h.keys.newSession(users[login].ID, time.Now().Add(time.Hour))
	}
	orgSecret := func() string {
		_, secret, err := sot.PrepareOrgToken(m.orgs["acme"], sot.UserRef{ID: users["root"].ID, Login: "root"},
			sot.TokenRequest{Name: "bearer", Scope: sot.Scope{AllProjects: true}, Permissions: sot.NewPermissionSet(sot.PermissionScan), Expiry: sot.Expiry{In: "30d"}}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return secret
	}()
	otherKeys, err := deriveKeys([]byte(strings.Repeat("x", 32)))
	if err != nil {
		t.Fatal(err)
	}
	callers := []uiCaller{
		{name: "anonymous"},
		{name: "org token as bearer", bearer: orgSecret},
		{name: "forged session", cookie: otherKeys.newSession(users["root"].ID, time.Now().Add(time.Hour)), csrf: true},
		{name: "expired session", cookie: h.keys.newSession(users["root"].ID, time.Now().Add(-time.Minute)), csrf: true},
		{name: "instance admin", cookie: session("root"), csrf: true, valid: true, instance: true},
		{name: "org admin", cookie: session("alice"), csrf: true, valid: true, role: sot.RoleAdmin},
		{name: "member", cookie: session("bob"), csrf: true, valid: true, role: sot.RoleMember},
		{name: "non-member", cookie: session("carol"), csrf: true, valid: true},
		{name: "org admin without CSRF token", cookie: session("alice"), valid: true, role: sot.RoleAdmin},
	}

	cells := 0
	for _, pattern := range patterns {
		rt := uiRoutes[pattern]
		method, path, ok := strings.Cut(pattern, " ")
		if !ok {
			method, path = "GET", pattern
		}
		path = strings.ReplaceAll(path, "{$}", "")
		if rt.path != "" {
			path = rt.path
		}
		if pattern == "/" {
			path = "/no/such/page"
		}
		for _, c := range callers {
			orgs := []string{"acme", "other"}
			if !strings.Contains(path, "{org}") {
				orgs = orgs[:1]
			}
			for _, org := range orgs {
				cells++
				st, loc := m.send(method, path, rt, c, org)
				ok, refusal := c.allowed(rt.access, org)
				if method == http.MethodPost && !c.csrf && c.valid && rt.access != uiPublic {
					ok, refusal = false, http.StatusForbidden
				}
				toLogin := st == http.StatusSeeOther && strings.HasPrefix(loc, "/login") && !(ok && rt.loginOK)
				switch {
				case st >= 500:
					t.Errorf("%s as %s on %s: %d", pattern, c.name, org, st)
				case ok && (toLogin || st == http.StatusForbidden || st == http.StatusNotFound && pattern != "/" || st == http.StatusUnauthorized && pattern != "POST /login"):
					t.Errorf("%s as %s on %s: %d (to %q), want it allowed", pattern, c.name, org, st, loc)
				case !ok && refusal == http.StatusSeeOther && !toLogin:
					t.Errorf("%s as %s on %s: %d (to %q), want a redirect to the login page", pattern, c.name, org, st, loc)
				case !ok && refusal != http.StatusSeeOther && st != refusal:
					t.Errorf("%s as %s on %s: %d, want %d", pattern, c.name, org, st, refusal)
				}
			}
		}
	}
	t.Logf("%d routes × %d callers: %d cells", len(patterns), len(callers), cells)
}

// send makes one cell's request and returns its status and Location.
func (m *uiMatrix) send(method, path string, rt uiRoute, c uiCaller, org string) (int, string) {
	m.seq++
	params := map[string]string{"org": org, "project": "web", "id": m.ids[org], "login": "dave", "n": strconv.Itoa(m.seq)}
	if rt.prep != nil {
		for k, v := range rt.prep(m, org) {
			params[k] = v
		}
	}
	for k, v := range params {
		path = strings.ReplaceAll(path, "{"+k+"}", v)
	}
	var body io.Reader
	form := ""
	if method == http.MethodPost {
		form = rt.form
		for k, v := range params {
			form = strings.ReplaceAll(form, "{"+k+"}", v)
		}
		if c.csrf && c.cookie != "" {
			if s, err := m.h.keys.parseSession(c.cookie, time.Now()); err == nil {
				form += "&csrf=" + url.QueryEscape(m.h.keys.csrfToken(s))
			} else {
				// An invalid session has no token; send one anyway.
				form += "&csrf=x"
			}
		}
		body = strings.NewReader(form)
	}
	req, err := http.NewRequest(method, m.srv.URL+path, body)
	if err != nil {
		m.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	// A same-origin request, as a browser sends it.
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	if c.cookie != "" {
		req.AddCookie(&http.Cookie{Name: sessionCookie, Value: c.cookie})
	}
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		m.t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("Location")
}

// token makes an organization token in org and returns its id.
func (m *uiMatrix) token(org string) string {
	tok, secret, err := sot.PrepareOrgToken(m.orgs[org], sot.UserRef{ID: 1, Login: "root"},
		sot.TokenRequest{Name: fmt.Sprintf("t%d", m.seq), Scope: sot.Scope{AllProjects: true},
			Permissions: sot.NewPermissionSet(sot.PermissionScan), Expiry: sot.Expiry{In: "30d"}}, time.Now())
	if err != nil {
		m.t.Fatal(err)
	}
	if err := m.db.CreateToken(m.ctx, tok, sot.HashSecret(secret)); err != nil {
		m.t.Fatal(err)
	}
	return strconv.FormatInt(tok.ID, 10)
}

func uiPrepToken(m *uiMatrix, org string) map[string]string {
	return map[string]string{"id": m.token(org)}
}

func uiPrepProject(m *uiMatrix, org string) map[string]string {
	key := fmt.Sprintf("del%d", m.seq)
	if err := m.db.CreateProject(m.ctx, &sot.Project{Org: org, Key: key, Name: key}); err != nil {
		m.t.Fatal(err)
	}
	return map[string]string{"project": key}
}

func uiPrepMember(m *uiMatrix, org string) map[string]string {
	if _, _, err := m.db.SetMember(m.ctx, org, "dave", sot.RoleMember); err != nil {
		m.t.Fatal(err)
	}
	return nil
}

func uiPrepPolicy(m *uiMatrix, org string) map[string]string {
	p := &sot.TrustPolicy{Org: org, Name: fmt.Sprintf("policy%d", m.seq), Issuer: uiIssuer, Audience: sot.DefaultAudience,
		Conditions: map[string]string{"repository_id": "1"}, Scope: sot.Scope{AllProjects: true},
		Permissions: sot.NewPermissionSet(sot.PermissionScan), TTL: sot.DefaultTrustTTL}
	if err := m.db.CreateTrustPolicy(m.ctx, p); err != nil {
		m.t.Fatal(err)
	}
	return map[string]string{"id": strconv.FormatInt(p.ID, 10)}
}

func uiPrepWebhook(m *uiMatrix, org string) map[string]string {
	w := &sot.Webhook{Org: org, URL: fmt.Sprintf("https://hooks.example.com/w%d", m.seq),
		Events: []string{sot.EventTokenRotated}, Secret: sot.NewWebhookSecret(), CreatedAt: time.Now()}
	if err := m.db.CreateWebhook(m.ctx, w); err != nil {
		m.t.Fatal(err)
	}
	return map[string]string{"id": strconv.FormatInt(w.ID, 10)}
}
