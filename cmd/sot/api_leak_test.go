package main

// Leak response (issue 6): GitHub's secret-scanning partner alerts, the
// public revoke endpoint, and network allowlists.

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sot-dev/sot"
)

// signGitHub signs body as GitHub does: base64 of the ASN.1 ECDSA
// P-256 signature of its SHA-256.
func signGitHub(t *testing.T, key *ecdsa.PrivateKey, body []byte) string {
	t.Helper()
	sum := sha256.Sum256(body)
	sig, err := ecdsa.SignASN1(rand.Reader, key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

// A signed alert revokes the live token it reports (true_positive),
// labels unknown strings false_positive, audits token.leaked with the URL
// and source, and sends token.leaked; a tampered body, an unknown key or
// a missing signature get 401 and revoke nothing.
func TestAPIGitHubSecretScanning(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	keys := map[string]*ecdsa.PublicKey{"test-key-1": &key.PublicKey}
	forEachDB(t, serverOpts{GitHubKeys: keys}, func(t *testing.T, s *testServer) {
		s.createOrg(t, "acme", "team")
		s.createProjects(t, "acme", "web")
		rc := newReceiver(t, "receiver-secret-0123456789", 0)
		s.createWebhook(t, "acme", rc, "token.leaked")
		tok := s.createOrgToken(t, "acme", map[string]any{"scope": map[string]any{"all_projects": true}, "permissions": []string{"scan"}})
		unknown := sot.NewSecret(sot.TokenKindOrg)
		body, _ := json.Marshal([]map[string]string{
			{"token": tok.Secret, "type": "sot_org_token", "url": "https://github.com/acme/app/blob/abc/ci.yml", "source": "content"},
			{"token": unknown, "type": "sot_org_token", "url": "https://gist.github.com/x", "source": "gist"},
			{"token": "not-a-secret", "type": "sot_org_token", "url": "", "source": "commit"},
		})
		post := func(keyID, sig string, b []byte) *apiResponse {
			c := s.as(t, "")
			c.header = http.Header{"Github-Public-Key-Identifier": {keyID}, "Github-Public-Key-Signature": {sig}}
			return c.do("POST", "/api/v1/secret-scanning/github", string(b))
		}
		tampered := []byte(strings.Replace(string(body), "ci.yml", "cd.yml", 1))
		for _, tc := range []struct {
			name       string
			keyID, sig string
			body       []byte
		}{
			{"tampered body", "test-key-1", signGitHub(t, key, body), tampered},
			{"unknown key id", "test-key-2", signGitHub(t, key, body), body},
			{"signed by another key", "test-key-1", signGitHub(t, other, body), body},
			{"no signature", "test-key-1", "", body},
			{"signature not base64", "test-key-1", "%%%", body},
		} {
			t.Run(tc.name, func(t *testing.T) {
				post(tc.keyID, tc.sig, tc.body).want(t, http.StatusUnauthorized)
			})
		}
		s.as(t, tok.Secret).do("GET", "/api/v1/check?org=acme&project=web", nil).want(t, http.StatusNoContent)

		var labels []struct {
			TokenRaw  string `json:"token_raw"`
			TokenType string `json:"token_type"`
			Label     string `json:"label"`
		}
		post("test-key-1", signGitHub(t, key, body), body).want(t, http.StatusOK).decode(t, &labels)
		want := []string{"true_positive", "false_positive", "false_positive"}
		if len(labels) != 3 || labels[0].TokenRaw != tok.Secret || labels[0].TokenType != "sot_org_token" {
			t.Fatalf("labels = %+v", labels)
		}
		for i, l := range labels {
			if l.Label != want[i] {
				t.Fatalf("label %d = %q, want %q", i, l.Label, want[i])
			}
		}
		wantDetail(t, s.as(t, tok.Secret).do("GET", "/api/v1/me", nil), http.StatusUnauthorized, "token revoked")

		var audit listBody[auditBody]
		s.admin(t).do("GET", "/api/v1/orgs/acme/audit?action=token.leaked", nil).want(t, http.StatusOK).decode(t, &audit)
		if len(audit.Items) != 1 || audit.Items[0].Details["url"] != "https://github.com/acme/app/blob/abc/ci.yml" ||
			audit.Items[0].Details["source"] != "github:content" || audit.Items[0].Details["revoked"] != true {
			t.Fatalf("token.leaked audit = %+v", audit.Items)
		}
		s.sweep(t)
		if evs := rc.events(); len(evs) != 1 || evs[0].Event != "token.leaked" || evs[0].Body["secret"] != nil {
			t.Fatalf("token.leaked deliveries = %+v", evs)
		}
	})
}

// Without configured keys every alert is refused.
func TestAPIGitHubSecretScanningNotConfigured(t *testing.T) {
	s := startServer(t, serverOpts{})
	c := s.as(t, "")
	c.header = http.Header{"Github-Public-Key-Identifier": {"k"}, "Github-Public-Key-Signature": {"MEUCIQ=="}}
	c.do("POST", "/api/v1/secret-scanning/github", "[]").want(t, http.StatusUnauthorized)
}

// Anyone holding a leaked secret can revoke it with no other credential:
// only valid, live secrets count; the call is audited as token.leaked,
// bounded to 100 secrets, and rate limited per client address.
func TestAPIPublicRevoke(t *testing.T) {
	clock := &testClock{}
	forEachDB(t, serverOpts{Clock: clock}, func(t *testing.T, s *testServer) {
		s.createOrg(t, "acme", "team")
		s.createProjects(t, "acme", "web")
		scope := map[string]any{"all_projects": true}
		leaked := s.createOrgToken(t, "acme", map[string]any{"scope": scope, "permissions": []string{"scan"}})
		kept := s.createOrgToken(t, "acme", map[string]any{"scope": scope, "permissions": []string{"scan"}})
		anon := s.as(t, "")
		var out struct {
			Revoked int `json:"revoked"`
		}
		anon.do("POST", "/api/v1/tokens/revoke", map[string]any{"secrets": []string{leaked.Secret, "garbage", sot.NewSecret(sot.TokenKindOrg), leaked.Secret}}).
			want(t, http.StatusOK).decode(t, &out)
		if out.Revoked != 1 {
			t.Fatalf("revoked = %d, want 1", out.Revoked)
		}
		wantDetail(t, s.as(t, leaked.Secret).do("GET", "/api/v1/me", nil), http.StatusUnauthorized, "token revoked")
		s.as(t, kept.Secret).do("GET", "/api/v1/check?org=acme&project=web", nil).want(t, http.StatusNoContent)
		anon.do("POST", "/api/v1/tokens/revoke", map[string]any{"secrets": []string{leaked.Secret}}).want(t, http.StatusOK).decode(t, &out)
		if out.Revoked != 0 {
			t.Fatalf("revoking again: revoked = %d, want 0", out.Revoked)
		}
		var audit listBody[auditBody]
		s.admin(t).do("GET", "/api/v1/orgs/acme/audit?action=token.leaked", nil).want(t, http.StatusOK).decode(t, &audit)
		if len(audit.Items) == 0 || audit.Items[len(audit.Items)-1].IP != "127.0.0.1" || audit.Items[len(audit.Items)-1].Details["source"] != "public" {
			t.Fatalf("token.leaked audit = %+v", audit.Items)
		}
		many := make([]string, 101)
		for i := range many {
			many[i] = sot.NewSecret(sot.TokenKindOrg)
		}
		anon.do("POST", "/api/v1/tokens/revoke", map[string]any{"secrets": many}).want(t, http.StatusBadRequest)
		anon.do("POST", "/api/v1/tokens/revoke", map[string]any{"secrets": []string{}}).want(t, http.StatusBadRequest)

		var limited *apiResponse
		for range 20 {
			r := anon.do("POST", "/api/v1/tokens/revoke", map[string]any{"secrets": []string{"garbage"}})
			if r.Status == http.StatusTooManyRequests {
				limited = r
				break
			}
			r.want(t, http.StatusOK)
		}
		if limited == nil {
			t.Fatal("no 429 after 20 revoke calls within a minute")
		}
		if limited.Header.Get("Retry-After") == "" || limited.problem(t).Type != "/problems/rate-limited" {
			t.Fatalf("429 without Retry-After or problem: %v %s", limited.Header, limited.Body)
		}
		clock.Advance(61 * time.Second)
		anon.do("POST", "/api/v1/tokens/revoke", map[string]any{"secrets": []string{"garbage"}}).want(t, http.StatusOK)
	})
}

// allowed_cidrs are enforced on every authentication, for IPv4 and IPv6,
// with the client address from a trusted proxy's X-Forwarded-For; a
// refusal is 403 with the reason and audited; an invalid CIDR is 400.
func TestAPIAllowedCIDRsIPv6(t *testing.T) {
	forEachDB(t, serverOpts{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}}, func(t *testing.T, s *testServer) {
		s.createOrg(t, "acme", "team")
		s.createProjects(t, "acme", "web")
		a := s.admin(t)
		body := map[string]any{"scope": map[string]any{"all_projects": true}, "permissions": []string{"scan", "browse"},
			"allowed_cidrs": []string{"2001:db8:1::/48", "10.0.0.0/8"}}
		tok := s.createOrgToken(t, "acme", body)
		for _, tc := range []struct {
			name   string
			xff    string
			status int
		}{
			{"IPv6 inside", "2001:db8:1::42", http.StatusNoContent},
			{"IPv6 outside", "2001:db8:2::42", http.StatusForbidden},
			{"IPv4 inside", "10.20.30.40", http.StatusNoContent},
			{"IPv4-mapped IPv6 inside", "::ffff:10.1.2.3", http.StatusNoContent},
			{"IPv4 outside", "192.0.2.1", http.StatusForbidden},
			{"the proxy itself", "", http.StatusForbidden},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c := s.as(t, tok.Secret)
				if tc.xff != "" {
					c.header = http.Header{"X-Forwarded-For": {tc.xff}}
				}
				c.do("GET", "/api/v1/check?org=acme&project=web", nil).want(t, tc.status)
				r := c.do("GET", "/api/v1/orgs/acme/projects", nil)
				if tc.status == http.StatusForbidden {
					if p := r.want(t, http.StatusForbidden).problem(t); !strings.Contains(p.Detail, "network") && !strings.Contains(p.Detail, "address") {
						t.Fatalf("detail %q does not give the reason", p.Detail)
					}
				} else {
					r.want(t, http.StatusOK)
				}
			})
		}
		var audit listBody[auditBody]
		deadline := time.Now().Add(2 * time.Second)
		for {
			a.do("GET", "/api/v1/orgs/acme/audit?action=auth.failed", nil).want(t, http.StatusOK).decode(t, &audit)
			if len(audit.Items) > 0 || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond) // the refusal is audited off the request path
		}
		if len(audit.Items) == 0 || audit.Items[0].Details["reason"] != "ip_not_allowed" {
			t.Fatalf("auth.failed audit = %+v", audit.Items)
		}
		for _, bad := range [][]string{{"2001:db8::/129"}, {"10.0.0.0/33"}, {"example.com"}} {
			b := map[string]any{"name": "x", "scope": map[string]any{"all_projects": true}, "permissions": []string{"scan"}, "expires_in": "7d", "allowed_cidrs": bad}
			a.do("POST", "/api/v1/orgs/acme/tokens", b).want(t, http.StatusBadRequest)
			a.do("PATCH", fmt.Sprintf("/api/v1/orgs/acme/tokens/%d", tok.Token.ID), map[string]any{"allowed_cidrs": bad}).want(t, http.StatusBadRequest)
		}
		// PATCH takes effect at once.
		a.do("PATCH", fmt.Sprintf("/api/v1/orgs/acme/tokens/%d", tok.Token.ID), map[string]any{"allowed_cidrs": []string{"2001:db8:2::/48"}}).want(t, http.StatusOK)
		c := s.as(t, tok.Secret)
		c.header = http.Header{"X-Forwarded-For": {"2001:db8:2::42"}}
		c.do("GET", "/api/v1/check?org=acme&project=web", nil).want(t, http.StatusNoContent)
	})
}

// A GitHub key file that is missing or holds no usable key, and a
// lifecycle interval under a second, are usage errors before anything
// is opened.
func TestServeLifecycleFlags(t *testing.T) {
	dir := t.TempDir()
	rsaPEM := filepath.Join(dir, "keys.pem")
	if err := os.WriteFile(rsaPEM, []byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	db := "sqlite:" + filepath.Join(dir, "sot.db")
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"missing key file", []string{"--github-secret-scanning-keys", filepath.Join(dir, "nope.json")}},
		{"key file without a usable key", []string{"--github-secret-scanning-keys", rsaPEM}},
		{"lifecycle interval too short", []string{"--lifecycle-interval", "10ms"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			args := append([]string{"serve", "--addr", "127.0.0.1:0", "--db", db}, tc.args...)
			if code := run(args, &stdio{in: strings.NewReader(""), out: &out, err: &errOut}); code != exitUsage {
				t.Fatalf("exit status %d, want %d; stderr:\n%s", code, exitUsage, errOut.String())
			}
		})
	}
	if _, err := os.Stat(strings.TrimPrefix(db, "sqlite:")); err == nil {
		t.Fatal("a bad command line created the database")
	}
}
