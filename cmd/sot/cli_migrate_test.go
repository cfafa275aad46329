package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/sot-dev/sot/internal/pgtest"
)

// runSot runs the sot command line in-process and returns its exit
// status, standard output and standard error.
func runSot(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(args, &stdio{in: strings.NewReader(""), out: &out, err: &errOut})
	return code, out.String(), errOut.String()
}

// tokenShape is what must survive a migration of a token unchanged:
// everything but the last-used time, which the server batches.
func tokenShape(t tokenBody) string {
	return fmt.Sprintf("id=%d name=%s kind=%s scope=%+v count=%d perms=%v hint=%s expires=%v revoked=%v by=%s",
		t.ID, t.Name, t.Kind, *t.Scope, t.ProjectCount, t.Permissions, t.Hint, t.ExpiresAt, t.RevokedAt, t.CreatedBy.Login)
}

// allAudit returns every audit event of org, following the pages.
func allAudit(t *testing.T, c *apiClient, org string) []json.RawMessage {
	t.Helper()
	var all []json.RawMessage
	next := ""
	for {
		var l listBody[json.RawMessage]
		c.do("GET", "/api/v1/orgs/"+org+"/audit?page_size=1000&page_token="+url.QueryEscape(next), nil).want(t, http.StatusOK).decode(t, &l)
		all = append(all, l.Items...)
		if next = l.NextPageToken; next == "" {
			return all
		}
	}
}

