package store

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sot-dev/sot"
)

// seedProjects inserts n projects named p000000… into org in one
// transaction, bypassing the per-project audit of CreateProject.
func seedProjects(tb testing.TB, db *DB, org string, n int) []string {
	tb.Helper()
	ctx := context.Background()
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("p%06d", i)
	}
	err := db.write(ctx, func(t *tx) error {
		oid, err := orgID(ctx, t.conn, org)
		if err != nil {
			return err
		}
		for start := 0; start < n; start += scopeChunk {
			end := min(start+scopeChunk, n)
			var args []any
			for _, k := range keys[start:end] {
				args = append(args, oid, k, "Project "+k, int64(0))
			}
			q := `INSERT INTO projects (org_id, key, name, created_at) VALUES ` + strings.Repeat("(?, ?, ?, ?), ", end-start-1) + `(?, ?, ?, ?)`
			if _, err := t.exec(ctx, q, args...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return keys
}

func benchDB(tb testing.TB, db *DB) {
	tb.Helper()
	u := &sot.User{Login: "alice"}
	if err := db.CreateUser(context.Background(), u, ""); err != nil {
		tb.Fatal(err)
	}
	if err := db.CreateOrg(context.Background(), &sot.Org{Key: "acme", Name: "Acme", Plan: sot.PlanTeam}, u.ID); err != nil {
		tb.Fatal(err)
	}
}

func newScopedToken(keys []string) *sot.Token {
	return &sot.Token{Kind: sot.TokenKindOrg, Org: "acme", Name: "big", Scope: sot.Scope{Projects: keys},
		Permissions: sot.NewPermissionSet(sot.PermissionScan), Hint: "sot_…abcd", Source: sot.TokenSourceAPI}
}

// BenchmarkCreateToken10k measures CreateToken with 10,000 explicit keys.
func BenchmarkCreateToken10k(b *testing.B) {
	for _, dialect := range []struct {
		name string
		open func(testing.TB) *DB
	}{{"sqlite", openSQLiteTest}, {"postgres", openPG}} {
		b.Run(dialect.name, func(b *testing.B) {
			db := dialect.open(b)
			benchDB(b, db)
			keys := seedProjects(b, db, "acme", 10_000)
			for b.Loop() {
				if err := db.CreateToken(context.Background(), newScopedToken(keys), sot.HashSecret(sot.NewSecret(sot.TokenKindOrg))); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkListProjects100k measures a page of projects deep into a
// 100,000-project organization, with and without a Match filter.
func BenchmarkListProjects100k(b *testing.B) {
	db := openSQLiteTest(b)
	benchDB(b, db)
	keys := seedProjects(b, db, "acme", 100_000)
	token := stringCursor(keys[90_000])
	b.Run("plain", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := db.ListProjects(context.Background(), "acme", sot.ProjectFilter{}, sot.Page{Size: 50, Token: token}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("match", func(b *testing.B) {
		match := func(k string) bool { return strings.HasSuffix(k, "7") }
		for b.Loop() {
			if _, _, err := db.ListProjects(context.Background(), "acme", sot.ProjectFilter{Match: match}, sot.Page{Size: 50, Token: token}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestCreateToken10kIsFast guards the chunked resolution of explicit
// scopes: 10,000 keys must be stored well within a request's time.
func TestCreateToken10kIsFast(t *testing.T) {
	if testing.Short() {
		t.Skip("timing test")
	}
	db := openSQLiteTest(t)
	benchDB(t, db)
	keys := seedProjects(t, db, "acme", 10_000)
	start := time.Now()
	tok := newScopedToken(keys)
	must(t, db.CreateToken(t.Context(), tok, sot.HashSecret(sot.NewSecret(sot.TokenKindOrg))))
	if d := time.Since(start); d > time.Second {
		t.Fatalf("CreateToken with 10,000 keys took %v", d)
	}
	got, err := db.FindToken(t.Context(), sot.TokenOwner{Org: "acme"}, tok.ID)
	must(t, err)
	if got.ProjectCount != 10_000 || len(got.Scope.Projects) != 10_000 {
		t.Fatalf("stored %d of 10,000 keys (count %d)", len(got.Scope.Projects), got.ProjectCount)
	}
}
