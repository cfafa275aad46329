package main

import (
	"net/http"
	"testing"
)

// The creator of an org token leaves the organization: the org token keeps
// working, while the creator's personal token loses the organization.
func TestAPICreatorLeavesOrgTokenSurvives(t *testing.T) {
	forEachDB(t, serverOpts{}, func(t *testing.T, s *testServer) {
		s.createOrg(t, "acme", "team")
		s.createProjects(t, "acme", "web")
		alice := s.createUser(t, "alice")
		s.admin(t).do("PUT", "/api/v1/orgs/acme/members/alice", map[string]any{"role": "admin"}).want(t, http.StatusCreated)

		tok := createOrgTokenAs(t, s.as(t, alice), "acme", map[string]any{"scope": map[string]any{"all_projects": true}, "permissions": []string{"scan", "browse"}})
		if tok.Token.CreatedBy.Login != "alice" {
			t.Fatalf("created_by = %q", tok.Token.CreatedBy.Login)
		}
		s.as(t, alice).do("GET", "/api/v1/orgs/acme/projects", nil).want(t, http.StatusOK)

		s.admin(t).do("DELETE", "/api/v1/orgs/acme/members/alice", nil).want(t, http.StatusNoContent)

		ci := s.as(t, tok.Secret)
		ci.do("POST", "/api/v1/orgs/acme/projects/web/analyses", []byte("r")).want(t, http.StatusCreated)
		ci.do("GET", "/api/v1/check?org=acme&project=web", nil).want(t, http.StatusNoContent)

		s.as(t, alice).do("GET", "/api/v1/orgs/acme/projects", nil).want(t, http.StatusNotFound)
		s.as(t, alice).do("GET", "/api/v1/check?org=acme&project=web", nil).want(t, http.StatusForbidden)
		var orgs listBody[orgBody]
		s.as(t, alice).do("GET", "/api/v1/orgs", nil).want(t, http.StatusOK).decode(t, &orgs)
		if len(orgs.Items) != 0 {
			t.Fatalf("alice still sees %+v", orgs.Items)
		}
	})
}

// A member (not admin) may scan and browse but not administer.
func TestAPIMemberRoles(t *testing.T) {
	forEachDB(t, serverOpts{}, func(t *testing.T, s *testServer) {
		s.createOrg(t, "acme", "team")
		s.createProjects(t, "acme", "web")
		bob := s.createUser(t, "bob")
		s.admin(t).do("PUT", "/api/v1/orgs/acme/members/bob", map[string]any{"role": "member"}).want(t, http.StatusCreated)
		b := s.as(t, bob)
		b.do("POST", "/api/v1/orgs/acme/projects/web/analyses", []byte("r")).want(t, http.StatusCreated)
		b.do("GET", "/api/v1/orgs/acme", nil).want(t, http.StatusOK)
		b.do("POST", "/api/v1/orgs/acme/projects", map[string]any{"key": "new"}).want(t, http.StatusForbidden)
		b.do("POST", "/api/v1/orgs/acme/tokens", map[string]any{"name": "x", "scope": map[string]any{"all_projects": true}, "permissions": []string{"scan"}, "expires_in": "7d"}).want(t, http.StatusForbidden)
		b.do("POST", "/api/v1/orgs", map[string]any{"key": "mine", "plan": "team"}).want(t, http.StatusForbidden)
		b.do("GET", "/api/v1/users", nil).want(t, http.StatusForbidden)
		// Promotion takes effect on the next request.
		s.admin(t).do("PUT", "/api/v1/orgs/acme/members/bob", map[string]any{"role": "admin"}).want(t, http.StatusOK)
		b.do("POST", "/api/v1/orgs/acme/projects", map[string]any{"key": "new"}).want(t, http.StatusCreated)
	})
}
