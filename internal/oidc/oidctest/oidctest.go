// Package oidctest runs an OpenID Connect issuer on 127.0.0.1 for tests:
// a discovery document and a JWKS of RSA and ECDSA keys that a test can
// rotate, and ID tokens signed with them, or forged in the ways attackers
// forge them.
package oidctest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Key ids of the keys an issuer starts with.
const (
	RSAKeyID   = "rsa-1"
	ECDSAKeyID = "ec-1"
)

type key struct {
	id   string
	alg  jose.SignatureAlgorithm
	priv any
	pub  any
}

// Issuer is a running test issuer.
type Issuer struct {
	// URL is the issuer identifier, such as http://127.0.0.1:41234.
	URL string

	srv     *httptest.Server
	now     func() time.Time
	mu      sync.Mutex
	keys    []key
	fetches atomic.Int64
	seq     int
}

// NewIssuer starts an issuer with one RSA (RS256) and one ECDSA (ES256)
// key, whose tokens carry times from now (time.Now when nil). It stops
// when the test ends.
func NewIssuer(t testing.TB, now func() time.Time) *Issuer {
	t.Helper()
	if now == nil {
		now = time.Now
	}
	i := &Issuer{now: now}
	i.keys = []key{newRSAKey(t, RSAKeyID), newECKey(t, ECDSAKeyID)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{
			"issuer":                                i.URL,
			"jwks_uri":                              i.URL + "/keys",
			"id_token_signing_alg_values_supported": []string{"RS256", "ES256"},
		})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		i.fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write(i.JWKS())
	})
	i.srv = httptest.NewServer(mux)
	i.URL = i.srv.URL
	t.Cleanup(i.srv.Close)
	return i
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func newRSAKey(t testing.TB, id string) key {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return key{id: id, alg: jose.RS256, priv: k, pub: &k.PublicKey}
}

func newECKey(t testing.TB, id string) key {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key{id: id, alg: jose.ES256, priv: k, pub: &k.PublicKey}
}

// JWKS returns the current public keys as a JWKS document.
func (i *Issuer) JWKS() []byte {
	i.mu.Lock()
	defer i.mu.Unlock()
	set := jose.JSONWebKeySet{}
	for _, k := range i.keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.pub, KeyID: k.id, Algorithm: string(k.alg), Use: "sig"})
	}
	b, _ := json.Marshal(set) // cannot fail: valid keys
	return b
}

// Fetches returns how many times the JWKS was fetched.
func (i *Issuer) Fetches() int { return int(i.fetches.Load()) }

// Rotate replaces every key by a new RSA key and returns its id: tokens
// signed before no longer verify once the verifier refreshes.
func (i *Issuer) Rotate(t testing.TB) string {
	t.Helper()
	i.mu.Lock()
	defer i.mu.Unlock()
	i.seq++
	id := "rsa-rotated-" + strconv.Itoa(i.seq)
	i.keys = []key{newRSAKey(t, id)}
	return id
}

// Claims returns the claims of a GitHub Actions job token of repository
// acme/web on main, for audience aud, valid from now for five minutes.
func (i *Issuer) Claims(aud string) map[string]any {
	now := i.now()
	return map[string]any{
		"iss":                 i.URL,
		"aud":                 aud,
		"sub":                 "repo:acme/web:ref:refs/heads/main",
		"repository":          "acme/web",
		"repository_id":       "1001",
		"repository_owner":    "acme",
		"repository_owner_id": "4242",
		"ref":                 "refs/heads/main",
		"run_id":              "777",
		"workflow":            "ci",
		"iat":                 now.Unix(),
		"nbf":                 now.Unix(),
		"exp":                 now.Add(5 * time.Minute).Unix(),
	}
}

// Sign signs claims with the key kid (which need not be published, to
// test unknown keys: then a new RSA key is made for it).
func (i *Issuer) Sign(t testing.TB, kid string, claims map[string]any) string {
	t.Helper()
	k := i.key(t, kid)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: k.priv},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (i *Issuer) key(t testing.TB, kid string) key {
	i.mu.Lock()
	defer i.mu.Unlock()
	for _, k := range i.keys {
		if k.id == kid {
			return k
		}
	}
	return newRSAKey(t, kid)
}

// Forge returns a token with the given header and claims and signature
// sig: the raw material of alg confusion attacks.
func Forge(t testing.TB, header, claims map[string]any, sig []byte) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString(h) + "." + enc.EncodeToString(c) + "." + enc.EncodeToString(sig)
}

// SignHS256WithPublicKey returns claims "signed" with HMAC-SHA256 keyed
// with the DER of the public key kid: what a verifier that lets the token
// choose its algorithm would accept.
func (i *Issuer) SignHS256WithPublicKey(t testing.TB, kid string, claims map[string]any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(i.key(t, kid).pub)
	if err != nil {
		t.Fatal(err)
	}
	unsigned := Forge(t, map[string]any{"alg": "HS256", "typ": "JWT", "kid": kid}, claims, nil)
	unsigned = unsigned[:len(unsigned)-1] // drop the "." of the empty signature
	m := hmac.New(sha256.New, der)
	m.Write([]byte(unsigned))
	return unsigned + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Tamper changes one claim of a signed token, keeping its signature.
func Tamper(t testing.TB, token, claim string, value any) string {
	t.Helper()
	var parts [3]string
	n := 0
	start := 0
	for j := 0; j <= len(token); j++ {
		if j == len(token) || token[j] == '.' {
			if n == 3 {
				t.Fatal("not a compact JWS")
			}
			parts[n] = token[start:j]
			n++
			start = j + 1
		}
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	claims := map[string]any{}
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	claims[claim] = value
	b, _ := json.Marshal(claims) // cannot fail: decoded JSON
	return parts[0] + "." + base64.RawURLEncoding.EncodeToString(b) + "." + parts[2]
}
