package store

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sot-dev/sot"
)

func mkTrustPolicy(t *testing.T, db *DB, org, name string, scope sot.Scope) *sot.TrustPolicy {
	t.Helper()
	p := &sot.TrustPolicy{Org: org, Name: name, Issuer: "https://token.actions.githubusercontent.com", Audience: "sot",
		Conditions: map[string]string{"repository_owner_id": "4242", "ref": "refs/heads/*"}, Scope: scope,
		Permissions: sot.NewPermissionSet(sot.PermissionScan), TTL: 15 * time.Minute,
		CreatedBy: sot.UserRef{ID: 1, Login: "alice"}}
	must(t, db.CreateTrustPolicy(actorCtx(t), p))
	return p
}

func mintOIDCToken(t *testing.T, db *DB, org *sot.Org, p *sot.TrustPolicy, now time.Time) (*sot.Token, error) {
	t.Helper()
	tok := &sot.IDToken{Issuer: p.Issuer, Subject: "repo:acme/web:ref:refs/heads/main",
		Claims: map[string]any{"repository": "acme/web", "ref": "refs/heads/main", "run_id": "77"}}
	mt, secret, err := sot.PrepareOIDCToken(org, p, sot.IdentityOf(tok, p), now)
	must(t, err)
	return mt, db.CreateOIDCToken(actorCtx(t), mt, sot.HashSecret(secret))
}

func TestTrustPolicies(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *DB) {
		ctx := actorCtx(t)
		alice := mkUser(t, db, "alice")
		mkOrg(t, db, "acme", alice)
		mkOrg(t, db, "other", alice)
		mkProjects(t, db, "acme", "web", "api")

		p := mkTrustPolicy(t, db, "acme", "deploy", sot.Scope{Projects: []string{"web", "api", "web"}})
		if p.ID == 0 || p.CreatedAt.IsZero() {
			t.Fatalf("created %+v", p)
		}
		got, err := db.FindTrustPolicy(ctx, "acme", p.ID)
		must(t, err)
		if got.Name != "deploy" || got.Conditions["ref"] != "refs/heads/*" || got.TTL != 15*time.Minute ||
			!slices.Equal(got.Scope.Projects, []string{"web", "api"}) || got.CreatedBy.Login != "alice" {
			t.Errorf("found %+v", got)
		}
		_, err = db.FindTrustPolicy(ctx, "other", p.ID)
		wantCode(t, err, sot.ENOTFOUND)

		dup := *p
		dup.ID = 0
		wantCode(t, db.CreateTrustPolicy(ctx, &dup), sot.ECONFLICT)
		unknown := *p
		unknown.Name, unknown.Scope = "x", sot.Scope{Projects: []string{"web", "nope"}}
		err = db.CreateTrustPolicy(ctx, &unknown)
		wantCode(t, err, sot.EINVALID)
		if sot.ErrorMessage(err) != `unknown projects: "nope"` {
			t.Errorf("message %q", sot.ErrorMessage(err))
		}

		second := mkTrustPolicy(t, db, "acme", "second", sot.Scope{AllProjects: true})
		mkTrustPolicy(t, db, "other", "elsewhere", sot.Scope{AllProjects: true})
		all := collect(t, 1, func(pg sot.Page) ([]*sot.TrustPolicy, string, error) { return db.ListTrustPolicies(ctx, "acme", pg) })
		if len(all) != 2 || all[0].ID != p.ID || all[1].ID != second.ID {
			t.Errorf("listed %d policies", len(all))
		}
		byIssuer, err := db.TrustPoliciesForIssuer(ctx, "acme", p.Issuer)
		must(t, err)
		if len(byIssuer) != 2 {
			t.Errorf("%d policies for the issuer, want 2", len(byIssuer))
		}
		none, err := db.TrustPoliciesForIssuer(ctx, "nosuchorg", p.Issuer)
		if err != nil || len(none) != 0 {
			t.Errorf("unknown org: %v, %d", err, len(none))
		}

		name, ttl := "deploy-main", time.Hour
		conds := map[string]string{"repository_id": "1001"}
		upd, err := db.UpdateTrustPolicy(ctx, "acme", p.ID, sot.TrustPolicyUpdate{Name: &name, TTL: &ttl, Conditions: &conds})
		must(t, err)
		if upd.Name != name || upd.TTL != ttl || len(upd.Conditions) != 1 || upd.Issuer != p.Issuer {
			t.Errorf("updated %+v", upd)
		}
		taken := "second"
		_, err = db.UpdateTrustPolicy(ctx, "acme", p.ID, sot.TrustPolicyUpdate{Name: &taken})
		wantCode(t, err, sot.ECONFLICT)
		_, err = db.UpdateTrustPolicy(ctx, "other", p.ID, sot.TrustPolicyUpdate{Name: &name})
		wantCode(t, err, sot.ENOTFOUND)

		var actions []string
		for _, ev := range events(t, db, "acme", sot.AuditFilter{}) {
			actions = append(actions, ev.Action)
		}
		want := []string{sot.ActionTrustPolicyCreated, sot.ActionTrustPolicyCreated, sot.ActionTrustPolicyUpdated}
		if !slices.Equal(actions[len(actions)-3:], want) {
			t.Errorf("audit %v, want to end with %v", actions, want)
		}
	})
}

