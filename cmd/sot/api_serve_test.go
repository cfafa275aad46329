package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The first start prints the admin token once, on a line of its own; a
// second start on the same database prints neither token nor password.
func TestServeFirstStartPrintsAdminTokenOnce(t *testing.T) {
	s := startServer(t, serverOpts{AdminPassword: ""})
	lines := strings.Split(s.Stdout, "\n")
	var tokenLines, passwordLines int
	for _, l := range lines {
		if strings.HasPrefix(l, "admin token: sotu_") {
			tokenLines++
		}
		if strings.HasPrefix(l, "admin password: ") {
			passwordLines++
		}
	}
	if tokenLines != 1 || passwordLines != 1 {
		t.Fatalf("first start output:\n%s", s.Stdout)
	}
	if !strings.Contains(s.Stdout, "curl -H \"Authorization: Bearer "+s.AdminToken+"\" "+s.URL+"/api/v1/me") {
		t.Fatalf("first start output lacks the curl example:\n%s", s.Stdout)
	}
	var me struct {
		User struct {
			Login string `json:"login"`
			Admin bool   `json:"admin"`
		} `json:"user"`
	}
	s.admin(t).do("GET", "/api/v1/me", nil).want(t, http.StatusOK).decode(t, &me)
	if me.User.Login != "admin" || !me.User.Admin {
		t.Fatalf("me = %+v", me)
	}
	if strings.Contains(s.Logs.String(), s.AdminToken) {
		t.Fatal("the admin token is in the log")
	}

	s2 := s.Restart(t)
	if s2.Stdout != "" {
		t.Fatalf("second start printed:\n%s", s2.Stdout)
	}
	s2.admin(t).do("GET", "/api/v1/me", nil).want(t, http.StatusOK)
}

// The OpenAPI document is served, is JSON, and lists the contract's paths.
func TestServeOpenAPI(t *testing.T) {
	s := startServer(t, serverOpts{})
	r := s.as(t, "").do("GET", "/api/v1/openapi.json", nil).want(t, http.StatusOK)
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	r.decode(t, &doc)
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Fatalf("openapi = %q", doc.OpenAPI)
	}
	for path, method := range map[string]string{
		"/api/v1/users":                                              "post",
		"/api/v1/orgs":                                               "get",
		"/api/v1/me":                                                 "get",
		"/api/v1/user/tokens":                                        "post",
		"/api/v1/user/tokens/{id}":                                   "delete",
		"/api/v1/orgs/{org}":                                         "patch",
		"/api/v1/orgs/{org}/members/{login}":                         "put",
		"/api/v1/orgs/{org}/projects":                                "get",
		"/api/v1/orgs/{org}/projects/{project}":                      "delete",
		"/api/v1/orgs/{org}/tokens":                                  "post",
		"/api/v1/orgs/{org}/tokens/{id}":                             "patch",
		"/api/v1/orgs/{org}/tokens/{id}/projects":                    "get",
		"/api/v1/orgs/{org}/scope-preview":                           "post",
		"/api/v1/orgs/{org}/audit":                                   "get",
		"/api/v1/orgs/{org}/projects/{project}/analyses":             "post",
		"/api/v1/orgs/{org}/projects/{project}/analyses/{id}/report": "get",
		"/api/authentication/validate":                               "get",
		"/api/organizations/search":                                  "get",
	} {
		if _, ok := doc.Paths[path][method]; !ok {
			t.Errorf("OpenAPI document lacks %s %s", strings.ToUpper(method), path)
		}
	}
	// huma's default documentation routes are not served: /docs is the web
	// UI's (which asks a stranger to sign in), not an API explorer.
	if r := s.as(t, "").do("GET", "/docs", nil); strings.Contains(string(r.Body), "openapi") {
		t.Errorf("GET /docs serves API documentation: %d", r.Status)
	}
}

