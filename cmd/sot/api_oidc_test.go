package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sot-dev/sot/internal/oidc"
	"github.com/sot-dev/sot/internal/oidc/oidctest"
)

// Tokenless CI stories: a CI job's OIDC identity token, from a real issuer
// on 127.0.0.1, exchanged for a short-lived organization token.

type trustPolicyBody struct {
	ID          int64             `json:"id"`
	Org         string            `json:"org"`
	Name        string            `json:"name"`
	Issuer      string            `json:"issuer"`
	Audience    string            `json:"audience"`
	Conditions  map[string]string `json:"conditions"`
	Permissions []string          `json:"permissions"`
	TTL         string            `json:"ttl"`
}

type exchangedBody struct {
	Token struct {
		tokenBody
		Source        string `json:"source"`
		State         string `json:"state"`
		TrustPolicyID *int64 `json:"trust_policy_id"`
		OIDC          *struct {
			Issuer     string `json:"issuer"`
			Subject    string `json:"subject"`
			Repository string `json:"repository"`
			Ref        string `json:"ref"`
			RunID      string `json:"run_id"`
			PolicyName string `json:"policy_name"`
		} `json:"oidc"`
	} `json:"token"`
	Secret    string    `json:"secret"`
	ExpiresAt time.Time `json:"expires_at"`
}

// oidcServer starts a server that trusts a new test issuer, with an org
// "acme" (team plan) holding projects web and api.
func oidcServer(t *testing.T, dsn string) (*testServer, *oidctest.Issuer, *testClock) {
	t.Helper()
	clock := &testClock{}
	iss := oidctest.NewIssuer(t, clock.Now)
	s := startServer(t, serverOpts{DSN: dsn, Clock: clock, OIDCIssuers: []string{iss.URL}})
	s.createOrg(t, "acme", "team")
	s.createProjects(t, "acme", "web", "api")
	return s, iss, clock
}

// forEachOIDCDB runs fn on each database with a fresh oidcServer.
func forEachOIDCDB(t *testing.T, fn func(t *testing.T, s *testServer, iss *oidctest.Issuer, clock *testClock)) {
	for _, db := range testDBs {
		t.Run(db.name, func(t *testing.T) {
			s, iss, clock := oidcServer(t, db.dsn(t))
			fn(t, s, iss, clock)
		})
	}
}

func exchange(t *testing.T, s *testServer, org, idToken string) *apiResponse {
	t.Helper()
	return s.as(t, "").do("POST", "/api/v1/oidc/exchange", map[string]any{"org": org, "id_token": idToken})
}

