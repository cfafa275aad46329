package store

import (
	"context"
	"database/sql"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/sot-dev/sot"
)

// openSQLiteTest opens a fresh SQLite database in a temporary directory.
func openSQLiteTest(t testing.TB) *DB {
	t.Helper()
	db, err := Open(t.Context(), "sqlite:"+filepath.Join(t.TempDir(), "sub", "sot.db"), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// forEachDB runs fn against a fresh database of every dialect.
func forEachDB(t *testing.T, fn func(t *testing.T, db *DB)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, openSQLiteTest(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, openPG(t)) })
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := sot.ErrorCode(err); got != code {
		t.Fatalf("error = %v, want code %q", err, code)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// actorCtx returns a context whose actor is a user with an address.
func actorCtx(t *testing.T) context.Context {
	return sot.WithActor(t.Context(), sot.Actor{Type: sot.ActorUser, ID: 1, Name: "alice", IP: "192.0.2.1"})
}

func mkUser(t *testing.T, db *DB, login string) *sot.User {
	t.Helper()
	u := &sot.User{Login: login, Name: "User " + login}
	must(t, db.CreateUser(actorCtx(t), u, "$argon2id$fake"))
	return u
}

func mkOrg(t *testing.T, db *DB, key string, admin *sot.User) *sot.Org {
	t.Helper()
	o := &sot.Org{Key: key, Name: "Org " + key, Plan: sot.PlanTeam}
	must(t, db.CreateOrg(actorCtx(t), o, admin.ID))
	return o
}

func mkProjects(t *testing.T, db *DB, org string, keys ...string) {
	t.Helper()
	for _, k := range keys {
		must(t, db.CreateProject(actorCtx(t), &sot.Project{Org: org, Key: k, Name: "Project " + k}))
	}
}

// collect reads every page of a list with page size size and checks that
// no page is larger than asked.
func collect[T any](t *testing.T, size int, list func(sot.Page) ([]T, string, error)) []T {
	t.Helper()
	var all []T
	page := sot.Page{Size: size}
	for i := 0; ; i++ {
		if i > 10000 {
			t.Fatal("pagination does not end")
		}
		got, next, err := list(page)
		must(t, err)
		if len(got) > size {
			t.Fatalf("page of %d items, asked for %d", len(got), size)
		}
		all = append(all, got...)
		if next == "" {
			return all
		}
		if len(got) != size {
			t.Fatalf("short page (%d of %d) with a next token", len(got), size)
		}
		page.Token = next
	}
}

// events returns the actions of org's audit log, oldest first.
func events(t *testing.T, db *DB, org string, filter sot.AuditFilter) []*sot.AuditEvent {
	t.Helper()
	evs := collect(t, 1000, func(p sot.Page) ([]*sot.AuditEvent, string, error) { return db.ListEvents(t.Context(), org, filter, p) })
	for i, j := 0, len(evs)-1; i < j; i, j = i+1, j-1 {
		evs[i], evs[j] = evs[j], evs[i]
	}
	return evs
}

func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name string
		dsn  string
	}{
		{"unknown scheme", "mysql://x"},
		{"empty sqlite path", "sqlite:"},
		{"memory", "sqlite::memory:"},
		{"unreachable postgres", "postgres://nobody@127.0.0.1:1/none?connect_timeout=2"},
		{"invalid postgres", "postgres://%zz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := Open(t.Context(), tt.dsn, nil)
			if err == nil {
				db.Close()
				t.Fatal("Open succeeded")
			}
			if msg := err.Error(); msg == "" || containsNewline(msg) {
				t.Fatalf("error %q is not one line", msg)
			}
		})
	}
}

func containsNewline(s string) bool {
	for _, c := range s {
		if c == '\n' || c == '\r' {
			return true
		}
	}
	return false
}

func TestReopenKeepsData(t *testing.T) {
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "sot.db")
	db, err := Open(t.Context(), dsn, nil)
	must(t, err)
	mkUser(t, db, "alice")
	must(t, db.Close())
	db, err = Open(t.Context(), dsn, nil)
	must(t, err)
	defer db.Close()
	if db.Dialect() != DialectSQLite {
		t.Fatalf("dialect %q", db.Dialect())
	}
	must(t, db.Ping(t.Context()))
	n, err := db.CountUsers(t.Context())
	must(t, err)
	if n != 1 {
		t.Fatalf("%d users after reopening, want 1", n)
	}
}

