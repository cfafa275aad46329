package main

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
)

// Bad input gets the right 4xx with a problem naming the field, never a 5xx.
func TestAPIBadInput(t *testing.T) {
	forEachDB(t, serverOpts{MaxReportBytes: 1024}, func(t *testing.T, s *testServer) {
		s.createOrg(t, "acme", "team")
		s.createProjects(t, "acme", "web")
		tokenBody := func(extra string) string {
			return `{"name":"ci","expires_in":"30d","permissions":["scan"],` + extra + `}`
		}
		huge := `{"key":"x","name":"` + strings.Repeat("a", 9<<20) + `"}`
		for _, tc := range []struct {
			name, method, path, body string
			status                   int
			slug                     string
			field                    string // a field the problem must name ("" for none)
			detail                   string // a substring of the detail
		}{
			{"invalid regex", "POST", "/api/v1/orgs/acme/tokens", tokenBody(`"scope":{"patterns":["ok-.*","a("]}`), 400, "validation", "scope.patterns[1]", "invalid scope"},
			{"unknown project keys", "POST", "/api/v1/orgs/acme/tokens", tokenBody(`"scope":{"projects":["web","nope","gone"]}`), 400, "validation", "", `"nope"`},
			{"all_projects and a list", "POST", "/api/v1/orgs/acme/tokens", tokenBody(`"scope":{"all_projects":true,"projects":["web"]}`), 400, "validation", "scope", ""},
			{"empty scope", "POST", "/api/v1/orgs/acme/tokens", tokenBody(`"scope":{}`), 400, "validation", "scope", ""},
			{"unknown permission", "POST", "/api/v1/orgs/acme/tokens", `{"name":"ci","expires_in":"30d","scope":{"all_projects":true},"permissions":["scan","admin"]}`, 400, "validation", "permissions[1]", ""},
			{"no permission", "POST", "/api/v1/orgs/acme/tokens", `{"name":"ci","expires_in":"30d","scope":{"all_projects":true},"permissions":[]}`, 400, "validation", "permissions", ""},
			{"unknown field", "POST", "/api/v1/orgs/acme/tokens", tokenBody(`"scope":{"all_projects":true},"colour":"red"`), 400, "validation", "colour", ""},
			{"unknown nested field", "POST", "/api/v1/orgs/acme/tokens", tokenBody(`"scope":{"all_projects":true,"everything":true}`), 400, "validation", "scope.everything", ""},
			{"broken JSON", "POST", "/api/v1/orgs/acme/tokens", `{"name":"ci",`, 400, "validation", "", ""},
			{"empty body", "POST", "/api/v1/orgs/acme/tokens", ``, 400, "validation", "", ""},
			{"bad lifetime", "POST", "/api/v1/orgs/acme/tokens", `{"name":"ci","expires_in":"soon","permissions":["scan"],"scope":{"all_projects":true}}`, 400, "validation", "expires_in", ""},
			{"two expiries", "POST", "/api/v1/orgs/acme/tokens", tokenBody(`"scope":{"all_projects":true},"never_expires":true`), 400, "validation", "", "exactly one"},
			{"bad CIDR", "POST", "/api/v1/orgs/acme/tokens", tokenBody(`"scope":{"all_projects":true},"allowed_cidrs":["10.0.0.0/8","nonsense"]`), 400, "validation", "allowed_cidrs[1]", ""},
			{"bad project key", "POST", "/api/v1/orgs/acme/projects", `{"key":"-bad key"}`, 400, "validation", "key", ""},
			{"duplicate project", "POST", "/api/v1/orgs/acme/projects", `{"key":"web"}`, 409, "conflict", "", ""},
			{"duplicate org", "POST", "/api/v1/orgs", `{"key":"acme","plan":"team"}`, 409, "conflict", "", ""},
			{"unknown plan", "POST", "/api/v1/orgs", `{"key":"x","plan":"gold"}`, 400, "validation", "plan", ""},
			{"bad org key", "POST", "/api/v1/orgs", `{"key":"a b","plan":"team"}`, 400, "validation", "key", ""},
			{"bad policy", "PATCH", "/api/v1/orgs/acme", `{"token_policy":{"max_lifetime_days":0}}`, 400, "validation", "token_policy.max_lifetime_days", ""},
			{"bad role", "PUT", "/api/v1/orgs/acme/members/admin", `{"role":"owner"}`, 400, "validation", "role", ""},
			{"short password", "POST", "/api/v1/users", `{"login":"eve","password":"short"}`, 400, "validation", "password", ""},
			{"page size too large", "GET", "/api/v1/orgs/acme/projects?page_size=5000", ``, 400, "validation", "query.page_size", ""},
			{"bad token state", "GET", "/api/v1/orgs/acme/tokens?state=sleeping", ``, 400, "validation", "query.state", ""},
			{"non-numeric id", "GET", "/api/v1/orgs/acme/tokens/abc", ``, 400, "validation", "path.id", ""},
			{"bad page token", "GET", "/api/v1/orgs/acme/projects?page_token=%21%21", ``, 400, "validation", "", ""},
			{"unknown token id", "GET", "/api/v1/orgs/acme/tokens/999999", ``, 404, "not-found", "", ""},
			{"unknown org", "GET", "/api/v1/orgs/nope", ``, 404, "not-found", "", ""},
			{"unknown project", "POST", "/api/v1/orgs/acme/projects/nope/analyses", `report`, 404, "not-found", "", ""},
			{"unknown endpoint", "GET", "/api/v1/nothing-here", ``, 404, "not-found", "", ""},
			{"oversized report", "POST", "/api/v1/orgs/acme/projects/web/analyses", strings.Repeat("x", 1025), 413, "too-large", "", ""},
			{"much oversized report", "POST", "/api/v1/orgs/acme/projects/web/analyses", strings.Repeat("x", 4<<20), 413, "too-large", "", "limit of 1024 bytes"},
			{"oversized JSON", "POST", "/api/v1/orgs/acme/projects", huge, 413, "too-large", "", ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := s.admin(t).do(tc.method, tc.path, tc.body).want(t, tc.status)
				p := r.problem(t)
				if p.Type != "/problems/"+tc.slug || p.Status != tc.status {
					t.Fatalf("problem = %+v, want type /problems/%s status %d", p, tc.slug, tc.status)
				}
				if tc.field != "" && !hasField(p, tc.field) {
					t.Fatalf("problem %s does not name field %q", r.Body, tc.field)
				}
				if !strings.Contains(p.Detail+fieldMessages(p), tc.detail) {
					t.Fatalf("problem %s does not say %q", r.Body, tc.detail)
				}
			})
		}

		t.Run("oversized streamed report", func(t *testing.T) {
			// No Content-Length: the limit is enforced while streaming.
			req, _ := http.NewRequest("POST", s.URL+"/api/v1/orgs/acme/projects/web/analyses", io.MultiReader(bytes.NewReader(make([]byte, 2048))))
			req.ContentLength = -1
			req.Header.Set("Authorization", "Bearer "+s.AdminToken)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestEntityTooLarge {
				t.Fatalf("status %d, want 413", resp.StatusCode)
			}
		})
		t.Run("report at the limit", func(t *testing.T) {
			s.admin(t).do("POST", "/api/v1/orgs/acme/projects/web/analyses", make([]byte, 1024)).want(t, http.StatusCreated)
		})
	})
}

func hasField(p problemBody, field string) bool {
	for _, e := range p.Errors {
		if e.Field == field {
			return true
		}
	}
	return false
}

func fieldMessages(p problemBody) string {
	var b strings.Builder
	for _, e := range p.Errors {
		b.WriteString(" " + e.Message)
	}
	return b.String()
}
