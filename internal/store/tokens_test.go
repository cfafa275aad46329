package store

import (
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sot-dev/sot"
)

// mkToken stores an organization token of org with scope and returns it;
// its secret hash is tokenHash(t.ID's name).
func mkToken(t *testing.T, db *DB, org string, scope sot.Scope) *sot.Token {
	t.Helper()
	tok, _ := mkTokenWith(t, db, &sot.Token{Kind: sot.TokenKindOrg, Org: org, Scope: scope})
	return tok
}

// mkTokenWith fills the usual fields of tok, stores it with a fresh
// secret and returns it with the secret's hash.
func mkTokenWith(t *testing.T, db *DB, tok *sot.Token) (*sot.Token, sot.SecretHash) {
	t.Helper()
	secret := sot.NewSecret(tok.Kind)
	if tok.Name == "" {
		tok.Name = "ci"
	}
	if tok.Kind == sot.TokenKindOrg && tok.Permissions == 0 {
		tok.Permissions = sot.NewPermissionSet(sot.PermissionScan, sot.PermissionBrowse)
	}
	tok.Hint = sot.SecretHint(secret)
	tok.Source = sot.TokenSourceAPI
	tok.CreatedBy = sot.UserRef{ID: 1, Login: "alice"}
	hash := sot.HashSecret(secret)
	must(t, db.CreateToken(actorCtx(t), tok, hash))
	return tok, hash
}

func TestCreateAndFindToken(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *DB) {
		ctx := t.Context()
		alice := mkUser(t, db, "alice")
		mkOrg(t, db, "acme", alice)
		mkOrg(t, db, "other", alice)
		mkProjects(t, db, "acme", "web", "api", "docs")
		mkProjects(t, db, "other", "secret")

		exp := time.Now().Add(30 * sot.Day).UTC().Truncate(time.Second)
		in := &sot.Token{
			Kind:         sot.TokenKindOrg,
			Org:          "acme",
			Description:  "deploys",
			Scope:        sot.Scope{Projects: []string{"web", "api"}, Patterns: []string{"doc.*"}},
			AllowedCIDRs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")},
			ExpiresAt:    &exp,
		}
		tok, hash := mkTokenWith(t, db, in)
		if tok.ID == 0 || tok.ProjectCount != 2 || tok.CreatedAt.IsZero() {
			t.Fatalf("CreateToken: %+v", tok)
		}

		got, err := db.FindToken(ctx, sot.TokenOwner{Org: "acme"}, tok.ID)
		must(t, err)
		if !slices.Equal(got.Scope.Projects, []string{"api", "web"}) || !slices.Equal(got.Scope.Patterns, []string{"doc.*"}) {
			t.Fatalf("scope %+v", got.Scope)
		}
		if !got.ExpiresAt.Equal(exp) || got.ExpiresAt.Location() != time.UTC || !got.CreatedAt.Equal(tok.CreatedAt) {
			t.Fatalf("times: expires %v created %v, want %v %v", got.ExpiresAt, got.CreatedAt, exp, tok.CreatedAt)
		}
		if !slices.Equal(got.AllowedCIDRs, in.AllowedCIDRs) || got.Permissions != in.Permissions || got.Hint != in.Hint ||
			got.CreatedBy != in.CreatedBy || got.Description != "deploys" || got.Org != "acme" || got.Kind != sot.TokenKindOrg {
			t.Fatalf("FindToken = %+v, want %+v", got, in)
		}

		// An ID of one organization asked under another is not found.
		_, err = db.FindToken(ctx, sot.TokenOwner{Org: "other"}, tok.ID)
		wantCode(t, err, sot.ENOTFOUND)
		_, err = db.FindToken(ctx, sot.TokenOwner{UserID: alice.ID}, tok.ID)
		wantCode(t, err, sot.ENOTFOUND)
		_, err = db.FindToken(ctx, sot.TokenOwner{Org: "nope"}, tok.ID)
		wantCode(t, err, sot.ENOTFOUND)
		_, err = db.FindToken(ctx, sot.TokenOwner{}, tok.ID)
		wantCode(t, err, sot.ENOTFOUND)

		byHash, err := db.TokenBySecretHash(ctx, hash)
		must(t, err)
		if byHash.ID != tok.ID || byHash.Scope.Projects != nil || byHash.ProjectCount != 2 {
			t.Fatalf("TokenBySecretHash = %+v", byHash)
		}
		_, err = db.TokenBySecretHash(ctx, sot.HashSecret("unknown"))
		wantCode(t, err, sot.ENOTFOUND)
		keys, err := db.TokenProjectKeys(ctx, tok.ID)
		must(t, err)
		if !slices.Equal(keys, []string{"api", "web"}) {
			t.Fatalf("TokenProjectKeys = %v", keys)
		}

		evs := events(t, db, "acme", sot.AuditFilter{Action: sot.ActionTokenCreated})
		if len(evs) != 1 || evs[0].Target != fmt.Sprintf("token:%d", tok.ID) || evs[0].Details["scope"] != "1 pattern, 2 projects" {
			t.Fatalf("token.created events %+v", evs)
		}
		for k, v := range evs[0].Details {
			if s, ok := v.(string); ok && (s == tok.Hint || len(s) >= 60) {
				t.Fatalf("details carry %s=%q", k, s)
			}
		}
	})
}

