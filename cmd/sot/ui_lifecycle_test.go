package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/sot-dev/sot"
	"github.com/sot-dev/sot/internal/web"
)

// githubIssuer is the issuer of the "github" preset that startUI trusts.
const githubIssuer = "https://token.actions.githubusercontent.com"

var (
	policyPath  = regexp.MustCompile(`^/orgs/` + uiOrg + `/trust-policies/(\d+)$`)
	webhookPath = regexp.MustCompile(`^/orgs/` + uiOrg + `/webhooks/(\d+)/created$`)
)

// orgToken stores an organization token of uiOrg made by alice.
func (e *uiEnv) orgToken(t *testing.T, name string) *sot.Token {
	t.Helper()
	ctx := context.Background()
	org, err := e.db.FindOrg(ctx, uiOrg)
	if err != nil {
		t.Fatal(err)
	}
	tok, secret, err := sot.PrepareOrgToken(org, sot.UserRef{ID: memberID(t, e, uiAdmin), Login: uiAdmin},
		sot.TokenRequest{Name: name, Scope: sot.Scope{AllProjects: true}, Permissions: sot.NewPermissionSet(sot.PermissionScan),
			Expiry: sot.Expiry{In: "30d"}}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.db.CreateToken(ctx, tok, sot.HashSecret(secret)); err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestUILifecycle drives the trust policy and webhook pages, and the
// rotation schedule of the token page, in Chromium.
func TestUILifecycle(t *testing.T) {
	ctx := newBrowser(t)
	env := startUI(t, 20)
	problems := watchPages(t, ctx)
	step(t, ctx, "viewport", chromedp.EmulateViewport(1280, 900))
	login(t, ctx, env, uiAdmin)
	base := env.url + "/orgs/" + uiOrg

	var policyID int64
	t.Run("trust policy without conditions is refused inline", func(t *testing.T) {
		visit(t, ctx, base+"/trust-policies")
		if n := inBrowser(t, ctx, "no-issuers notice", chromedp.Evaluate[int](`document.querySelectorAll("#no-issuers").length`)); n != 0 {
			t.Fatal("the page says no issuer is trusted, but startUI trusts github and gitlab")
		}
		if st := submit(t, ctx, "new policy", "#new-policy"); st != http.StatusOK {
			t.Fatalf("new policy page: %d", st)
		}
		if hint := text(t, ctx, "#immutable-hint"); !strings.Contains(hint, "repository_owner_id") || !strings.Contains(hint, "namespace_id") {
			t.Fatalf("immutable-claims hint: %q", hint)
		}
		aud := inBrowser(t, ctx, "audience", chromedp.Evaluate[string](`document.getElementById("audience").value`))
		if aud != sot.DefaultAudience {
			t.Fatalf("default audience %q, want %q", aud, sot.DefaultAudience)
		}
		step(t, ctx, "fill without conditions",
			chromedp.SendKeys(chromedp.ID("name"), "gh-main"),
			chromedp.SetValue(chromedp.ID("issuer"), githubIssuer))
		if st := submit(t, ctx, "create policy", "#save-policy"); st != http.StatusBadRequest {
			t.Fatalf("policy without conditions: status %d, want 400", st)
		}
		if got := text(t, ctx, "#policy-form .field-error"); !strings.Contains(got, "at least one condition") {
			t.Fatalf("inline error %q, want it to ask for a condition", got)
		}
		if v := inBrowser(t, ctx, "name kept", chromedp.Evaluate[string](`document.getElementById("name").value`)); v != "gh-main" {
			t.Fatalf("the refused form lost its name: %q", v)
		}
	})

	t.Run("create trust policy", func(t *testing.T) {
		step(t, ctx, "add conditions",
			chromedp.SetValue(chromedp.ID("issuer"), githubIssuer),
			chromedp.SetValue(chromedp.ID("conditions"), "repository_owner_id = 1234567\nref = refs/heads/*"),
			chromedp.Click(chromedp.ID("perm-browse")))
		screenshot(t, ctx, "trust-policy-form")
		if st := submit(t, ctx, "create policy", "#save-policy"); st != http.StatusOK {
			t.Fatalf("create policy: status %d: %s", st, text(t, ctx, "main"))
		}
		m := policyPath.FindStringSubmatch(location(t, ctx).Path)
		if m == nil {
			t.Fatalf("after creation at %s, want the policy page", location(t, ctx))
		}
		policyID, _ = strconv.ParseInt(m[1], 10, 64)
		p, err := env.db.FindTrustPolicy(context.Background(), uiOrg, policyID)
		if err != nil {
			t.Fatal(err)
		}
		if p.Issuer != githubIssuer || p.Conditions["ref"] != "refs/heads/*" || p.Conditions["repository_owner_id"] != "1234567" ||
			!p.Permissions.Has(sot.PermissionBrowse) || p.TTL != sot.DefaultTrustTTL || !p.Scope.AllProjects {
			t.Fatalf("stored policy %+v", p)
		}
		visit(t, ctx, base+"/trust-policies")
		row := text(t, ctx, chromedp.CSS(fmt.Sprintf("tr[data-policy='%d']", policyID)))
		for _, want := range []string{"1", "gh-main", githubIssuer, "repository_owner_id = 1234567", "15m"} {
			if !strings.Contains(row, want) {
				t.Errorf("policy row %q lacks %q", row, want)
			}
		}
		screenshot(t, ctx, "trust-policies")
	})

	t.Run("OIDC-minted token in the token pages", func(t *testing.T) {
		bg := context.Background()
		org, err := env.db.FindOrg(bg, uiOrg)
		if err != nil {
			t.Fatal(err)
		}
		p, err := env.db.FindTrustPolicy(bg, uiOrg, policyID)
		if err != nil {
			t.Fatal(err)
		}
		tok, secret, err := sot.PrepareOIDCToken(org, p, sot.OIDCIdentity{Issuer: githubIssuer, Subject: "repo:acme/web:ref:refs/heads/main",
			Repository: "acme/web", Ref: "refs/heads/main", RunID: "4242", PolicyName: p.Name}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := env.db.CreateOIDCToken(bg, tok, sot.HashSecret(secret)); err != nil {
			t.Fatal(err)
		}
		visit(t, ctx, base+"/tokens")
		row := text(t, ctx, chromedp.CSS(fmt.Sprintf("tr[data-token='%d'] .oidc", tok.ID)))
		for _, want := range []string{"OIDC", "gh-main", "acme/web", "refs/heads/main", "run 4242"} {
			if !strings.Contains(row, want) {
				t.Errorf("token list says %q, want %q in it", row, want)
			}
		}
		visit(t, ctx, base+"/tokens/"+strconv.FormatInt(tok.ID, 10))
		if got := text(t, ctx, "#oidc"); !strings.Contains(got, "gh-main") || !strings.Contains(got, "run 4242") {
			t.Fatalf("token detail says %q", got)
		}
	})

	t.Run("delete trust policy revokes its tokens", func(t *testing.T) {
		visit(t, ctx, fmt.Sprintf("%s/trust-policies/%d/delete", base, policyID))
		if got := text(t, ctx, "main"); !strings.Contains(got, "1 live token it minted will be revoked") {
			t.Fatalf("confirmation %q does not count the token it revokes", got)
		}
		if st := submit(t, ctx, "delete policy", "#confirm"); st != http.StatusOK {
			t.Fatalf("delete policy: %d", st)
		}
		if got := text(t, ctx, ".notice"); got != "Trust policy deleted; 1 live token it minted revoked." {
			t.Fatalf("notice %q", got)
		}
		if n := inBrowser(t, ctx, "rows", chromedp.Evaluate[int](`document.querySelectorAll("tr[data-policy]").length`)); n != 0 {
			t.Fatalf("%d policies listed after deleting the only one", n)
		}
	})

	tok := env.orgToken(t, "scheduled")
	tokPage := base + "/tokens/" + strconv.FormatInt(tok.ID, 10)
	t.Run("rotation schedule needs a token.rotated webhook", func(t *testing.T) {
		visit(t, ctx, tokPage)
		step(t, ctx, "every 30 days", chromedp.SendKeys(chromedp.ID("rotation-every"), "30d"))
		if st := submit(t, ctx, "save schedule", "#save-rotation"); st != http.StatusBadRequest {
			t.Fatalf("schedule without webhook: %d, want 400", st)
		}
		if got := text(t, ctx, "#rotation-schedule .field-error"); !strings.Contains(got, "create a webhook for token.rotated first") {
			t.Fatalf("schedule refusal says %q", got)
		}
	})

	var hookID string
	t.Run("create webhook shows its secret once", func(t *testing.T) {
		visit(t, ctx, base+"/webhooks")
		if st := submit(t, ctx, "new webhook", "#new-webhook"); st != http.StatusOK {
			t.Fatalf("new webhook page: %d", st)
		}
		step(t, ctx, "fill", chromedp.SendKeys(chromedp.ID("url"), "https://hooks.example.com/sot"))
		if st := submit(t, ctx, "create webhook", "#save-webhook"); st != http.StatusOK {
			t.Fatalf("create webhook: %d: %s", st, text(t, ctx, "main"))
		}
		m := webhookPath.FindStringSubmatch(location(t, ctx).Path)
		if m == nil {
			t.Fatalf("after creation at %s, want the created page", location(t, ctx))
		}
		hookID = m[1]
		if secret := text(t, ctx, "#secret"); !strings.HasPrefix(secret, "whsec_") || len(secret) < sot.MinWebhookSecretLen {
			t.Fatalf("shown secret %q", secret)
		}
		visit(t, ctx, env.url+location(t, ctx).Path)
		step(t, ctx, "secret gone", chromedp.WaitReady(chromedp.ID("secret-gone")))
		if strings.Contains(html(t, ctx), "whsec_") {
			t.Fatal("the reloaded page still holds the secret")
		}
		visit(t, ctx, base+"/webhooks")
		if row := text(t, ctx, chromedp.CSS("tr[data-webhook='"+hookID+"']")); !strings.Contains(row, "https://hooks.example.com/sot") || !strings.Contains(row, "token.rotated") {
			t.Fatalf("webhook row %q", row)
		}
		screenshot(t, ctx, "webhooks")
	})

	t.Run("rotation schedule saved", func(t *testing.T) {
		visit(t, ctx, tokPage)
		step(t, ctx, "every 30 days", chromedp.SendKeys(chromedp.ID("rotation-every"), "30d"), chromedp.SetValue(chromedp.ID("rotation-grace"), "24h"))
		if st := submit(t, ctx, "save schedule", "#save-rotation"); st != http.StatusOK {
			t.Fatalf("save schedule: %d: %s", st, text(t, ctx, "main"))
		}
		if got := text(t, ctx, "#rotation"); !strings.Contains(got, "Rotates every 30 days") || !strings.Contains(got, "24 hours") {
			t.Fatalf("token page says %q", got)
		}
	})

	t.Run("deliveries log", func(t *testing.T) {
		// A new token queues token.created for the webhook; lease it and
		// fail one attempt, as the sender does when the receiver is down.
		env.orgToken(t, "announced")
		bg := context.Background()
		now := time.Now()
		ds, err := env.db.ClaimDeliveries(bg, now, time.Minute, "test", 10)
		if err != nil || len(ds) == 0 {
			t.Fatalf("claimed %d deliveries: %v", len(ds), err)
		}
		next := now.Add(5 * time.Minute)
		if err := env.db.FinishAttempt(bg, ds[0].ID, "test", sot.DeliveryAttempt{At: now, StatusCode: http.StatusBadGateway,
			Error: "receiver answered 502", Duration: time.Second}, &next); err != nil {
			t.Fatal(err)
		}
		visit(t, ctx, base+"/webhooks/"+hookID)
		row := text(t, ctx, chromedp.CSS(fmt.Sprintf("tr[data-delivery='%d']", ds[0].ID)))
		for _, want := range []string{ds[0].Event, "pending", "1", "HTTP 502", "receiver answered 502", "in 5 minutes"} {
			if !strings.Contains(row, want) {
				t.Errorf("delivery row %q lacks %q", row, want)
			}
		}
		screenshot(t, ctx, "webhook-deliveries")
	})

	t.Run("delete webhook", func(t *testing.T) {
		visit(t, ctx, base+"/webhooks/"+hookID+"/delete")
		if st := submit(t, ctx, "delete webhook", "#confirm"); st != http.StatusOK {
			t.Fatalf("delete webhook: %d", st)
		}
		if got := text(t, ctx, ".notice"); !strings.HasPrefix(got, "Webhook deleted") {
			t.Fatalf("notice %q", got)
		}
	})
	problems.check(t, strings.TrimPrefix(env.url, "http://"))
}

// TestUILifecycleForms checks the new pages over plain HTTP: CSRF,
// who may use them, refusals a browser form does not offer, and the page
// of a server that trusts no issuer.
func TestUILifecycleForms(t *testing.T) {
	env := startUI(t, 5)
	admin := httpSession(t, env, uiAdmin)
	admin.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	base := env.url + "/orgs/" + uiOrg
	st, page := get(t, admin, base+"/trust-policies/new")
	if st != http.StatusOK {
		t.Fatalf("new policy page: %d", st)
	}
	csrf := csrfField.FindStringSubmatch(page)[1]
	policy := func(name string, extra url.Values) url.Values {
		v := url.Values{"csrf": {csrf}, "name": {name}, "issuer": {githubIssuer}, "audience": {""},
			"conditions": {"repository_id = 42"}, "permission": {"scan"}, "scope_mode": {"all"}, "ttl": {"15m"}}
		for k, x := range extra {
			v[k] = x
		}
		return v
	}
	post := func(c *http.Client, path string, form url.Values) (int, string) {
		t.Helper()
		resp, err := c.PostForm(env.url+path, form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}

	t.Run("refusals", func(t *testing.T) {
		tests := []struct {
			name  string
			path  string
			form  url.Values
			want  int
			says  string
			saved bool
		}{
			{"policy ok", "/orgs/acme/trust-policies", policy("ok", nil), http.StatusSeeOther, "", true},
			{"policy without CSRF token", "/orgs/acme/trust-policies", policy("no-csrf", url.Values{"csrf": {""}}), http.StatusForbidden, "did not come from this site", false},
			{"self_rotate", "/orgs/acme/trust-policies", policy("self", url.Values{"permission": {"scan", "self_rotate"}}), http.StatusBadRequest, "self_rotate is not allowed", false},
			{"no conditions", "/orgs/acme/trust-policies", policy("none", url.Values{"conditions": {"\n  \n"}}), http.StatusBadRequest, "at least one condition", false},
			{"condition without value", "/orgs/acme/trust-policies", policy("bad-line", url.Values{"conditions": {"repository_id"}}), http.StatusBadRequest, "line 1: write claim = value", false},
			{"untrusted issuer", "/orgs/acme/trust-policies", policy("evil", url.Values{"issuer": {"https://evil.example"}}), http.StatusBadRequest, "does not trust this issuer", false},
			{"ttl over an hour", "/orgs/acme/trust-policies", policy("long", url.Values{"ttl": {"2h"}}), http.StatusBadRequest, "from 1m to 1h", false},
			{"webhook without CSRF token", "/orgs/acme/webhooks", url.Values{"url": {"https://h.example/x"}, "event": {"token.created"}}, http.StatusForbidden, "did not come from this site", false},
			{"webhook bad URL", "/orgs/acme/webhooks", url.Values{"csrf": {csrf}, "url": {"ftp://h.example/x"}, "event": {"token.created"}}, http.StatusBadRequest, "absolute http or https URL", false},
			{"webhook without events", "/orgs/acme/webhooks", url.Values{"csrf": {csrf}, "url": {"https://h.example/x"}}, http.StatusBadRequest, "at least one event", false},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				st, body := post(admin, tt.path, tt.form)
				if st != tt.want {
					t.Fatalf("status %d, want %d", st, tt.want)
				}
				if tt.says != "" && !strings.Contains(body, tt.says) {
					t.Fatalf("page does not say %q", tt.says)
				}
				if name := tt.form.Get("name"); name != "" {
					ps, _, err := env.db.ListTrustPolicies(context.Background(), uiOrg, sot.Page{Size: 100})
					if err != nil {
						t.Fatal(err)
					}
					found := false
					for _, p := range ps {
						found = found || p.Name == name
					}
					if found != tt.saved {
						t.Fatalf("policy %q stored: %v, want %v", name, found, tt.saved)
					}
				}
			})
		}
	})

	t.Run("edit", func(t *testing.T) {
		bg := context.Background()
		ps, _, err := env.db.ListTrustPolicies(bg, uiOrg, sot.Page{Size: 100})
		if err != nil || len(ps) != 1 {
			t.Fatalf("%d policies: %v", len(ps), err)
		}
		path := fmt.Sprintf("/orgs/%s/trust-policies/%d", uiOrg, ps[0].ID)
		if st, body := post(admin, path, policy("ok", url.Values{"permission": {"self_rotate"}})); st != http.StatusBadRequest || !strings.Contains(body, "self_rotate is not allowed") {
			t.Fatalf("edit to self_rotate: %d", st)
		}
		if st, _ := post(admin, path, policy("renamed", url.Values{"ttl": {"1h"}, "conditions": {"repository_id = 43\nref = refs/heads/main"}})); st != http.StatusSeeOther {
			t.Fatalf("edit: %d", st)
		}
		p, err := env.db.FindTrustPolicy(bg, uiOrg, ps[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		if p.Name != "renamed" || p.TTL != time.Hour || p.Conditions["repository_id"] != "43" || p.Conditions["ref"] != "refs/heads/main" {
			t.Fatalf("after edit %+v", p)
		}

		// A policy that pins only names is flagged in the list.
		if st, _ := post(admin, "/orgs/acme/trust-policies", policy("names-only", url.Values{"conditions": {"repository = acme/web"}})); st != http.StatusSeeOther {
			t.Fatalf("names-only policy: %d", st)
		}
		_, list := get(t, admin, base+"/trust-policies")
		if n := strings.Count(list, "no immutable claim"); n != 1 {
			t.Fatalf("%d policies flagged for pinning no immutable claim, want 1 (names-only)", n)
		}

		wh := &sot.Webhook{Org: uiOrg, URL: "https://h.example/edit", Events: []string{sot.EventTokenCreated}, Secret: sot.NewWebhookSecret(), CreatedAt: time.Now()}
		if err := env.db.CreateWebhook(bg, wh); err != nil {
			t.Fatal(err)
		}
		hook := fmt.Sprintf("/orgs/%s/webhooks/%d", uiOrg, wh.ID)
		st, _ := post(admin, hook, url.Values{"csrf": {csrf}, "url": {"https://h.example/edited"}, "event": {"token.revoked", "token.rotated"}, "new_secret": {"1"}})
		if st != http.StatusSeeOther {
			t.Fatalf("edit webhook: %d", st)
		}
		st, page := get(t, admin, env.url+hook+"/created")
		secret := regexp.MustCompile(`whsec_[0-9a-f]{64}`).FindString(page)
		if st != http.StatusOK || secret == "" || secret == wh.Secret {
			t.Fatalf("replaced secret page: %d, secret %q", st, secret)
		}
		if _, again := get(t, admin, env.url+hook+"/created"); strings.Contains(again, "whsec_") {
			t.Fatal("the replaced secret is shown twice")
		}
		got, err := env.db.FindWebhook(bg, uiOrg, wh.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.URL != "https://h.example/edited" || strings.Join(got.Events, ",") != "token.revoked,token.rotated" {
			t.Fatalf("after edit %+v", got)
		}
	})

	t.Run("access", func(t *testing.T) {
		member := httpSession(t, env, uiMember)
		outsider := httpSession(t, env, "carol")
		for _, path := range []string{"/trust-policies", "/trust-policies/new", "/webhooks", "/webhooks/new"} {
			if st, _ := get(t, member, base+path); st != http.StatusForbidden {
				t.Errorf("member GET %s: %d, want 403", path, st)
			}
			if st, _ := get(t, outsider, base+path); st != http.StatusNotFound {
				t.Errorf("non-member GET %s: %d, want 404", path, st)
			}
		}
		// A member's own session and CSRF token do not let it create.
		_, mpage := get(t, member, base+"/projects")
		mcsrf := csrfField.FindStringSubmatch(mpage)[1]
		if st, _ := post(member, "/orgs/acme/webhooks", url.Values{"csrf": {mcsrf}, "url": {"https://h.example/m"}, "event": {"token.created"}}); st != http.StatusForbidden {
			t.Errorf("member POST webhook: %d, want 403", st)
		}
	})

	t.Run("no trusted issuer", func(t *testing.T) {
		ui, err := web.New(web.Config{Users: env.db, Orgs: env.db, Projects: env.db, Tokens: env.db, Audit: env.db, Auth: env.auth,
			TrustPolicies: env.db, Webhooks: env.db, SessionKey: []byte(strings.Repeat("k", 32))})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(ui)
		defer srv.Close()
		c := httpSession(t, &uiEnv{url: srv.URL, db: env.db, auth: env.auth}, uiAdmin)
		for _, path := range []string{"/trust-policies", "/trust-policies/new"} {
			st, page := get(t, c, srv.URL+"/orgs/"+uiOrg+path)
			if st != http.StatusOK || !strings.Contains(page, `id="no-issuers"`) || !strings.Contains(page, "--oidc-issuers") {
				t.Errorf("%s without issuers: %d, want the page to point at --oidc-issuers", path, st)
			}
			if strings.Contains(page, `id="policy-form"`) || strings.Contains(page, `id="new-policy"`) {
				t.Errorf("%s offers a policy form the server cannot accept", path)
			}
		}
	})
}
