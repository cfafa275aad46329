package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Expiry under the organization's policy: 1y is accepted, 400 days is
// refused naming the limit, a non-expiring token is refused until the
// policy allows it, and a token past its expiry gets 401 "token expired".
func TestAPIExpiryPolicy(t *testing.T) {
	clock := &testClock{}
	forEachDB(t, serverOpts{Clock: clock}, func(t *testing.T, s *testServer) {
		s.createOrg(t, "acme", "team")
		scope := map[string]any{"all_projects": true}
		a := s.admin(t)
		tok := s.createOrgToken(t, "acme", map[string]any{"scope": scope, "permissions": []string{"scan"}, "expires_in": "1y"})
		if tok.Token.ExpiresAt == nil || tok.Token.ExpiresAt.Sub(clock.Now()) < 364*24*time.Hour {
			t.Fatalf("expires_at = %v", tok.Token.ExpiresAt)
		}
		for _, tc := range []struct {
			name   string
			expiry map[string]any
			detail string
		}{
			{"400 days", map[string]any{"expires_in": "400d"}, "maximum lifetime is 365 days"},
			{"never", map[string]any{"never_expires": true}, "does not allow non-expiring tokens"},
			{"date beyond", map[string]any{"expires_at": clock.Now().AddDate(2, 0, 0).UTC().Format(time.RFC3339)}, "maximum lifetime is 365 days"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				body := map[string]any{"name": "x", "scope": scope, "permissions": []string{"scan"}}
				for k, v := range tc.expiry {
					body[k] = v
				}
				p := a.do("POST", "/api/v1/orgs/acme/tokens", body).want(t, http.StatusBadRequest).problem(t)
				if p.Type != "/problems/policy-violation" || !strings.Contains(p.Detail, tc.detail) {
					t.Fatalf("problem = %+v, want policy-violation mentioning %q", p, tc.detail)
				}
			})
		}
		a.do("PATCH", "/api/v1/orgs/acme", map[string]any{"token_policy": map[string]any{"allow_non_expiring": true}}).want(t, http.StatusOK)
		never := s.createOrgToken(t, "acme", map[string]any{"scope": scope, "permissions": []string{"scan"}, "never_expires": true, "expires_in": nil})
		if never.Token.ExpiresAt != nil {
			t.Fatalf("never-expiring token has expires_at %v", never.Token.ExpiresAt)
		}

		short := s.createOrgToken(t, "acme", map[string]any{"scope": scope, "permissions": []string{"scan"}, "expires_in": "7d"})
		s.createProjects(t, "acme", "web")
		s.as(t, short.Secret).do("GET", "/api/v1/check?org=acme&project=web", nil).want(t, http.StatusNoContent)
		clock.Advance(8 * 24 * time.Hour)
		r := s.as(t, short.Secret).do("GET", "/api/v1/orgs/acme/projects", nil).want(t, http.StatusUnauthorized)
		if p := r.problem(t); p.Detail != "token expired" {
			t.Fatalf("detail = %q, want token expired", p.Detail)
		}
		if got := r.Header.Get("WWW-Authenticate"); got != `Bearer realm="sot", error="invalid_token"` {
			t.Fatalf("WWW-Authenticate = %q", got)
		}
		var l listBody[tokenBody]
		a.do("GET", "/api/v1/orgs/acme/tokens?state=expired", nil).want(t, http.StatusOK).decode(t, &l)
		if len(l.Items) != 1 || l.Items[0].ID != short.Token.ID {
			t.Fatalf("expired tokens = %+v", l.Items)
		}
	})
}

// A revoked token is refused on the very next request, and is listed as
// revoked.
func TestAPIRevokeTakesEffectAtOnce(t *testing.T) {
	forEachDB(t, serverOpts{}, func(t *testing.T, s *testServer) {
		s.createOrg(t, "acme", "team")
		s.createProjects(t, "acme", "web")
		tok := s.createOrgToken(t, "acme", map[string]any{"scope": map[string]any{"all_projects": true}, "permissions": []string{"scan"}})
		ci := s.as(t, tok.Secret)
		ci.do("GET", "/api/v1/check?org=acme&project=web", nil).want(t, http.StatusNoContent)
		s.admin(t).do("DELETE", fmt.Sprintf("/api/v1/orgs/acme/tokens/%d", tok.Token.ID), nil).want(t, http.StatusNoContent)
		ci.do("GET", "/api/v1/check?org=acme&project=web", nil).want(t, http.StatusUnauthorized)
		p := ci.do("POST", "/api/v1/orgs/acme/projects/web/analyses", []byte("r")).want(t, http.StatusUnauthorized).problem(t)
		if p.Detail != "token revoked" {
			t.Fatalf("detail = %q", p.Detail)
		}
		var got tokenBody
		s.admin(t).do("GET", fmt.Sprintf("/api/v1/orgs/acme/tokens/%d", tok.Token.ID), nil).want(t, http.StatusOK).decode(t, &got)
		if got.RevokedAt == nil {
			t.Fatal("revoked_at is null after revocation")
		}
	})
}

// Plans: a free organization cannot create org tokens; a downgrade
// suspends its tokens and an upgrade restores them.
func TestAPIPlanGatesOrgTokens(t *testing.T) {
	forEachDB(t, serverOpts{}, func(t *testing.T, s *testServer) {
		s.createOrg(t, "free", "free")
		a := s.admin(t)
		body := map[string]any{"name": "x", "scope": map[string]any{"all_projects": true}, "permissions": []string{"scan"}, "expires_in": "7d"}
		if p := a.do("POST", "/api/v1/orgs/free/tokens", body).want(t, http.StatusForbidden).problem(t); p.Type != "/problems/plan-required" {
			t.Fatalf("problem = %+v", p)
		}

		s.createOrg(t, "acme", "team")
		s.createProjects(t, "acme", "web")
		tok := s.createOrgToken(t, "acme", map[string]any{"scope": map[string]any{"all_projects": true}, "permissions": []string{"scan"}})
		ci := s.as(t, tok.Secret)
		ci.do("GET", "/api/v1/check?org=acme&project=web", nil).want(t, http.StatusNoContent)

		a.do("PATCH", "/api/v1/orgs/acme", map[string]any{"plan": "free"}).want(t, http.StatusOK)
		if p := ci.do("POST", "/api/v1/orgs/acme/projects/web/analyses", []byte("r")).want(t, http.StatusForbidden).problem(t); p.Type != "/problems/plan-required" {
			t.Fatalf("after downgrade: problem = %+v", p)
		}
		ci.do("GET", "/api/v1/check?org=acme&project=web", nil).want(t, http.StatusForbidden)

		a.do("PATCH", "/api/v1/orgs/acme", map[string]any{"plan": "enterprise"}).want(t, http.StatusOK)
		ci.do("POST", "/api/v1/orgs/acme/projects/web/analyses", []byte("r")).want(t, http.StatusCreated)

		// Only an instance admin changes plans, even an org admin cannot.
		dave := s.createUser(t, "dave")
		a.do("PUT", "/api/v1/orgs/acme/members/dave", map[string]any{"role": "admin"}).want(t, http.StatusCreated)
		s.as(t, dave).do("PATCH", "/api/v1/orgs/acme", map[string]any{"plan": "team"}).want(t, http.StatusForbidden)
		s.as(t, dave).do("PATCH", "/api/v1/orgs/acme", map[string]any{"name": "Acme"}).want(t, http.StatusOK)
	})
}