// A deployment made through the API on SQLite moves to PostgreSQL with
// migrate-data and works there unchanged: the same secrets with the same
// scopes, the same reports, the same audit log. A second copy into the
// now non-empty database is refused.
func TestMigrateDataSQLiteToPostgres(t *testing.T) {
	pg := pgtest.DSN(t)
	s := startServer(t, serverOpts{})
	admin := s.admin(t)
	s.createOrg(t, "acme", "team")
	s.createOrg(t, "zeta", "enterprise")
	bob := s.createUser(t, "bob")
	admin.do("PUT", "/api/v1/orgs/acme/members/bob", map[string]any{"role": "member"}).want(t, http.StatusCreated)

	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = fmt.Sprintf("svc-%04d", i)
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < len(keys); i += 4 {
				admin.do("POST", "/api/v1/orgs/acme/projects", map[string]any{"key": keys[i]}).want(t, http.StatusCreated)
			}
		})
	}
	wg.Wait()
	s.createProjects(t, "acme", "web", "other")
	s.createProjects(t, "zeta", "web")

	ci := s.createOrgToken(t, "acme", map[string]any{
		"name":        "ci",
		"scope":       map[string]any{"projects": []string{"web"}, "patterns": []string{"svc-00[0-4][0-9]"}},
		"permissions": []string{"scan", "browse"},
	})
	big := s.createOrgToken(t, "acme", map[string]any{
		"name":        "big",
		"scope":       map[string]any{"projects": keys},
		"permissions": []string{"browse"},
	})
	revoked := s.createOrgToken(t, "acme", map[string]any{"name": "old", "scope": map[string]any{"all_projects": true}, "permissions": []string{"scan"}})
	admin.do("DELETE", fmt.Sprintf("/api/v1/orgs/acme/tokens/%d", revoked.Token.ID), nil).want(t, http.StatusNoContent)
	zeta := s.createOrgToken(t, "zeta", map[string]any{"scope": map[string]any{"all_projects": true}, "permissions": []string{"scan"}})

	report := make([]byte, 300<<10)
	rand.Read(report)
	sum := sha256.Sum256(report)
	var analysis struct {
		ID     int64  `json:"id"`
		SHA256 string `json:"sha256"`
	}
	s.as(t, ci.Secret).do("POST", "/api/v1/orgs/acme/projects/web/analyses?branch=main&commit=c0ffee", report).want(t, http.StatusCreated).decode(t, &analysis)
	if analysis.SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("upload sha256 %s, want %x", analysis.SHA256, sum)
	}

	var tokensBefore listBody[tokenBody]
	admin.do("GET", "/api/v1/orgs/acme/tokens?state=all", nil).want(t, http.StatusOK).decode(t, &tokensBefore)
	auditBefore := allAudit(t, admin, "acme")
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}

	code, stdout, stderr := runSot("migrate-data", "--from", s.DSN, "--to", pg, "-o", "json")
	if code != exitOK {
		t.Fatalf("migrate-data: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	var res migrateDataResult
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatalf("migrate-data -o json: %v\n%s", err, stdout)
	}
	// The admin and bob; acme and zeta; the admin in both and bob in acme;
	// 1,002 projects in acme and 1 in zeta; four org tokens and two
	// personal ones; ci's "web" and big's 1,000 explicit projects.
	want := map[string]int64{"orgs": 2, "users": 2, "memberships": 3, "projects": 1003, "tokens": 6,
		"token_projects": 1001, "analyses": 1, "analysis_reports": 1}
	for table, n := range want {
		if res.Rows[table] != n {
			t.Errorf("rows[%s] = %d, want %d (all: %v)", table, res.Rows[table], n, res.Rows)
		}
	}
	if res.Rows["audit_events"] < int64(len(auditBefore)) {
		t.Errorf("rows[audit_events] = %d, fewer than acme's %d events", res.Rows["audit_events"], len(auditBefore))
	}

	p := startServer(t, serverOpts{DSN: pg})
	if p.AdminToken != "" {
		t.Fatalf("the server on the copy bootstrapped a new admin:\n%s", p.Stdout)
	}
	p.AdminToken = s.AdminToken
	padmin := p.admin(t)

	// Snapshot first: the requests below add audit events and last-used times.
	if got := allAudit(t, padmin, "acme"); !equalJSON(got, auditBefore) {
		t.Fatalf("audit log after migration (%d events) differs from before (%d events)", len(got), len(auditBefore))
	}
	var tokensAfter listBody[tokenBody]
	padmin.do("GET", "/api/v1/orgs/acme/tokens?state=all", nil).want(t, http.StatusOK).decode(t, &tokensAfter)
	if len(tokensAfter.Items) != len(tokensBefore.Items) {
		t.Fatalf("%d tokens after, %d before", len(tokensAfter.Items), len(tokensBefore.Items))
	}
	for i := range tokensBefore.Items {
		if a, b := tokenShape(tokensAfter.Items[i]), tokenShape(tokensBefore.Items[i]); a != b {
			t.Errorf("token after migration\n%s\nwant\n%s", a, b)
		}
	}

	checks := []struct {
		name, secret, project, permission string
		want                              int
	}{
		{"explicit project", ci.Secret, "web", "scan", http.StatusNoContent},
		{"pattern", ci.Secret, "svc-0042", "browse", http.StatusNoContent},
		{"outside the pattern", ci.Secret, "svc-0050", "scan", http.StatusForbidden},
		{"outside the scope", ci.Secret, "other", "scan", http.StatusForbidden},
		{"permission not granted", ci.Secret, "web", "provision", http.StatusForbidden},
		{"1,000-project token, first", big.Secret, "svc-0000", "browse", http.StatusNoContent},
		{"1,000-project token, last", big.Secret, "svc-0999", "browse", http.StatusNoContent},
		{"1,000-project token, outside", big.Secret, "web", "browse", http.StatusForbidden},
		{"1,000-project token, no scan", big.Secret, "svc-0001", "scan", http.StatusForbidden},
		{"revoked stays revoked", revoked.Secret, "web", "scan", http.StatusUnauthorized},
		{"personal token of a member", bob, "web", "scan", http.StatusNoContent},
		{"other org's token", zeta.Secret, "web", "scan", http.StatusNotFound},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			r := p.as(t, c.secret).do("GET", "/api/v1/check?org=acme&project="+c.project+"&permission="+c.permission, nil)
			if r.Status != c.want && !(c.want == http.StatusNotFound && r.Status == http.StatusForbidden) {
				t.Fatalf("check %s/%s: %d, want %d; body %s", c.project, c.permission, r.Status, c.want, r.Body)
			}
		})
	}
	p.as(t, zeta.Secret).do("GET", "/api/v1/check?org=zeta&project=web&permission=scan", nil).want(t, http.StatusNoContent)

	var covered []string
	next := ""
	for {
		var l listBody[projectBody]
		padmin.do("GET", fmt.Sprintf("/api/v1/orgs/acme/tokens/%d/projects?page_size=1000&page_token=%s", big.Token.ID, url.QueryEscape(next)), nil).
			want(t, http.StatusOK).decode(t, &l)
		for _, pr := range l.Items {
			covered = append(covered, pr.Key)
		}
		if next = l.NextPageToken; next == "" {
			break
		}
	}
	if len(covered) != len(keys) {
		t.Fatalf("the 1,000-project token covers %d projects after migration", len(covered))
	}

	var me struct {
		Type string `json:"type"`
		User struct {
			Login string `json:"login"`
		} `json:"user"`
		Memberships []struct {
			Org  string `json:"org"`
			Role string `json:"role"`
		} `json:"memberships"`
	}
	p.as(t, bob).do("GET", "/api/v1/me", nil).want(t, http.StatusOK).decode(t, &me)
	if me.User.Login != "bob" || len(me.Memberships) != 1 || me.Memberships[0].Org != "acme" || me.Memberships[0].Role != "member" {
		t.Fatalf("bob after migration: %+v", me)
	}

	r := p.as(t, ci.Secret).do("GET", fmt.Sprintf("/api/v1/orgs/acme/projects/web/analyses/%d/report", analysis.ID), nil).want(t, http.StatusOK)
	if got := sha256.Sum256(r.Body); got != sum {
		t.Fatalf("report after migration: %d bytes, sha256 %x, want %x", len(r.Body), got, sum)
	}

	// New rows get fresh IDs after the copied ones.
	padmin.do("POST", "/api/v1/orgs/acme/projects", map[string]any{"key": "after-move"}).want(t, http.StatusCreated)
	fresh := p.createOrgToken(t, "acme", map[string]any{"scope": map[string]any{"all_projects": true}, "permissions": []string{"scan"}})
	if fresh.Token.ID <= zeta.Token.ID {
		t.Fatalf("new token ID %d reuses the copied range (up to %d)", fresh.Token.ID, zeta.Token.ID)
	}
	p.as(t, fresh.Secret).do("GET", "/api/v1/check?org=acme&project=after-move&permission=scan", nil).want(t, http.StatusNoContent)

	code, stdout, stderr = runSot("migrate-data", "--from", s.DSN, "--to", pg)
	if code != exitError || stdout != "" || strings.Count(strings.TrimSpace(stderr), "\n") != 0 || !strings.Contains(stderr, "not empty") {
		t.Fatalf("second migrate-data: exit %d, stdout %q, stderr %q; want exit 1 and one line saying the target is not empty", code, stdout, stderr)
	}
}

