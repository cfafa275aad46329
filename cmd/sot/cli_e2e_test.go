package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sot-dev/sot/client"
)

// These tests run the sot binary as a user or a CI job would: built from
// this package, as a subprocess, against a real server on 127.0.0.1 with a
// new SQLite file (startServer).

// e2eBinary builds the sot binary into a temporary directory.
func e2eBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sot")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// e2eCLI runs the sot binary with a clean environment: its own HOME and
// config directory, and only the SOT_* variables a test gives.
type e2eCLI struct {
	bin  string
	home string
	env  []string
}

func newE2ECLI(t *testing.T, bin string, env ...string) *e2eCLI {
	home := t.TempDir()
	return &e2eCLI{bin: bin, home: home, env: env}
}

// result is one run of the CLI.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
}

// run runs sot with args, stdin and extra environment variables.
func (c *e2eCLI) run(t *testing.T, stdin string, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.bin, args...)
	cmd.Env = append([]string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + c.home,
		"XDG_CONFIG_HOME=" + filepath.Join(c.home, ".config"),
	}, c.env...)
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("sot %v: %v", args, err)
	}
	return result{stdout: stdout.String(), stderr: stderr.String(), code: code}
}

// ok runs sot and fails the test unless it exits 0.
func (c *e2eCLI) ok(t *testing.T, env []string, args ...string) string {
	t.Helper()
	r := c.run(t, "", env, args...)
	if r.code != 0 {
		t.Fatalf("sot %s: %s", strings.Join(args, " "), r)
	}
	return r.stdout
}

