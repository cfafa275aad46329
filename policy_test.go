package sot

import (
	"strings"
	"testing"
	"time"
)

func TestParseLifetime(t *testing.T) {
	tests := []struct {
		in      string
		want    int
		wantErr bool
	}{
		{"7d", 7, false}, {"30d", 30, false}, {"90d", 90, false}, {"1y", 365, false}, {"400d", 400, false},
		{"2y", 730, false},
		{"", 0, true}, {"d", 0, true}, {"0d", 0, true}, {"-1d", 0, true}, {"+5d", 0, true}, {"07d", 0, true},
		{"5w", 0, true}, {"1.5d", 0, true}, {"99999999d", 0, true}, {"101y", 0, true}, {"30", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseLifetime(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("ParseLifetime(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestExpiryResolve(t *testing.T) {
	now := time.Date(2026, 11, 28, 6, 0, 0, 0, time.UTC)
	def := DefaultTokenPolicy()
	open := TokenPolicy{MaxLifetimeDays: 365, AllowNonExpiring: true}
	at := func(d time.Duration) *time.Time { v := now.Add(d); return &v }
	tests := []struct {
		name     string
		expiry   Expiry
		policy   TokenPolicy
		want     *time.Time
		wantCode string
		wantMsg  string
	}{
		{"1y within default", Expiry{In: "1y"}, def, at(365 * Day), "", ""},
		{"30d", Expiry{In: "30d"}, def, at(30 * Day), "", ""},
		{"400d beyond policy", Expiry{In: "400d"}, def, nil, EPOLICY, "maximum lifetime is 365 days"},
		{"never refused by default", Expiry{Never: true}, def, nil, EPOLICY, "does not allow non-expiring"},
		{"never allowed", Expiry{Never: true}, open, nil, "", ""},
		{"date a year ahead", Expiry{At: at(365*Day + 3*time.Hour)}, def, at(365*Day + 3*time.Hour), "", ""},
		{"date too far", Expiry{At: at(367 * Day)}, def, nil, EPOLICY, "maximum lifetime"},
		{"date in the past", Expiry{At: at(-time.Hour)}, def, nil, EINVALID, "future"},
		{"none given", Expiry{}, def, nil, EINVALID, "exactly one"},
		{"two given", Expiry{In: "7d", Never: true}, open, nil, EINVALID, "exactly one"},
		{"bad preset", Expiry{In: "7 days"}, def, nil, EINVALID, "invalid lifetime"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.expiry.Resolve(now, tt.policy)
			if tt.wantCode != "" {
				if ErrorCode(err) != tt.wantCode || !strings.Contains(ErrorMessage(err), tt.wantMsg) {
					t.Fatalf("Resolve = %v, want %s containing %q", err, tt.wantCode, tt.wantMsg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (got == nil) != (tt.want == nil) || got != nil && !got.Equal(*tt.want) {
				t.Fatalf("Resolve = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestTokenPolicyValidate(t *testing.T) {
	if err := DefaultTokenPolicy().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []TokenPolicy{{MaxLifetimeDays: 0}, {MaxLifetimeDays: 5000}, {MaxLifetimeDays: 30, IdleWarningDays: -1}} {
		if ErrorCode(p.Validate()) != EINVALID {
			t.Errorf("Validate(%+v) accepted", p)
		}
	}
}

func FuzzParseLifetime(f *testing.F) {
	for _, s := range []string{"7d", "1y", "0d", "-1d", "99999999999d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := ParseLifetime(s)
		if err == nil && (n < 1 || n > 100*365) {
			t.Fatalf("ParseLifetime(%q) = %d", s, n)
		}
	})
}
