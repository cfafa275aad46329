package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/sot-dev/sot/client"
)

// cliRun runs a client command in process with SOT_URL and SOT_TOKEN set.
func cliRun(t *testing.T, s *testServer, token string, args ...string) (string, string, int) {
	t.Helper()
	t.Setenv("SOT_URL", s.URL)
	t.Setenv("SOT_TOKEN", token)
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	var out, errOut bytes.Buffer
	code := run(args, &stdio{in: strings.NewReader(""), out: &out, err: &errOut})
	return out.String(), errOut.String(), code
}

// A pipeline renews its own credential with "sot token rotate-self": the
// secret alone on stdout (or {token, secret} with -o json), refused
// without self_rotate.
func TestCLIRotateSelf(t *testing.T) {
	s := startServer(t, serverOpts{})
	s.createOrg(t, "acme", "team")
	s.createProjects(t, "acme", "web")
	scope := map[string]any{"all_projects": true}
	plain := s.createOrgToken(t, "acme", map[string]any{"scope": scope, "permissions": []string{"scan"}})
	if _, stderr, code := cliRun(t, s, plain.Secret, "token", "rotate-self"); code != exitForbidden || !strings.Contains(stderr, "self_rotate") {
		t.Fatalf("without self_rotate: exit %d, stderr %s", code, stderr)
	}
	tok := s.createOrgToken(t, "acme", map[string]any{"scope": scope, "permissions": []string{"scan", "self_rotate"}})
	stdout, stderr, code := cliRun(t, s, tok.Secret, "token", "rotate-self", "--grace", "1h")
	secret := strings.TrimSpace(stdout)
	if code != exitOK || !strings.HasPrefix(secret, "sot_") || strings.Count(stdout, "\n") != 1 || secret == tok.Secret {
		t.Fatalf("rotate-self: exit %d, stdout %q, stderr %s", code, stdout, stderr)
	}
	stdout, stderr, code = cliRun(t, s, secret, "token", "rotate-self", "-o", "json")
	var nt client.NewToken
	if code != exitOK || json.Unmarshal([]byte(stdout), &nt) != nil || nt.Token.ID != tok.Token.ID || !strings.HasPrefix(nt.Secret, "sot_") {
		t.Fatalf("rotate-self -o json: exit %d, stdout %s, stderr %s", code, stdout, stderr)
	}
	s.as(t, nt.Secret).do("GET", "/api/v1/check?org=acme&project=web", nil).want(t, http.StatusNoContent)
	if _, _, code := cliRun(t, s, tok.Secret, "token", "rotate-self", "--grace", "soon"); code != exitUsage {
		t.Fatalf("bad --grace: exit %d, want %d", code, exitUsage)
	}
}