func TestInvalidPageToken(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *DB) {
		ctx := t.Context()
		alice := mkUser(t, db, "alice")
		mkOrg(t, db, "acme", alice)
		mkProjects(t, db, "acme", "web")
		bad := sot.Page{Token: "!!not-a-token"}
		keyTok := sot.Page{Token: stringCursor("web")} // a key cursor where an ID is expected
		idTok := sot.Page{Token: idCursor(3)}          // an ID cursor where a key is expected
		calls := []struct {
			name string
			call func(sot.Page) error
		}{
			{"users", func(p sot.Page) error { _, _, err := db.ListUsers(ctx, p); return err }},
			{"orgs", func(p sot.Page) error { _, _, err := db.ListOrgs(ctx, sot.OrgFilter{}, p); return err }},
			{"members", func(p sot.Page) error { _, _, err := db.ListMembers(ctx, "acme", p); return err }},
			{"projects", func(p sot.Page) error { _, _, err := db.ListProjects(ctx, "acme", sot.ProjectFilter{}, p); return err }},
			{"tokens", func(p sot.Page) error {
				_, _, err := db.ListTokens(ctx, sot.TokenOwner{Org: "acme"}, sot.TokenFilter{}, p)
				return err
			}},
			{"events", func(p sot.Page) error { _, _, err := db.ListEvents(ctx, "acme", sot.AuditFilter{}, p); return err }},
			{"analyses", func(p sot.Page) error { _, _, err := db.ListAnalyses(ctx, "acme", "web", p); return err }},
		}
		for _, c := range calls {
			t.Run(c.name, func(t *testing.T) {
				err := c.call(bad)
				wantCode(t, err, sot.EINVALID)
				if f := sot.ErrorFields(err); len(f) != 1 || f[0].Field != "page_token" {
					t.Fatalf("fields %v, want page_token", f)
				}
				wrongKind := idTok
				if c.name == "users" || c.name == "tokens" || c.name == "events" || c.name == "analyses" {
					wrongKind = keyTok
				}
				wantCode(t, c.call(wrongKind), sot.EINVALID)
			})
		}
	})
}

func TestErrorsWrapInternal(t *testing.T) {
	db := openSQLiteTest(t)
	must(t, db.Close())
	_, err := db.FindOrg(t.Context(), "acme")
	wantCode(t, err, sot.EINTERNAL)
	if got := sot.ErrorMessage(err); got != "internal error" {
		t.Fatalf("message %q leaks the cause", got)
	}
}

func TestSQLitePragmas(t *testing.T) {
	db := openSQLiteTest(t)
	for name, pool := range map[string]*sql.DB{"writer": db.w, "reader": db.r} {
		t.Run(name, func(t *testing.T) {
			var mode string
			var sync, fk, busy int
			must(t, pool.QueryRow("PRAGMA journal_mode").Scan(&mode))
			must(t, pool.QueryRow("PRAGMA synchronous").Scan(&sync))
			must(t, pool.QueryRow("PRAGMA foreign_keys").Scan(&fk))
			must(t, pool.QueryRow("PRAGMA busy_timeout").Scan(&busy))
			if mode != "wal" || sync != 2 || fk != 1 || busy < 1000 {
				t.Fatalf("journal_mode=%s synchronous=%d foreign_keys=%d busy_timeout=%d", mode, sync, fk, busy)
			}
		})
	}
	if _, err := db.r.Exec("DELETE FROM users"); err == nil {
		t.Fatal("the reader pool accepts writes")
	}
}

func TestOpenRelativePath(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	db, err := Open(t.Context(), "sqlite:./data dir/sot.db", nil)
	must(t, err)
	mkUser(t, db, "alice")
	must(t, db.Close())
	if _, err := os.Stat(filepath.Join(dir, "data dir", "sot.db")); err != nil {
		t.Fatalf("database file not where asked: %v", err)
	}
}
