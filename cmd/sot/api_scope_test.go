package main

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// An all-projects token scans a project created after the token.
func TestAPIAllProjectsTokenCoversFutureProject(t *testing.T) {
	forEachDB(t, serverOpts{}, func(t *testing.T, s *testServer) {
		s.createOrg(t, "acme", "team")
		tok := s.createOrgToken(t, "acme", map[string]any{"scope": map[string]any{"all_projects": true}, "permissions": []string{"scan"}})
		s.createProjects(t, "acme", "born-later")
		ci := s.as(t, tok.Secret)
		var an struct {
			Project string `json:"project"`
			Size    int64  `json:"size"`
		}
		ci.do("POST", "/api/v1/orgs/acme/projects/born-later/analyses?branch=main&commit=abc", []byte("report")).
			want(t, http.StatusCreated).decode(t, &an)
		if an.Project != "born-later" || an.Size != 6 {
			t.Fatalf("analysis = %+v", an)
		}
	})
}

// A pattern token covers a new matching project at once and refuses one
// that does not match.
func TestAPIPatternTokenCoversNewMatchingProject(t *testing.T) {
	forEachDB(t, serverOpts{}, func(t *testing.T, s *testServer) {
		s.createOrg(t, "acme", "team")
		tok := s.createOrgToken(t, "acme", map[string]any{"scope": map[string]any{"patterns": []string{"team-a-.*"}}, "permissions": []string{"scan"}})
		s.createProjects(t, "acme", "team-a-web", "team-b-web", "xteam-a-web")
		ci := s.as(t, tok.Secret)
		ci.do("POST", "/api/v1/orgs/acme/projects/team-a-web/analyses", []byte("r")).want(t, http.StatusCreated)
		for _, p := range []string{"team-b-web", "xteam-a-web"} {
			pr := ci.do("POST", "/api/v1/orgs/acme/projects/"+p+"/analyses", []byte("r")).want(t, http.StatusForbidden).problem(t)
			if pr.Type != "/problems/forbidden" || pr.Detail != "the project is outside the token's scope" {
				t.Errorf("%s: problem = %+v", p, pr)
			}
		}
	})
}

// Browsing and searching projects with a token shows only its scope.
func TestAPIBrowseSearchOnlyInScope(t *testing.T) {
	forEachDB(t, serverOpts{}, func(t *testing.T, s *testServer) {
		s.createOrg(t, "acme", "team")
		s.createProjects(t, "acme", "web-1", "web-2", "api-1", "web-3")
		tok := s.createOrgToken(t, "acme", map[string]any{
			"scope":       map[string]any{"projects": []string{"api-1"}, "patterns": []string{"web-[12]"}},
			"permissions": []string{"browse"},
		})
		ci := s.as(t, tok.Secret)
		for _, tc := range []struct {
			name, query string
			want        []string
		}{
			{"all", "", []string{"api-1", "web-1", "web-2"}},
			{"search", "?q=WEB", []string{"web-1", "web-2"}},
			{"search outside scope", "?q=web-3", []string{}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var l listBody[projectBody]
				ci.do("GET", "/api/v1/orgs/acme/projects"+tc.query, nil).want(t, http.StatusOK).decode(t, &l)
				got := []string{}
				for _, p := range l.Items {
					got = append(got, p.Key)
				}
				if !slices.Equal(got, tc.want) {
					t.Fatalf("projects = %v, want %v", got, tc.want)
				}
			})
		}
		ci.do("GET", "/api/v1/orgs/acme/projects/web-3", nil).want(t, http.StatusForbidden)
		ci.do("GET", "/api/v1/orgs/acme/projects/web-1", nil).want(t, http.StatusOK)
		// A scan-only token may not browse.
		scan := s.createOrgToken(t, "acme", map[string]any{"scope": map[string]any{"all_projects": true}, "permissions": []string{"scan"}})
		p := s.as(t, scan.Secret).do("GET", "/api/v1/orgs/acme/projects", nil).want(t, http.StatusForbidden).problem(t)
		if p.Detail != "the token lacks the browse permission" {
			t.Fatalf("detail = %q", p.Detail)
		}
	})
}

