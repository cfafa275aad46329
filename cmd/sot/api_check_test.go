package main

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// The authorization check for reverse proxies: 204, 401 (with the
// challenge), 403; from query parameters or from X-Forwarded-Uri.
func TestAPICheck(t *testing.T) {
	forEachDB(t, serverOpts{CheckPathTemplate: "/{org}/{project}/..."}, func(t *testing.T, s *testServer) {
		s.createOrg(t, "acme", "team")
		s.createOrg(t, "globex", "team")
		s.createProjects(t, "acme", "web", "api")
		tok := s.createOrgToken(t, "acme", map[string]any{"scope": map[string]any{"projects": []string{"web"}}, "permissions": []string{"scan"}})
		bad := tok.Secret[:len(tok.Secret)-1] + "0"
		if bad == tok.Secret {
			bad = tok.Secret[:len(tok.Secret)-1] + "1"
		}
		for _, tc := range []struct {
			name, token, query, uri string
			basic                   bool
			status                  int
			method                  string // default GET
		}{
			{"allowed", tok.Secret, "?org=acme&project=web", "", false, 204, ""},
			{"allowed with basic auth", tok.Secret, "?org=acme&project=web&permission=scan", "", true, 204, ""},
			{"out of scope", tok.Secret, "?org=acme&project=api", "", false, 403, ""},
			{"missing permission", tok.Secret, "?org=acme&project=web&permission=browse", "", false, 403, ""},
			{"other org", tok.Secret, "?org=globex&project=web", "", false, 403, ""},
			{"no credential", "", "?org=acme&project=web", "", false, 401, ""},
			{"bad checksum", bad, "?org=acme&project=web", "", false, 401, ""},
			{"garbage", "hello", "?org=acme&project=web", "", false, 401, ""},
			{"forwarded uri allowed", tok.Secret, "", "/acme/web/some/file?x=1", false, 204, ""},
			{"forwarded uri out of scope", tok.Secret, "", "/acme/api/", false, 403, ""},
			{"forwarded uri no match", tok.Secret, "", "/acme", false, 400, ""},
			{"no org", tok.Secret, "?project=web", "", false, 400, ""},
			{"unknown permission", tok.Secret, "?org=acme&project=web&permission=fly", "", false, 400, ""},
			{"subrequest of a POST", tok.Secret, "?org=acme&project=web", "", false, 204, "POST"},
			{"HEAD", tok.Secret, "?org=acme&project=api", "", false, 403, "HEAD"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c := &apiClient{t: t, base: s.URL, token: tc.token, basic: tc.basic}
				if tc.uri != "" {
					c.header = http.Header{"X-Forwarded-Uri": {tc.uri}}
				}
				method := "GET"
				if tc.method != "" {
					method = tc.method
				}
				r := c.do(method, "/api/v1/check"+tc.query, nil).want(t, tc.status)
				switch tc.status {
				case http.StatusNoContent:
					if len(r.Body) != 0 || r.Header.Get("Content-Type") != "" {
						t.Fatalf("204 with a body: %q (%s)", r.Body, r.Header.Get("Content-Type"))
					}
				case http.StatusUnauthorized:
					if got := r.Header.Get("WWW-Authenticate"); got != `Bearer realm="sot", error="invalid_token"` {
						t.Fatalf("WWW-Authenticate = %q", got)
					}
				}
			})
		}
	})
}