func TestOIDCExchange(t *testing.T) {
	forEachOIDCDB(t, func(t *testing.T, s *testServer, iss *oidctest.Issuer, clock *testClock) {
		admin := s.admin(t)
		var pol trustPolicyBody
		admin.do("POST", "/api/v1/orgs/acme/trust-policies", map[string]any{
			"name": "deploy-web", "issuer": iss.URL,
			"conditions":  map[string]string{"repository_owner_id": "4242", "repository": "acme/*", "ref": "refs/heads/main"},
			"scope":       map[string]any{"projects": []string{"web"}},
			"permissions": []string{"scan"}, "ttl": "10m",
		}).want(t, http.StatusCreated).decode(t, &pol)
		if pol.Audience != "sot" || pol.TTL != "10m" || pol.Conditions["ref"] != "refs/heads/main" {
			t.Fatalf("policy %+v", pol)
		}

		// The job's token, exchanged with no other credential, then used
		// for a scan.
		idToken := iss.Sign(t, oidctest.RSAKeyID, iss.Claims("sot"))
		var got exchangedBody
		exchange(t, s, "acme", idToken).want(t, http.StatusCreated).decode(t, &got)
		if !strings.HasPrefix(got.Secret, "sot_") || got.Token.Source != "oidc" || got.Token.TrustPolicyID == nil ||
			*got.Token.TrustPolicyID != pol.ID || got.Token.OIDC == nil || got.Token.OIDC.Repository != "acme/web" ||
			got.Token.OIDC.RunID != "777" || got.Token.OIDC.Ref != "refs/heads/main" || got.Token.OIDC.PolicyName != "deploy-web" {
			t.Fatalf("exchanged %+v", got)
		}
		if d := time.Until(got.ExpiresAt); d < 9*time.Minute || d > 10*time.Minute+time.Second {
			t.Errorf("expires in %v, want 10m", d)
		}
		if strings.Join(got.Token.Permissions, ",") != "scan" {
			t.Errorf("permissions %v", got.Token.Permissions)
		}
		ci := s.as(t, got.Secret)
		ci.do("POST", "/api/v1/orgs/acme/projects/web/analyses?branch=main", []byte("report")).want(t, http.StatusCreated)
		ci.do("POST", "/api/v1/orgs/acme/projects/api/analyses", []byte("report")).want(t, http.StatusForbidden)
		ci.do("GET", "/api/v1/orgs/acme/trust-policies", nil).want(t, http.StatusForbidden)

		// The token list shows it, with its policy and identity.
		var list listBody[exchangedBodyToken]
		admin.do("GET", "/api/v1/orgs/acme/tokens", nil).want(t, http.StatusOK).decode(t, &list)
		if len(list.Items) != 1 || list.Items[0].Source != "oidc" || list.Items[0].OIDC == nil ||
			list.Items[0].OIDC.Subject != "repo:acme/web:ref:refs/heads/main" {
			t.Fatalf("token list %+v", list.Items)
		}
		var audit listBody[struct {
			Action  string         `json:"action"`
			Details map[string]any `json:"details"`
		}]
		admin.do("GET", "/api/v1/orgs/acme/audit?action=token.exchanged", nil).want(t, http.StatusOK).decode(t, &audit)
		if len(audit.Items) != 1 || audit.Items[0].Details["repository"] != "acme/web" ||
			audit.Items[0].Details["run_id"] != "777" || audit.Items[0].Details["trust_policy"] != "deploy-web" ||
			audit.Items[0].Details["issuer"] != iss.URL {
			t.Errorf("token.exchanged %+v", audit.Items)
		}

		// Key rotation at the issuer: the new key is fetched once the
		// refresh interval has passed.
		kid := iss.Rotate(t)
		clock.Advance(oidc.DefaultMinRefresh + time.Second)
		exchange(t, s, "acme", iss.Sign(t, kid, iss.Claims("sot"))).want(t, http.StatusCreated)

		// The minted token expires by itself, by the server's clock.
		clock.Advance(10 * time.Minute)
		p := ci.do("GET", "/api/v1/check?org=acme&project=web&permission=scan", nil).want(t, http.StatusUnauthorized)
		if !strings.Contains(string(p.Body), "expired") {
			t.Errorf("expired minted token: %s", p.Body)
		}
	})
}

// exchangedBodyToken is a listed token with the OIDC additions.
type exchangedBodyToken struct {
	Source string `json:"source"`
	OIDC   *struct {
		Subject string `json:"subject"`
	} `json:"oidc"`
}

