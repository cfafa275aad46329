package sot

import (
	"testing"
	"time"
)

func TestRotatedExpiry(t *testing.T) {
	created := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	now := created.Add(100 * Day)
	at := func(d time.Duration) *time.Time { x := created.Add(d); return &x }
	policy := TokenPolicy{MaxLifetimeDays: 365}
	for _, tc := range []struct {
		name   string
		tok    Token
		policy TokenPolicy
		want   time.Duration // after now; -1 for nil
	}{
		{"original lifetime from creation", Token{CreatedAt: created, ExpiresAt: at(90 * Day)}, policy, 90 * Day},
		{"lifetime from the last rotation", Token{CreatedAt: created, RotatedAt: at(50 * Day), ExpiresAt: at(80 * Day)}, policy, 30 * Day},
		{"capped by a policy tightened since", Token{CreatedAt: created, ExpiresAt: at(365 * Day)}, TokenPolicy{MaxLifetimeDays: 30}, 30 * Day},
		{"non-expiring stays so when allowed", Token{CreatedAt: created}, TokenPolicy{MaxLifetimeDays: 365, AllowNonExpiring: true}, -1},
		{"non-expiring gets the maximum when no longer allowed", Token{CreatedAt: created}, policy, 365 * Day},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.tok.RotatedExpiry(now, tc.policy)
			switch {
			case tc.want < 0 && got != nil:
				t.Fatalf("expiry %v, want none", got)
			case tc.want >= 0 && (got == nil || got.Sub(now) != tc.want):
				t.Fatalf("expiry %v, want now + %v", got, tc.want)
			}
		})
	}
}

func TestParseRotation(t *testing.T) {
	policy := TokenPolicy{MaxLifetimeDays: 90}
	for _, tc := range []struct {
		name, every, grace string
		code               string // "" when valid
	}{
		{"thirty days with a day of grace", "30d", "24h", ""},
		{"no grace", "7d", "", ""},
		{"beyond the policy", "120d", "", EPOLICY},
		{"hours are not a schedule", "12h", "", EINVALID},
		{"grace not shorter than every", "1d", "24h", EINVALID},
		{"grace beyond 30 days", "90d", "800h", EINVALID},
		{"bad grace", "30d", "tomorrow", EINVALID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseRotation("rotation", tc.every, tc.grace, policy)
			if got := ErrorCode(err); err != nil && got != tc.code || err == nil && tc.code != "" {
				t.Fatalf("ParseRotation = %+v, %v; want code %q", r, err, tc.code)
			}
			if err == nil && r.EveryString() != tc.every {
				t.Fatalf("EveryString = %q, want %q", r.EveryString(), tc.every)
			}
		})
	}
}

func TestValidateWebhook(t *testing.T) {
	secret := NewWebhookSecret()
	for _, tc := range []struct {
		name string
		w    Webhook
		ok   bool
	}{
		{"https", Webhook{URL: "https://hooks.example.com/sot", Events: []string{EventTokenRotated}, Secret: secret}, true},
		{"internal http host", Webhook{URL: "http://10.0.0.5:8080/hook", Events: WebhookEvents, Secret: secret}, true},
		{"ftp", Webhook{URL: "ftp://example.com/x", Events: []string{EventTokenRotated}, Secret: secret}, false},
		{"no host", Webhook{URL: "https:///x", Events: []string{EventTokenRotated}, Secret: secret}, false},
		{"credentials in the URL", Webhook{URL: "https://u:p@example.com/x", Events: []string{EventTokenRotated}, Secret: secret}, false},
		{"unknown event", Webhook{URL: "https://example.com/x", Events: []string{"token.exploded"}, Secret: secret}, false},
		{"no events", Webhook{URL: "https://example.com/x", Secret: secret}, false},
		{"short secret", Webhook{URL: "https://example.com/x", Events: []string{EventTokenRotated}, Secret: "abc"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := ValidateWebhook(&tc.w); (err == nil) != tc.ok {
				t.Fatalf("ValidateWebhook = %v, want ok %v", err, tc.ok)
			}
		})
	}
}

// FuzzParseRotation checks that a schedule is either refused or within
// the policy, with a grace period shorter than its interval.
func FuzzParseRotation(f *testing.F) {
	f.Add("30d", "24h")
	f.Add("1y", "")
	f.Add("0d", "-1h")
	policy := TokenPolicy{MaxLifetimeDays: 365}
	f.Fuzz(func(t *testing.T, every, grace string) {
		r, err := ParseRotation("rotation", every, grace, policy)
		if err != nil {
			return
		}
		if r.Every <= 0 || r.Every > 365*Day || r.GracePeriod < 0 || r.GracePeriod >= r.Every {
			t.Fatalf("ParseRotation(%q, %q) = %+v", every, grace, r)
		}
	})
}