// Client addresses come from X-Forwarded-For only through a trusted proxy:
// a token limited to a network is allowed or refused accordingly.
func TestAPICheckClientAddress(t *testing.T) {
	s := startServer(t, serverOpts{})
	s.createOrg(t, "acme", "team")
	s.createProjects(t, "acme", "web")
	tok := s.createOrgToken(t, "acme", map[string]any{"scope": map[string]any{"all_projects": true}, "permissions": []string{"scan"}, "allowed_cidrs": []string{"127.0.0.1/32"}})
	c := s.as(t, tok.Secret)
	c.do("GET", "/api/v1/check?org=acme&project=web", nil).want(t, http.StatusNoContent)
	// The server trusts no proxy, so a forged header changes nothing.
	c.header = http.Header{"X-Forwarded-For": {"203.0.113.9"}}
	c.do("GET", "/api/v1/check?org=acme&project=web", nil).want(t, http.StatusNoContent)

	other := s.createOrgToken(t, "acme", map[string]any{"scope": map[string]any{"all_projects": true}, "permissions": []string{"scan"}, "allowed_cidrs": []string{"203.0.113.0/24"}})
	s.as(t, other.Secret).do("GET", "/api/v1/check?org=acme&project=web", nil).want(t, http.StatusForbidden)

	// Behind a trusted proxy, the client is the last untrusted hop.
	proxied := startServer(t, serverOpts{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	proxied.createOrg(t, "acme", "team")
	proxied.createProjects(t, "acme", "web")
	tok = proxied.createOrgToken(t, "acme", map[string]any{"scope": map[string]any{"all_projects": true}, "permissions": []string{"scan"}, "allowed_cidrs": []string{"203.0.113.0/24"}})
	for _, tc := range []struct {
		name   string
		xff    []string
		status int
	}{
		{"client in the allowed network", []string{"203.0.113.9"}, http.StatusNoContent},
		{"forged first hop", []string{"203.0.113.9, 198.51.100.7"}, http.StatusForbidden},
		{"through two trusted proxies", []string{"203.0.113.9, 127.0.0.2"}, http.StatusNoContent},
		{"no header: the proxy itself", nil, http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := proxied.as(t, tok.Secret)
			if tc.xff != nil {
				c.header = http.Header{"X-Forwarded-For": tc.xff}
			}
			c.do("GET", "/api/v1/check?org=acme&project=web", nil).want(t, tc.status)
		})
	}
	c = proxied.as(t, tok.Secret)
	c.header = http.Header{"X-Forwarded-For": {"203.0.113.9"}}
	c.do("POST", "/api/v1/orgs/acme/projects/web/analyses", []byte("r")).want(t, http.StatusCreated)
	var l listBody[auditBody]
	proxied.admin(t).do("GET", "/api/v1/orgs/acme/audit?action=analysis.submitted", nil).want(t, http.StatusOK).decode(t, &l)
	if len(l.Items) != 1 || l.Items[0].IP != "203.0.113.9" {
		t.Fatalf("audit of the upload = %+v, want ip 203.0.113.9", l.Items)
	}
}

// BenchmarkCheck measures the check hot path in process: the real handler
// chain (request id, client address, metrics, authentication from the
// cache, Authorize), without the network.
func BenchmarkCheck(b *testing.B) {
	s := startServer(b, serverOpts{})
	s.createOrg(b, "acme", "team")
	s.createProjects(b, "acme", "web")
	tok := s.createOrgToken(b, "acme", map[string]any{"scope": map[string]any{"patterns": []string{"w.*"}}, "permissions": []string{"scan"}})
	h := s.srv.Handler()
	req := httptest.NewRequest("GET", "/api/v1/check?org=acme&project=web", nil)
	req.Header.Set("Authorization", "Bearer "+tok.Secret)
	w := &discardWriter{h: http.Header{}}
	h.ServeHTTP(w, req)
	if w.status != http.StatusNoContent {
		b.Fatalf("status %d", w.status)
	}
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, req)
	}
}

// discardWriter is a ResponseWriter that keeps only the status.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(code int)        { w.status = code }

// A client address that sends too many bad credentials gets 429 with
// Retry-After, even with a good one, until the window passes.
func TestAPIFailedAuthenticationLimit(t *testing.T) {
	clock := &testClock{}
	s := startServer(t, serverOpts{AuthFailureLimit: 3, Clock: clock})
	s.createOrg(t, "acme", "team")
	s.createProjects(t, "acme", "web")
	tok := s.createOrgToken(t, "acme", map[string]any{"scope": map[string]any{"all_projects": true}, "permissions": []string{"scan"}})
	unknown := "sot_" + strings.Repeat("A", 36) // well-formed length, bad checksum
	for range 3 {
		s.as(t, unknown).do("GET", "/api/v1/check?org=acme&project=web", nil).want(t, http.StatusUnauthorized)
	}
	for _, path := range []string{"/api/v1/check?org=acme&project=web", "/api/v1/orgs/acme/projects"} {
		r := s.as(t, tok.Secret).do("GET", path, nil).want(t, http.StatusTooManyRequests)
		if p := r.problem(t); p.Type != "/problems/rate-limited" {
			t.Fatalf("problem = %+v", p)
		}
		if ra := r.Header.Get("Retry-After"); ra == "" || ra == "0" {
			t.Fatalf("Retry-After = %q", ra)
		}
	}
	// Requests without a credential are not throttled.
	s.as(t, "").do("GET", "/api/v1/check?org=acme&project=web", nil).want(t, http.StatusUnauthorized)
	clock.Advance(61 * time.Second)
	s.as(t, tok.Secret).do("GET", "/api/v1/check?org=acme&project=web", nil).want(t, http.StatusNoContent)
}
