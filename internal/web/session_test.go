package web

import (
	"strings"
	"testing"
	"time"
)

func testKeys(t *testing.T, seed byte) *keys {
	t.Helper()
	master := make([]byte, 32)
	for i := range master {
		master[i] = seed
	}
	k, err := deriveKeys(master)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSession(t *testing.T) {
	now := time.Date(2026, 11, 28, 8, 0, 0, 0, time.UTC)
	k := testKeys(t, 1)
	valid := k.newSession(42, now.Add(time.Hour))
	tests := []struct {
		name   string
		value  string
		at     time.Time
		wantID int64 // 0: refused
	}{
		{"valid", valid, now, 42},
		{"expired", valid, now.Add(time.Hour), 0},
		{"other key", testKeys(t, 2).newSession(42, now.Add(time.Hour)), now, 0},
		{"user changed", withPart(valid, 1, "1"), now, 0},
		{"expiry extended", withPart(valid, 2, "9999999999"), now, 0},
		{"mac cut", valid[:len(valid)-2], now, 0},
		{"no mac", "v1.42.9999999999", now, 0},
		{"empty", "", now, 0},
		{"garbage", "a.b.c.d", now, 0},
		{"other version", signed(k, "v2.42.9999999999"), now, 0},
		{"zero user", signed(k, "v1.0.9999999999"), now, 0},
		{"bad expiry", signed(k, "v1.42.soon"), now, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := k.parseSession(tt.value, tt.at)
			if tt.wantID == 0 {
				if err == nil {
					t.Fatalf("parseSession(%q) = user %d, want refusal", tt.value, s.userID)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseSession: %v", err)
			}
			if s.userID != tt.wantID {
				t.Fatalf("user = %d, want %d", s.userID, tt.wantID)
			}
		})
	}
}

// withPart replaces the i-th dot-separated part of a cookie value,
// keeping its MAC.
func withPart(value string, i int, part string) string {
	parts := strings.Split(value, ".")
	parts[i] = part
	return strings.Join(parts, ".")
}

// signed signs an arbitrary payload with the session key, to test what
// the parser does with well-signed but malformed values.
func signed(k *keys, payload string) string {
	return payload + "." + b64.EncodeToString(k.mac(k.session, payload))
}

func TestCSRF(t *testing.T) {
	now := time.Now()
	k := testKeys(t, 1)
	s1, err := k.parseSession(k.newSession(1, now.Add(time.Hour)), now)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := k.parseSession(k.newSession(1, now.Add(2*time.Hour)), now)
	if err != nil {
		t.Fatal(err)
	}
	tok := k.csrfToken(s1)
	tests := []struct {
		name  string
		s     *session
		token string
		ok    bool
	}{
		{"own session", s1, tok, true},
		{"other session of the same user", s2, tok, false},
		{"empty", s1, "", false},
		{"truncated", s1, tok[:len(tok)-1], false},
		{"not base64", s1, "!!!", false},
		{"session MAC instead", s1, s1.value[strings.LastIndexByte(s1.value, '.')+1:], false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := k.checkCSRF(tt.s, tt.token); got != tt.ok {
				t.Fatalf("checkCSRF = %v, want %v", got, tt.ok)
			}
		})
	}
}

func TestFlash(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	k := testKeys(t, 1)
	const path = "/orgs/acme/tokens/7/created"
	sealed, err := k.sealFlash(flash{UserID: 3, TokenID: 7, Secret: "sot_x", Expires: now.Add(time.Minute).Unix()}, path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, "sot_x") {
		t.Fatal("the sealed flash shows the secret")
	}
	tests := []struct {
		name    string
		k       *keys
		value   string
		path    string
		user    int64
		token   int64
		at      time.Time
		wantErr bool
	}{
		{"opens", k, sealed, path, 3, 7, now, false},
		{"other user", k, sealed, path, 4, 7, now, true},
		{"other token", k, sealed, path, 3, 8, now, true},
		{"other page", k, sealed, "/orgs/acme/tokens/8/created", 3, 7, now, true},
		{"too late", k, sealed, path, 3, 7, now.Add(time.Minute), true},
		{"other key", testKeys(t, 2), sealed, path, 3, 7, now, true},
		{"tampered", k, sealed[:len(sealed)-3] + "AAA", path, 3, 7, now, true},
		{"short", k, "AAAA", path, 3, 7, now, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := tt.k.openFlash(tt.value, tt.path, tt.user, tt.token, tt.at)
			if tt.wantErr {
				if err == nil {
					t.Fatal("openFlash succeeded, want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if f.Secret != "sot_x" {
				t.Fatalf("secret = %q", f.Secret)
			}
		})
	}
}

func TestThrottle(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	tests := []struct {
		name  string
		fails []time.Duration // failures at t0+d, for key "a"
		reset bool
		at    time.Duration
		wait  time.Duration
	}{
		{"no failure", nil, false, 0, 0},
		{"below the limit", []time.Duration{0, time.Second}, false, 3 * time.Second, 0},
		{"at the limit", []time.Duration{0, time.Second, 2 * time.Second}, false, 3 * time.Second, 15*time.Minute - 3*time.Second},
		{"window over", []time.Duration{0, time.Second, 2 * time.Second}, false, 15 * time.Minute, 0},
		{"reset by a success", []time.Duration{0, time.Second, 2 * time.Second}, true, 3 * time.Second, 0},
		{"a new window after the old one", []time.Duration{0, 15 * time.Minute, 15*time.Minute + 1}, false, 15*time.Minute + 2, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			th := newThrottle(3, 15*time.Minute, 100)
			for _, d := range tt.fails {
				th.fail("a", t0.Add(d))
			}
			if tt.reset {
				th.reset("a")
			}
			if got := th.wait("a", t0.Add(tt.at)); got != tt.wait {
				t.Fatalf("wait = %v, want %v", got, tt.wait)
			}
			if got := th.wait("b", t0.Add(tt.at)); got != 0 {
				t.Fatalf("another key waits %v", got)
			}
		})
	}
}

func TestThrottleBounded(t *testing.T) {
	t0 := time.Unix(1_800_000_000, 0)
	th := newThrottle(1, time.Hour, 10)
	th.fail("victim", t0)
	for i := range 100 {
		th.fail(strings.Repeat("x", i+1), t0.Add(time.Duration(i+1)*time.Second))
	}
	if n := len(th.fails); n > 10 {
		t.Fatalf("%d entries remembered, want at most 10", n)
	}
	// The oldest entries make room; the newest are still throttled.
	if th.wait(strings.Repeat("x", 100), t0.Add(101*time.Second)) == 0 {
		t.Fatal("the newest key is not throttled")
	}
}

func TestThrottleKey(t *testing.T) {
	if throttleKey("1.2.3.4", "Admin") != throttleKey("1.2.3.4", "admin") {
		t.Fatal("login case changes the throttle key")
	}
	if throttleKey("1.2.3.4", "a") == throttleKey("1.2.3.5", "a") {
		t.Fatal("addresses share a throttle key")
	}
}
