package web

import (
	"net/http"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/sot-dev/sot"
)

func TestSafeNext(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"path", "/orgs/acme/tokens", "/orgs/acme/tokens"},
		{"path with query", "/orgs/acme/tokens?state=all", "/orgs/acme/tokens?state=all"},
		{"empty", "", ""},
		{"absolute URL", "https://evil.example/", ""},
		{"scheme-relative", "//evil.example/", ""},
		{"backslash trick", "/\\evil.example/", ""},
		{"relative", "orgs/acme", ""},
		{"header injection", "/a\r\nSet-Cookie: x=y", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := safeNext(tt.in); got != tt.want {
				t.Fatalf("safeNext(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestExpiryOptions(t *testing.T) {
	tests := []struct {
		name     string
		policy   sot.TokenPolicy
		chosen   string
		checked  string
		disabled []string
	}{
		{"default policy", sot.DefaultTokenPolicy(), "", "90d", []string{"never"}},
		{"non-expiring allowed", sot.TokenPolicy{MaxLifetimeDays: 365, AllowNonExpiring: true}, "", "90d", nil},
		{"60 days at most", sot.TokenPolicy{MaxLifetimeDays: 60}, "", "30d", []string{"90d", "1y", "never"}},
		{"3 days at most", sot.TokenPolicy{MaxLifetimeDays: 3}, "", "custom", []string{"7d", "30d", "90d", "1y", "never"}},
		{"chosen kept", sot.DefaultTokenPolicy(), "7d", "7d", []string{"never"}},
		{"disabled choice not checked", sot.DefaultTokenPolicy(), "never", "", []string{"never"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var checked string
			var disabled []string
			for _, o := range expiryOptions(tt.policy, tt.chosen) {
				if o.Checked {
					if checked != "" {
						t.Fatalf("both %s and %s checked", checked, o.Value)
					}
					checked = o.Value
				}
				if o.Disabled != "" {
					disabled = append(disabled, o.Value)
				}
			}
			if checked != tt.checked {
				t.Errorf("checked = %q, want %q", checked, tt.checked)
			}
			if !slices.Equal(disabled, tt.disabled) {
				t.Errorf("disabled = %v, want %v", disabled, tt.disabled)
			}
		})
	}
}

func TestParseExpiry(t *testing.T) {
	tests := []struct {
		name, choice, date string
		want               sot.Expiry
		wantErr            bool
	}{
		{"preset", "30d", "", sot.Expiry{In: "30d"}, false},
		{"year", "1y", "", sot.Expiry{In: "1y"}, false},
		{"never", "never", "", sot.Expiry{Never: true}, false},
		{"custom date is the end of the day", "custom", "2027-03-31", sot.Expiry{At: ptr(time.Date(2027, 3, 31, 23, 59, 59, 0, time.UTC))}, false},
		{"custom without date", "custom", "", sot.Expiry{}, true},
		{"custom bad date", "custom", "31/03/2027", sot.Expiry{}, true},
		{"unknown preset", "5d", "", sot.Expiry{}, true},
		{"nothing", "", "", sot.Expiry{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseExpiry(tt.choice, tt.date)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil {
				if sot.ErrorCode(err) != sot.EINVALID {
					t.Fatalf("code = %s, want invalid", sot.ErrorCode(err))
				}
				return
			}
			if got.In != tt.want.In || got.Never != tt.want.Never || (got.At == nil) != (tt.want.At == nil) ||
				got.At != nil && !got.At.Equal(*tt.want.At) {
				t.Fatalf("parseExpiry = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestPatternErrorsPointAtLines(t *testing.T) {
	patterns, lines := patternLines("team-a-.*\n\n  svc-(  \nok\n[")
	if want := []string{"team-a-.*", "svc-(", "ok", "["}; !slices.Equal(patterns, want) {
		t.Fatalf("patterns = %q, want %q", patterns, want)
	}
	err := sot.Scope{Patterns: patterns}.Validate("scope")
	got := patternErrors(err, lines)
	want := []lineError{{3, "invalid regular expression: missing closing )"}, {5, "invalid regular expression: missing closing ]"}}
	if !slices.Equal(got, want) {
		t.Fatalf("patternErrors = %v, want %v", got, want)
	}
}

func TestSpan(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{30 * time.Second, "less than a minute"},
		{time.Minute, "1 minute"},
		{59 * time.Minute, "59 minutes"},
		{3 * time.Hour, "3 hours"},
		{47 * time.Hour, "47 hours"},
		{90*sot.Day - time.Minute, "90 days"},
		{364 * sot.Day, "364 days"},
		{365*sot.Day - time.Hour, "1 year"},
		{5 * sot.Day, "5 days"},
		{400 * sot.Day, "1 year"},
		{800 * sot.Day, "2 years"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := span(tt.d); got != tt.want {
				t.Fatalf("span(%v) = %q, want %q", tt.d, got, tt.want)
			}
		})
	}
}

func TestPagesParse(t *testing.T) {
	pages, err := parsePages()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"login", "status", "home", "confirm", "overview", "projects", "members",
		"tokens", "token_new", "token_created", "token", "audit", "settings"} {
		if pages[name] == nil {
			t.Errorf("no page %q", name)
		}
	}
}

func TestClientIP(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	tests := []struct {
		name    string
		remote  string
		xff     []string
		trusted []netip.Prefix
		want    string
	}{
		{"direct", "203.0.113.7:5555", nil, proxies, "203.0.113.7"},
		{"header from an untrusted peer is ignored", "203.0.113.7:5555", []string{"198.51.100.1"}, proxies, "203.0.113.7"},
		{"no proxies configured", "10.0.0.2:5555", []string{"198.51.100.1"}, nil, "10.0.0.2"},
		{"through a proxy", "10.0.0.2:5555", []string{"198.51.100.1"}, proxies, "198.51.100.1"},
		{"forged hops before the client are skipped", "10.0.0.2:5555", []string{"1.1.1.1, 198.51.100.1"}, proxies, "198.51.100.1"},
		{"two proxies", "10.0.0.2:5555", []string{"198.51.100.1, 10.0.0.3"}, proxies, "198.51.100.1"},
		{"several header lines", "10.0.0.2:5555", []string{"1.1.1.1", "198.51.100.1"}, proxies, "198.51.100.1"},
		{"garbage hop", "10.0.0.2:5555", []string{"nonsense"}, proxies, "10.0.0.2"},
		{"IPv4-mapped IPv6 peer", "[::ffff:203.0.113.7]:5555", nil, proxies, "203.0.113.7"},
		{"IPv6 peer", "[2001:db8::1]:5555", nil, proxies, "2001:db8::1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &http.Request{RemoteAddr: tt.remote, Header: http.Header{}}
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := clientIP(r, tt.trusted); got != tt.want {
				t.Fatalf("clientIP = %q, want %q", got, tt.want)
			}
		})
	}
}
