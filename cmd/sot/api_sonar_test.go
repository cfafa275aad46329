package main

import (
	"net/http"
	"strings"
	"testing"
)

// The SonarQube Cloud compatible endpoints, called the way Azure DevOps'
// service connection and SonarCloudPrepare call them.
func TestAPISonarCompat(t *testing.T) {
	forEachDB(t, serverOpts{}, func(t *testing.T, s *testServer) {
		s.createOrg(t, "acme", "team")
		s.createOrg(t, "globex", "team")
		tok := s.createOrgToken(t, "acme", map[string]any{"scope": map[string]any{"all_projects": true}, "permissions": []string{"scan"}})
		type search struct {
			Paging struct {
				PageIndex int `json:"pageIndex"`
				PageSize  int `json:"pageSize"`
				Total     int `json:"total"`
			} `json:"paging"`
			Organizations []struct {
				Key  string `json:"key"`
				Name string `json:"name"`
			} `json:"organizations"`
		}
		keys := func(r search) string {
			var ks []string
			for _, o := range r.Organizations {
				ks = append(ks, o.Key+"="+o.Name)
			}
			return strings.Join(ks, ",")
		}
		bearer := s.as(t, tok.Secret)
		basic := &apiClient{t: t, base: s.URL, token: tok.Secret, basic: true}
		for _, c := range []struct {
			name string
			c    *apiClient
		}{{"bearer", bearer}, {"basic", basic}} {
			t.Run(c.name, func(t *testing.T) {
				var v struct {
					Valid bool `json:"valid"`
				}
				c.c.do("GET", "/api/authentication/validate", nil).want(t, http.StatusOK).decode(t, &v)
				if !v.Valid {
					t.Fatal("valid = false for a good token")
				}
				var r search
				c.c.do("GET", "/api/organizations/search?member=true", nil).want(t, http.StatusOK).decode(t, &r)
				if keys(r) != "acme=acme Inc." || r.Paging.Total != 1 || r.Paging.PageIndex != 1 || r.Paging.PageSize != 100 {
					t.Fatalf("search = %+v", r)
				}
				r = search{}
				c.c.do("GET", "/api/organizations/search?member=true&organizations=globex", nil).want(t, http.StatusOK).decode(t, &r)
				if len(r.Organizations) != 0 {
					t.Fatalf("org token sees another org: %+v", r)
				}
			})
		}
		t.Run("invalid credential", func(t *testing.T) {
			var v struct {
				Valid bool `json:"valid"`
			}
			s.as(t, typo(tok.Secret)).do("GET", "/api/authentication/validate", nil).want(t, http.StatusOK).decode(t, &v)
			if v.Valid {
				t.Fatal("valid = true for a bad token")
			}
			s.as(t, "").do("GET", "/api/authentication/validate", nil).want(t, http.StatusOK).decode(t, &v)
			if v.Valid {
				t.Fatal("valid = true with no credential")
			}
			s.as(t, "").do("GET", "/api/organizations/search?member=true", nil).want(t, http.StatusUnauthorized)
		})
		t.Run("user memberships and paging", func(t *testing.T) {
			zed := s.createUser(t, "zed")
			s.admin(t).do("PUT", "/api/v1/orgs/globex/members/zed", map[string]any{"role": "member"}).want(t, http.StatusCreated)
			var r search
			s.as(t, zed).do("GET", "/api/organizations/search?member=true", nil).want(t, http.StatusOK).decode(t, &r)
			if keys(r) != "globex=globex Inc." || r.Paging.Total != 1 {
				t.Fatalf("zed's search = %+v", r)
			}
			r = search{}
			s.admin(t).do("GET", "/api/organizations/search?member=true&ps=1&p=2", nil).want(t, http.StatusOK).decode(t, &r)
			if keys(r) != "globex=globex Inc." || r.Paging.Total != 2 || r.Paging.PageIndex != 2 || r.Paging.PageSize != 1 {
				t.Fatalf("admin page 2 = %+v", r)
			}
			s.admin(t).do("GET", "/api/organizations/search?ps=501", nil).want(t, http.StatusBadRequest)
		})
		t.Run("server version", func(t *testing.T) {
			r := s.as(t, "").do("GET", "/api/server/version", nil).want(t, http.StatusOK)
			if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") || len(r.Body) == 0 {
				t.Fatalf("version: %q %q", ct, r.Body)
			}
		})
	})
}

// typo changes the last character of secret, always to a different one.
func typo(secret string) string {
	last := "x"
	if strings.HasSuffix(secret, "x") {
		last = "y"
	}
	return secret[:len(secret)-1] + last
}
