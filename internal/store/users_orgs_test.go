package store

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/sot-dev/sot"
)

func TestUsers(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *DB) {
		ctx := t.Context()
		n, err := db.CountUsers(ctx)
		must(t, err)
		if n != 0 {
			t.Fatalf("fresh database has %d users", n)
		}
		u := &sot.User{Login: "alice", Name: "Alice", Admin: true}
		must(t, db.CreateUser(actorCtx(t), u, "$argon2id$hash"))
		if u.ID == 0 || u.CreatedAt.IsZero() {
			t.Fatalf("CreateUser did not set ID and CreatedAt: %+v", u)
		}
		wantCode(t, db.CreateUser(ctx, &sot.User{Login: "alice"}, ""), sot.ECONFLICT)

		got, err := db.FindUserByLogin(ctx, "alice")
		must(t, err)
		if *got != *u {
			t.Fatalf("FindUserByLogin = %+v, want %+v", got, u)
		}
		got, err = db.FindUserByID(ctx, u.ID)
		must(t, err)
		if *got != *u {
			t.Fatalf("FindUserByID = %+v, want %+v", got, u)
		}
		_, err = db.FindUserByLogin(ctx, "bob")
		wantCode(t, err, sot.ENOTFOUND)
		_, err = db.FindUserByID(ctx, 999)
		wantCode(t, err, sot.ENOTFOUND)

		pu, hash, err := db.PasswordHash(ctx, "alice")
		must(t, err)
		if hash != "$argon2id$hash" || pu.ID != u.ID {
			t.Fatalf("PasswordHash = %+v, %q", pu, hash)
		}
		_, _, err = db.PasswordHash(ctx, "bob")
		wantCode(t, err, sot.ENOTFOUND)

		for i := range 11 {
			mkUser(t, db, fmt.Sprintf("user%02d", i))
		}
		n, err = db.CountUsers(ctx)
		must(t, err)
		if n != 12 {
			t.Fatalf("CountUsers = %d, want 12", n)
		}
		all := collect(t, 5, func(p sot.Page) ([]*sot.User, string, error) { return db.ListUsers(ctx, p) })
		if len(all) != 12 {
			t.Fatalf("listed %d users, want 12", len(all))
		}
		for i := 1; i < len(all); i++ {
			if all[i].ID <= all[i-1].ID {
				t.Fatalf("users not in ID order: %d after %d", all[i].ID, all[i-1].ID)
			}
		}

		evs := events(t, db, "", sot.AuditFilter{Action: sot.ActionUserCreated, Target: "user:alice"})
		if len(evs) != 1 || evs[0].Actor.Name != "alice" || evs[0].Actor.IP != "192.0.2.1" || evs[0].Org != "" {
			t.Fatalf("user.created events = %+v", evs)
		}
		if _, ok := evs[0].Details["admin"]; !ok {
			t.Fatalf("details %v lack admin", evs[0].Details)
		}
	})
}

func TestOrgs(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *DB) {
		ctx := t.Context()
		alice := mkUser(t, db, "alice")
		bob := mkUser(t, db, "bob")
		org := &sot.Org{Key: "acme", Name: "Acme", Plan: sot.PlanTeam}
		must(t, db.CreateOrg(actorCtx(t), org, alice.ID))
		if org.ID == 0 || org.TokenPolicy != sot.DefaultTokenPolicy() {
			t.Fatalf("CreateOrg: %+v", org)
		}
		wantCode(t, db.CreateOrg(ctx, &sot.Org{Key: "acme", Name: "x", Plan: sot.PlanFree}, alice.ID), sot.ECONFLICT)
		wantCode(t, db.CreateOrg(ctx, &sot.Org{Key: "ghost", Name: "x", Plan: sot.PlanFree}, 999), sot.ENOTFOUND)
		if _, err := db.FindOrg(ctx, "ghost"); sot.ErrorCode(err) != sot.ENOTFOUND {
			t.Fatalf("an org with an unknown admin was stored (err %v)", err)
		}
		wantCode(t, db.CreateOrg(ctx, &sot.Org{Key: "bad", Name: "x", Plan: "gold"}, alice.ID), sot.EINVALID)

		got, err := db.FindOrg(ctx, "acme")
		must(t, err)
		if *got != *org {
			t.Fatalf("FindOrg = %+v, want %+v", got, org)
		}
		_, err = db.FindOrg(ctx, "nope")
		wantCode(t, err, sot.ENOTFOUND)

		ms, err := db.UserMemberships(ctx, alice.ID)
		must(t, err)
		if len(ms) != 1 || ms[0].Org != "acme" || ms[0].Role != sot.RoleAdmin || ms[0].Login != "alice" {
			t.Fatalf("UserMemberships = %+v", ms)
		}

		for i := range 7 {
			mkOrg(t, db, fmt.Sprintf("org%d", i), bob)
		}
		all := collect(t, 3, func(p sot.Page) ([]*sot.Org, string, error) { return db.ListOrgs(ctx, sot.OrgFilter{}, p) })
		if len(all) != 8 || !slices.IsSortedFunc(all, func(a, b *sot.Org) int { return strings.Compare(a.Key, b.Key) }) {
			t.Fatalf("ListOrgs: %d orgs, sorted %v", len(all), keysOf(all))
		}
		mine := collect(t, 3, func(p sot.Page) ([]*sot.Org, string, error) {
			return db.ListOrgs(ctx, sot.OrgFilter{MemberID: alice.ID}, p)
		})
		if len(mine) != 1 || mine[0].Key != "acme" {
			t.Fatalf("ListOrgs(member alice) = %v", keysOf(mine))
		}
		some, _, err := db.ListOrgs(ctx, sot.OrgFilter{Keys: []string{"org1", "org3", "nope"}}, sot.Page{})
		must(t, err)
		if !slices.Equal(keysOf(some), []string{"org1", "org3"}) {
			t.Fatalf("ListOrgs(keys) = %v", keysOf(some))
		}
		counts := []struct {
			name   string
			filter sot.OrgFilter
			want   int
		}{
			{"all", sot.OrgFilter{}, 8},
			{"member", sot.OrgFilter{MemberID: bob.ID}, 7},
			{"keys", sot.OrgFilter{Keys: []string{"acme", "org0"}}, 2},
			{"member and keys", sot.OrgFilter{MemberID: bob.ID, Keys: []string{"acme", "org0"}}, 1},
		}
		for _, c := range counts {
			n, err := db.CountOrgs(ctx, c.filter)
			must(t, err)
			if n != c.want {
				t.Errorf("CountOrgs(%s) = %d, want %d", c.name, n, c.want)
			}
		}
	})
}

