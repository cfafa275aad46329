package store

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sot-dev/sot"
)

// fillForCopy writes rows into every table of db.
func fillForCopy(t *testing.T, db *DB) (tok *sot.Token, hash sot.SecretHash, analysis *sot.Analysis) {
	t.Helper()
	ctx := actorCtx(t)
	alice := mkUser(t, db, "alice")
	bob := mkUser(t, db, "bob")
	mkOrg(t, db, "acme", alice)
	mkOrg(t, db, "zeta", bob)
	_, _, err := db.SetMember(ctx, "acme", "bob", sot.RoleMember)
	must(t, err)
	for i := range 30 {
		mkProjects(t, db, "acme", fmt.Sprintf("p%02d", i))
	}
	mkProjects(t, db, "acme", "gone")
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	tok, hash = mkTokenWith(t, db, &sot.Token{Kind: sot.TokenKindOrg, Org: "acme", ExpiresAt: &exp,
		Scope: sot.Scope{Projects: []string{"p01", "p02", "gone"}, Patterns: []string{"p1.*"}}})
	mkToken(t, db, "acme", sot.Scope{AllProjects: true})
	mkTokenWith(t, db, &sot.Token{Kind: sot.TokenKindPersonal, UserID: bob.ID, Name: "laptop"})
	must(t, db.DeleteProject(ctx, "acme", "gone")) // leaves a gap in project IDs
	must(t, db.RecordTokenUses(ctx, []sot.TokenUse{{TokenID: tok.ID, At: time.Now(), IP: "192.0.2.5"}}))
	analysis = &sot.Analysis{Org: "acme", Project: "p03", Branch: "main", Commit: "c0ffee"}
	must(t, db.CreateAnalysis(ctx, analysis, bytes.NewReader(bytes.Repeat([]byte{0, 1, 2, 255}, 5000)), 1<<20))
	must(t, db.RecordEvent(ctx, &sot.AuditEvent{Action: sot.ActionAuthFailed, Target: "token", Details: map[string]any{"n": 1.5}}))
	return tok, hash, analysis
}

func TestCopy(t *testing.T) {
	open := map[string]func(testing.TB) *DB{"sqlite": openSQLiteTest, "postgres": openPG}
	pairs := []struct{ from, to string }{
		{"sqlite", "sqlite"},
		{"sqlite", "postgres"},
		{"postgres", "sqlite"},
	}
	for _, p := range pairs {
		t.Run(p.from+"_to_"+p.to, func(t *testing.T) {
			ctx := t.Context()
			from := open[p.from](t)
			to := open[p.to](t)
			tok, hash, analysis := fillForCopy(t, from)

			counts, err := Copy(ctx, from, to)
			must(t, err)
			want := map[string]int64{"orgs": 2, "users": 2, "memberships": 3, "projects": 30, "tokens": 3, "token_secrets": 3,
				"token_projects": 2, "analyses": 1, "analysis_reports": 1}
			for table, n := range want {
				if counts[table] != n {
					t.Errorf("%s: copied %d rows, want %d", table, counts[table], n)
				}
			}
			if got := slices.Sorted(maps.Keys(counts)); len(got) != len(copyTables) {
				t.Errorf("counts of %v, want every table", got)
			}

			gotTok, err := to.FindToken(ctx, sot.TokenOwner{Org: "acme"}, tok.ID)
			must(t, err)
			wantTok, err := from.FindToken(ctx, sot.TokenOwner{Org: "acme"}, tok.ID)
			must(t, err)
			if fmt.Sprintf("%+v", gotTok) != fmt.Sprintf("%+v", wantTok) {
				t.Fatalf("copied token\n%+v\nwant\n%+v", gotTok, wantTok)
			}
			byHash, err := to.TokenBySecretHash(ctx, hash)
			must(t, err)
			if byHash.ID != tok.ID {
				t.Fatalf("secret opens token %d", byHash.ID)
			}
			_, pw, err := to.PasswordHash(ctx, "alice")
			must(t, err)
			if pw != "$argon2id$fake" {
				t.Fatalf("password hash %q", pw)
			}
			rc, err := to.OpenReport(ctx, "acme", "p03", analysis.ID)
			must(t, err)
			body, _ := io.ReadAll(rc)
			if !bytes.Equal(body, bytes.Repeat([]byte{0, 1, 2, 255}, 5000)) {
				t.Fatal("report bytes differ")
			}
			evFrom := events(t, from, "acme", sot.AuditFilter{})
			evTo := events(t, to, "acme", sot.AuditFilter{})
			if len(evFrom) < 30 || len(evFrom) != len(evTo) {
				t.Fatalf("%d audit events copied of %d", len(evTo), len(evFrom))
			}
			for i := range evFrom {
				if a, b := fmt.Sprintf("%+v", *evFrom[i]), fmt.Sprintf("%+v", *evTo[i]); a != b {
					t.Fatalf("copied event\n%s\nwant\n%s", b, a)
				}
			}
			org, err := to.FindOrg(ctx, "acme")
			must(t, err)
			if org.Plan != sot.PlanTeam || org.TokenPolicy != sot.DefaultTokenPolicy() {
				t.Fatalf("copied org %+v", org)
			}

			// New rows get IDs after the copied ones.
			p := &sot.Project{Org: "acme", Key: "new", Name: "New"}
			must(t, to.CreateProject(actorCtx(t), p))
			last, err := from.FindProject(ctx, "acme", "p29")
			must(t, err)
			if p.ID <= last.ID {
				t.Fatalf("new project ID %d, copied IDs go up to %d", p.ID, last.ID)
			}
			mkUser(t, to, "carol")
			mkToken(t, to, "acme", sot.Scope{AllProjects: true})

			_, err = Copy(ctx, from, to)
			if err == nil || !strings.Contains(err.Error(), "not empty") {
				t.Fatalf("copy into a non-empty database: %v", err)
			}
		})
	}
}
