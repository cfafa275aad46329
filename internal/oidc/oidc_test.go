package oidc_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sot-dev/sot"
	"github.com/sot-dev/sot/internal/oidc"
	"github.com/sot-dev/sot/internal/oidc/oidctest"
)

// clock is a clock that tests move.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newVerifier(t *testing.T, clk *clock, issuers ...string) *oidc.Verifier {
	t.Helper()
	v, err := oidc.New(oidc.Config{Issuers: issuers, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestVerify(t *testing.T) {
	clk := &clock{t: time.Now()}
	iss := oidctest.NewIssuer(t, clk.Now)
	other := oidctest.NewIssuer(t, clk.Now)
	v := newVerifier(t, clk, iss.URL)
	ctx := context.Background()
	with := func(change func(c map[string]any)) map[string]any {
		c := iss.Claims("sot")
		change(c)
		return c
	}
	valid := iss.Sign(t, oidctest.RSAKeyID, iss.Claims("sot"))
	tests := []struct {
		name  string
		token string
		msg   string // "" means valid
	}{
		{"RSA key", valid, ""},
		{"ECDSA key", iss.Sign(t, oidctest.ECDSAKeyID, iss.Claims("sot")), ""},
		{"audience array", iss.Sign(t, oidctest.RSAKeyID, with(func(c map[string]any) { c["aud"] = []string{"x", "sot"} })), ""},
		{"expired", iss.Sign(t, oidctest.RSAKeyID, with(func(c map[string]any) { c["exp"] = clk.Now().Add(-2 * time.Minute).Unix() })), "ID token expired"},
		{"expired within leeway", iss.Sign(t, oidctest.RSAKeyID, with(func(c map[string]any) { c["exp"] = clk.Now().Add(-30 * time.Second).Unix() })), ""},
		{"no exp", iss.Sign(t, oidctest.RSAKeyID, with(func(c map[string]any) { delete(c, "exp") })), "invalid ID token: missing or malformed exp claim"},
		{"not yet valid", iss.Sign(t, oidctest.RSAKeyID, with(func(c map[string]any) { c["nbf"] = clk.Now().Add(5 * time.Minute).Unix() })), "ID token not valid yet (nbf is in the future)"},
		{"issued in the future", iss.Sign(t, oidctest.RSAKeyID, with(func(c map[string]any) { c["iat"] = clk.Now().Add(5 * time.Minute).Unix() })), "ID token issued in the future (iat)"},
		{"wrong issuer", other.Sign(t, oidctest.RSAKeyID, other.Claims("sot")), "ID token issuer is not trusted by this server"},
		{"other issuer's key, our iss", other.Sign(t, oidctest.RSAKeyID, iss.Claims("sot")), "invalid ID token signature"},
		{"unknown kid", iss.Sign(t, "nobody", iss.Claims("sot")), "ID token signed with an unknown key"},
		{"tampered claim", oidctest.Tamper(t, valid, "repository", "acme/evil"), "invalid ID token signature"},
		{"alg none", oidctest.Forge(t, map[string]any{"alg": "none", "typ": "JWT"}, iss.Claims("sot"), nil), "invalid ID token: not a JWT signed with an accepted algorithm (RS*, PS*, ES*, EdDSA)"},
		{"HS256 with the public key", iss.SignHS256WithPublicKey(t, oidctest.RSAKeyID, iss.Claims("sot")), "invalid ID token: not a JWT signed with an accepted algorithm (RS*, PS*, ES*, EdDSA)"},
		{"garbage", "not.a.jwt", "invalid ID token: not a JWT signed with an accepted algorithm (RS*, PS*, ES*, EdDSA)"},
		{"empty", "", "invalid ID token: empty or too large"},
		{"huge", strings.Repeat("a", oidc.MaxIDTokenBytes+1), "invalid ID token: empty or too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := v.Verify(ctx, tt.token)
			if tt.msg == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if tok.Issuer != iss.URL || tok.Subject != "repo:acme/web:ref:refs/heads/main" || !tok.HasAudience("sot") {
					t.Errorf("token %+v", tok)
				}
				if got, _ := tok.ClaimString("repository_owner_id"); got != "4242" {
					t.Errorf("repository_owner_id %q", got)
				}
				return
			}
			if sot.ErrorCode(err) != sot.EUNAUTHENTICATED || sot.ErrorMessage(err) != tt.msg {
				t.Fatalf("Verify: %v; want EUNAUTHENTICATED %q", err, tt.msg)
			}
		})
	}
}

func TestKeyRotation(t *testing.T) {
	clk := &clock{t: time.Now()}
	iss := oidctest.NewIssuer(t, clk.Now)
	v := newVerifier(t, clk, iss.URL)
	ctx := context.Background()
	if _, err := v.Verify(ctx, iss.Sign(t, oidctest.RSAKeyID, iss.Claims("sot"))); err != nil {
		t.Fatal(err)
	}
	// Cached: a second token costs no fetch.
	if _, err := v.Verify(ctx, iss.Sign(t, oidctest.ECDSAKeyID, iss.Claims("sot"))); err != nil {
		t.Fatal(err)
	}
	if n := iss.Fetches(); n != 1 {
		t.Fatalf("%d JWKS fetches, want 1", n)
	}
	old := iss.Sign(t, oidctest.RSAKeyID, iss.Claims("sot"))
	kid := iss.Rotate(t)
	// Within MinRefresh of the last fetch, an unknown key id is refused
	// without asking the issuer: forged key ids cannot flood it.
	if _, err := v.Verify(ctx, iss.Sign(t, kid, iss.Claims("sot"))); sot.ErrorMessage(err) != "ID token signed with an unknown key" {
		t.Fatalf("new key within MinRefresh: %v", err)
	}
	if n := iss.Fetches(); n != 1 {
		t.Fatalf("%d JWKS fetches within MinRefresh, want 1", n)
	}
	clk.Advance(oidc.DefaultMinRefresh + time.Second)
	if _, err := v.Verify(ctx, iss.Sign(t, kid, iss.Claims("sot"))); err != nil {
		t.Fatalf("new key after rotation: %v", err)
	}
	if n := iss.Fetches(); n != 2 {
		t.Fatalf("%d JWKS fetches, want 2", n)
	}
	// The old key is gone from the refreshed set.
	if _, err := v.Verify(ctx, old); sot.ErrorMessage(err) != "ID token signed with an unknown key" {
		t.Fatalf("old key after rotation: %v", err)
	}
	// Stale keys are fetched again after CacheTTL.
	clk.Advance(oidc.DefaultCacheTTL)
	if _, err := v.Verify(ctx, iss.Sign(t, kid, iss.Claims("sot"))); err != nil {
		t.Fatal(err)
	}
	if n := iss.Fetches(); n != 3 {
		t.Fatalf("%d JWKS fetches after the cache expired, want 3", n)
	}
}