func TestUpdateOrg(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *DB) {
		ctx := actorCtx(t)
		alice := mkUser(t, db, "alice")
		mkOrg(t, db, "acme", alice)
		changes := subscribe(t, db)

		name := "Acme Inc."
		got, err := db.UpdateOrg(ctx, "acme", sot.OrgUpdate{Name: &name})
		must(t, err)
		if got.Name != name {
			t.Fatalf("name %q", got.Name)
		}
		plan := sot.PlanEnterprise
		policy := sot.TokenPolicy{MaxLifetimeDays: 30, AllowNonExpiring: true, IdleWarningDays: 7}
		got, err = db.UpdateOrg(ctx, "acme", sot.OrgUpdate{Plan: &plan, TokenPolicy: &policy})
		must(t, err)
		if got.Plan != plan || got.TokenPolicy != policy {
			t.Fatalf("UpdateOrg = %+v", got)
		}
		waitChange(t, changes, sot.Change{Kind: sot.ChangeOrg, Org: "acme"})
		found, err := db.FindOrg(ctx, "acme")
		must(t, err)
		if *found != *got {
			t.Fatalf("FindOrg = %+v, want %+v", found, got)
		}

		bad := sot.TokenPolicy{MaxLifetimeDays: 0}
		_, err = db.UpdateOrg(ctx, "acme", sot.OrgUpdate{TokenPolicy: &bad})
		wantCode(t, err, sot.EINVALID)
		_, err = db.UpdateOrg(ctx, "nope", sot.OrgUpdate{Name: &name})
		wantCode(t, err, sot.ENOTFOUND)

		evs := events(t, db, "acme", sot.AuditFilter{Action: sot.ActionOrgUpdated})
		if len(evs) != 2 {
			t.Fatalf("%d org.updated events, want 2 (a no-op and a failure write none)", len(evs))
		}
		if _, ok := evs[1].Details["token_policy"]; !ok || evs[1].Details["plan"] != "enterprise" {
			t.Fatalf("details %v", evs[1].Details)
		}
		if created := events(t, db, "acme", sot.AuditFilter{Action: sot.ActionOrgCreated}); len(created) != 1 || created[0].Target != "org:acme" {
			t.Fatalf("org.created events %+v", created)
		}
	})
}

