package store

// Benchmarks of the check path against organizations of very different
// sizes, seeded with multi-row inserts in one transaction so that 100,000
// tokens take seconds, not the minutes of 100,000 durable CreateToken
// calls. Heavy seeding happens only inside benchmarks: `go test` without
// -bench never runs it.

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/sot-dev/sot"
	"github.com/sot-dev/sot/internal/auth"
)

// seededToken is a token inserted by seedTokens, with its secret.
type seededToken struct {
	ID     int64
	Secret string
}

// seedTokens inserts n active organization tokens covering every project
// of org, in one transaction, and returns them with their secrets. Token
// ids are assigned here, after the largest existing one, so that the
// secrets can be inserted in bulk as well.
func seedTokens(tb testing.TB, db *DB, org string, n int) []seededToken {
	tb.Helper()
	ctx := context.Background()
	out := make([]seededToken, n)
	for i := range out {
		out[i].Secret = sot.NewSecret(sot.TokenKindOrg)
	}
	created := unix(now())
	expires := unix(now().Add(30 * sot.Day))
	perms := int64(sot.NewPermissionSet(sot.PermissionScan))
	const chunk = 500 // rows per statement: 13 parameters a row stays under SQLite's limit
	err := db.write(ctx, func(t *tx) error {
		oid, err := orgID(ctx, t.conn, org)
		if err != nil {
			return err
		}
		var maxID int64
		if err := t.queryRow(ctx, `SELECT COALESCE(MAX(id), 0) FROM tokens`).Scan(&maxID); err != nil {
			return err
		}
		for start := 0; start < n; start += chunk {
			end := min(start+chunk, n)
			var tokArgs, secArgs []any
			for i := start; i < end; i++ {
				out[i].ID = maxID + int64(i) + 1
				hash := sot.HashSecret(out[i].Secret)
				tokArgs = append(tokArgs, out[i].ID, string(sot.TokenKindOrg), oid, fmt.Sprintf("bulk-%d", i), true, "[]",
					perms, "[]", sot.SecretHint(out[i].Secret), sot.TokenSourceAPI, "seed", created, expires)
				secArgs = append(secArgs, out[i].ID, hash[:], created)
			}
			rows := end - start
			q := `INSERT INTO tokens (id, kind, org_id, name, all_projects, patterns, permissions, allowed_cidrs, hint, source,
				created_by_login, created_at, expires_at) VALUES ` + placeholderRows(rows, 13)
			if _, err := t.exec(ctx, q, tokArgs...); err != nil {
				return fmt.Errorf("insert tokens: %w", err)
			}
			q = `INSERT INTO token_secrets (token_id, hash, created_at) VALUES ` + placeholderRows(rows, 3)
			if _, err := t.exec(ctx, q, secArgs...); err != nil {
				return fmt.Errorf("insert secrets: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// placeholderRows returns "(?, ?), (?, ?)" for rows rows of cols columns.
func placeholderRows(rows, cols int) string {
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", cols), ", ") + ")"
	return strings.TrimSuffix(strings.Repeat(row+", ", rows), ", ")
}

// checker is an auth.Service over db, running (change events, flushes)
// until the benchmark ends.
func checker(tb testing.TB, db *DB, cacheSize int) *auth.Service {
	tb.Helper()
	a := auth.New(auth.Config{Tokens: db, Users: db, Orgs: db, Audit: db, Bus: db, CacheSize: cacheSize})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	tb.Cleanup(func() { cancel(); <-done })
	return a
}

var benchIP = netip.MustParseAddr("192.0.2.10")

// check runs the check of secret on project and fails b on a refusal.
func check(b *testing.B, a *auth.Service, secret, project string) {
	p, err := a.AuthenticateSecret(context.Background(), secret, benchIP)
	if err == nil {
		err = p.Authorize(sot.PermissionScan, "acme", project)
	}
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkCheckProjectsInScope is the check (authenticate on a cache hit,
// then authorize) of a token whose scope lists 1 or 100,000 explicit
// projects: the cost must not depend on the scope's size.
func BenchmarkCheckProjectsInScope(b *testing.B) {
	db := openSQLiteTest(b)
	benchDB(b, db)
	keys := seedProjects(b, db, "acme", 100_000)
	for _, n := range []int{1, 100_000} {
		tok := newScopedToken(keys[:n])
		secret := sot.NewSecret(sot.TokenKindOrg)
		if err := db.CreateToken(context.Background(), tok, sot.HashSecret(secret)); err != nil {
			b.Fatal(err)
		}
		a := checker(b, db, 0)
		project := keys[n/2]
		b.Run(fmt.Sprintf("projects=%d", n), func(b *testing.B) {
			check(b, a, secret, project) // the first use loads the principal
			b.ReportAllocs()
			for b.Loop() {
				check(b, a, secret, project)
			}
		})
	}
}

// BenchmarkCheckTokensInOrg is the check of one token on a cache hit, in
// an organization of 10 or 100,000 tokens that are all cached: the cost
// must not depend on how many tokens exist.
func BenchmarkCheckTokensInOrg(b *testing.B) {
	for _, n := range []int{10, 100_000} {
		b.Run(fmt.Sprintf("tokens=%d", n), func(b *testing.B) {
			db := openSQLiteTest(b)
			benchDB(b, db)
			seedProjects(b, db, "acme", 10)
			toks := seedTokens(b, db, "acme", n)
			// Sized for the working set, as an operator would: every token
			// stays cached.
			a := checker(b, db, 2*n)
			for _, t := range toks {
				check(b, a, t.Secret, "p000001")
			}
			// Write the filling's last-used times now, not during the loop.
			if err := a.Flush(context.Background()); err != nil {
				b.Fatal(err)
			}
			secret := toks[n/2].Secret
			b.ReportAllocs()
			for b.Loop() {
				check(b, a, secret, "p000001")
			}
		})
	}
}

// BenchmarkTokenBySecretHash is the storage lookup of a cache miss, in an
// organization of 10 or 100,000 tokens: one indexed lookup either way.
func BenchmarkTokenBySecretHash(b *testing.B) {
	for _, n := range []int{10, 100_000} {
		b.Run(fmt.Sprintf("tokens=%d", n), func(b *testing.B) {
			db := openSQLiteTest(b)
			benchDB(b, db)
			toks := seedTokens(b, db, "acme", n)
			hash := sot.HashSecret(toks[n/2].Secret)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := db.TokenBySecretHash(context.Background(), hash); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCreateProject is creating a project (a durable transaction with
// its audit event) in an organization with 0 or 10,000 tokens: scopes are
// evaluated at check time, so no token is touched.
func BenchmarkCreateProject(b *testing.B) {
	for _, n := range []int{0, 10_000} {
		b.Run(fmt.Sprintf("tokens=%d", n), func(b *testing.B) {
			db := openSQLiteTest(b)
			benchDB(b, db)
			seedTokens(b, db, "acme", n)
			i := 0
			for b.Loop() {
				i++
				p := &sot.Project{Org: "acme", Key: fmt.Sprintf("new-%d", i), Name: "New"}
				if err := db.CreateProject(context.Background(), p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