// jsonOK runs sot with -o json and decodes its output into v.
func (c *e2eCLI) jsonOK(t *testing.T, env []string, v any, args ...string) {
	t.Helper()
	out := c.ok(t, env, append(args, "-o", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("sot %s -o json: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func TestCLIEndToEnd(t *testing.T) {
	bin := e2eBinary(t)
	srv := startServer(t, serverOpts{})
	cli := newE2ECLI(t, bin, "SOT_URL="+srv.URL)
	admin := []string{"SOT_TOKEN=" + srv.AdminToken}

	if out := cli.ok(t, admin, "whoami"); !strings.Contains(out, "user admin (instance admin)") {
		t.Fatalf("whoami = %q", out)
	}

	var org client.Org
	cli.jsonOK(t, admin, &org, "org", "create", "acme", "--name", "Acme", "--plan", "team")
	if org.Key != "acme" || org.Name != "Acme" || org.Plan != client.PlanTeam {
		t.Fatalf("org create = %+v", org)
	}
	for _, p := range []string{"web", "api", "team-a-ui"} {
		cli.ok(t, admin, "project", "create", "acme", p)
	}
	if out := cli.ok(t, admin, "project", "list", "acme", "--query", "we"); !strings.Contains(out, "web") || strings.Contains(out, "api") {
		t.Fatalf("project list --query we = %q", out)
	}

	// One token per scope mode.
	var all, explicit, pattern client.NewToken
	cli.jsonOK(t, admin, &all, "token", "create", "acme", "--name", "all", "--all-projects", "--permission", "scan", "--expires", "30d")
	cli.jsonOK(t, admin, &explicit, "token", "create", "acme", "--name", "explicit", "--project", "web", "--project", "api",
		"--permission", "scan", "--permission", "browse", "--expires", time.Now().AddDate(0, 2, 0).Format(time.DateOnly))
	cli.jsonOK(t, admin, &pattern, "token", "create", "acme", "--name", "pattern", "--pattern", "team-a-.*",
		"--permission", "browse", "--expires", "1y", "--allow-cidr", "127.0.0.0/8", "--description", "team A dashboards")
	for _, tc := range []struct {
		name  string
		got   client.NewToken
		scope client.Scope
		perms []string
	}{
		{"all", all, client.Scope{AllProjects: true}, []string{"scan"}},
		{"explicit", explicit, client.Scope{Projects: []string{"web", "api"}}, []string{"scan", "browse"}},
		{"pattern", pattern, client.Scope{Patterns: []string{"team-a-.*"}}, []string{"browse"}},
	} {
		tok := tc.got.Token
		if !strings.HasPrefix(tc.got.Secret, "sot_") || tok.Name != tc.name || tok.Scope == nil ||
			tok.Scope.AllProjects != tc.scope.AllProjects || !sameSet(tok.Scope.Projects, tc.scope.Projects) ||
			!sameSet(tok.Scope.Patterns, tc.scope.Patterns) || !sameSet(tok.Permissions, tc.perms) || tok.ExpiresAt == nil {
			t.Errorf("token %s = %+v (secret %q)", tc.name, tok, tc.got.Secret)
		}
	}
	if len(pattern.Token.AllowedCIDRs) != 1 || pattern.Token.Description != "team A dashboards" {
		t.Errorf("pattern token = %+v", pattern.Token)
	}

	// In table mode the secret alone is on stdout, for SECRET=$(sot token create …).
	r := cli.run(t, "", admin, "token", "create", "acme", "--name", "plain", "--all-projects", "--permission", "scan", "--expires", "7d")
	if r.code != 0 || !regexp.MustCompile(`^sot_[0-9A-Za-z]{36}\n$`).MatchString(r.stdout) || !strings.Contains(r.stderr, "shown only this once") {
		t.Fatalf("token create (table): %s", r)
	}

	// The CI step: upload a report with the org token.
	report := filepath.Join(t.TempDir(), "report.json")
	body := bytes.Repeat([]byte(`{"issue": "x"}`+"\n"), 10_000)
	if err := os.WriteFile(report, body, 0o644); err != nil {
		t.Fatal(err)
	}
	allEnv := []string{"SOT_TOKEN=" + all.Secret}
	var a client.Analysis
	cli.jsonOK(t, allEnv, &a, "scan", "acme", "web", report, "--branch", "main", "--commit", "0123abc")
	sum := sha256.Sum256(body)
	if a.Size != int64(len(body)) || a.SHA256 != hex.EncodeToString(sum[:]) || a.Branch != "main" || a.Commit != "0123abc" {
		t.Fatalf("scan = %+v", a)
	}
	if out := cli.ok(t, allEnv, "scan", "acme", "api", report); !strings.Contains(out, "uploaded analysis") || !strings.Contains(out, a.SHA256) {
		t.Fatalf("scan (table) = %q", out)
	}
	// "-" reads the report from standard input.
	r = cli.run(t, string(body), allEnv, "scan", "acme", "web", "-", "-o", "json")
	var fromStdin client.Analysis
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &fromStdin) != nil || fromStdin.SHA256 != a.SHA256 || fromStdin.Size != a.Size {
		t.Fatalf("scan from stdin: %s", r)
	}
	if r := cli.run(t, "", allEnv, "scan", "acme", "web", t.TempDir()); r.code != 2 {
		t.Fatalf("scan of a directory: %s, want exit 2", r)
	}

	// Exit statuses: 0 allowed, 4 not allowed, 3 bad credential, 2 usage.
	patternEnv := []string{"SOT_TOKEN=" + pattern.Secret}
	exits := []struct {
		name string
		env  []string
		args []string
		code int
	}{
		{"check allowed", allEnv, []string{"check", "acme", "web"}, 0},
		{"check allowed by pattern", patternEnv, []string{"check", "acme", "team-a-ui", "--permission", "browse"}, 0},
		{"check outside the scope", patternEnv, []string{"check", "acme", "web", "--permission", "browse"}, 4},
		{"check missing permission", patternEnv, []string{"check", "acme", "team-a-ui", "--permission", "scan"}, 4},
		{"check bad token", []string{"SOT_TOKEN=sot_notarealtokennotarealtokennotare000000"}, []string{"check", "acme", "web"}, 3},
		{"check no token", nil, []string{"check", "acme", "web"}, 3},
		{"scan outside the scope", patternEnv, []string{"scan", "acme", "team-a-ui", report}, 4},
		{"token creates nothing", allEnv, []string{"project", "create", "acme", "new"}, 4},
		{"unknown org", admin, []string{"org", "get", "nope"}, 1},
		{"duplicate project", admin, []string{"project", "create", "acme", "web"}, 1},
		{"policy violation", admin, []string{"token", "create", "acme", "--name", "x", "--all-projects", "--permission", "scan", "--expires", "3y"}, 1},
		{"missing expiry", admin, []string{"token", "create", "acme", "--name", "x", "--all-projects", "--permission", "scan"}, 2},
		{"missing scope", admin, []string{"token", "create", "acme", "--name", "x", "--permission", "scan", "--expires", "30d"}, 2},
		{"two scope modes", admin, []string{"token", "create", "acme", "--name", "x", "--all-projects", "--project", "web", "--permission", "scan", "--expires", "30d"}, 2},
		{"bad expiry", admin, []string{"token", "create", "acme", "--name", "x", "--all-projects", "--permission", "scan", "--expires", "soon"}, 2},
		{"unknown permission", admin, []string{"check", "acme", "web", "--permission", "admin"}, 2},
		{"missing argument", admin, []string{"check", "acme"}, 2},
		{"unknown command", admin, []string{"frobnicate"}, 2},
		{"non-numeric id", admin, []string{"token", "get", "acme", "twelve"}, 2},
	}
	for _, tc := range exits {
		t.Run(tc.name, func(t *testing.T) {
			r := cli.run(t, "", tc.env, tc.args...)
			if r.code != tc.code {
				t.Fatalf("sot %s: %s\nwant exit %d", strings.Join(tc.args, " "), r, tc.code)
			}
			if tc.code != 0 && (r.stderr == "" || strings.Contains(r.stderr, "goroutine")) {
				t.Fatalf("stderr %q: want a message and no stack", r.stderr)
			}
		})
	}
	// A refusal prints the server's reason.
	if r := cli.run(t, "", patternEnv, "check", "acme", "web", "--permission", "browse"); !strings.Contains(r.stderr, "outside the token's scope (HTTP 403)") {
		t.Fatalf("check outside the scope: %s", r)
	}
	// Field errors from the server are printed.
	r = cli.run(t, "", admin, "token", "create", "acme", "--name", "x", "--pattern", "web-(.*", "--permission", "scan", "--expires", "30d")
	if r.code != 1 || !strings.Contains(r.stderr, "scope.patterns[0]") {
		t.Fatalf("invalid pattern: %s", r)
	}

	// Listing, reading, previewing, revoking.
	var listed []client.Token
	cli.jsonOK(t, admin, &listed, "token", "list", "acme")
	if len(listed) != 4 {
		t.Fatalf("token list: %d tokens, want 4: %+v", len(listed), listed)
	}
	if out := cli.ok(t, admin, "token", "list", "acme"); !strings.Contains(out, "explicit") || !strings.Contains(out, "2 projects") {
		t.Fatalf("token list (table) = %q", out)
	}
	var got client.Token
	cli.jsonOK(t, admin, &got, "token", "get", "acme", itoa(explicit.Token.ID))
	if got.ID != explicit.Token.ID || got.Name != "explicit" {
		t.Fatalf("token get = %+v", got)
	}
	var covered []client.Project
	cli.jsonOK(t, admin, &covered, "token", "projects", "acme", itoa(explicit.Token.ID))
	if len(covered) != 2 {
		t.Fatalf("token projects = %+v", covered)
	}
	if out := cli.ok(t, admin, "token", "preview", "acme", "--pattern", "team-a-.*"); !strings.Contains(out, "1 project of acme") || !strings.Contains(out, "team-a-ui") {
		t.Fatalf("token preview = %q", out)
	}
	cli.ok(t, admin, "token", "revoke", "acme", itoa(all.Token.ID))
	if r := cli.run(t, "", allEnv, "check", "acme", "web"); r.code != 3 {
		t.Fatalf("check with a revoked token: %s, want exit 3", r)
	}
	var revoked []client.Token
	cli.jsonOK(t, admin, &revoked, "token", "list", "acme", "--state", "revoked")
	if len(revoked) != 1 || revoked[0].ID != all.Token.ID || revoked[0].RevokedAt == nil {
		t.Fatalf("token list --state revoked = %+v", revoked)
	}
	if out := cli.ok(t, admin, "audit", "acme", "--action", "token.revoked"); !strings.Contains(out, "token.revoked") {
		t.Fatalf("audit = %q", out)
	}

	// Rotation: the old secret keeps working through the grace period.
	var rotated client.NewToken
	cli.jsonOK(t, admin, &rotated, "token", "rotate", "acme", itoa(explicit.Token.ID), "--grace", "1h")
	if rotated.Token.ID != explicit.Token.ID || !strings.HasPrefix(rotated.Secret, "sot_") || rotated.Secret == explicit.Secret {
		t.Fatalf("token rotate = %+v", rotated)
	}
	for _, secret := range []string{explicit.Secret, rotated.Secret} {
		if r := cli.run(t, "", []string{"SOT_TOKEN=" + secret}, "check", "acme", "web"); r.code != 0 {
			t.Fatalf("check after rotation with a grace period: %s", r)
		}
	}
	r = cli.run(t, "", admin, "token", "rotate", "acme", itoa(explicit.Token.ID))
	if r.code != 0 || !regexp.MustCompile(`^sot_[0-9A-Za-z]{36}\n$`).MatchString(r.stdout) {
		t.Fatalf("token rotate (table): %s", r)
	}
	explicit.Secret = strings.TrimSpace(r.stdout)
	if out := cli.ok(t, admin, "token", "get", "acme", itoa(explicit.Token.ID)); !regexp.MustCompile(`(?m)^rotated: +20`).MatchString(out) {
		t.Fatalf("token get after rotation = %q", out)
	}
	if r := cli.run(t, "", []string{"SOT_TOKEN=" + rotated.Secret}, "check", "acme", "web"); r.code != 3 {
		t.Fatalf("check with the secret rotated away without grace: %s, want exit 3", r)
	}
	if r := cli.run(t, "", admin, "token", "rotate", "acme", itoa(explicit.Token.ID), "--grace", "a while"); r.code != 2 {
		t.Fatalf("token rotate --grace 'a while': %s, want exit 2", r)
	}

	// Policy and members.
	cli.jsonOK(t, admin, &org, "org", "policy", "acme", "--max-lifetime", "90d", "--allow-non-expiring")
	if org.TokenPolicy.MaxLifetimeDays != 90 || !org.TokenPolicy.AllowNonExpiring {
		t.Fatalf("org policy = %+v", org.TokenPolicy)
	}
	cli.jsonOK(t, admin, &org, "org", "policy", "acme", "--allow-non-expiring=false")
	if org.TokenPolicy.MaxLifetimeDays != 90 || org.TokenPolicy.AllowNonExpiring {
		t.Fatalf("org policy --allow-non-expiring=false = %+v", org.TokenPolicy)
	}
	api, err := client.New(srv.URL, srv.AdminToken)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.CreateUser(context.Background(), client.CreateUserRequest{Login: "bob", Name: "Bob", Password: "long enough password"}); err != nil {
		t.Fatal(err)
	}
	cli.ok(t, admin, "member", "set", "acme", "bob", "--role", "member")
	if out := cli.ok(t, admin, "member", "list", "acme"); !regexp.MustCompile(`(?m)^bob\s+Bob\s+member\s*$`).MatchString(out) {
		t.Fatalf("member list = %q", out)
	}
	cli.ok(t, admin, "member", "remove", "acme", "bob")
	var members []client.Membership
	cli.jsonOK(t, admin, &members, "member", "list", "acme")
	if len(members) != 1 || members[0].Login != "admin" {
		t.Fatalf("members after remove = %+v", members)
	}
	var web client.Project
	cli.jsonOK(t, []string{"SOT_TOKEN=" + explicit.Secret}, &web, "project", "get", "acme", "web")
	if web.Key != "web" || web.Org != "acme" {
		t.Fatalf("project get = %+v", web)
	}
	if r := cli.run(t, "", admin, "project", "get", "acme", "nope"); r.code != 1 || !strings.Contains(r.stderr, "404") {
		t.Fatalf("project get of an unknown project: %s, want exit 1", r)
	}
	cli.ok(t, admin, "project", "delete", "acme", "api")
	if r := cli.run(t, "", admin, "project", "delete", "acme", "api"); r.code != 1 {
		t.Fatalf("deleting a deleted project: %s", r)
	}
}

func TestCLILogin(t *testing.T) {
	bin := e2eBinary(t)
	srv := startServer(t, serverOpts{})
	cli := newE2ECLI(t, bin)
	path := filepath.Join(cli.home, ".config", "sot", "credentials.json")

	// A bad token is refused, and nothing is saved.
	r := cli.run(t, "sot_notarealtokennotarealtokennotare000000\n", nil, "login", "--url", srv.URL, "--token-stdin")
	if r.code != 3 {
		t.Fatalf("login with a bad token: %s, want exit 3", r)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("credentials saved after a failed login: %v", err)
	}

	r = cli.run(t, srv.AdminToken+"\n", nil, "login", "--url", srv.URL+"/", "--token-stdin")
	if r.code != 0 || !strings.Contains(r.stdout, "logged in to "+srv.URL+" as user admin") {
		t.Fatalf("login: %s", r)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file mode %v, want 0600", fi.Mode().Perm())
	}
	var saved credentials
	b, _ := os.ReadFile(path)
	if err := json.Unmarshal(b, &saved); err != nil || saved.URL != srv.URL || saved.Token != srv.AdminToken {
		t.Fatalf("saved credentials %s: %v", b, err)
	}

	// Later commands use them with no flag or variable, or with the same URL.
	if out := cli.ok(t, nil, "whoami"); !strings.Contains(out, "user admin") {
		t.Fatalf("whoami after login = %q", out)
	}
	if out := cli.ok(t, []string{"SOT_URL=" + srv.URL}, "whoami"); !strings.Contains(out, "user admin") {
		t.Fatalf("whoami with SOT_URL after login = %q", out)
	}
	// The saved token is never sent to another server.
	other := httpRecorder(t)
	if r := cli.run(t, "", nil, "whoami", "--url", other.url); r.code != 3 || other.authorization() != "" {
		t.Fatalf("whoami --url other: %s; Authorization sent %q", r, other.authorization())
	}

	if r := cli.run(t, "", nil, "logout"); r.code != 0 {
		t.Fatalf("logout: %s", r)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("credentials still there after logout: %v", err)
	}
	if r := cli.run(t, "", []string{"SOT_URL=" + srv.URL}, "whoami"); r.code != 3 {
		t.Fatalf("whoami after logout: %s, want exit 3", r)
	}
}

func TestCLIOffline(t *testing.T) {
	bin := e2eBinary(t)
	cli := newE2ECLI(t, bin)
	if out := cli.ok(t, nil, "version"); out != "sot dev\n" {
		t.Fatalf("version = %q", out)
	}
	for _, shell := range []string{"bash", "zsh", "fish"} {
		out := cli.ok(t, nil, "completion", shell)
		if !strings.Contains(out, "token") || !strings.Contains(out, "all-projects") {
			t.Fatalf("completion %s lacks commands or flags:\n%s", shell, out)
		}
	}
	bashPath, err := exec.LookPath("bash")
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(t.TempDir(), "sot.bash")
	if err := os.WriteFile(script, []byte(cli.ok(t, nil, "completion", "bash")), 0o644); err != nil {
		t.Fatal(err)
	}
	// Complete a few command lines in a real bash.
	probe := `source "$1"
t() { COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]}-1)); _sot; echo "${COMPREPLY[*]}"; }
t sot tok
t sot token cr
t sot token create acme --permission ""
t sot -o ""
t sot token list acme --state r
`
	out, err := exec.Command(bashPath, "-c", probe, "bash", script).CombinedOutput()
	if err != nil {
		t.Fatalf("bash: %v\n%s", err, out)
	}
	want := "token\ncreate\nscan browse provision self_rotate\ntable json\nrevoked\n"
	if string(out) != want {
		t.Fatalf("bash completions:\n%s\nwant:\n%s", out, want)
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, s := range a {
		seen[s]++
	}
	for _, s := range b {
		if seen[s]--; seen[s] < 0 {
			return false
		}
	}
	return true
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// recorder is a foreign HTTP server that records the Authorization header
// it receives and refuses everything with a 401.
type recorder struct {
	url  string
	mu   sync.Mutex
	auth string
}

func httpRecorder(t *testing.T) *recorder {
	r := &recorder{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.auth = req.Header.Get("Authorization")
		r.mu.Unlock()
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"type":"/problems/unauthenticated","title":"Unauthorized","status":401,"detail":"missing credential"}`)
	}))
	t.Cleanup(srv.Close)
	r.url = srv.URL
	return r
}

func (r *recorder) authorization() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.auth
}

// TestCLILoginInteractive drives "sot login" on a real terminal (a pty from
// script(1)): it asks for the URL and the token, and the token typed at the
// prompt is not echoed.
func TestCLILoginInteractive(t *testing.T) {
	scriptPath, err := exec.LookPath("script")
	if err != nil {
		t.Fatalf("script(1) from util-linux is needed: %v", err)
	}
	bin := e2eBinary(t)
	srv := startServer(t, serverOpts{})
	home := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, scriptPath, "-q", "-e", "-c", shellQuote(bin)+" login", "/dev/null")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"), "TERM=dumb"}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var transcript strings.Builder
	buf := make([]byte, 4096)
	// waitFor reads the terminal until it shows s.
	waitFor := func(s string) {
		t.Helper()
		for !strings.Contains(transcript.String(), s) {
			n, err := pr.Read(buf)
			transcript.Write(buf[:n])
			if err != nil {
				t.Fatalf("waiting for %q: %v\n%s", s, err, transcript.String())
			}
		}
	}
	go func() { cmd.Wait(); pw.Close() }()

	waitFor("Server URL [" + client.DefaultURL + "]: ")
	io.WriteString(stdin, srv.URL+"\n")
	waitFor("Token (input hidden): ")
	io.WriteString(stdin, srv.AdminToken+"\n")
	rest, _ := io.ReadAll(pr)
	transcript.Write(rest)

	out := transcript.String()
	if !strings.Contains(out, "logged in to "+srv.URL+" as user admin") {
		t.Fatalf("transcript:\n%s", out)
	}
	if strings.Contains(out, srv.AdminToken) {
		t.Fatalf("the token was echoed:\n%s", out)
	}
	b, err := os.ReadFile(filepath.Join(home, ".config", "sot", "credentials.json"))
	if err != nil || !strings.Contains(string(b), srv.AdminToken) {
		t.Fatalf("saved credentials %s: %v", b, err)
	}
}
