package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sot-dev/sot/internal/oidc/oidctest"
)

// TestCLILoginOIDC runs a CI job's tokenless path with the sot binary: an
// admin writes a trust policy with the CLI, then "sot login --oidc" fetches
// the job's ID token from a fake GitHub Actions token endpoint, exchanges
// it, hands the token to the next step through GITHUB_ENV, and that step
// uploads a scan.
func TestCLILoginOIDC(t *testing.T) {
	bin := e2eBinary(t)
	clock := &testClock{}
	iss := oidctest.NewIssuer(t, clock.Now)
	s := startServer(t, serverOpts{Clock: clock, OIDCIssuers: []string{iss.URL}})
	s.createOrg(t, "acme", "team")
	s.createProjects(t, "acme", "web")
	admin := newE2ECLI(t, bin, "SOT_URL="+s.URL, "SOT_TOKEN="+s.AdminToken)

	var pol struct {
		ID         int64             `json:"id"`
		Conditions map[string]string `json:"conditions"`
		TTL        string            `json:"ttl"`
	}
	admin.jsonOK(t, nil, &pol, "trust-policy", "create", "acme", "--name", "web main", "--issuer", iss.URL,
		"--condition", "repository_owner_id=4242", "--condition", "ref=refs/heads/main",
		"--project", "web", "--permission", "scan", "--ttl", "20m")
	if pol.ID == 0 || pol.Conditions["ref"] != "refs/heads/main" || pol.TTL != "20m" {
		t.Fatalf("policy %+v", pol)
	}
	if out := admin.ok(t, nil, "trust-policy", "list", "acme"); !strings.Contains(out, "ref=refs/heads/main, repository_owner_id=4242") {
		t.Errorf("trust-policy list:\n%s", out)
	}
	admin.ok(t, nil, "trust-policy", "update", "acme", itoa(pol.ID), "--ttl", "10m")
	if out := admin.ok(t, nil, "trust-policy", "get", "acme", itoa(pol.ID)); !strings.Contains(out, "10m") {
		t.Errorf("trust-policy get after update:\n%s", out)
	}

	// GitHub Actions' token endpoint: the job's request token as bearer,
	// the audience as a query parameter.
	var mu sync.Mutex
	var audiences []string
	gh := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer job-request-token" || r.URL.Query().Get("api-version") != "2.0" {
			http.Error(w, "bad request token", http.StatusUnauthorized)
			return
		}
		aud := r.URL.Query().Get("audience")
		mu.Lock()
		audiences = append(audiences, aud)
		mu.Unlock()
		json.NewEncoder(w).Encode(map[string]string{"value": iss.Sign(t, oidctest.RSAKeyID, iss.Claims(aud))})
	}))
	defer gh.Close()
	githubEnv := filepath.Join(t.TempDir(), "github_env")
	job := newE2ECLI(t, bin, "SOT_URL="+s.URL,
		"ACTIONS_ID_TOKEN_REQUEST_URL="+gh.URL+"/token?api-version=2.0",
		"ACTIONS_ID_TOKEN_REQUEST_TOKEN=job-request-token",
		"GITHUB_ENV="+githubEnv)
	r := job.run(t, "", nil, "login", "--oidc", "--org", "acme")
	if r.code != 0 {
		t.Fatalf("sot login --oidc: %s", r)
	}
	mu.Lock()
	if len(audiences) != 1 || audiences[0] != "sot" {
		t.Errorf("requested audiences %v, want [sot]", audiences)
	}
	mu.Unlock()
	mask := regexp.MustCompile(`(?m)^::add-mask::(sot_[0-9A-Za-z]{36})$`).FindStringSubmatch(r.stdout)
	if mask == nil {
		t.Fatalf("no ::add-mask:: line for the secret: %s", r)
	}
	secret := mask[1]
	env, err := os.ReadFile(githubEnv)
	if err != nil {
		t.Fatal(err)
	}
	if want := "SOT_TOKEN=" + secret + "\nSOT_URL=" + s.URL + "\n"; string(env) != want {
		t.Errorf("GITHUB_ENV holds %q, want %q", env, want)
	}
	if strings.Count(r.stdout+r.stderr, secret) != 1 {
		t.Errorf("the secret appears outside the mask command: %s", r)
	}

	// The next step of the job: the token from GITHUB_ENV uploads a scan.
	report := filepath.Join(t.TempDir(), "report.json")
	if err := os.WriteFile(report, []byte(`{"issues": []}`), 0o600); err != nil {
		t.Fatal(err)
	}
	step := newE2ECLI(t, bin, "SOT_URL="+s.URL, "SOT_TOKEN="+secret)
	step.ok(t, nil, "scan", "acme", "web", report, "--branch", "main")
	if r := step.run(t, "", nil, "check", "acme", "web", "--permission", "browse"); r.code != exitForbidden {
		t.Errorf("check browse with a scan-only minted token: %s", r)
	}

	// The token list shows the minted token with its source.
	var toks []struct {
		ID     int64  `json:"id"`
		Source string `json:"source"`
		OIDC   *struct {
			PolicyName string `json:"policy_name"`
			Repository string `json:"repository"`
		} `json:"oidc"`
	}
	admin.jsonOK(t, nil, &toks, "token", "list", "acme")
	if len(toks) != 1 || toks[0].Source != "oidc" || toks[0].OIDC == nil || toks[0].OIDC.Repository != "acme/web" {
		t.Fatalf("token list %+v", toks)
	}
	if out := admin.ok(t, nil, "token", "get", "acme", itoa(toks[0].ID)); !strings.Contains(out, `oidc, trust policy "web main", acme/web, refs/heads/main, run 777`) {
		t.Errorf("token get:\n%s", out)
	}

	// GitLab CI: the ID token is in a variable declared with id_tokens;
	// outside GitHub the token is printed as export lines.
	gitlab := newE2ECLI(t, bin, "SOT_URL="+s.URL, "GITLAB_CI=true", "SOT_ID_TOKEN="+iss.Sign(t, oidctest.ECDSAKeyID, iss.Claims("sot")))
	out := gitlab.ok(t, nil, "login", "--oidc", "--org", "acme")
	if !regexp.MustCompile(`(?m)^export SOT_TOKEN=sot_[0-9A-Za-z]{36}$`).MatchString(out) ||
		!strings.Contains(out, "export SOT_URL='"+s.URL+"'") {
		t.Errorf("GitLab output:\n%s", out)
	}

	tests := []struct {
		name string
		env  []string
		code int
		msg  string
	}{
		{"not in CI", nil, exitError, "no CI identity found"},
		{"GitLab without id_tokens", []string{"GITLAB_CI=true"}, exitError, "declare one in .gitlab-ci.yml"},
		{"GitHub without id-token permission", []string{"ACTIONS_ID_TOKEN_REQUEST_URL=" + gh.URL + "/token?api-version=2.0"}, exitError, "id-token: write"},
		{"GitHub endpoint over plain http elsewhere", []string{"ACTIONS_ID_TOKEN_REQUEST_URL=http://ci.example.com/token", "ACTIONS_ID_TOKEN_REQUEST_TOKEN=x"}, exitError, "https only"},
		{"condition mismatch", []string{"SOT_ID_TOKEN=" + iss.Sign(t, oidctest.RSAKeyID, func() map[string]any {
			c := iss.Claims("sot")
			c["ref"] = "refs/heads/dev"
			return c
		}())}, exitForbidden, `ref must match "refs/heads/main"`},
		{"expired ID token", []string{"SOT_ID_TOKEN=" + iss.Sign(t, oidctest.RSAKeyID, func() map[string]any {
			c := iss.Claims("sot")
			c["exp"] = clock.Now().Add(-10 * time.Minute).Unix()
			return c
		}())}, exitAuth, "ID token expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newE2ECLI(t, bin, append([]string{"SOT_URL=" + s.URL}, tt.env...)...)
			r := c.run(t, "", nil, "login", "--oidc", "--org", "acme")
			if r.code != tt.code || !strings.Contains(r.stderr, tt.msg) {
				t.Errorf("got %s; want exit %d and %q", r, tt.code, tt.msg)
			}
		})
	}
	if r := job.run(t, "", nil, "login", "--oidc"); r.code != exitUsage {
		t.Errorf("login --oidc without --org: %s", r)
	}

	admin.ok(t, nil, "trust-policy", "delete", "acme", itoa(pol.ID))
	if r := step.run(t, "", nil, "check", "acme", "web", "--permission", "scan"); r.code != exitAuth {
		t.Errorf("check after the policy's deletion: %s", r)
	}
}