func TestOIDCExchangeRefusals(t *testing.T) {
	forEachOIDCDB(t, func(t *testing.T, s *testServer, iss *oidctest.Issuer, clock *testClock) {
		untrusted := oidctest.NewIssuer(t, clock.Now)
		s.admin(t).do("POST", "/api/v1/orgs/acme/trust-policies", map[string]any{
			"name": "main only", "issuer": iss.URL, "audience": "https://sot.example.com",
			"conditions":  map[string]string{"repository_owner_id": "4242", "ref": "refs/heads/main"},
			"scope":       map[string]any{"all_projects": true},
			"permissions": []string{"scan"},
		}).want(t, http.StatusCreated)
		const aud = "https://sot.example.com"
		with := func(change func(c map[string]any)) map[string]any {
			c := iss.Claims(aud)
			change(c)
			return c
		}
		now := clock.Now()
		valid := iss.Sign(t, oidctest.RSAKeyID, iss.Claims(aud))
		tests := []struct {
			name   string
			org    string
			token  string
			status int
			detail string
		}{
			{"ECDSA key works", "acme", iss.Sign(t, oidctest.ECDSAKeyID, iss.Claims(aud)), http.StatusCreated, ""},
			{"wrong audience", "acme", iss.Sign(t, oidctest.RSAKeyID, iss.Claims("sot")), http.StatusUnauthorized, `audience is not accepted: trust policies of "acme" expect "https://sot.example.com"`},
			{"issuer not on the allowlist", "acme", untrusted.Sign(t, oidctest.RSAKeyID, untrusted.Claims(aud)), http.StatusUnauthorized, "issuer is not trusted"},
			{"wrong issuer claim", "acme", iss.Sign(t, oidctest.RSAKeyID, with(func(c map[string]any) { c["iss"] = untrusted.URL })), http.StatusUnauthorized, "issuer is not trusted"},
			{"expired", "acme", iss.Sign(t, oidctest.RSAKeyID, with(func(c map[string]any) { c["exp"] = now.Add(-5 * time.Minute).Unix() })), http.StatusUnauthorized, "ID token expired"},
			{"not yet valid", "acme", iss.Sign(t, oidctest.RSAKeyID, with(func(c map[string]any) { c["nbf"] = now.Add(10 * time.Minute).Unix() })), http.StatusUnauthorized, "not valid yet"},
			{"unknown kid", "acme", iss.Sign(t, "forged", iss.Claims(aud)), http.StatusUnauthorized, "unknown key"},
			{"tampered signature", "acme", oidctest.Tamper(t, valid, "ref", "refs/heads/main-evil"), http.StatusUnauthorized, "invalid ID token signature"},
			{"alg none", "acme", oidctest.Forge(t, map[string]any{"alg": "none"}, iss.Claims(aud), nil), http.StatusUnauthorized, "accepted algorithm"},
			{"HS256 signed with the public key", "acme", iss.SignHS256WithPublicKey(t, oidctest.RSAKeyID, iss.Claims(aud)), http.StatusUnauthorized, "accepted algorithm"},
			{"not a JWT", "acme", "hello", http.StatusUnauthorized, "invalid ID token"},
			{"condition mismatch", "acme", iss.Sign(t, oidctest.RSAKeyID, with(func(c map[string]any) { c["ref"] = "refs/heads/dev" })), http.StatusForbidden,
				`no trust policy matches the ID token: "main only": ref must match "refs/heads/main"`},
			{"renamed owner", "acme", iss.Sign(t, oidctest.RSAKeyID, with(func(c map[string]any) { c["repository_owner_id"] = "666" })), http.StatusForbidden,
				`repository_owner_id must match "4242"`},
			{"other org", "other", valid, http.StatusForbidden, `no trust policy of organization "other"`},
			{"invalid org key", "a b", valid, http.StatusForbidden, `no trust policy of organization "a b"`},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := exchange(t, s, tt.org, tt.token).want(t, tt.status)
				if tt.status == http.StatusCreated {
					return
				}
				p := r.problem(t)
				if !strings.Contains(p.Detail, tt.detail) {
					t.Errorf("detail %q, want it to contain %q", p.Detail, tt.detail)
				}
				// The detail never echoes the ID token or its payload.
				if parts := strings.Split(tt.token, "."); len(parts) == 3 && strings.Contains(string(r.Body), parts[1]) {
					t.Errorf("the response echoes the ID token: %s", r.Body)
				}
				if tt.status == http.StatusUnauthorized && r.Header.Get("WWW-Authenticate") == "" {
					t.Error("401 without WWW-Authenticate")
				}
			})
		}
		// Bad input is a 400.
		s.as(t, "").do("POST", "/api/v1/oidc/exchange", map[string]any{"org": "acme", "id_token": valid, "extra": 1}).want(t, http.StatusBadRequest)
		s.as(t, "").do("POST", "/api/v1/oidc/exchange", `{"org": "acme", "id_token": `).want(t, http.StatusBadRequest)

		// An organization moved to the free plan mints nothing.
		s.admin(t).do("PATCH", "/api/v1/orgs/acme", map[string]any{"plan": "free"}).want(t, http.StatusOK)
		if p := exchange(t, s, "acme", valid).want(t, http.StatusForbidden).problem(t); p.Type != "/problems/plan-required" {
			t.Errorf("free plan: %+v", p)
		}
	})
}

func TestOIDCPolicyDeletionRevokes(t *testing.T) {
	forEachOIDCDB(t, func(t *testing.T, s *testServer, iss *oidctest.Issuer, _ *testClock) {
		admin := s.admin(t)
		var pol trustPolicyBody
		admin.do("POST", "/api/v1/orgs/acme/trust-policies", map[string]any{
			"name": "ci", "issuer": iss.URL, "conditions": map[string]string{"repository_id": "1001"},
			"scope": map[string]any{"all_projects": true}, "permissions": []string{"scan", "browse"},
		}).want(t, http.StatusCreated).decode(t, &pol)
		var got exchangedBody
		exchange(t, s, "acme", iss.Sign(t, oidctest.RSAKeyID, iss.Claims("sot"))).want(t, http.StatusCreated).decode(t, &got)
		if d := time.Until(got.ExpiresAt); d < 14*time.Minute || d > 15*time.Minute+time.Second {
			t.Errorf("default ttl: expires in %v, want 15m", d)
		}
		ci := s.as(t, got.Secret)
		ci.do("GET", "/api/v1/check?org=acme&project=web&permission=scan", nil).want(t, http.StatusNoContent)

		admin.do("DELETE", "/api/v1/orgs/acme/trust-policies/"+itoa(pol.ID), nil).want(t, http.StatusNoContent)
		p := ci.do("GET", "/api/v1/check?org=acme&project=web&permission=scan", nil).want(t, http.StatusUnauthorized)
		if !strings.Contains(string(p.Body), "revoked") {
			t.Errorf("after the policy's deletion: %s", p.Body)
		}
		exchange(t, s, "acme", iss.Sign(t, oidctest.RSAKeyID, iss.Claims("sot"))).want(t, http.StatusForbidden)
		admin.do("GET", "/api/v1/orgs/acme/trust-policies/"+itoa(pol.ID), nil).want(t, http.StatusNotFound)
		var audit listBody[struct {
			Action string `json:"action"`
		}]
		admin.do("GET", "/api/v1/orgs/acme/audit?action=trust_policy.deleted", nil).want(t, http.StatusOK).decode(t, &audit)
		if len(audit.Items) != 1 {
			t.Errorf("%d trust_policy.deleted events", len(audit.Items))
		}
	})
}

