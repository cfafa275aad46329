package main

import (
	"fmt"
	"net/http"
	"testing"
)

// An organization token can never administer, whatever its permissions.
func TestAPIOrgTokenCannotAdminister(t *testing.T) {
	forEachDB(t, serverOpts{}, func(t *testing.T, s *testServer) {
		s.createOrg(t, "acme", "team")
		s.createProjects(t, "acme", "web")
		tok := s.createOrgToken(t, "acme", map[string]any{"scope": map[string]any{"all_projects": true},
			"permissions": []string{"scan", "browse", "provision", "self_rotate"}})
		ci := s.as(t, tok.Secret)
		for _, tc := range []struct {
			name, method, path string
			body               any
		}{
			{"patch org", "PATCH", "/api/v1/orgs/acme", map[string]any{"name": "pwned"}},
			{"create token", "POST", "/api/v1/orgs/acme/tokens", map[string]any{"name": "x", "scope": map[string]any{"all_projects": true}, "permissions": []string{"scan"}, "expires_in": "7d"}},
			{"list tokens", "GET", "/api/v1/orgs/acme/tokens", nil},
			{"patch itself", "PATCH", fmt.Sprintf("/api/v1/orgs/acme/tokens/%d", tok.Token.ID), map[string]any{"permissions": []string{"scan"}}},
			{"revoke itself", "DELETE", fmt.Sprintf("/api/v1/orgs/acme/tokens/%d", tok.Token.ID), nil},
			{"list members", "GET", "/api/v1/orgs/acme/members", nil},
			{"add member", "PUT", "/api/v1/orgs/acme/members/admin", map[string]any{"role": "member"}},
			{"remove member", "DELETE", "/api/v1/orgs/acme/members/admin", nil},
			{"delete project", "DELETE", "/api/v1/orgs/acme/projects/web", nil},
			{"audit", "GET", "/api/v1/orgs/acme/audit", nil},
			{"scope preview", "POST", "/api/v1/orgs/acme/scope-preview", map[string]any{"scope": map[string]any{"all_projects": true}}},
			{"create org", "POST", "/api/v1/orgs", map[string]any{"key": "mine", "plan": "team"}},
			{"create user", "POST", "/api/v1/users", map[string]any{"login": "mallory", "password": "long-enough-password"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				p := ci.do(tc.method, tc.path, tc.body).want(t, http.StatusForbidden).problem(t)
				if p.Type != "/problems/forbidden" {
					t.Fatalf("problem = %+v", p)
				}
			})
		}
		// What it may do still works: provisioning in scope.
		ci.do("POST", "/api/v1/orgs/acme/projects", map[string]any{"key": "provisioned"}).want(t, http.StatusCreated)
	})
}

// A provision token creates projects only inside its scope.
func TestAPIProvisionInScopeOnly(t *testing.T) {
	forEachDB(t, serverOpts{}, func(t *testing.T, s *testServer) {
		s.createOrg(t, "acme", "team")
		tok := s.createOrgToken(t, "acme", map[string]any{"scope": map[string]any{"patterns": []string{"team-a-.*"}}, "permissions": []string{"provision", "scan"}})
		ci := s.as(t, tok.Secret)
		ci.do("POST", "/api/v1/orgs/acme/projects", map[string]any{"key": "team-a-new"}).want(t, http.StatusCreated)
		ci.do("POST", "/api/v1/orgs/acme/projects", map[string]any{"key": "team-b-new"}).want(t, http.StatusForbidden)
		ci.do("POST", "/api/v1/orgs/acme/projects/team-a-new/analyses", []byte("r")).want(t, http.StatusCreated)
	})
}

// A token of organization A sees nothing of organization B: 404, as if B
// did not exist.
func TestAPICrossOrgIsolation(t *testing.T) {
	forEachDB(t, serverOpts{}, func(t *testing.T, s *testServer) {
		s.createOrg(t, "a", "team")
		s.createOrg(t, "b", "team")
		s.createProjects(t, "a", "web")
		s.createProjects(t, "b", "web")
		tokA := s.createOrgToken(t, "a", map[string]any{"scope": map[string]any{"all_projects": true}, "permissions": []string{"scan", "browse", "provision"}})
		tokB := s.createOrgToken(t, "b", map[string]any{"scope": map[string]any{"all_projects": true}, "permissions": []string{"scan"}})
		ca := s.as(t, tokA.Secret)
		for _, tc := range []struct {
			name, method, path string
			body               any
		}{
			{"get org", "GET", "/api/v1/orgs/b", nil},
			{"list projects", "GET", "/api/v1/orgs/b/projects", nil},
			{"get project", "GET", "/api/v1/orgs/b/projects/web", nil},
			{"create project", "POST", "/api/v1/orgs/b/projects", map[string]any{"key": "x"}},
			{"scan", "POST", "/api/v1/orgs/b/projects/web/analyses", []byte("r")},
			{"list analyses", "GET", "/api/v1/orgs/b/projects/web/analyses", nil},
			{"get token of b", "GET", fmt.Sprintf("/api/v1/orgs/b/tokens/%d", tokB.Token.ID), nil},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if p := ca.do(tc.method, tc.path, tc.body).want(t, http.StatusNotFound).problem(t); p.Type != "/problems/not-found" {
					t.Fatalf("problem = %+v", p)
				}
			})
		}
		// An admin of a asking for b's token through a's path finds nothing.
		s.admin(t).do("GET", fmt.Sprintf("/api/v1/orgs/a/tokens/%d", tokB.Token.ID), nil).want(t, http.StatusNotFound)
		s.admin(t).do("DELETE", fmt.Sprintf("/api/v1/orgs/a/tokens/%d", tokB.Token.ID), nil).want(t, http.StatusNotFound)
		s.as(t, tokB.Secret).do("GET", "/api/v1/check?org=b&project=web", nil).want(t, http.StatusNoContent)
	})
}
