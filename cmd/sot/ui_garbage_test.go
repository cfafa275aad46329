package main

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
)

// Garbage sent to the UI by a signed-in admin gets a 4xx, never a 5xx.
func TestUIGarbage(t *testing.T) {
	forEachDB(t, serverOpts{}, func(t *testing.T, s *testServer) {
		s.createOrg(t, "acme", "team")
		s.createProjects(t, "acme", "web")
		jar, _ := cookiejar.New(nil)
		hc := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := hc.PostForm(s.URL+"/login", url.Values{"login": {"admin"}, "password": {s.AdminPassword}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("login: %d", resp.StatusCode)
		}
		// The CSRF token of the session, from a page's form.
		resp, err = hc.Get(s.URL + "/orgs/acme/projects")
		if err != nil {
			t.Fatal(err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		_, after, ok := strings.Cut(string(page), `name="csrf" value="`)
		if !ok {
			t.Fatalf("no CSRF token in the projects page")
		}
		csrf, _, _ := strings.Cut(after, `"`)
		for _, tc := range []struct{ name, method, path, form string }{
			{"NUL in org", "GET", "/orgs/a%00b", ""},
			{"invalid UTF-8 in org", "GET", "/orgs/a%ff", ""},
			{"NUL in project", "GET", "/orgs/acme/projects/a%00/delete", ""},
			{"NUL in token id", "GET", "/orgs/acme/tokens/1%00", ""},
			{"huge token id", "GET", "/orgs/acme/tokens/99999999999999999999999", ""},
			{"NUL in query", "GET", "/orgs/acme/projects?q=a%00", ""},
			{"invalid UTF-8 in query", "GET", "/orgs/acme/projects?q=%ff", ""},
			{"NUL in switch", "GET", "/switch?org=a%00", ""},
			{"NUL in project key", "POST", "/orgs/acme/projects", "key=a%00b&name=x"},
			{"NUL in project name", "POST", "/orgs/acme/projects", "key=nulname&name=a%00b"},
			{"invalid UTF-8 in project name", "POST", "/orgs/acme/projects", "key=badutf&name=a%ff"},
			{"NUL in member login", "POST", "/orgs/acme/members", "login=a%00&role=member"},
			{"NUL in token name", "POST", "/orgs/acme/tokens", "name=a%00b&permissions=scan&scope=all&expiry=30d"},
			{"NUL in audit filter", "GET", "/orgs/acme/audit?action=a%00", ""},
			{"NUL in settings", "POST", "/orgs/acme/settings", "max_lifetime_days=9%00"},
			{"NUL in next", "GET", "/login?next=/a%00", ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var body io.Reader
				if tc.method == "POST" {
					body = strings.NewReader(tc.form + "&csrf=" + url.QueryEscape(csrf))
				}
				req, err := http.NewRequest(tc.method, s.URL+tc.path, body)
				if err != nil {
					t.Fatal(err)
				}
				if body != nil {
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				}
				resp, err := hc.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode >= 500 {
					t.Fatalf("status %d", resp.StatusCode)
				}
			})
		}
	})
}