func TestTrustPolicyAPI(t *testing.T) {
	forEachOIDCDB(t, func(t *testing.T, s *testServer, iss *oidctest.Issuer, _ *testClock) {
		s.createOrg(t, "freebies", "free")
		admin := s.admin(t)
		member := s.createUser(t, "bob")
		admin.do("PUT", "/api/v1/orgs/acme/members/bob", map[string]any{"role": "member"}).want(t, http.StatusCreated)
		valid := func() map[string]any {
			return map[string]any{"name": "p", "issuer": iss.URL, "conditions": map[string]string{"repository_owner_id": "4242"},
				"scope": map[string]any{"patterns": []string{"web.*"}}, "permissions": []string{"scan"}}
		}
		tests := []struct {
			name   string
			org    string
			change func(b map[string]any)
			status int
			field  string
		}{
			{"free plan", "freebies", func(map[string]any) {}, http.StatusForbidden, ""},
			{"issuer not on the allowlist", "acme", func(b map[string]any) { b["issuer"] = "https://gitlab.example.com" }, http.StatusBadRequest, "issuer"},
			{"plain http issuer", "acme", func(b map[string]any) { b["issuer"] = "http://gitlab.example.com" }, http.StatusBadRequest, "issuer"},
			{"no conditions", "acme", func(b map[string]any) { b["conditions"] = map[string]string{} }, http.StatusBadRequest, "conditions"},
			{"bad claim name", "acme", func(b map[string]any) { b["conditions"] = map[string]string{"a b": "x"} }, http.StatusBadRequest, "conditions.a b"},
			{"bad scope pattern", "acme", func(b map[string]any) { b["scope"] = map[string]any{"patterns": []string{"("}} }, http.StatusBadRequest, "scope.patterns[0]"},
			{"unknown project", "acme", func(b map[string]any) { b["scope"] = map[string]any{"projects": []string{"nope"}} }, http.StatusBadRequest, "scope.projects"},
			{"self_rotate", "acme", func(b map[string]any) { b["permissions"] = []string{"scan", "self_rotate"} }, http.StatusBadRequest, "permissions"},
			{"unknown permission", "acme", func(b map[string]any) { b["permissions"] = []string{"root"} }, http.StatusBadRequest, ""},
			{"ttl over an hour", "acme", func(b map[string]any) { b["ttl"] = "2h" }, http.StatusBadRequest, "ttl"},
			{"unknown field", "acme", func(b map[string]any) { b["bogus"] = true }, http.StatusBadRequest, ""},
			{"unknown org", "nope", func(map[string]any) {}, http.StatusNotFound, ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				b := valid()
				tt.change(b)
				r := admin.do("POST", "/api/v1/orgs/"+tt.org+"/trust-policies", b).want(t, tt.status)
				if tt.field == "" {
					return
				}
				p := r.problem(t)
				if len(p.Errors) == 0 || p.Errors[0].Field != tt.field {
					t.Errorf("errors %+v, want field %s", p.Errors, tt.field)
				}
			})
		}
		s.as(t, member).do("POST", "/api/v1/orgs/acme/trust-policies", valid()).want(t, http.StatusForbidden)
		s.as(t, member).do("GET", "/api/v1/orgs/acme/trust-policies", nil).want(t, http.StatusForbidden)

		var pol trustPolicyBody
		admin.do("POST", "/api/v1/orgs/acme/trust-policies", valid()).want(t, http.StatusCreated).decode(t, &pol)
		admin.do("POST", "/api/v1/orgs/acme/trust-policies", valid()).want(t, http.StatusConflict)
		path := "/api/v1/orgs/acme/trust-policies/" + itoa(pol.ID)
		var upd trustPolicyBody
		admin.do("PATCH", path, map[string]any{"ttl": "1h", "conditions": map[string]string{"repository_id": "1001", "environment": "prod"}}).
			want(t, http.StatusOK).decode(t, &upd)
		if upd.TTL != "1h" || len(upd.Conditions) != 2 || upd.Name != "p" {
			t.Errorf("updated %+v", upd)
		}
		admin.do("PATCH", path, map[string]any{"permissions": []string{"self_rotate"}}).want(t, http.StatusBadRequest)
		admin.do("PATCH", path, map[string]any{"issuer": "https://example.com"}).want(t, http.StatusBadRequest)
		var list listBody[trustPolicyBody]
		admin.do("GET", "/api/v1/orgs/acme/trust-policies", nil).want(t, http.StatusOK).decode(t, &list)
		if len(list.Items) != 1 || list.Items[0].TTL != "1h" {
			t.Errorf("list %+v", list.Items)
		}
		admin.do("GET", "/api/v1/orgs/freebies/trust-policies/"+itoa(pol.ID), nil).want(t, http.StatusNotFound)
		var audit listBody[struct {
			Action string `json:"action"`
		}]
		admin.do("GET", "/api/v1/orgs/acme/audit?target=trust_policy:"+itoa(pol.ID), nil).want(t, http.StatusOK).decode(t, &audit)
		if len(audit.Items) != 2 || audit.Items[0].Action != "trust_policy.updated" || audit.Items[1].Action != "trust_policy.created" {
			t.Errorf("audit %+v", audit.Items)
		}
	})
}

