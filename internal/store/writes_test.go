package store

import (
	"testing"

	"github.com/sot-dev/sot"
)

// Writes counts committed write transactions only: not reads, not a write
// that failed and rolled back.
func TestWritesCountsCommits(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *DB) {
		ctx := t.Context()
		u := &sot.User{Login: "alice"}
		must(t, db.CreateUser(ctx, u, ""))
		must(t, db.CreateOrg(ctx, &sot.Org{Key: "acme", Name: "Acme", Plan: sot.PlanTeam}, u.ID))
		steps := []struct {
			name string
			op   func() error
			want uint64 // writes added
		}{
			{"read", func() error { _, err := db.FindOrg(ctx, "acme"); return err }, 0},
			{"create", func() error { return db.CreateProject(ctx, &sot.Project{Org: "acme", Key: "web", Name: "Web"}) }, 1},
			{"failed create", func() error {
				if err := db.CreateProject(ctx, &sot.Project{Org: "acme", Key: "web", Name: "Web"}); sot.ErrorCode(err) != sot.ECONFLICT {
					t.Fatalf("duplicate project: %v", err)
				}
				return nil
			}, 0},
		}
		for _, s := range steps {
			before := db.Writes()
			must(t, s.op())
			if got := db.Writes() - before; got != s.want {
				t.Fatalf("%s: %d writes, want %d", s.name, got, s.want)
			}
		}
	})
}