func TestCreateTokenUnknownProjects(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *DB) {
		alice := mkUser(t, db, "alice")
		mkOrg(t, db, "acme", alice)
		mkOrg(t, db, "other", alice)
		mkProjects(t, db, "acme", "web")
		mkProjects(t, db, "other", "theirs")
		keys := []string{"web", "theirs"}
		for i := range 30 {
			keys = append(keys, fmt.Sprintf("missing%02d", i))
		}
		tok := &sot.Token{Kind: sot.TokenKindOrg, Org: "acme", Name: "ci", Scope: sot.Scope{Projects: keys},
			Permissions: sot.NewPermissionSet(sot.PermissionScan), Hint: "sot_…x", Source: sot.TokenSourceAPI}
		err := db.CreateToken(actorCtx(t), tok, sot.HashSecret(sot.NewSecret(sot.TokenKindOrg)))
		wantCode(t, err, sot.EINVALID)
		msg := sot.ErrorMessage(err)
		want := `unknown projects: "theirs", "missing00", "missing01", "missing02", "missing03", "missing04", "missing05", ` +
			`"missing06", "missing07", "missing08", "missing09", "missing10", "missing11", "missing12", "missing13", ` +
			`"missing14", "missing15", "missing16", "missing17", "missing18" and 11 more`
		if msg != want {
			t.Fatalf("message\n%s\nwant\n%s", msg, want)
		}
		if f := sot.ErrorFields(err); len(f) != 1 || f[0].Field != "scope.projects" {
			t.Fatalf("fields %+v", f)
		}
		list, _, err := db.ListTokens(t.Context(), sot.TokenOwner{Org: "acme"}, sot.TokenFilter{State: sot.TokenStateAll}, sot.Page{})
		must(t, err)
		if len(list) != 0 || len(events(t, db, "acme", sot.AuditFilter{Action: sot.ActionTokenCreated})) != 0 {
			t.Fatal("a refused token was stored or audited")
		}
		wantCode(t, db.CreateToken(actorCtx(t), &sot.Token{Kind: sot.TokenKindOrg, Org: "nope", Name: "x"}, sot.SecretHash{}), sot.ENOTFOUND)
	})
}

