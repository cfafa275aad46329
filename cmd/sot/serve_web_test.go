package main

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
)

// TestServeWebUI: "sot serve" serves the admin UI at "/" beside the API,
// the first start's admin password signs in, and the session outlives a
// restart (and so works on any replica) because its signing key is kept in
// the database.
func TestServeWebUI(t *testing.T) {
	forEachDB(t, serverOpts{}, func(t *testing.T, s *testServer) {
		jar, err := cookiejar.New(nil)
		if err != nil {
			t.Fatal(err)
		}
		c := &http.Client{Jar: jar}
		page := func(path string) (int, string, string) {
			t.Helper()
			resp, err := c.Get(s.URL + path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, resp.Request.URL.Path, string(b)
		}
		if st, at, _ := page("/"); st != http.StatusOK || at != "/login" {
			t.Fatalf("GET / as a stranger: %d at %s, want the login page", st, at)
		}
		resp, err := c.PostForm(s.URL+"/login", url.Values{"login": {"admin"}, "password": {s.AdminPassword}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Request.URL.Path == "/login" {
			t.Fatalf("sign in with the first start's password: %d at %s", resp.StatusCode, resp.Request.URL)
		}
		if st, _, body := page("/"); st != http.StatusOK || !strings.Contains(body, "Sign out") {
			t.Fatalf("GET / signed in: %d", st)
		}
		// The API still owns its paths.
		s.as(t, "").do("GET", "/api/v1/me", nil).want(t, http.StatusUnauthorized)

		s = s.Restart(t)
		if st, at, body := page("/"); st != http.StatusOK || at == "/login" || !strings.Contains(body, "Sign out") {
			t.Fatalf("after a restart the session was lost: %d at %s", st, at)
		}
	})
}