func TestMembers(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *DB) {
		ctx := actorCtx(t)
		alice := mkUser(t, db, "alice")
		bob := mkUser(t, db, "bob")
		mkOrg(t, db, "acme", alice)
		mkOrg(t, db, "other", bob)
		changes := subscribe(t, db)

		m, created, err := db.SetMember(ctx, "acme", "bob", sot.RoleMember)
		must(t, err)
		if !created || m.Role != sot.RoleMember || m.UserID != bob.ID || m.Org != "acme" || m.Name != bob.Name {
			t.Fatalf("SetMember = %+v, %v", m, created)
		}
		m, created, err = db.SetMember(ctx, "acme", "bob", sot.RoleMember)
		must(t, err)
		if created || m.Role != sot.RoleMember {
			t.Fatalf("repeated SetMember = %+v, %v", m, created)
		}
		_, _, err = db.SetMember(ctx, "acme", "bob", sot.RoleAdmin)
		must(t, err)
		waitChange(t, changes, sot.Change{Kind: sot.ChangeMember, Org: "acme", UserID: bob.ID})

		errs := []struct {
			name  string
			org   string
			login string
			role  sot.Role
			code  string
		}{
			{"unknown org", "nope", "bob", sot.RoleMember, sot.ENOTFOUND},
			{"unknown user", "acme", "carol", sot.RoleMember, sot.ENOTFOUND},
			{"invalid role", "acme", "bob", "owner", sot.EINVALID},
			{"demote last admin", "other", "bob", sot.RoleMember, sot.EINVALID},
		}
		for _, e := range errs {
			t.Run(e.name, func(t *testing.T) {
				_, _, err := db.SetMember(ctx, e.org, e.login, e.role)
				wantCode(t, err, e.code)
			})
		}

		for i := range 5 {
			u := mkUser(t, db, fmt.Sprintf("m%d", i))
			_, _, err := db.SetMember(ctx, "acme", u.Login, sot.RoleMember)
			must(t, err)
		}
		members := collect(t, 2, func(p sot.Page) ([]*sot.Membership, string, error) { return db.ListMembers(ctx, "acme", p) })
		var logins []string
		for _, m := range members {
			logins = append(logins, m.Login)
		}
		if want := []string{"alice", "bob", "m0", "m1", "m2", "m3", "m4"}; !slices.Equal(logins, want) {
			t.Fatalf("ListMembers = %v, want %v", logins, want)
		}
		_, _, err = db.ListMembers(ctx, "nope", sot.Page{})
		wantCode(t, err, sot.ENOTFOUND)

		must(t, db.RemoveMember(ctx, "acme", "alice")) // bob is still an admin
		waitChange(t, changes, sot.Change{Kind: sot.ChangeMember, Org: "acme", UserID: alice.ID})
		wantCode(t, db.RemoveMember(ctx, "acme", "bob"), sot.EINVALID)
		wantCode(t, db.RemoveMember(ctx, "acme", "alice"), sot.ENOTFOUND)
		wantCode(t, db.RemoveMember(ctx, "acme", "nobody"), sot.ENOTFOUND)
		wantCode(t, db.RemoveMember(ctx, "nope", "bob"), sot.ENOTFOUND)
		err = db.RemoveMember(ctx, "other", "alice")
		wantCode(t, err, sot.ENOTFOUND)

		ms, err := db.UserMemberships(ctx, bob.ID)
		must(t, err)
		if len(ms) != 2 || ms[0].Org != "acme" || ms[1].Org != "other" {
			t.Fatalf("UserMemberships(bob) = %+v", ms)
		}

		want := []string{sot.ActionMemberAdded, sot.ActionMemberRoleChanged}
		var got []string
		for _, ev := range events(t, db, "acme", sot.AuditFilter{Target: "member:bob"}) {
			got = append(got, ev.Action)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("events of member:bob = %v, want %v", got, want)
		}
		if evs := events(t, db, "acme", sot.AuditFilter{Action: sot.ActionMemberRemoved}); len(evs) != 1 || evs[0].Target != "member:alice" {
			t.Fatalf("member.removed events %+v", evs)
		}
	})
}

func keysOf(orgs []*sot.Org) []string {
	var out []string
	for _, o := range orgs {
		out = append(out, o.Key)
	}
	return out
}

// TestLastAdminConcurrent removes both admins of an organization at once:
// exactly one removal may succeed.
func TestLastAdminConcurrent(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *DB) {
		ctx := actorCtx(t)
		alice := mkUser(t, db, "alice")
		mkUser(t, db, "bob")
		mkOrg(t, db, "acme", alice)
		for round := range 5 {
			_, _, err := db.SetMember(ctx, "acme", "alice", sot.RoleAdmin)
			must(t, err)
			_, _, err = db.SetMember(ctx, "acme", "bob", sot.RoleAdmin)
			must(t, err)
			errs := make([]error, 2)
			var wg sync.WaitGroup
			for i, login := range []string{"alice", "bob"} {
				wg.Go(func() {
					if round%2 == 0 {
						errs[i] = db.RemoveMember(ctx, "acme", login)
					} else {
						_, _, errs[i] = db.SetMember(ctx, "acme", login, sot.RoleMember)
					}
				})
			}
			wg.Wait()
			if (errs[0] == nil) == (errs[1] == nil) {
				t.Fatalf("round %d: errors %v and %v, want exactly one refusal", round, errs[0], errs[1])
			}
			for _, err := range errs {
				if err != nil {
					wantCode(t, err, sot.EINVALID)
				}
			}
		}
	})
}