// A token of 5,000 explicit projects is created in one call and patched to
// 10,000; both take effect.
func TestAPILargeExplicitScope(t *testing.T) {
	if testing.Short() {
		t.Skip("creates 10,000 projects")
	}
	forEachDB(t, serverOpts{}, func(t *testing.T, s *testServer) {
		s.createOrg(t, "acme", "team")
		keys := make([]string, 10_000)
		for i := range keys {
			keys[i] = fmt.Sprintf("svc-%05d", i)
		}
		createProjectsConcurrently(t, s, "acme", keys)

		tok := s.createOrgToken(t, "acme", map[string]any{"scope": map[string]any{"projects": keys[:5000]}, "permissions": []string{"scan", "browse"}})
		if tok.Token.ProjectCount != 5000 {
			t.Fatalf("project_count = %d, want 5000", tok.Token.ProjectCount)
		}
		ci := s.as(t, tok.Secret)
		ci.do("GET", "/api/v1/check?org=acme&project=svc-04999", nil).want(t, http.StatusNoContent)
		ci.do("GET", "/api/v1/check?org=acme&project=svc-05000", nil).want(t, http.StatusForbidden)

		var patched tokenBody
		s.admin(t).do("PATCH", fmt.Sprintf("/api/v1/orgs/acme/tokens/%d", tok.Token.ID),
			map[string]any{"scope": map[string]any{"projects": keys}}).want(t, http.StatusOK).decode(t, &patched)
		if patched.ProjectCount != 10_000 {
			t.Fatalf("patched project_count = %d, want 10000", patched.ProjectCount)
		}
		ci.do("GET", "/api/v1/check?org=acme&project=svc-09999", nil).want(t, http.StatusNoContent)

		var l listBody[projectBody]
		s.admin(t).do("GET", fmt.Sprintf("/api/v1/orgs/acme/tokens/%d/projects?page_size=1000", tok.Token.ID), nil).want(t, http.StatusOK).decode(t, &l)
		if len(l.Items) != 1000 || l.NextPageToken == "" {
			t.Fatalf("token projects page: %d items, next %q", len(l.Items), l.NextPageToken)
		}
		var prev struct {
			Count int `json:"count"`
		}
		s.admin(t).do("POST", "/api/v1/orgs/acme/scope-preview", map[string]any{"scope": map[string]any{"patterns": []string{"svc-0[0-4].*"}}}).
			want(t, http.StatusOK).decode(t, &prev)
		if prev.Count != 5000 {
			t.Fatalf("preview count = %d, want 5000", prev.Count)
		}

		// A scope of 100,000 explicit keys fits in one request body.
		big := make([]string, 100_000)
		for i := range big {
			big[i] = fmt.Sprintf("svc-%05d", i)
		}
		s.admin(t).do("POST", "/api/v1/orgs/acme/scope-preview", map[string]any{"scope": map[string]any{"projects": big}}).
			want(t, http.StatusOK).decode(t, &prev)
		if prev.Count != 10_000 {
			t.Fatalf("preview of 100,000 keys: count = %d, want 10000", prev.Count)
		}
	})
}

// createProjectsConcurrently creates many projects with a few parallel
// clients.
func createProjectsConcurrently(t *testing.T, s *testServer, org string, keys []string) {
	t.Helper()
	const workers = 4
	errs := make(chan error, workers)
	for w := range workers {
		go func() {
			c := &http.Client{}
			for i := w; i < len(keys); i += workers {
				req, _ := http.NewRequest("POST", s.URL+"/api/v1/orgs/"+org+"/projects", strings.NewReader(`{"key":"`+keys[i]+`"}`))
				req.Header.Set("Authorization", "Bearer "+s.AdminToken)
				req.Header.Set("Content-Type", "application/json")
				resp, err := c.Do(req)
				if err != nil {
					errs <- err
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusCreated {
					errs <- fmt.Errorf("create %s: status %d", keys[i], resp.StatusCode)
					return
				}
			}
			errs <- nil
		}()
	}
	for range workers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}