func TestOIDCNoIssuersConfigured(t *testing.T) {
	clock := &testClock{}
	iss := oidctest.NewIssuer(t, clock.Now)
	s := startServer(t, serverOpts{Clock: clock})
	s.createOrg(t, "acme", "team")
	p := exchange(t, s, "acme", iss.Sign(t, oidctest.RSAKeyID, iss.Claims("sot"))).want(t, http.StatusUnauthorized).problem(t)
	if !strings.Contains(p.Detail, "not trusted") {
		t.Errorf("detail %q", p.Detail)
	}
	s.admin(t).do("POST", "/api/v1/orgs/acme/trust-policies", map[string]any{"name": "p", "issuer": iss.URL,
		"conditions": map[string]string{"sub": "x"}, "scope": map[string]any{"all_projects": true}, "permissions": []string{"scan"}}).
		want(t, http.StatusBadRequest)
}

// TestOIDCStaticJWKS trusts an issuer sot cannot reach, by its keys.
func TestOIDCStaticJWKS(t *testing.T) {
	clock := &testClock{}
	iss := oidctest.NewIssuer(t, clock.Now)
	const air = "https://ci.internal.example"
	s := startServer(t, serverOpts{Clock: clock, OIDCStaticJWKS: map[string][]byte{air: iss.JWKS()}})
	s.createOrg(t, "acme", "team")
	s.admin(t).do("POST", "/api/v1/orgs/acme/trust-policies", map[string]any{"name": "air-gapped", "issuer": air,
		"conditions": map[string]string{"repository_id": "1001"}, "scope": map[string]any{"all_projects": true},
		"permissions": []string{"scan"}}).want(t, http.StatusCreated)
	claims := iss.Claims("sot")
	claims["iss"] = air
	exchange(t, s, "acme", iss.Sign(t, oidctest.ECDSAKeyID, claims)).want(t, http.StatusCreated)
	exchange(t, s, "acme", iss.Sign(t, "unknown", claims)).want(t, http.StatusUnauthorized)
	if n := iss.Fetches(); n != 0 {
		t.Errorf("the static issuer's keys were fetched %d times", n)
	}
}

// TestOIDCExchangeRateLimited counts bad ID tokens like bad credentials.
func TestOIDCExchangeRateLimited(t *testing.T) {
	clock := &testClock{}
	iss := oidctest.NewIssuer(t, clock.Now)
	s := startServer(t, serverOpts{Clock: clock, OIDCIssuers: []string{iss.URL}, AuthFailureLimit: 3})
	s.createOrg(t, "acme", "team")
	for range 3 {
		exchange(t, s, "acme", "garbage").want(t, http.StatusUnauthorized)
	}
	r := exchange(t, s, "acme", iss.Sign(t, oidctest.RSAKeyID, iss.Claims("sot"))).want(t, http.StatusTooManyRequests)
	if r.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
}