func TestPersonalTokens(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *DB) {
		ctx := t.Context()
		alice := mkUser(t, db, "alice")
		bob := mkUser(t, db, "bob")
		mkOrg(t, db, "acme", alice)
		tok, hash := mkTokenWith(t, db, &sot.Token{Kind: sot.TokenKindPersonal, UserID: alice.ID, Name: "laptop"})
		got, err := db.FindToken(ctx, sot.TokenOwner{UserID: alice.ID}, tok.ID)
		must(t, err)
		if got.Kind != sot.TokenKindPersonal || got.UserID != alice.ID || got.Org != "" {
			t.Fatalf("FindToken = %+v", got)
		}
		_, err = db.FindToken(ctx, sot.TokenOwner{UserID: bob.ID}, tok.ID)
		wantCode(t, err, sot.ENOTFOUND)
		_, err = db.FindToken(ctx, sot.TokenOwner{Org: "acme"}, tok.ID)
		wantCode(t, err, sot.ENOTFOUND)
		byHash, err := db.TokenBySecretHash(ctx, hash)
		must(t, err)
		if byHash.ID != tok.ID || byHash.UserID != alice.ID {
			t.Fatalf("TokenBySecretHash = %+v", byHash)
		}
		name := "desktop"
		upd, err := db.UpdateToken(actorCtx(t), sot.TokenOwner{UserID: alice.ID}, tok.ID, sot.TokenUpdate{Name: &name})
		must(t, err)
		if upd.Name != name {
			t.Fatalf("UpdateToken = %+v", upd)
		}
		perms := sot.NewPermissionSet(sot.PermissionScan)
		_, err = db.UpdateToken(ctx, sot.TokenOwner{UserID: alice.ID}, tok.ID, sot.TokenUpdate{Permissions: &perms})
		wantCode(t, err, sot.EINVALID)
		if evs := events(t, db, "", sot.AuditFilter{Target: fmt.Sprintf("token:%d", tok.ID)}); len(evs) != 2 {
			t.Fatalf("personal token events %+v", evs)
		}
		list, _, err := db.ListTokens(ctx, sot.TokenOwner{UserID: alice.ID}, sot.TokenFilter{}, sot.Page{})
		must(t, err)
		if len(list) != 1 || list[0].ID != tok.ID {
			t.Fatalf("ListTokens(alice) = %+v", list)
		}
		wantCode(t, db.CreateToken(ctx, &sot.Token{Kind: sot.TokenKindPersonal, UserID: 999, Name: "x"}, sot.HashSecret("x")), sot.ENOTFOUND)
	})
}

func TestListTokenStates(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *DB) {
		ctx := actorCtx(t)
		alice := mkUser(t, db, "alice")
		mkOrg(t, db, "acme", alice)
		mkOrg(t, db, "other", alice)
		now := time.Now().UTC().Truncate(time.Second)
		past, future := now.Add(-time.Hour), now.Add(time.Hour)
		var active, expired, revoked []int64
		for i := range 7 {
			tok, _ := mkTokenWith(t, db, &sot.Token{Kind: sot.TokenKindOrg, Org: "acme", Scope: sot.Scope{AllProjects: true}, ExpiresAt: &future})
			active = append(active, tok.ID)
			tok, _ = mkTokenWith(t, db, &sot.Token{Kind: sot.TokenKindOrg, Org: "acme", Scope: sot.Scope{AllProjects: true}, ExpiresAt: &past})
			expired = append(expired, tok.ID)
			tok, _ = mkTokenWith(t, db, &sot.Token{Kind: sot.TokenKindOrg, Org: "acme", Scope: sot.Scope{AllProjects: true}})
			if i%2 == 0 {
				_, err := db.RevokeToken(ctx, sot.TokenOwner{Org: "acme"}, tok.ID, now)
				must(t, err)
				revoked = append(revoked, tok.ID)
			} else {
				active = append(active, tok.ID)
			}
		}
		mkToken(t, db, "other", sot.Scope{AllProjects: true})
		all := slices.Concat(active, expired, revoked)
		tests := []struct {
			state sot.TokenState
			want  []int64
		}{
			{"", active},
			{sot.TokenStateActive, active},
			{sot.TokenStateExpired, expired},
			{sot.TokenStateRevoked, revoked},
			{sot.TokenStateAll, all},
		}
		for _, tt := range tests {
			t.Run(string(tt.state), func(t *testing.T) {
				toks := collect(t, 3, func(p sot.Page) ([]*sot.Token, string, error) {
					return db.ListTokens(t.Context(), sot.TokenOwner{Org: "acme"}, sot.TokenFilter{State: tt.state, Now: now}, p)
				})
				var ids []int64
				for _, tok := range toks {
					ids = append(ids, tok.ID)
					if tok.State(now) != tt.state && tt.state != sot.TokenStateAll && tt.state != "" {
						t.Errorf("token %d is %s", tok.ID, tok.State(now))
					}
				}
				if !slices.IsSortedFunc(ids, func(a, b int64) int { return int(b - a) }) {
					t.Fatalf("not newest first: %v", ids)
				}
				want := slices.Clone(tt.want)
				slices.Sort(want)
				slices.Sort(ids)
				if !slices.Equal(ids, want) {
					t.Fatalf("ids %v, want %v", ids, want)
				}
			})
		}
		_, _, err := db.ListTokens(ctx, sot.TokenOwner{Org: "acme"}, sot.TokenFilter{State: "lost"}, sot.Page{})
		wantCode(t, err, sot.EINVALID)
		_, _, err = db.ListTokens(ctx, sot.TokenOwner{Org: "nope"}, sot.TokenFilter{}, sot.Page{})
		wantCode(t, err, sot.ENOTFOUND)
	})
}

