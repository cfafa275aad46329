// Package oidc verifies the OpenID Connect ID tokens that CI systems
// (GitHub Actions, GitLab CI, Azure Pipelines) give their jobs, against the
// keys of the issuers the operator trusts: keys found through OIDC
// discovery and fetched from the issuer's JWKS, cached, and fetched again
// when a token names a key not seen yet (at most once per MinRefresh per
// issuer, so forged key ids cannot make sot hammer an issuer), or keys
// given as a static JWKS file for issuers sot cannot reach.
package oidc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/sot-dev/sot"
)

// Issuer presets: the names --oidc-issuers accepts for well-known issuers.
var Presets = map[string]string{
	"github": "https://token.actions.githubusercontent.com",
	"gitlab": "https://gitlab.com",
}

// Defaults of Config.
const (
	DefaultLeeway      = time.Minute
	DefaultCacheTTL    = time.Hour
	DefaultMinRefresh  = 10 * time.Second
	DefaultHTTPTimeout = 10 * time.Second
	// MaxDocumentBytes bounds a discovery document or JWKS.
	MaxDocumentBytes = 1 << 20
	// MaxIDTokenBytes bounds an ID token: real ones are a few kilobytes.
	MaxIDTokenBytes = 16 << 10
	maxKeys         = 100
)

// Algorithms are the signature algorithms accepted: asymmetric ones only.
// "none" and the HMAC algorithms are refused (an HMAC "signed" with a
// public key proves nothing).
var Algorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512,
	jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512,
	jose.EdDSA,
}

// Config configures a Verifier.
type Config struct {
	// Issuers are the trusted issuer URLs (or Presets names). None: nothing
	// is trusted.
	Issuers []string
	// StaticJWKS maps issuers to the JWKS document of their keys, for
	// issuers sot cannot reach; such an issuer is trusted and never
	// fetched from.
	StaticJWKS map[string][]byte
	// HTTPClient fetches discovery documents and keys; one with
	// DefaultHTTPTimeout that follows no redirect to plain http when nil.
	HTTPClient *http.Client
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Leeway is the clock skew allowed on exp, nbf and iat.
	Leeway     time.Duration
	CacheTTL   time.Duration
	MinRefresh time.Duration
	Logger     *slog.Logger
}

// Verifier verifies ID tokens. It is safe for concurrent use.
type Verifier struct {
	cfg     Config
	hc      *http.Client
	log     *slog.Logger
	issuers map[string]*issuer
}

// issuer is one trusted issuer and its cached keys.
type issuer struct {
	url    string
	static bool

	// mu serializes fetches; the cache fields are read under it too.
	mu        sync.Mutex
	keys      *jose.JSONWebKeySet
	fetchedAt time.Time // last fetch attempt
	loadedAt  time.Time // last successful fetch
}

// New returns a verifier of the configured issuers. It refuses an issuer
// URL that is not https (http is for loopback addresses only).
func New(cfg Config) (*Verifier, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Leeway == 0 {
		cfg.Leeway = DefaultLeeway
	}
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = DefaultCacheTTL
	}
	if cfg.MinRefresh == 0 {
		cfg.MinRefresh = DefaultMinRefresh
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	v := &Verifier{cfg: cfg, hc: cfg.HTTPClient, log: cfg.Logger, issuers: map[string]*issuer{}}
	if v.hc == nil {
		v.hc = &http.Client{Timeout: DefaultHTTPTimeout, CheckRedirect: checkRedirect}
	}
	for _, s := range cfg.Issuers {
		u, err := ResolveIssuer(s)
		if err != nil {
			return nil, err
		}
		if u != "" {
			v.issuers[u] = &issuer{url: u}
		}
	}
	for s, doc := range cfg.StaticJWKS {
		u, err := ResolveIssuer(s)
		if err != nil {
			return nil, err
		}
		keys, err := parseJWKS(doc)
		if err != nil {
			return nil, fmt.Errorf("static JWKS of %s: %w", u, err)
		}
		v.issuers[u] = &issuer{url: u, static: true, keys: keys}
	}
	return v, nil
}

// ResolveIssuer returns the issuer URL that s names: a preset name
// ("github", "gitlab") or an URL, without a trailing slash. "" stays "".
func ResolveIssuer(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil
	}
	if u, ok := Presets[strings.ToLower(s)]; ok {
		return u, nil
	}
	s = strings.TrimSuffix(s, "/")
	if err := sot.ValidateIssuerURL(s); err != nil {
		return "", fmt.Errorf("OIDC issuer %q: %w", s, err)
	}
	return s, nil
}

// Issuers returns the trusted issuer URLs, sorted.
func (v *Verifier) Issuers() []string {
	out := make([]string, 0, len(v.issuers))
	for u := range v.issuers {
		out = append(out, u)
	}
	slices.Sort(out)
	return out
}

// Trusts reports whether issuer is trusted.
func (v *Verifier) Trusts(issuer string) bool {
	_, ok := v.issuers[issuer]
	return ok
}

