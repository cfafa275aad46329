package main

import (
	"fmt"
	"net/http"
	"testing"
)

// /me and /api/v1/orgs name an org token's organization, and only it.
func TestAPIMeAndOrgsForOrgToken(t *testing.T) {
	forEachDB(t, serverOpts{}, func(t *testing.T, s *testServer) {
		s.createOrg(t, "acme", "team")
		s.createOrg(t, "globex", "team")
		tok := s.createOrgToken(t, "acme", map[string]any{"scope": map[string]any{"all_projects": true}, "permissions": []string{"scan"}})
		ci := s.as(t, tok.Secret)

		var me struct {
			Type  string    `json:"type"`
			Token tokenBody `json:"token"`
			Org   orgBody   `json:"org"`
		}
		ci.do("GET", "/api/v1/me", nil).want(t, http.StatusOK).decode(t, &me)
		if me.Type != "org_token" || me.Org.Key != "acme" || me.Token.ID != tok.Token.ID || me.Token.Kind != "org" {
			t.Fatalf("me = %+v", me)
		}
		var orgs listBody[orgBody]
		ci.do("GET", "/api/v1/orgs", nil).want(t, http.StatusOK).decode(t, &orgs)
		if len(orgs.Items) != 1 || orgs.Items[0].Key != "acme" {
			t.Fatalf("orgs = %+v", orgs.Items)
		}
		ci.do("GET", "/api/v1/orgs/acme", nil).want(t, http.StatusOK)
		ci.do("GET", "/api/v1/orgs/globex", nil).want(t, http.StatusNotFound)
	})
}

// A user's /me lists their memberships; personal tokens are listed,
// created and revoked by their owner only.
func TestAPIMeAndPersonalTokens(t *testing.T) {
	forEachDB(t, serverOpts{}, func(t *testing.T, s *testServer) {
		s.createOrg(t, "acme", "team")
		carol := s.createUser(t, "carol")
		s.admin(t).do("PUT", "/api/v1/orgs/acme/members/carol", map[string]any{"role": "member"}).want(t, http.StatusCreated)
		c := s.as(t, carol)
		var me struct {
			Type        string                       `json:"type"`
			User        struct{ Login string }       `json:"user"`
			Memberships []struct{ Org, Role string } `json:"memberships"`
		}
		c.do("GET", "/api/v1/me", nil).want(t, http.StatusOK).decode(t, &me)
		if me.Type != "user" || me.User.Login != "carol" || len(me.Memberships) != 1 || me.Memberships[0].Org != "acme" || me.Memberships[0].Role != "member" {
			t.Fatalf("me = %+v", me)
		}

		var second createdTokenBody
		c.do("POST", "/api/v1/user/tokens", map[string]any{"name": "laptop", "expires_in": "90d"}).want(t, http.StatusCreated).decode(t, &second)
		if second.Token.Kind != "personal" || second.Token.Org != nil || second.Token.Scope != nil {
			t.Fatalf("personal token = %+v", second.Token)
		}
		var l listBody[tokenBody]
		c.do("GET", "/api/v1/user/tokens", nil).want(t, http.StatusOK).decode(t, &l)
		if len(l.Items) != 2 {
			t.Fatalf("carol has %d tokens, want 2", len(l.Items))
		}
		// Another user's token is not hers to revoke.
		s.admin(t).do("DELETE", fmt.Sprintf("/api/v1/user/tokens/%d", second.Token.ID), nil).want(t, http.StatusNotFound)
		c.do("DELETE", fmt.Sprintf("/api/v1/user/tokens/%d", second.Token.ID), nil).want(t, http.StatusNoContent)
		s.as(t, second.Secret).do("GET", "/api/v1/me", nil).want(t, http.StatusUnauthorized)

		// Org tokens have no personal tokens.
		tok := s.createOrgToken(t, "acme", map[string]any{"scope": map[string]any{"all_projects": true}, "permissions": []string{"scan"}})
		s.as(t, tok.Secret).do("GET", "/api/v1/user/tokens", nil).want(t, http.StatusForbidden)
	})
}

// TestAPIMeSeesNewOrgAtOnce: the creator of an organization is its admin on
// the very next request, though their token's principal was cached before.
func TestAPIMeSeesNewOrgAtOnce(t *testing.T) {
	forEachDB(t, serverOpts{}, func(t *testing.T, s *testServer) {
		var me struct {
			Memberships []struct{ Org, Role string } `json:"memberships"`
		}
		s.admin(t).do("GET", "/api/v1/me", nil).want(t, http.StatusOK).decode(t, &me)
		if len(me.Memberships) != 0 {
			t.Fatalf("memberships before = %+v", me.Memberships)
		}
		s.createOrg(t, "acme", "team")
		s.admin(t).do("GET", "/api/v1/me", nil).want(t, http.StatusOK).decode(t, &me)
		if len(me.Memberships) != 1 || me.Memberships[0].Org != "acme" || me.Memberships[0].Role != "admin" {
			t.Fatalf("memberships after creating acme = %+v", me.Memberships)
		}
	})
}