func TestUpdateToken(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *DB) {
		ctx := actorCtx(t)
		alice := mkUser(t, db, "alice")
		mkOrg(t, db, "acme", alice)
		mkOrg(t, db, "other", alice)
		mkProjects(t, db, "acme", "a", "b", "c", "d")
		mkProjects(t, db, "other", "x")
		tok := mkToken(t, db, "acme", sot.Scope{Projects: []string{"a", "b"}})
		changes := subscribe(t, db)
		owner := sot.TokenOwner{Org: "acme"}

		name, desc := "deploy", "new"
		perms := sot.NewPermissionSet(sot.PermissionBrowse)
		cidrs := []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
		got, err := db.UpdateToken(ctx, owner, tok.ID, sot.TokenUpdate{
			Name: &name, Description: &desc, Permissions: &perms, AllowedCIDRs: &cidrs,
			Scope: &sot.Scope{Projects: []string{"c", "d", "b"}, Patterns: []string{"z.*"}},
		})
		must(t, err)
		if got.Name != name || got.Description != desc || got.Permissions != perms || !slices.Equal(got.AllowedCIDRs, cidrs) ||
			got.ProjectCount != 3 || !slices.Equal(got.Scope.Projects, []string{"b", "c", "d"}) || !slices.Equal(got.Scope.Patterns, []string{"z.*"}) {
			t.Fatalf("UpdateToken = %+v", got)
		}
		waitChange(t, changes, sot.Change{Kind: sot.ChangeToken, Org: "acme", TokenID: tok.ID})
		found, err := db.FindToken(ctx, owner, tok.ID)
		must(t, err)
		if !slices.Equal(found.Scope.Projects, got.Scope.Projects) || found.ProjectCount != 3 || found.Name != name {
			t.Fatalf("FindToken after update = %+v", found)
		}

		got, err = db.UpdateToken(ctx, owner, tok.ID, sot.TokenUpdate{Scope: &sot.Scope{AllProjects: true}})
		must(t, err)
		if !got.Scope.AllProjects || got.ProjectCount != 0 || got.Scope.Projects != nil || got.Scope.Patterns != nil {
			t.Fatalf("all-projects update = %+v", got.Scope)
		}
		keys, err := db.TokenProjectKeys(ctx, tok.ID)
		must(t, err)
		if len(keys) != 0 {
			t.Fatalf("explicit keys left: %v", keys)
		}

		_, err = db.UpdateToken(ctx, owner, tok.ID, sot.TokenUpdate{Scope: &sot.Scope{Projects: []string{"a", "x"}}})
		wantCode(t, err, sot.EINVALID)
		if sot.ErrorMessage(err) != `unknown projects: "x"` {
			t.Fatalf("message %q", sot.ErrorMessage(err))
		}
		_, err = db.UpdateToken(ctx, sot.TokenOwner{Org: "other"}, tok.ID, sot.TokenUpdate{Name: &name})
		wantCode(t, err, sot.ENOTFOUND)

		evs := events(t, db, "acme", sot.AuditFilter{Action: sot.ActionTokenUpdated})
		if len(evs) != 2 {
			t.Fatalf("%d token.updated events, want 2", len(evs))
		}
		if evs[0].Details["scope"] != "1 pattern, 3 projects" || evs[0].Details["name"] != name {
			t.Fatalf("details %v", evs[0].Details)
		}
	})
}