// checkRedirect keeps fetches on https (or loopback http) through
// redirects.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 5 {
		return errors.New("too many redirects")
	}
	return checkFetchURL(req.URL)
}

func checkFetchURL(u *url.URL) error {
	if u.Scheme == "https" || (u.Scheme == "http" && sot.IsLoopbackHost(u.Hostname())) {
		return nil
	}
	return fmt.Errorf("refusing to fetch %s: https only (http for loopback addresses)", u.Redacted())
}

func unauthenticated(msg string, cause error) error {
	return &sot.Error{Code: sot.EUNAUTHENTICATED, Message: msg, Err: cause}
}

// claims are the registered claims checked here.
type claims struct {
	Issuer    string          `json:"iss"`
	Subject   string          `json:"sub"`
	Audience  json.RawMessage `json:"aud"`
	Expiry    *json.Number    `json:"exp"`
	NotBefore *json.Number    `json:"nbf"`
	IssuedAt  *json.Number    `json:"iat"`
}

// Verify verifies raw: a compact JWS with an accepted algorithm, issued by
// a trusted issuer, signed by one of its keys, and currently valid (exp,
// nbf, iat, with Leeway). It does not check the audience.
func (v *Verifier) Verify(ctx context.Context, raw string) (*sot.IDToken, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" || len(raw) > MaxIDTokenBytes {
		return nil, unauthenticated("invalid ID token: empty or too large", nil)
	}
	jws, err := jose.ParseSignedCompact(raw, Algorithms)
	if err != nil {
		return nil, unauthenticated("invalid ID token: not a JWT signed with an accepted algorithm (RS*, PS*, ES*, EdDSA)", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, unauthenticated("invalid ID token: want exactly one signature", nil)
	}
	hdr := jws.Signatures[0].Header
	// The issuer picks the keys; the claim is trusted only once one of
	// that issuer's keys verifies the signature.
	var unverified claims
	if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &unverified); err != nil {
		return nil, unauthenticated("invalid ID token: claims are not a JSON object", err)
	}
	iss := v.issuers[unverified.Issuer]
	if iss == nil {
		return nil, unauthenticated("ID token issuer is not trusted by this server", nil)
	}
	payload, err := v.verifySignature(ctx, iss, jws, hdr)
	if err != nil {
		return nil, err
	}
	var c claims
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	all := map[string]any{}
	if err := dec.Decode(&all); err != nil {
		return nil, unauthenticated("invalid ID token: claims are not a JSON object", err)
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, unauthenticated("invalid ID token: malformed registered claims", err)
	}
	if c.Issuer != iss.url {
		return nil, unauthenticated("ID token issuer is not trusted by this server", nil)
	}
	tok := &sot.IDToken{Issuer: c.Issuer, Subject: c.Subject, Claims: all}
	if tok.Audience, err = audiences(c.Audience); err != nil {
		return nil, unauthenticated("invalid ID token: malformed aud claim", err)
	}
	now := v.cfg.Now()
	exp, err := numericDate(c.Expiry)
	if err != nil || exp.IsZero() {
		return nil, unauthenticated("invalid ID token: missing or malformed exp claim", err)
	}
	if !now.Before(exp.Add(v.cfg.Leeway)) {
		return nil, unauthenticated("ID token expired", nil)
	}
	nbf, err := numericDate(c.NotBefore)
	if err != nil {
		return nil, unauthenticated("invalid ID token: malformed nbf claim", err)
	}
	if !nbf.IsZero() && now.Add(v.cfg.Leeway).Before(nbf) {
		return nil, unauthenticated("ID token not valid yet (nbf is in the future)", nil)
	}
	iat, err := numericDate(c.IssuedAt)
	if err != nil {
		return nil, unauthenticated("invalid ID token: malformed iat claim", err)
	}
	if !iat.IsZero() && now.Add(v.cfg.Leeway).Before(iat) {
		return nil, unauthenticated("ID token issued in the future (iat)", nil)
	}
	tok.IssuedAt, tok.Expiry = iat, exp
	return tok, nil
}

// verifySignature verifies jws with the issuer's key named in hdr (or, for
// a token without a key id, any key of the right algorithm), fetching the
// keys again once when the key id is unknown.
func (v *Verifier) verifySignature(ctx context.Context, iss *issuer, jws *jose.JSONWebSignature, hdr jose.Header) ([]byte, error) {
	keys, err := v.keys(ctx, iss, false)
	if err != nil {
		return nil, err
	}
	cands := candidates(keys, hdr)
	if len(cands) == 0 && !iss.static {
		if keys, err = v.keys(ctx, iss, true); err != nil {
			return nil, err
		}
		cands = candidates(keys, hdr)
	}
	if len(cands) == 0 {
		return nil, unauthenticated("ID token signed with an unknown key", nil)
	}
	for _, k := range cands {
		if payload, err := jws.Verify(k.Key); err == nil {
			return payload, nil
		}
	}
	return nil, unauthenticated("invalid ID token signature", nil)
}

