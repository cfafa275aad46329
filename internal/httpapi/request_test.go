package httpapi

import (
	"encoding/base64"
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestCredential(t *testing.T) {
	basic := func(s string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, tc := range []struct {
		name, header, want string
		ok                 bool
	}{
		{"bearer", "Bearer sot_abc", "sot_abc", true},
		{"bearer lower case", "bearer sot_abc", "sot_abc", true},
		{"bearer extra spaces", "Bearer   sot_abc ", "sot_abc", true},
		{"bearer empty", "Bearer ", "", false},
		{"basic user only", basic("sot_abc:"), "sot_abc", true},
		{"basic without colon", basic("sot_abc"), "sot_abc", true},
		{"basic with password", basic("sot_abc:secret"), "", false},
		{"basic empty user", basic(":sot_abc"), "", false},
		{"basic not base64", "Basic !!!", "", false},
		{"no scheme", "sot_abc", "", false},
		{"other scheme", "Token sot_abc", "", false},
		{"empty", "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := credential(tc.header)
			if got != tc.want || ok != tc.ok {
				t.Fatalf("credential(%q) = %q, %v; want %q, %v", tc.header, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	for _, tc := range []struct {
		name    string
		remote  string
		xff     []string
		trusted []netip.Prefix
		want    string
	}{
		{"direct", "203.0.113.5:4000", nil, trusted, "203.0.113.5"},
		{"untrusted peer ignores header", "203.0.113.5:4000", []string{"198.51.100.1"}, trusted, "203.0.113.5"},
		{"no trusted proxies ignores header", "10.1.1.1:4000", []string{"198.51.100.1"}, nil, "10.1.1.1"},
		{"trusted proxy", "10.1.1.1:4000", []string{"198.51.100.1"}, trusted, "198.51.100.1"},
		{"forged hops before the real client", "10.1.1.1:4000", []string{"1.2.3.4, 198.51.100.1"}, trusted, "198.51.100.1"},
		{"chain of trusted proxies", "10.1.1.1:4000", []string{"198.51.100.1, 10.2.2.2", "10.3.3.3"}, trusted, "198.51.100.1"},
		{"all hops trusted", "10.1.1.1:4000", []string{"10.2.2.2"}, trusted, "10.2.2.2"},
		{"garbage hop stops", "10.1.1.1:4000", []string{"198.51.100.1, nonsense"}, trusted, "10.1.1.1"},
		{"trusted proxy without header", "10.1.1.1:4000", nil, trusted, "10.1.1.1"},
		{"ipv6 peer", "[::1]:4000", []string{"2001:db8::1"}, trusted, "2001:db8::1"},
		{"ipv4-mapped peer", "[::ffff:203.0.113.5]:4000", nil, trusted, "203.0.113.5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.remote
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := clientIP(r, tc.trusted); got.String() != tc.want {
				t.Fatalf("clientIP = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestPathTemplate(t *testing.T) {
	for _, tc := range []struct {
		name, template, uri string
		org, project        string
		ok                  bool
	}{
		{"org and project", "/{org}/{project}/...", "/acme/web/src/main.go", "acme", "web", true},
		{"query ignored", "/{org}/{project}/...", "/acme/web?token=x", "acme", "web", true},
		{"rest may be empty", "/{org}/{project}/...", "/acme/web", "acme", "web", true},
		{"too short", "/{org}/{project}/...", "/acme", "", "", false},
		{"literal prefix", "/repos/{org}/{project}", "/repos/acme/web", "acme", "web", true},
		{"literal mismatch", "/repos/{org}/{project}", "/other/acme/web", "", "", false},
		{"no rest allowed", "/repos/{org}/{project}", "/repos/acme/web/x", "", "", false},
		{"wildcard segment", "/{org}/*/{project}", "/acme/anything/web", "acme", "web", true},
		{"org only", "/{org}/...", "/acme/x/y", "acme", "", true},
		{"empty org", "/{org}/{project}", "//web", "", "", false},
		{"not a path", "/{org}/{project}", "acme/web", "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pt, err := ParsePathTemplate(tc.template)
			if err != nil {
				t.Fatal(err)
			}
			org, project, ok := pt.match(tc.uri)
			if ok != tc.ok || (ok && (org != tc.org || project != tc.project)) {
				t.Fatalf("match(%q) = %q, %q, %v; want %q, %q, %v", tc.uri, org, project, ok, tc.org, tc.project, tc.ok)
			}
		})
	}
	for _, bad := range []string{"", "{org}/x", "/x/y", "/{org}/{org}", "/{org}/.../x", "/{org}/{repo}", "/{org}/{project}/{project}"} {
		if _, err := ParsePathTemplate(bad); err == nil {
			t.Errorf("ParsePathTemplate(%q) accepted", bad)
		}
	}
}

func TestQueryValue(t *testing.T) {
	for _, tc := range []struct{ raw, key, want string }{
		{"org=acme&project=web", "org", "acme"},
		{"org=acme&project=web", "project", "web"},
		{"org=acme&project=web", "permission", ""},
		{"org=a%2Fb", "org", "a/b"},
		{"org=a+b", "org", "a b"},
		{"org=%zz", "org", ""},
		{"organization=x&org=y", "org", "y"},
		{"org", "org", ""},
		{"", "org", ""},
	} {
		if got := queryValue(tc.raw, tc.key); got != tc.want {
			t.Errorf("queryValue(%q, %q) = %q, want %q", tc.raw, tc.key, got, tc.want)
		}
	}
}

func FuzzPathTemplate(f *testing.F) {
	f.Add("/{org}/{project}/...", "/acme/web/x")
	f.Add("/a/{org}/*/{project}", "/a/b/c/d?e")
	f.Fuzz(func(t *testing.T, template, uri string) {
		pt, err := ParsePathTemplate(template)
		if err != nil {
			return
		}
		org, _, ok := pt.match(uri)
		if ok && org == "" {
			t.Fatalf("match(%q) accepted an empty organization", uri)
		}
	})
}