func TestOIDCTokens(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *DB) {
		ctx := actorCtx(t)
		alice := mkUser(t, db, "alice")
		org := mkOrg(t, db, "acme", alice)
		mkProjects(t, db, "acme", "web", "api")
		p := mkTrustPolicy(t, db, "acme", "deploy", sot.Scope{Projects: []string{"web", "api"}})
		// A project of the policy's scope deleted since: left out.
		must(t, db.DeleteProject(ctx, "acme", "api"))

		var changes []sot.Change
		var mu sync.Mutex
		db.Subscribe(t.Context(), func(c sot.Change) {
			mu.Lock()
			defer mu.Unlock()
			changes = append(changes, c)
		})

		now := time.Now()
		mt, err := mintOIDCToken(t, db, org, p, now)
		must(t, err)
		got, err := db.FindToken(ctx, sot.TokenOwner{Org: "acme"}, mt.ID)
		must(t, err)
		if got.Source != sot.TokenSourceOIDC || got.TrustPolicyID != p.ID || got.OIDC == nil ||
			got.OIDC.Repository != "acme/web" || got.OIDC.RunID != "77" || got.OIDC.PolicyName != "deploy" {
			t.Fatalf("found %+v (identity %+v)", got, got.OIDC)
		}
		if !slices.Equal(got.Scope.Projects, []string{"web"}) || got.ProjectCount != 1 {
			t.Errorf("scope %v (%d), want [web]", got.Scope.Projects, got.ProjectCount)
		}
		if got.ExpiresAt == nil || !got.ExpiresAt.Equal(now.UTC().Truncate(time.Second).Add(15*time.Minute)) {
			t.Errorf("expires %v", got.ExpiresAt)
		}
		listed, _, err := db.ListTokens(ctx, sot.TokenOwner{Org: "acme"}, sot.TokenFilter{}, sot.Page{})
		must(t, err)
		if len(listed) != 1 || listed[0].OIDC == nil || listed[0].TrustPolicyID != p.ID {
			t.Errorf("listed %+v", listed)
		}
		ex := events(t, db, "acme", sot.AuditFilter{Action: sot.ActionTokenExchanged})
		if len(ex) != 1 || ex[0].Details["repository"] != "acme/web" || ex[0].Details["run_id"] != "77" ||
			ex[0].Details["trust_policy"] != "deploy" || ex[0].Details["subject"] == nil {
			t.Errorf("token.exchanged events %+v", ex)
		}

		// An expired one is not revoked again by the deletion.
		old, err := mintOIDCToken(t, db, org, p, now.Add(-time.Hour))
		must(t, err)
		n, err := db.DeleteTrustPolicy(ctx, "acme", p.ID, now)
		must(t, err)
		if n != 1 {
			t.Errorf("revoked %d tokens, want 1", n)
		}
		got, err = db.FindToken(ctx, sot.TokenOwner{Org: "acme"}, mt.ID)
		must(t, err)
		if got.RevokedAt == nil {
			t.Error("the policy's live token is not revoked")
		}
		if o, _ := db.FindToken(ctx, sot.TokenOwner{Org: "acme"}, old.ID); o.RevokedAt != nil {
			t.Error("an expired token was revoked")
		}
		mu.Lock()
		published := slices.ContainsFunc(changes, func(c sot.Change) bool { return c.Kind == sot.ChangeToken && c.TokenID == mt.ID })
		mu.Unlock()
		if !published {
			t.Error("no token change published for the revoked token")
		}
		_, err = db.FindTrustPolicy(ctx, "acme", p.ID)
		wantCode(t, err, sot.ENOTFOUND)
		_, err = mintOIDCToken(t, db, org, p, now)
		wantCode(t, err, sot.ENOTFOUND)
		_, err = db.DeleteTrustPolicy(ctx, "acme", p.ID, now)
		wantCode(t, err, sot.ENOTFOUND)
		del := events(t, db, "acme", sot.AuditFilter{Action: sot.ActionTrustPolicyDeleted})
		if len(del) != 1 || del[0].Details["revoked_tokens"] != float64(1) {
			t.Errorf("trust_policy.deleted events %+v", del)
		}
	})
}