// candidates returns the public signing keys that may have signed a token
// with hdr: by key id, and of a matching algorithm when the key says.
func candidates(keys *jose.JSONWebKeySet, hdr jose.Header) []jose.JSONWebKey {
	if keys == nil {
		return nil
	}
	var out []jose.JSONWebKey
	for _, k := range keys.Keys {
		if hdr.KeyID != "" && k.KeyID != hdr.KeyID {
			continue
		}
		if k.Algorithm != "" && k.Algorithm != hdr.Algorithm {
			continue
		}
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		out = append(out, k)
	}
	return out
}

// keys returns the issuer's keys: cached while fresh, fetched when stale,
// or, with refresh, fetched again unless the last attempt was less than
// MinRefresh ago.
func (v *Verifier) keys(ctx context.Context, iss *issuer, refresh bool) (*jose.JSONWebKeySet, error) {
	if iss.static {
		return iss.keys, nil
	}
	iss.mu.Lock()
	defer iss.mu.Unlock()
	now := v.cfg.Now()
	fresh := iss.keys != nil && now.Sub(iss.loadedAt) < v.cfg.CacheTTL
	if fresh && !refresh {
		return iss.keys, nil
	}
	if !iss.fetchedAt.IsZero() && now.Sub(iss.fetchedAt) < v.cfg.MinRefresh {
		if iss.keys != nil {
			return iss.keys, nil
		}
		return nil, unauthenticated("the issuer's keys are unavailable; try again shortly", nil)
	}
	iss.fetchedAt = now
	keys, err := v.fetchKeys(ctx, iss.url)
	if err != nil {
		v.log.WarnContext(ctx, "fetching OIDC issuer keys failed", "issuer", iss.url, "error", err)
		if iss.keys != nil {
			// Keep serving the keys we have while the issuer is down.
			return iss.keys, nil
		}
		return nil, unauthenticated("the issuer's keys are unavailable; try again shortly", err)
	}
	iss.keys, iss.loadedAt = keys, now
	v.log.InfoContext(ctx, "fetched OIDC issuer keys", "issuer", iss.url, "keys", len(keys.Keys))
	return keys, nil
}

// fetchKeys reads the issuer's discovery document, then its JWKS.
func (v *Verifier) fetchKeys(ctx context.Context, issuerURL string) (*jose.JSONWebKeySet, error) {
	var disc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	body, err := v.get(ctx, issuerURL+"/.well-known/openid-configuration")
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(body, &disc); err != nil {
		return nil, fmt.Errorf("discovery document: %w", err)
	}
	if strings.TrimSuffix(disc.Issuer, "/") != issuerURL {
		return nil, fmt.Errorf("discovery document names issuer %q, want %q", disc.Issuer, issuerURL)
	}
	if disc.JWKSURI == "" {
		return nil, errors.New("discovery document has no jwks_uri")
	}
	body, err = v.get(ctx, disc.JWKSURI)
	if err != nil {
		return nil, err
	}
	return parseJWKS(body)
}

// get fetches a small JSON document over https (or loopback http).
func (v *Verifier) get(ctx context.Context, rawURL string) ([]byte, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("invalid URL %q: %w", rawURL, err)
	}
	if err := checkFetchURL(u); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, DefaultHTTPTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := v.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u.Redacted(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: status %d", u.Redacted(), resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxDocumentBytes+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u.Redacted(), err)
	}
	if len(body) > MaxDocumentBytes {
		return nil, fmt.Errorf("GET %s: response larger than %d bytes", u.Redacted(), MaxDocumentBytes)
	}
	return body, nil
}

// parseJWKS parses a JWKS document and keeps its public keys.
func parseJWKS(doc []byte) (*jose.JSONWebKeySet, error) {
	var raw struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(doc, &raw); err != nil {
		return nil, fmt.Errorf("JWKS: %w", err)
	}
	if len(raw.Keys) > maxKeys {
		return nil, fmt.Errorf("JWKS: more than %d keys", maxKeys)
	}
	set := &jose.JSONWebKeySet{}
	for _, r := range raw.Keys {
		var k jose.JSONWebKey
		// A key of a type this library does not know (or a broken one)
		// is skipped, not fatal: the others still verify.
		if err := k.UnmarshalJSON(r); err != nil || !k.Valid() || !k.IsPublic() {
			continue
		}
		set.Keys = append(set.Keys, k)
	}
	if len(set.Keys) == 0 {
		return nil, errors.New("JWKS: no usable public keys")
	}
	return set, nil
}

// audiences decodes an aud claim: a string or an array of strings.
func audiences(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, err
	}
	return many, nil
}

// numericDate decodes a NumericDate claim (seconds since the epoch,
// possibly fractional); zero when absent.
func numericDate(n *json.Number) (time.Time, error) {
	if n == nil {
		return time.Time{}, nil
	}
	f, err := n.Float64()
	if err != nil || f < 0 || f > 1e11 {
		return time.Time{}, fmt.Errorf("invalid NumericDate %q", n.String())
	}
	return time.Unix(int64(f), 0).UTC(), nil
}
