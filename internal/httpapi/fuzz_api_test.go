package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sot-dev/sot"
	"github.com/sot-dev/sot/internal/auth"
	"github.com/sot-dev/sot/internal/httpapi"
	"github.com/sot-dev/sot/internal/oidc"
	"github.com/sot-dev/sot/internal/store"
)

// fuzzAPI is the real API over a real SQLite file, with an instance
// admin, an organization "acme" with a project "web", an organization
// token, a webhook and a trust policy, so that every path parameter names
// something that exists.
type fuzzAPI struct {
	srv   *httptest.Server
	admin string // the admin's token secret
	// routes are the body-taking operations, with their path parameters
	// filled in.
	routes []fuzzRoute
}

type fuzzRoute struct{ method, path string }

func newFuzzAPI(t testing.TB) *fuzzAPI {
	ctx := context.Background()
	db, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "sot.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	verifier, err := oidc.New(oidc.Config{Issuers: []string{"github"}})
	if err != nil {
		t.Fatal(err)
	}
	au := auth.New(auth.Config{Tokens: db, Users: db, Orgs: db, Audit: db, Bus: db})
	actx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- au.Run(actx) }()
	t.Cleanup(func() { cancel(); <-done })
	api, err := httpapi.New(httpapi.Config{
		Users: db, Orgs: db, Projects: db, Tokens: db, Audit: db, Analyses: db,
		Auth:             au,
		HashPassword:     func(pw string) (string, error) { return "hash-of-" + pw, nil },
		AuthFailureLimit: -1,
		MaxReportBytes:   1 << 20,
		Lifecycle:        db, Webhooks: db, TrustPolicies: db, OIDC: verifier,
	})
	if err != nil {
		t.Fatal(err)
	}
	admin := &sot.User{Login: "admin", Name: "Admin", Admin: true}
	if err := db.CreateUser(ctx, admin, "x"); err != nil {
		t.Fatal(err)
	}
	tok, secret, err := sot.PreparePersonalToken(admin, sot.UserRef{ID: admin.ID, Login: admin.Login},
		sot.TokenRequest{Name: "fuzz", Expiry: sot.Expiry{In: "30d"}}, sot.PersonalTokenPolicy(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateToken(ctx, tok, sot.HashSecret(secret)); err != nil {
		t.Fatal(err)
	}
	f := &fuzzAPI{srv: httptest.NewServer(api), admin: secret}
	t.Cleanup(f.srv.Close)

	ids := map[string]string{}
	for _, step := range []struct {
		path, body, idOf string
	}{
		{"/api/v1/orgs", `{"key":"acme","name":"Acme","plan":"enterprise"}`, ""},
		{"/api/v1/orgs/acme/projects", `{"key":"web"}`, ""},
		{"/api/v1/users", `{"login":"bob","name":"Bob","password":"password-of-bob"}`, ""},
		{"/api/v1/orgs/acme/tokens", `{"name":"ci","expires_in":"30d","permissions":["scan"],"scope":{"all_projects":true}}`, "tokens"},
		{"/api/v1/user/tokens", `{"name":"mine","expires_in":"30d"}`, "user/tokens"},
		{"/api/v1/orgs/acme/webhooks", `{"url":"http://127.0.0.1:9/hook","events":["token.created"]}`, "webhooks"},
		{"/api/v1/orgs/acme/trust-policies", `{"name":"gh","issuer":"https://token.actions.githubusercontent.com","conditions":{"repository":"acme/web"},"permissions":["scan"],"scope":{"all_projects":true}}`, "trust-policies"},
	} {
		st, body := f.do("POST", step.path, []byte(step.body))
		if st != http.StatusCreated {
			t.Fatalf("setup POST %s: %d %s", step.path, st, body)
		}
		if step.idOf != "" {
			var out struct {
				ID    json.Number `json:"id"`
				Token struct {
					ID json.Number `json:"id"`
				} `json:"token"`
			}
			json.Unmarshal(body, &out)
			id := out.ID
			if id == "" {
				id = out.Token.ID
			}
			ids[step.idOf] = id.String()
		}
	}

	// Every operation with a request body, from the API's own OpenAPI
	// document: a new route is fuzzed without editing this test.
	st, doc := f.do("GET", "/api/v1/openapi.json", nil)
	if st != http.StatusOK {
		t.Fatalf("openapi: %d", st)
	}
	var oapi struct {
		Paths map[string]map[string]struct {
			RequestBody json.RawMessage `json:"requestBody"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(doc, &oapi); err != nil {
		t.Fatal(err)
	}
	for path, ops := range oapi.Paths {
		for method, op := range ops {
			if op.RequestBody == nil {
				continue
			}
			p := strings.NewReplacer("{org}", "acme", "{project}", "web", "{login}", "bob").Replace(path)
			if strings.Contains(p, "{id}") {
				id := "999999"
				for k, v := range ids {
					if strings.Contains(p, "/"+k+"/{id}") {
						id = v
					}
				}
				p = strings.ReplaceAll(p, "{id}", id)
			}
			f.routes = append(f.routes, fuzzRoute{strings.ToUpper(method), p})
		}
	}
	slices.SortFunc(f.routes, func(a, b fuzzRoute) int { return strings.Compare(a.path+a.method, b.path+b.method) })
	if len(f.routes) < 15 {
		t.Fatalf("only %d body-taking routes found in the OpenAPI document", len(f.routes))
	}
	return f
}

func (f *fuzzAPI) do(method, path string, body []byte) (int, []byte) {
	req, err := http.NewRequest(method, f.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		panic(err)
	}
	req.Header.Set("Authorization", "Bearer "+f.admin)
	req.Header.Set("Content-Type", "application/json")
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// FuzzAPIRequestBodies sends arbitrary bytes as the JSON body of every
// body-taking route: whatever they are, the answer is never a 5xx.
func FuzzAPIRequestBodies(f *testing.F) {
	api := newFuzzAPI(f)
	seeds := []string{
		``, `{}`, `null`, `[]`, `"x"`, `1e999`, `{"name":null}`, `{"name":"a\u0000b"}`,
		`{"key":"acme2","name":"A","plan":"team"}`,
		`{"name":"ci","expires_in":"30d","permissions":["scan","browse"],"scope":{"patterns":["a.*"],"projects":["web"]},"allowed_cidrs":["10.0.0.0/8"]}`,
		`{"scope":{"patterns":["(a*)*b"]}}`, `{"role":"member"}`, `{"grace_period":"24h"}`,
		`{"secrets":["sot_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"]}`,
		`[{"token":"sot_x","type":"sot_org_token","url":"https://github.com","source":"content"}]`,
		`{"org":"acme","id_token":"a.b.c"}`, `{"token_policy":{"max_lifetime_days":30,"allow_non_expiring":true}}`,
		`{"url":"http://x","events":["token.created"],"active":false}`,
		`{"conditions":{"ref":"refs/heads/*"},"max_lifetime":"1h"}`,
		`{"login":"carol","name":"C","password":"long-enough-password","admin":true}`,
		`{"expires_at":"2999-01-01T00:00:00Z","name":"x"}`, `{"never_expires":true,"name":"x"}`,
	}
	for i := range api.routes {
		for _, s := range seeds {
			f.Add(uint8(i), []byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		r := api.routes[int(route)%len(api.routes)]
		st, resp := api.do(r.method, r.path, body)
		if st == 0 || st >= 500 {
			t.Fatalf("%s %s with %q: %d %s", r.method, r.path, body, st, resp)
		}
	})
}

// The fuzzed routes cover the API's body-taking operations.
func TestFuzzAPIRoutes(t *testing.T) {
	api := newFuzzAPI(t)
	var got []string
	for _, r := range api.routes {
		got = append(got, r.method+" "+r.path)
	}
	for _, want := range []string{"POST /api/v1/orgs", "POST /api/v1/orgs/acme/tokens", "PATCH /api/v1/orgs/acme",
		"POST /api/v1/tokens/revoke", "POST /api/v1/oidc/exchange", "PUT /api/v1/orgs/acme/members/bob"} {
		if !slices.Contains(got, want) {
			t.Errorf("%s is not fuzzed; routes: %s", want, fmt.Sprint(got))
		}
	}
}