// "sot webhook" creates (printing a generated secret once), lists, shows,
// updates and deletes webhooks and lists deliveries.
func TestCLIWebhooks(t *testing.T) {
	s := startServer(t, serverOpts{})
	s.createOrg(t, "acme", "team")
	rc := newReceiver(t, "receiver-secret-0123456789", 0)
	admin := s.AdminToken
	stdout, stderr, code := cliRun(t, s, admin, "webhook", "create", "acme", rc.URL, "--event", "token.created")
	if code != exitOK || !strings.HasPrefix(strings.TrimSpace(stdout), "whsec_") || !strings.Contains(stderr, "only this once") {
		t.Fatalf("create: exit %d, stdout %q, stderr %s", code, stdout, stderr)
	}
	stdout, _, code = cliRun(t, s, admin, "-o", "json", "webhook", "create", "acme", rc.URL, "--event", "token.created", "--event", "token.revoked", "--secret", rc.secret)
	var w client.Webhook
	if code != exitOK || json.Unmarshal([]byte(stdout), &w) != nil || len(w.Events) != 2 {
		t.Fatalf("create -o json: exit %d, %s", code, stdout)
	}
	id := fmt.Sprint(w.ID)
	if stdout, _, code := cliRun(t, s, admin, "webhook", "list", "acme"); code != exitOK || strings.Count(stdout, rc.URL) != 2 || strings.Contains(stdout, "whsec_") {
		t.Fatalf("list: exit %d\n%s", code, stdout)
	}
	if stdout, _, code := cliRun(t, s, admin, "webhook", "update", "acme", id, "--event", "token.revoked"); code != exitOK || !strings.Contains(stdout, "for token.revoked\n") {
		t.Fatalf("update: exit %d\n%s", code, stdout)
	}
	if _, _, code := cliRun(t, s, admin, "webhook", "update", "acme", id); code != exitUsage {
		t.Fatalf("update with nothing: exit %d", code)
	}
	if _, _, code := cliRun(t, s, admin, "webhook", "create", "acme", "ftp://x", "--event", "token.revoked"); code != exitError {
		t.Fatalf("create with an ftp URL: exit %d", code)
	}
	tok := s.createOrgToken(t, "acme", map[string]any{"scope": map[string]any{"all_projects": true}, "permissions": []string{"scan"}})
	s.admin(t).do("DELETE", fmt.Sprintf("/api/v1/orgs/acme/tokens/%d", tok.Token.ID), nil).want(t, http.StatusNoContent)
	s.sweep(t)
	stdout, _, code = cliRun(t, s, admin, "webhook", "deliveries", "acme", id)
	if code != exitOK || !strings.Contains(stdout, "token.revoked") || !strings.Contains(stdout, "delivered") {
		t.Fatalf("deliveries: exit %d\n%s", code, stdout)
	}
	if stdout, _, code := cliRun(t, s, admin, "webhook", "get", "acme", id); code != exitOK || !strings.Contains(stdout, rc.URL) {
		t.Fatalf("get: exit %d\n%s", code, stdout)
	}
	if _, _, code := cliRun(t, s, admin, "webhook", "delete", "acme", id); code != exitOK {
		t.Fatalf("delete: exit %d", code)
	}
	if _, _, code := cliRun(t, s, admin, "webhook", "get", "acme", id); code != exitError {
		t.Fatalf("get after delete: exit %d", code)
	}
}

// "sot token create --rotate-every" sets a rotation schedule.
func TestCLICreateWithRotation(t *testing.T) {
	s := startServer(t, serverOpts{})
	s.createOrg(t, "acme", "team")
	base := []string{"-o", "json", "token", "create", "acme", "--name", "deploy", "--all-projects", "--permission", "scan", "--expires", "90d"}
	if _, stderr, code := cliRun(t, s, s.AdminToken, append(base, "--rotate-every", "30d")...); code != exitError || !strings.Contains(stderr, "token.rotated") {
		t.Fatalf("a schedule with no token.rotated webhook: exit %d, stderr %s", code, stderr)
	}
	s.createWebhook(t, "acme", newReceiver(t, "receiver-secret-0123456789", 0), "token.rotated")
	stdout, stderr, code := cliRun(t, s, s.AdminToken, append(base, "--rotate-every", "30d", "--rotation-grace", "24h")...)
	var nt client.NewToken
	if code != exitOK || json.Unmarshal([]byte(stdout), &nt) != nil || nt.Token.Rotation == nil || nt.Token.Rotation.Every != "30d" || nt.Token.NextRotationAt == nil {
		t.Fatalf("create with rotation: exit %d, stdout %s, stderr %s", code, stdout, stderr)
	}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"grace without schedule", []string{"--rotation-grace", "24h"}},
		{"schedule in hours", []string{"--rotate-every", "12h"}},
		{"grace not a duration", []string{"--rotate-every", "30d", "--rotation-grace", "a day"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, stderr, code := cliRun(t, s, s.AdminToken, append(base, tc.args...)...); code != exitUsage {
				t.Fatalf("exit %d, want %d; stderr %s", code, exitUsage, stderr)
			}
		})
	}
}