func TestServeBadOIDCFlags(t *testing.T) {
	dir := t.TempDir()
	db := "sqlite:" + filepath.Join(dir, "sot.db")
	jwks := filepath.Join(dir, "jwks.json")
	if err := os.WriteFile(jwks, []byte(`{"keys": []}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		msg  string
	}{
		{"plain http issuer", []string{"--oidc-issuers", "github,http://gitlab.example.com"}, "https URL"},
		{"issuer with a query", []string{"--oidc-issuers", "https://gitlab.example.com/?x=1"}, "without query"},
		{"static JWKS without a file", []string{"--oidc-static-jwks", "https://ci.example.com"}, "want ISSUER=FILE"},
		{"static JWKS file missing", []string{"--oidc-static-jwks", "https://ci.example.com=" + filepath.Join(dir, "nope.json")}, "no such file"},
		{"static JWKS without keys", []string{"--oidc-static-jwks", "https://ci.example.com=" + jwks}, "no usable public keys"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			args := append([]string{"serve", "--addr", "127.0.0.1:0", "--db", db}, tc.args...)
			code := run(args, &stdio{in: strings.NewReader(""), out: &out, err: &errOut})
			if code != exitUsage || !strings.Contains(errOut.String(), tc.msg) {
				t.Fatalf("exit status %d, want %d with %q; stderr:\n%s", code, exitUsage, tc.msg, errOut.String())
			}
		})
	}
}