func TestStaticJWKS(t *testing.T) {
	clk := &clock{t: time.Now()}
	iss := oidctest.NewIssuer(t, clk.Now)
	const air = "https://ci.internal.example"
	v, err := oidc.New(oidc.Config{StaticJWKS: map[string][]byte{air: iss.JWKS()}, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	c := iss.Claims("sot")
	c["iss"] = air
	if _, err := v.Verify(context.Background(), iss.Sign(t, oidctest.RSAKeyID, c)); err != nil {
		t.Fatal(err)
	}
	if !v.Trusts(air) || iss.Fetches() != 0 {
		t.Errorf("trusts %v, fetches %d; want a trusted issuer never fetched from", v.Trusts(air), iss.Fetches())
	}
}

func TestNewRefusesInsecureIssuers(t *testing.T) {
	tests := []struct {
		issuer string
		ok     bool
	}{
		{"github", true},
		{"https://gitlab.example.com/", true},
		{"http://127.0.0.1:8080", true},
		{"http://localhost:8080", true},
		{"http://gitlab.example.com", false},
		{"ftp://example.com", false},
		{"https://example.com/?q=1", false},
	}
	for _, tt := range tests {
		t.Run(tt.issuer, func(t *testing.T) {
			_, err := oidc.New(oidc.Config{Issuers: []string{tt.issuer}})
			if (err == nil) != tt.ok {
				t.Errorf("New(%q): %v, want ok=%v", tt.issuer, err, tt.ok)
			}
		})
	}
	v, err := oidc.New(oidc.Config{Issuers: []string{"github", "https://gitlab.example.com/"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(v.Issuers(), " "); got != "https://gitlab.example.com https://token.actions.githubusercontent.com" {
		t.Errorf("issuers %s", got)
	}
}

func TestIssuerResponses(t *testing.T) {
	clk := &clock{t: time.Now()}
	src := oidctest.NewIssuer(t, clk.Now)
	tests := []struct {
		name    string
		handler func(base string) http.HandlerFunc
	}{
		{"discovery names another issuer", func(string) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				w.Write([]byte(`{"issuer":"https://evil.example","jwks_uri":"https://evil.example/keys"}`))
			}
		}},
		{"plain http jwks_uri elsewhere", func(base string) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				w.Write([]byte(`{"issuer":"` + base + `","jwks_uri":"http://keys.example.com/keys"}`))
			}
		}},
		{"oversized document", func(string) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				w.Write([]byte(`{"issuer":"` + strings.Repeat("x", oidc.MaxDocumentBytes) + `"}`))
			}
		}},
		{"server error", func(string) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", http.StatusInternalServerError) }
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var base string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { tt.handler(base)(w, r) }))
			defer srv.Close()
			base = srv.URL
			v := newVerifier(t, clk, base)
			c := src.Claims("sot")
			c["iss"] = base
			_, err := v.Verify(context.Background(), src.Sign(t, oidctest.RSAKeyID, c))
			if sot.ErrorMessage(err) != "the issuer's keys are unavailable; try again shortly" {
				t.Fatalf("Verify: %v", err)
			}
		})
	}
}

// FuzzVerify feeds arbitrary tokens to a verifier with static keys: it
// must never panic, and must refuse everything but tokens its issuer
// signed with 401-class errors.
func FuzzVerify(f *testing.F) {
	clk := &clock{t: time.Now()}
	iss := oidctest.NewIssuer(f, clk.Now)
	const static = "https://ci.internal.example"
	v, err := oidc.New(oidc.Config{StaticJWKS: map[string][]byte{static: iss.JWKS()}, Now: clk.Now})
	if err != nil {
		f.Fatal(err)
	}
	c := iss.Claims("sot")
	c["iss"] = static
	valid := iss.Sign(f, oidctest.RSAKeyID, c)
	f.Add(valid)
	f.Add(oidctest.Tamper(f, valid, "sub", "x"))
	f.Add(oidctest.Forge(f, map[string]any{"alg": "none"}, c, nil))
	f.Add(iss.SignHS256WithPublicKey(f, oidctest.RSAKeyID, c))
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, raw string) {
		tok, err := v.Verify(context.Background(), raw)
		if err != nil {
			if sot.ErrorCode(err) != sot.EUNAUTHENTICATED {
				t.Fatalf("Verify: %v, want EUNAUTHENTICATED", err)
			}
			return
		}
		if tok.Issuer != static {
			t.Fatalf("verified a token of issuer %q", tok.Issuer)
		}
	})
}
