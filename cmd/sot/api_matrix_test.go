package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The authorization matrix: every route of the API (from its OpenAPI
// document, plus the plain handlers) × every kind of principal × its own
// and another organization. Each route declares what it needs; the
// expected status of each cell follows from that declaration and the
// principal, by the rules of sot.Principal.Authorize. A route without a
// declaration fails the test, so a new route cannot ship unexamined.

// need is what a route requires of its caller.
type need int

const (
	needNone       need = iota // public: any caller, any credential or none
	needAny                    // any valid credential
	needUser                   // a user (personal token), not an org token
	needInstance               // the instance admin
	needOrgRead                // any member of the org, or a token of it
	needScan                   // scan permission (users: membership)
	needBrowse                 // browse permission (users: membership)
	needProvision              // provision permission (users: org admin)
	needOrgAdmin               // org admin (tokens never)
	needSelfRotate             // an org token with self_rotate, on itself
	needSignature              // a GitHub signature: 401 for every credential
	needIDToken                // an OIDC ID token in the body: 401 for every credential
)

// matrixRoute declares a route of the matrix.
type matrixRoute struct {
	need need
	// scoped: the route names a project (in its path, or body key "key"),
	// which an org token's scope must cover.
	scoped bool
	// body is the JSON body ("" for none); {n} becomes a unique number.
	body string
	// prep runs before each request, as the admin, and returns path
	// parameters to use instead of the defaults (an object to delete).
	prep func(m *matrix, c matrixCaller, org string) map[string]string
	// check: the authorization check, which answers every refusal of an
	// authenticated caller with 403 (its contract), not 404.
	check bool
}

// matrixRoutes declares every route. The key is "METHOD /pattern".
var matrixRoutes = map[string]matrixRoute{
	// Operations.
	"GET /healthz":                         {need: needNone},
	"GET /readyz":                          {need: needNone},
	"GET /metrics":                         {need: needNone},
	"GET /api/v1/openapi.json":             {need: needNone},
	"GET /api/server/version":              {need: needNone},
	"GET /api/v1/check":                    {need: needScan, scoped: true, check: true},
	"GET /api/v1/me":                       {need: needAny},
	"GET /api/v1/orgs":                     {need: needAny},
	"POST /api/v1/orgs":                    {need: needInstance, body: `{"key":"m{n}","name":"M","plan":"team"}`},
	"GET /api/v1/users":                    {need: needInstance},
	"POST /api/v1/users":                   {need: needInstance, body: `{"login":"u{n}","name":"U","password":"password-of-u{n}"}`},
	"POST /api/v1/users/{login}/tokens":    {need: needInstance, body: `{"name":"t{n}","expires_in":"30d"}`},
	"GET /api/v1/user/tokens":              {need: needUser},
	"POST /api/v1/user/tokens":             {need: needUser, body: `{"name":"t{n}","expires_in":"30d"}`},
	"DELETE /api/v1/user/tokens/{id}":      {need: needUser, prep: prepPersonalToken},
	"POST /api/v1/user/tokens/{id}/rotate": {need: needUser, body: `{}`, prep: prepPersonalToken},
	"POST /api/v1/tokens/self/rotate":      {need: needSelfRotate, body: `{"grace_period":"24h"}`},
	// Leaks and tokenless CI: no credential is read.
	"POST /api/v1/tokens/revoke":          {need: needNone, body: `{"secrets":["sot_000000000000000000000000000000000000"]}`},
	"POST /api/v1/secret-scanning/github": {need: needSignature, body: `[{"token":"sot_x","type":"sot_org_token","url":"https://github.com/x","source":"content"}]`},
	"POST /api/v1/oidc/exchange":          {need: needIDToken, body: `{"org":"{org}","id_token":"a.b.c"}`},
	// SonarQube compatibility.
	"GET /api/authentication/validate": {need: needNone},
	"GET /api/organizations/search":    {need: needAny},
	// Organizations.
	"GET /api/v1/orgs/{org}":                    {need: needOrgRead},
	"PATCH /api/v1/orgs/{org}":                  {need: needOrgAdmin, body: `{"name":"Renamed {n}"}`},
	"GET /api/v1/orgs/{org}/members":            {need: needOrgAdmin},
	"PUT /api/v1/orgs/{org}/members/{login}":    {need: needOrgAdmin, body: `{"role":"member"}`},
	"DELETE /api/v1/orgs/{org}/members/{login}": {need: needOrgAdmin, prep: prepMember},
	"GET /api/v1/orgs/{org}/audit":              {need: needOrgAdmin},
	"POST /api/v1/orgs/{org}/scope-preview":     {need: needOrgAdmin, body: `{"scope":{"all_projects":true}}`},
	// Projects and analyses.
	"GET /api/v1/orgs/{org}/projects":                                {need: needBrowse},
	"POST /api/v1/orgs/{org}/projects":                               {need: needProvision, scoped: true, body: `{"key":"{project}"}`, prep: prepNewProjectKey},
	"GET /api/v1/orgs/{org}/projects/{project}":                      {need: needBrowse, scoped: true},
	"DELETE /api/v1/orgs/{org}/projects/{project}":                   {need: needOrgAdmin, scoped: true, prep: prepProject},
	"POST /api/v1/orgs/{org}/projects/{project}/analyses":            {need: needScan, scoped: true, body: "report"},
	"GET /api/v1/orgs/{org}/projects/{project}/analyses":             {need: needBrowse, scoped: true},
	"GET /api/v1/orgs/{org}/projects/{project}/analyses/{id}":        {need: needBrowse, scoped: true},
	"GET /api/v1/orgs/{org}/projects/{project}/analyses/{id}/report": {need: needBrowse, scoped: true},
	// Organization tokens.
	"GET /api/v1/orgs/{org}/tokens":               {need: needOrgAdmin},
	"POST /api/v1/orgs/{org}/tokens":              {need: needOrgAdmin, body: `{"name":"t{n}","expires_in":"30d","permissions":["scan"],"scope":{"all_projects":true}}`},
	"GET /api/v1/orgs/{org}/tokens/{id}":          {need: needOrgAdmin},
	"PATCH /api/v1/orgs/{org}/tokens/{id}":        {need: needOrgAdmin, body: `{"description":"d{n}"}`},
	"DELETE /api/v1/orgs/{org}/tokens/{id}":       {need: needOrgAdmin, prep: prepOrgToken},
	"POST /api/v1/orgs/{org}/tokens/{id}/rotate":  {need: needOrgAdmin, body: `{}`, prep: prepOrgToken},
	"GET /api/v1/orgs/{org}/tokens/{id}/projects": {need: needOrgAdmin},
	// Webhooks and trust policies.
	"GET /api/v1/orgs/{org}/webhooks":                 {need: needOrgAdmin},
	"POST /api/v1/orgs/{org}/webhooks":                {need: needOrgAdmin, body: `{"url":"http://127.0.0.1:9/h{n}","events":["token.created"]}`},
	"GET /api/v1/orgs/{org}/webhooks/{id}":            {need: needOrgAdmin},
	"PATCH /api/v1/orgs/{org}/webhooks/{id}":          {need: needOrgAdmin, body: `{"url":"http://127.0.0.1:9/p{n}"}`},
	"DELETE /api/v1/orgs/{org}/webhooks/{id}":         {need: needOrgAdmin, prep: prepWebhook},
	"GET /api/v1/orgs/{org}/webhooks/{id}/deliveries": {need: needOrgAdmin},
	"GET /api/v1/orgs/{org}/trust-policies":           {need: needOrgAdmin},
	"POST /api/v1/orgs/{org}/trust-policies":          {need: needOrgAdmin, body: matrixTrustPolicy},
	"GET /api/v1/orgs/{org}/trust-policies/{id}":      {need: needOrgAdmin},
	"PATCH /api/v1/orgs/{org}/trust-policies/{id}":    {need: needOrgAdmin, body: `{"name":"p{n}"}`},
	"DELETE /api/v1/orgs/{org}/trust-policies/{id}":   {need: needOrgAdmin, prep: prepTrustPolicy},
}

const matrixTrustPolicy = `{"name":"p{n}","issuer":"https://token.actions.githubusercontent.com","conditions":{"repository":"acme/web"},"permissions":["scan"],"scope":{"all_projects":true}}`

// plainRoutes are the API's routes outside its OpenAPI document.
var plainRoutes = []string{"GET /healthz", "GET /readyz", "GET /metrics", "GET /api/v1/openapi.json", "GET /api/server/version", "GET /api/v1/check"}

// matrixCaller is a principal of the matrix.
type matrixCaller struct {
	name   string
	secret string // "" for anonymous
	home   string // the organization it belongs to ("" for none)
	// valid: the credential authenticates. suspended: it authenticates,
	// but its organization's plan allows no org tokens.
	valid, suspended bool
	user             bool   // a personal token
	instanceAdmin    bool   // of the instance admin
	role             string // "admin", "member" or "" in its home org
	perms            []string
	inScope          bool // its scope covers every project the matrix names
}

// matrix is the state of the test: one server, its orgs, and ids of
// objects in each organization.
type matrix struct {
	t     *testing.T
	s     *testServer
	seq   atomic.Int64
	ids   map[string]map[string]string // org → kind → id
	ipSeq atomic.Uint32
}

// expect returns the statuses a cell may answer, by the rules of
// Principal.Authorize.
func (rt matrixRoute) expect(c matrixCaller, org string) []int {
	ok := []int{http.StatusOK, http.StatusCreated, http.StatusNoContent}
	switch rt.need {
	case needNone:
		return ok
	case needSignature, needIDToken:
		return []int{http.StatusUnauthorized}
	}
	if !c.valid {
		return []int{http.StatusUnauthorized}
	}
	if c.suspended {
		return []int{http.StatusForbidden}
	}
	deny := []int{http.StatusForbidden}
	notFound := []int{http.StatusNotFound}
	if rt.check {
		notFound = deny
	}
	switch rt.need {
	case needAny:
		return ok
	case needUser:
		if c.user {
			return ok
		}
		return deny
	case needInstance:
		if c.instanceAdmin {
			return ok
		}
		return deny
	case needSelfRotate:
		if !c.user && slices.Contains(c.perms, "self_rotate") {
			return ok
		}
		return deny
	}
	// Organization routes.
	if c.instanceAdmin {
		return ok
	}
	if org != c.home {
		return notFound // another organization does not exist for them
	}
	if c.user {
		if c.role == "" {
			return notFound
		}
		if (rt.need == needOrgAdmin || rt.need == needProvision) && c.role != "admin" {
			return deny
		}
		return ok
	}
	perm := map[need]string{needScan: "scan", needBrowse: "browse", needProvision: "provision"}[rt.need]
	switch {
	case rt.need == needOrgRead:
		return ok
	case rt.need == needOrgAdmin, !slices.Contains(c.perms, perm):
		return deny
	case rt.scoped && !c.inScope:
		return deny
	}
	return ok
}

func TestAuthorizationMatrix(t *testing.T) {
	clock := &testClock{}
	s := startServer(t, serverOpts{Clock: clock, OIDCIssuers: []string{"github"},
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	m := &matrix{t: t, s: s, ids: map[string]map[string]string{}}
	admin := s.admin(t)

	// Routes: the OpenAPI document and the plain handlers, each declared.
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	s.as(t, "").do("GET", "/api/v1/openapi.json", nil).want(t, http.StatusOK).decode(t, &doc)
	routes := slices.Clone(plainRoutes)
	for path, ops := range doc.Paths {
		for method := range ops {
			switch method {
			case "get", "put", "post", "delete", "patch", "head", "options":
				routes = append(routes, strings.ToUpper(method)+" "+path)
			}
		}
	}
	slices.Sort(routes)
	routes = slices.Compact(routes)
	for _, r := range routes {
		if _, ok := matrixRoutes[r]; !ok {
			t.Errorf("route %s has no entry in matrixRoutes: declare what it needs", r)
		}
	}
	for r := range matrixRoutes {
		if !slices.Contains(routes, r) {
			t.Errorf("matrixRoutes declares %s, which the API does not serve", r)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// Three organizations with the same projects; "lapsed" moves to the
	// free plan after its token is made.
	for _, org := range []string{"acme", "other", "lapsed"} {
		s.createOrg(t, org, "team")
		s.createProjects(t, org, "web", "side")
		m.ids[org] = map[string]string{}
	}
	aliceTok, bobTok, carolTok := s.createUser(t, "alice"), s.createUser(t, "bob"), s.createUser(t, "carol")
	s.createUser(t, "dave")
	setMember(t, admin, "/api/v1/orgs/acme/members/alice", "admin")
	setMember(t, admin, "/api/v1/orgs/acme/members/bob", "member")
	token := func(org string, perms []string, scope map[string]any, expires string) createdTokenBody {
		return s.createOrgToken(t, org, map[string]any{"name": "m", "permissions": perms, "scope": scope, "expires_in": expires})
	}
	all := []string{"scan", "browse", "provision", "self_rotate"}
	allProjects := map[string]any{"all_projects": true}
	callers := []matrixCaller{
		{name: "anonymous"},
		{name: "instance admin", secret: s.AdminToken, valid: true, user: true, instanceAdmin: true, home: "acme", role: "admin"},
		{name: "org admin", secret: aliceTok, valid: true, user: true, home: "acme", role: "admin"},
		{name: "member", secret: bobTok, valid: true, user: true, home: "acme", role: "member"},
		{name: "non-member", secret: carolTok, valid: true, user: true, home: "acme"},
	}
	for _, p := range all {
		callers = append(callers, matrixCaller{name: "org token " + p, secret: token("acme", []string{p}, allProjects, "30d").Secret,
			valid: true, home: "acme", perms: []string{p}, inScope: true})
	}
	callers = append(callers,
		matrixCaller{name: "org token of another org", secret: token("other", all, allProjects, "30d").Secret, valid: true, home: "other", perms: all, inScope: true},
		matrixCaller{name: "out of scope", secret: token("acme", all, map[string]any{"projects": []string{"side"}}, "30d").Secret, valid: true, home: "acme", perms: all},
		matrixCaller{name: "suspended by plan", secret: token("lapsed", all, allProjects, "30d").Secret, valid: true, suspended: true, home: "lapsed", perms: all, inScope: true},
		matrixCaller{name: "expired", secret: token("acme", all, allProjects, "1d").Secret, home: "acme", perms: all, inScope: true},
	)
	revoked := token("acme", all, allProjects, "30d")
	admin.do("DELETE", fmt.Sprintf("/api/v1/orgs/acme/tokens/%d", revoked.Token.ID), nil).want(t, http.StatusNoContent)
	callers = append(callers, matrixCaller{name: "revoked", secret: revoked.Secret, home: "acme", perms: all, inScope: true})
	var revokedPersonal createdTokenBody
	s.as(t, carolTok).do("POST", "/api/v1/user/tokens", map[string]any{"name": "gone", "expires_in": "30d"}).want(t, http.StatusCreated).decode(t, &revokedPersonal)
	s.as(t, carolTok).do("DELETE", fmt.Sprintf("/api/v1/user/tokens/%d", revokedPersonal.Token.ID), nil).want(t, http.StatusNoContent)
	callers = append(callers, matrixCaller{name: "revoked personal", secret: revokedPersonal.Secret, user: true, home: "acme"})
	var expiredPersonal createdTokenBody
	s.as(t, bobTok).do("POST", "/api/v1/user/tokens", map[string]any{"name": "short", "expires_in": "1d"}).want(t, http.StatusCreated).decode(t, &expiredPersonal)
	callers = append(callers, matrixCaller{name: "expired personal", secret: expiredPersonal.Secret, user: true, home: "acme", role: "member"})

	// Objects every {id} can name, in each organization.
	for _, org := range []string{"acme", "other", "lapsed"} {
		m.ids[org]["tokens"] = fmt.Sprint(token(org, []string{"scan"}, allProjects, "30d").Token.ID)
		m.ids[org]["webhooks"] = m.create(admin, "/api/v1/orgs/"+org+"/webhooks", `{"url":"http://127.0.0.1:9/x","events":["token.created"]}`)
		m.ids[org]["trust-policies"] = m.create(admin, "/api/v1/orgs/"+org+"/trust-policies", matrixTrustPolicy)
		m.ids[org]["analyses"] = m.createRaw(admin, "/api/v1/orgs/"+org+"/projects/web/analyses", "report")
		setMember(t, admin, "/api/v1/orgs/"+org+"/members/dave", "member")
	}
	admin.do("PATCH", "/api/v1/orgs/lapsed", map[string]any{"plan": "free"}).want(t, http.StatusOK)
	clock.Advance(25 * time.Hour) // the 1d token expires; the others have 30d

	// Self-rotation changes the caller's secret: last.
	sort.SliceStable(routes, func(i, j int) bool {
		return !strings.Contains(routes[i], "rotate") && strings.Contains(routes[j], "rotate")
	})
	cells := 0
	for _, route := range routes {
		rt := matrixRoutes[route]
		method, pattern, _ := strings.Cut(route, " ")
		for _, c := range callers {
			orgs := []string{c.home, "other"}
			if c.home == "other" || c.home == "lapsed" {
				orgs[1] = "acme"
			}
			if c.home == "" {
				orgs = []string{"acme"}
			}
			if !strings.Contains(pattern, "{org}") && !strings.Contains(rt.body, "{org}") && pattern != "/api/v1/check" {
				orgs = orgs[:1]
			}
			for i, org := range orgs {
				if i == 1 && rt.need == needSelfRotate {
					continue
				}
				cells++
				st, body := m.send(method, pattern, rt, c, org)
				if want := rt.expect(c, org); !slices.Contains(want, st) {
					col := "own org"
					if i == 1 {
						col = "other org"
					}
					t.Errorf("%s as %s on %s (%s): %d, want %v: %s", route, c.name, org, col, st, want, body)
				}
			}
		}
	}
	t.Logf("%d routes × %d principals: %d cells", len(routes), len(callers), cells)
}

// send makes one cell's request, from an address of its own (so that no
// per-address limit interferes).
func (m *matrix) send(method, pattern string, rt matrixRoute, c matrixCaller, org string) (int, string) {
	n := fmt.Sprint(m.seq.Add(1))
	params := map[string]string{"org": org, "project": "web", "login": "dave", "n": n}
	switch {
	case strings.Contains(pattern, "/tokens/{id}") && strings.HasPrefix(pattern, "/api/v1/orgs/"):
		params["id"] = m.ids[org]["tokens"]
	case strings.Contains(pattern, "/webhooks/{id}"):
		params["id"] = m.ids[org]["webhooks"]
	case strings.Contains(pattern, "/trust-policies/{id}"):
		params["id"] = m.ids[org]["trust-policies"]
	case strings.Contains(pattern, "/analyses/{id}"):
		params["id"] = m.ids[org]["analyses"]
	case pattern == "/api/v1/users/{login}/tokens":
		params["login"] = "carol"
	}
	if rt.prep != nil {
		for k, v := range rt.prep(m, c, org) {
			params[k] = v
		}
	}
	fill := func(s string) string {
		for k, v := range params {
			s = strings.ReplaceAll(s, "{"+k+"}", v)
		}
		return s
	}
	path := fill(pattern)
	if pattern == "/api/v1/check" {
		path += "?org=" + org + "&project=web&permission=scan"
	}
	var body any
	if rt.body != "" {
		body = fill(rt.body)
		if rt.body == "report" {
			body = []byte("report")
		}
	}
	cl := m.s.as(m.t, c.secret)
	ip := m.ipSeq.Add(1)
	cl.header = http.Header{"X-Forwarded-For": {fmt.Sprintf("198.18.%d.%d", ip>>8&0xff, ip&0xff)}}
	r := cl.do(method, path, body)
	return r.Status, string(r.Body)
}

// create POSTs body as the admin and returns the new object's id.
func (m *matrix) create(c *apiClient, path, body string) string {
	var out struct {
		ID json.Number `json:"id"`
	}
	c.do("POST", path, json.RawMessage(body)).want(m.t, http.StatusCreated).decode(m.t, &out)
	return out.ID.String()
}

func (m *matrix) createRaw(c *apiClient, path, body string) string {
	var out struct {
		ID json.Number `json:"id"`
	}
	c.do("POST", path, []byte(body)).want(m.t, http.StatusCreated).decode(m.t, &out)
	return out.ID.String()
}

// The prep functions make a fresh object for a request that deletes or
// replaces one, so that every cell finds what it names.

func prepOrgToken(m *matrix, _ matrixCaller, org string) map[string]string {
	if org == "lapsed" {
		return nil // its plan allows no new token; the existing one serves
	}
	tok := createOrgTokenAs(m.t, m.s.admin(m.t), org, map[string]any{"name": "victim", "permissions": []string{"scan"}, "scope": map[string]any{"all_projects": true}})
	return map[string]string{"id": fmt.Sprint(tok.Token.ID)}
}

func prepWebhook(m *matrix, _ matrixCaller, org string) map[string]string {
	if org == "lapsed" {
		return nil // its plan may refuse new ones; the existing one serves
	}
	return map[string]string{"id": m.create(m.s.admin(m.t), "/api/v1/orgs/"+org+"/webhooks", `{"url":"http://127.0.0.1:9/v","events":["token.created"]}`)}
}

func prepTrustPolicy(m *matrix, _ matrixCaller, org string) map[string]string {
	if org == "lapsed" {
		return nil // its plan may refuse new ones; the existing one serves
	}
	return map[string]string{"id": m.create(m.s.admin(m.t), "/api/v1/orgs/"+org+"/trust-policies", strings.ReplaceAll(matrixTrustPolicy, "{n}", fmt.Sprintf("v%d", m.seq.Add(1))))}
}

func prepMember(m *matrix, _ matrixCaller, org string) map[string]string {
	setMember(m.t, m.s.admin(m.t), "/api/v1/orgs/"+org+"/members/dave", "member")
	return nil
}

func prepProject(m *matrix, _ matrixCaller, org string) map[string]string {
	key := fmt.Sprintf("del-%d", m.seq.Add(1))
	m.s.createProjects(m.t, org, key)
	return map[string]string{"project": key}
}

// prepNewProjectKey names a project that does not exist yet: in scope of
// every token but the out-of-scope one (whose scope is "side" alone).
func prepNewProjectKey(m *matrix, _ matrixCaller, _ string) map[string]string {
	return map[string]string{"project": fmt.Sprintf("new-%d", m.seq.Add(1))}
}

// prepPersonalToken makes a personal token for a user caller to delete or
// rotate; other callers name one that does not exist.
func prepPersonalToken(m *matrix, c matrixCaller, _ string) map[string]string {
	if !c.user || !c.valid {
		return map[string]string{"id": "999999"}
	}
	var out createdTokenBody
	m.s.as(m.t, c.secret).do("POST", "/api/v1/user/tokens", map[string]any{"name": "victim", "expires_in": "30d"}).want(m.t, http.StatusCreated).decode(m.t, &out)
	return map[string]string{"id": fmt.Sprint(out.Token.ID)}
}

// setMember gives a user a role: 201 when it adds them, 200 when they were
// members already.
func setMember(t *testing.T, c *apiClient, path, role string) {
	t.Helper()
	if r := c.do("PUT", path, map[string]any{"role": role}); r.Status != http.StatusOK && r.Status != http.StatusCreated {
		t.Fatalf("PUT %s: %d %s", path, r.Status, r.Body)
	}
}
