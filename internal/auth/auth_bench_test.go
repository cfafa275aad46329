package auth

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/sot-dev/sot"
	"github.com/sot-dev/sot/internal/pgtest"
)

// TestMain lets the benchmarks use PostgreSQL; pgtest starts it only for a
// benchmark that asks for it.
func TestMain(m *testing.M) { pgtest.Main(m) }

// BenchmarkAuthenticateColdPath measures the first use of a token: a cache
// miss, so the token, its organization and its scope are read from storage
// and the scope is compiled. Every iteration forgets the cache first.
func BenchmarkAuthenticateColdPath(b *testing.B) {
	patterns := make([]string, 50)
	for i := range patterns {
		patterns[i] = fmt.Sprintf("team-%d-.*", i)
	}
	dbs := []struct {
		name string
		dsn  func(testing.TB) string
	}{
		{"sqlite", func(tb testing.TB) string { return "sqlite:" + filepath.Join(tb.TempDir(), "sot.db") }},
		{"postgres", pgtest.DSN},
	}
	scopes := []struct {
		name    string
		scope   sot.Scope
		project string
	}{
		{"all", sot.Scope{AllProjects: true}, "web"},
		{"patterns-50", sot.Scope{Patterns: patterns}, "team-49-web"},
		{"explicit-2", sot.Scope{Projects: []string{"web", "api"}}, "web"},
	}
	for _, db := range dbs {
		b.Run(db.name, func(b *testing.B) {
			f := newFixtureOn(b, db.dsn(b))
			for _, sc := range scopes {
				_, secret := f.orgToken(b, sc.scope, sot.TokenRequest{})
				b.Run(sc.name, func(b *testing.B) {
					ctx := context.Background()
					b.ReportAllocs()
					for b.Loop() {
						f.auth.Invalidate(sot.Change{Kind: sot.ChangeAll})
						p, err := f.auth.AuthenticateSecret(ctx, secret, clientIP)
						if err != nil {
							b.Fatal(err)
						}
						if err := p.Authorize(sot.PermissionScan, "acme", sc.project); err != nil {
							b.Fatal(err)
						}
					}
					if n := f.tokens.lookups.Load(); n < int64(b.N) {
						b.Fatalf("%d storage lookups for %d cold checks", n, b.N)
					}
				})
			}
		})
	}
}