func TestRevokeToken(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *DB) {
		ctx := actorCtx(t)
		alice := mkUser(t, db, "alice")
		mkOrg(t, db, "acme", alice)
		mkOrg(t, db, "other", alice)
		tok := mkToken(t, db, "acme", sot.Scope{AllProjects: true})
		at := time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)
		_, err := db.RevokeToken(ctx, sot.TokenOwner{Org: "other"}, tok.ID, at)
		wantCode(t, err, sot.ENOTFOUND)
		got, err := db.RevokeToken(ctx, sot.TokenOwner{Org: "acme"}, tok.ID, at)
		must(t, err)
		if got.RevokedAt == nil || !got.RevokedAt.Equal(at.Truncate(time.Second)) {
			t.Fatalf("revoked at %v", got.RevokedAt)
		}
		again, err := db.RevokeToken(ctx, sot.TokenOwner{Org: "acme"}, tok.ID, at.Add(time.Hour))
		must(t, err)
		if !again.RevokedAt.Equal(*got.RevokedAt) {
			t.Fatalf("second revocation moved revoked_at to %v", again.RevokedAt)
		}
		if evs := events(t, db, "acme", sot.AuditFilter{Action: sot.ActionTokenRevoked}); len(evs) != 1 || evs[0].Actor.IP != "192.0.2.1" {
			t.Fatalf("token.revoked events %+v", evs)
		}
	})
}

func TestRecordTokenUses(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *DB) {
		ctx := t.Context()
		alice := mkUser(t, db, "alice")
		mkOrg(t, db, "acme", alice)
		a := mkToken(t, db, "acme", sot.Scope{AllProjects: true})
		b := mkToken(t, db, "acme", sot.Scope{AllProjects: true})
		t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
		must(t, db.RecordTokenUses(ctx, nil))
		must(t, db.RecordTokenUses(ctx, []sot.TokenUse{
			{TokenID: a.ID, At: t0.Add(time.Minute), IP: "192.0.2.2"},
			{TokenID: a.ID, At: t0, IP: "192.0.2.1"},
			{TokenID: b.ID, At: t0, IP: "2001:db8::1"},
			{TokenID: 99999, At: t0, IP: "192.0.2.9"}, // a token that does not exist is skipped
		}))
		// An older batch arriving late changes nothing.
		must(t, db.RecordTokenUses(ctx, []sot.TokenUse{{TokenID: a.ID, At: t0, IP: "192.0.2.3"}}))
		tests := []struct {
			id   int64
			at   time.Time
			ip   string
			name string
		}{
			{a.ID, t0.Add(time.Minute), "192.0.2.2", "latest kept"},
			{b.ID, t0, "2001:db8::1", "ipv6"},
		}
		for _, tt := range tests {
			got, err := db.FindToken(ctx, sot.TokenOwner{Org: "acme"}, tt.id)
			must(t, err)
			if got.LastUsedAt == nil || !got.LastUsedAt.Equal(tt.at) || got.LastUsedIP != tt.ip {
				t.Errorf("%s: last used %v from %q, want %v from %q", tt.name, got.LastUsedAt, got.LastUsedIP, tt.at, tt.ip)
			}
		}
	})
}