func equalJSON(a, b []json.RawMessage) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		var x, y any
		if json.Unmarshal(a[i], &x) != nil || json.Unmarshal(b[i], &y) != nil {
			return false
		}
		xs, _ := json.Marshal(x)
		ys, _ := json.Marshal(y)
		if !bytes.Equal(xs, ys) {
			return false
		}
	}
	return true
}

// migrate-data prints the row counts as a table or JSON, and refuses bad
// command lines and unusable databases with one line and a non-zero
// status, before touching the target.
func TestMigrateDataCommandLine(t *testing.T) {
	dir := t.TempDir()
	src := startServer(t, serverOpts{})
	src.createOrg(t, "acme", "team")
	src.createProjects(t, "acme", "web")
	if err := src.Stop(); err != nil {
		t.Fatal(err)
	}
	missing := "sqlite:" + filepath.Join(dir, "missing.db")
	tests := []struct {
		name     string
		args     []string
		code     int
		stdout   []string // regular expressions, multi-line mode
		stderr   string   // substring
		noTarget string   // a SQLite file that must not be created
	}{
		{name: "table", args: []string{"--from", src.DSN, "--to", "sqlite:" + filepath.Join(dir, "t1.db")}, code: exitOK,
			stdout: []string{`^TABLE +ROWS$`, `^projects +1$`, `^users +1$`, `^total +\d+$`, `row counts match`}},
		{name: "json", args: []string{"--from", src.DSN, "--to", "sqlite:" + filepath.Join(dir, "t2.db"), "-o", "json"}, code: exitOK,
			stdout: []string{`"projects": 1,`, `"orgs": 1,`, `"users": 1\b`}},
		{name: "missing source", args: []string{"--from", missing, "--to", "sqlite:" + filepath.Join(dir, "t3.db")}, code: exitError,
			stderr: "does not exist", noTarget: filepath.Join(dir, "t3.db")},
		{name: "same database", args: []string{"--from", src.DSN, "--to", src.DSN}, code: exitUsage, stderr: "same database"},
		{name: "no target", args: []string{"--from", src.DSN}, code: exitUsage, stderr: "--to"},
		{name: "unsupported target", args: []string{"--from", src.DSN, "--to", "mysql://localhost/sot"}, code: exitError, stderr: "unsupported DSN"},
		{name: "unreachable target", args: []string{"--from", src.DSN, "--to", "postgres://sot@127.0.0.1:1/sot?sslmode=disable&connect_timeout=5"},
			code: exitError, stderr: "target"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runSot(append([]string{"migrate-data"}, tc.args...)...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, stdout, stderr)
			}
			for _, want := range tc.stdout {
				if !regexp.MustCompile(`(?m)` + want).MatchString(stdout) {
					t.Errorf("stdout does not match %q:\n%s", want, stdout)
				}
			}
			if !strings.Contains(stderr, tc.stderr) || (tc.code == exitError && strings.Count(strings.TrimSpace(stderr), "\n") != 0) {
				t.Errorf("stderr %q, want one line with %q", stderr, tc.stderr)
			}
			if tc.noTarget != "" {
				if _, err := os.Stat(tc.noTarget); err == nil {
					t.Errorf("the refused command created %s", tc.noTarget)
				}
			}
		})
	}
}