// Health, readiness and metrics.
func TestServeOperations(t *testing.T) {
	s := startServer(t, serverOpts{})
	s.as(t, "").do("GET", "/healthz", nil).want(t, http.StatusOK)
	s.as(t, "").do("GET", "/readyz", nil).want(t, http.StatusOK)
	s.admin(t).do("GET", "/api/v1/me", nil).want(t, http.StatusOK)
	s.as(t, "sot_nonsense").do("GET", "/api/v1/me", nil).want(t, http.StatusUnauthorized)
	m := string(s.as(t, "").do("GET", "/metrics", nil).want(t, http.StatusOK).Body)
	for _, want := range []string{
		`sot_http_requests_total{code="200",route="GET /api/v1/me"} 1`,
		`sot_authentications_total{outcome="ok"}`,
		`sot_authentications_total{outcome="malformed"} 1`,
		`sot_http_request_duration_seconds_bucket{route="GET /api/v1/me"`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// An uploaded report is committed before the response: after a restart on
// the same database it downloads with the same SHA-256.
func TestServeReportSurvivesRestart(t *testing.T) {
	forEachDB(t, serverOpts{}, func(t *testing.T, s *testServer) {
		s.createOrg(t, "acme", "team")
		s.createProjects(t, "acme", "web")
		tok := s.createOrgToken(t, "acme", map[string]any{"scope": map[string]any{"all_projects": true}, "permissions": []string{"scan", "browse"}})
		report := make([]byte, 3<<20+17)
		rand.Read(report)
		sum := sha256.Sum256(report)
		var an struct {
			ID     int64  `json:"id"`
			SHA256 string `json:"sha256"`
			Size   int64  `json:"size"`
			Branch string `json:"branch"`
			Commit string `json:"commit"`
		}
		s.as(t, tok.Secret).do("POST", "/api/v1/orgs/acme/projects/web/analyses?branch=main&commit=0123abc", report).want(t, http.StatusCreated).decode(t, &an)
		if an.SHA256 != hex.EncodeToString(sum[:]) || an.Size != int64(len(report)) || an.Branch != "main" || an.Commit != "0123abc" {
			t.Fatalf("analysis = %+v", an)
		}

		s2 := s.Restart(t)
		r := s2.as(t, tok.Secret).do("GET", fmt.Sprintf("/api/v1/orgs/acme/projects/web/analyses/%d/report", an.ID), nil).want(t, http.StatusOK)
		got := sha256.Sum256(r.Body)
		if got != sum {
			t.Fatalf("downloaded report: %d bytes, SHA-256 %x; want %d bytes, %x", len(r.Body), got, len(report), sum)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/octet-stream" {
			t.Fatalf("Content-Type = %q", ct)
		}
	})
}

// Shutdown (what SIGTERM triggers) lets an in-flight upload finish and
// flushes the batched last-used times before closing the database.
func TestServeShutdownFinishesRequestsAndFlushes(t *testing.T) {
	forEachDB(t, serverOpts{}, func(t *testing.T, s *testServer) {
		s.createOrg(t, "acme", "team")
		s.createProjects(t, "acme", "web")
		tok := s.createOrgToken(t, "acme", map[string]any{"scope": map[string]any{"all_projects": true}, "permissions": []string{"scan"}})
		s.as(t, tok.Secret).do("GET", "/api/v1/check?org=acme&project=web", nil).want(t, http.StatusNoContent)

		// An upload whose body arrives while the server shuts down.
		pr, pw := io.Pipe()
		req, _ := http.NewRequest("POST", s.URL+"/api/v1/orgs/acme/projects/web/analyses", pr)
		req.Header.Set("Authorization", "Bearer "+tok.Secret)
		type result struct {
			status int
			err    error
		}
		done := make(chan result, 1)
		go func() {
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				done <- result{err: err}
				return
			}
			resp.Body.Close()
			done <- result{status: resp.StatusCode}
		}()
		if _, err := pw.Write([]byte("first half;")); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond) // the request is in flight
		stopped := make(chan error, 1)
		go func() { stopped <- s.Stop() }()
		time.Sleep(200 * time.Millisecond) // shutdown has begun
		if _, err := pw.Write([]byte("second half")); err != nil {
			t.Fatal(err)
		}
		pw.Close()
		if res := <-done; res.err != nil || res.status != http.StatusCreated {
			t.Fatalf("in-flight upload: status %d, err %v", res.status, res.err)
		}
		if err := <-stopped; err != nil {
			t.Fatalf("shutdown: %v", err)
		}

		s2 := s.Restart(t)
		var got tokenBody
		s2.admin(t).do("GET", fmt.Sprintf("/api/v1/orgs/acme/tokens/%d", tok.Token.ID), nil).want(t, http.StatusOK).decode(t, &got)
		if got.LastUsedAt == nil || got.LastUsedIP == nil || *got.LastUsedIP != "127.0.0.1" {
			t.Fatalf("after shutdown: last_used_at %v, last_used_ip %v", got.LastUsedAt, got.LastUsedIP)
		}
		var l listBody[json.RawMessage]
		s2.as(t, s2.AdminToken).do("GET", "/api/v1/orgs/acme/projects/web/analyses", nil).want(t, http.StatusOK).decode(t, &l)
		if len(l.Items) != 1 {
			t.Fatalf("%d analyses after restart, want 1", len(l.Items))
		}
	})
}

// A database that cannot be opened or migrated ends "sot serve" with a
// non-zero status and a one-line reason.
func TestServeBadDatabase(t *testing.T) {
	garbage := filepath.Join(t.TempDir(), "not-a-db")
	if err := os.WriteFile(garbage, bytes.Repeat([]byte("garbage!"), 1024), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, dsn string }{
		{"unsupported", "mysql://localhost/sot"},
		{"not a database", "sqlite:" + garbage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run([]string{"serve", "--addr", "127.0.0.1:0", "--db", tc.dsn}, &stdio{in: strings.NewReader(""), out: &out, err: &errOut})
			if code == 0 {
				t.Fatal("exit status 0")
			}
			msg := strings.TrimSpace(errOut.String())
			lines := strings.Split(msg, "\n")
			last := lines[len(lines)-1]
			if !strings.HasPrefix(last, "sot: ") || strings.Contains(out.String(), "admin token") {
				t.Fatalf("stderr:\n%s\nstdout:\n%s", errOut.String(), out.String())
			}
		})
	}
}

// Bad serve flags are usage errors (status 2), reported before anything
// is opened or printed.
func TestServeBadFlags(t *testing.T) {
	db := "sqlite:" + filepath.Join(t.TempDir(), "sot.db")
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"check path template", []string{"--check-path-template", "/{repo}/x"}},
		{"report size", []string{"--max-report-size", "lots"}},
		{"trusted proxies", []string{"--trusted-proxies", "10.0.0.0/8,nonsense"}},
		{"log level", []string{"--log-level", "loud"}},
		{"auth cache size", []string{"--auth-cache-size", "0"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			args := append([]string{"serve", "--addr", "127.0.0.1:0", "--db", db}, tc.args...)
			if code := run(args, &stdio{in: strings.NewReader(""), out: &out, err: &errOut}); code != exitUsage {
				t.Fatalf("exit status %d, want %d; stderr:\n%s", code, exitUsage, errOut.String())
			}
			if out.Len() != 0 {
				t.Fatalf("printed on stdout:\n%s", out.String())
			}
		})
	}
	if _, err := os.Stat(strings.TrimPrefix(db, "sqlite:")); err == nil {
		t.Fatal("a bad command line created the database")
	}
}