func TestProjectDeletionCascade(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *DB) {
		ctx := actorCtx(t)
		alice := mkUser(t, db, "alice")
		mkOrg(t, db, "acme", alice)
		mkProjects(t, db, "acme", "web", "api")
		tok := mkToken(t, db, "acme", sot.Scope{Projects: []string{"web", "api"}})
		other := mkToken(t, db, "acme", sot.Scope{Projects: []string{"api"}})
		must(t, db.CreateAnalysis(ctx, &sot.Analysis{Org: "acme", Project: "web", Branch: "main"}, stringsReader("report"), 100))

		must(t, db.DeleteProject(ctx, "acme", "web"))
		wantCode(t, db.DeleteProject(ctx, "acme", "web"), sot.ENOTFOUND)
		got, err := db.FindToken(ctx, sot.TokenOwner{Org: "acme"}, tok.ID)
		must(t, err)
		if got.ProjectCount != 1 || !slices.Equal(got.Scope.Projects, []string{"api"}) {
			t.Fatalf("token after deletion: count %d, projects %v", got.ProjectCount, got.Scope.Projects)
		}
		got, err = db.FindToken(ctx, sot.TokenOwner{Org: "acme"}, other.ID)
		must(t, err)
		if got.ProjectCount != 1 {
			t.Fatalf("unrelated token count %d", got.ProjectCount)
		}
		// A new project with the same key is not in the old scope.
		mkProjects(t, db, "acme", "web")
		keys, err := db.TokenProjectKeys(ctx, tok.ID)
		must(t, err)
		if !slices.Equal(keys, []string{"api"}) {
			t.Fatalf("keys %v", keys)
		}
		list, _, err := db.ListAnalyses(ctx, "acme", "web", sot.Page{})
		must(t, err)
		if len(list) != 0 {
			t.Fatalf("analyses survived their project: %+v", list)
		}
		evs := events(t, db, "acme", sot.AuditFilter{Action: sot.ActionProjectDeleted})
		if len(evs) != 1 || evs[0].Target != "project:web" {
			t.Fatalf("project.deleted events %+v", evs)
		}
	})
}

func TestConcurrentWriters(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *DB) {
		alice := mkUser(t, db, "alice")
		mkOrg(t, db, "acme", alice)
		mkProjects(t, db, "acme", "web")
		const writers, each = 16, 15
		var wg sync.WaitGroup
		errs := make(chan error, writers*each)
		for w := range writers {
			wg.Go(func() {
				ctx := actorCtx(t)
				for i := range each {
					if err := db.CreateProject(ctx, &sot.Project{Org: "acme", Key: fmt.Sprintf("p%d-%d", w, i), Name: "x"}); err != nil {
						errs <- err
						continue
					}
					tok := &sot.Token{Kind: sot.TokenKindOrg, Org: "acme", Name: "t", Scope: sot.Scope{Projects: []string{"web"}},
						Permissions: sot.NewPermissionSet(sot.PermissionScan), Hint: "h", Source: "api"}
					if err := db.CreateToken(ctx, tok, sot.HashSecret(sot.NewSecret(sot.TokenKindOrg))); err != nil {
						errs <- err
						continue
					}
					if err := db.RecordTokenUses(ctx, []sot.TokenUse{{TokenID: tok.ID, At: time.Now(), IP: "192.0.2.1"}}); err != nil {
						errs <- err
					}
					if _, _, err := db.ListProjects(ctx, "acme", sot.ProjectFilter{}, sot.Page{Size: 10}); err != nil {
						errs <- err
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		n, err := db.CountProjects(t.Context(), "acme", sot.ProjectFilter{})
		must(t, err)
		if n != writers*each+1 {
			t.Fatalf("%d projects, want %d", n, writers*each+1)
		}
	})
}
