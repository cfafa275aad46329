package main

import (
	"io"
	"net/http"
	"net/netip"
	"regexp"
	"strings"
	"testing"
)

// The failed-authentication limit counts per client address: behind a
// trusted proxy the address it forwards, so one client's failures do not
// throttle another's traffic; from an untrusted peer X-Forwarded-For is
// ignored, so a client cannot escape the limit by forging it. The limit
// shows in the metrics.
func TestAPIFailedAuthenticationPerClient(t *testing.T) {
	unknown := "sot_" + strings.Repeat("A", 36)
	for _, tc := range []struct {
		name    string
		proxies []netip.Prefix
		// otherLimited: whether the second client, with a different
		// X-Forwarded-For, is throttled by the first one's failures.
		otherLimited bool
	}{
		{"behind a trusted proxy", []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, false},
		{"no trusted proxy", nil, true},
		{"another proxy trusted", []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, serverOpts{AuthFailureLimit: 3, TrustedProxies: tc.proxies})
			s.createOrg(t, "acme", "team")
			s.createProjects(t, "acme", "web")
			tok := s.createOrgToken(t, "acme", map[string]any{"scope": map[string]any{"all_projects": true}, "permissions": []string{"scan"}})
			// A client that forges a first hop: the proxy appends the
			// address it saw, and that is what counts.
			attacker := s.as(t, unknown)
			attacker.header = http.Header{"X-Forwarded-For": {"192.0.2.99, 192.0.2.1"}}
			for range 3 {
				attacker.do("GET", "/api/v1/check?org=acme&project=web", nil).want(t, http.StatusUnauthorized)
			}
			attacker.do("GET", "/api/v1/me", nil).want(t, http.StatusTooManyRequests)
			// The attacker's good token is refused too: its address is
			// throttled, whatever it sends.
			good := s.as(t, tok.Secret)
			good.header = http.Header{"X-Forwarded-For": {"192.0.2.1"}}
			good.do("GET", "/api/v1/check?org=acme&project=web", nil).want(t, http.StatusTooManyRequests)

			other := s.as(t, tok.Secret)
			other.header = http.Header{"X-Forwarded-For": {"192.0.2.2"}}
			want := http.StatusNoContent
			if tc.otherLimited {
				want = http.StatusTooManyRequests
			}
			other.do("GET", "/api/v1/check?org=acme&project=web", nil).want(t, want)
			// The first client's own forged first hop is not another client.
			forged := s.as(t, tok.Secret)
			forged.header = http.Header{"X-Forwarded-For": {"192.0.2.2, 192.0.2.1"}}
			forged.do("GET", "/api/v1/check?org=acme&project=web", nil).want(t, http.StatusTooManyRequests)

			resp, err := http.Get(s.URL + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for _, re := range []string{
				`(?m)^sot_authentications_total\{outcome="rate_limited"\} [1-9]`,
				`(?m)^sot_authentications_total\{outcome="(unknown|malformed)"\} 3$`,
				`(?m)^sot_auth_failure_clients 1$`,
			} {
				if !regexp.MustCompile(re).Match(body) {
					t.Errorf("metrics lack %s", re)
				}
			}
		})
	}
}
