package store

import (
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/sot-dev/sot"

	"github.com/sot-dev/sot/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// openPG opens a fresh PostgreSQL database of the test server.
func openPG(t testing.TB) *DB {
	t.Helper()
	db, err := Open(t.Context(), pgtest.DSN(t), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	waitListening(t, db)
	return db
}

// waitListening waits until db hears the changes of other handles.
func waitListening(t testing.TB, db *DB) {
	t.Helper()
	select {
	case <-db.listening:
	case <-time.After(10 * time.Second):
		t.Fatal("the change listener did not connect within 10s")
	}
}

// openPGs opens n handles on one fresh PostgreSQL database, as n replicas
// would, all at once.
func openPGs(t *testing.T, n int) []*DB {
	t.Helper()
	dsn := pgtest.DSN(t)
	dbs := make([]*DB, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { dbs[i], errs[i] = Open(t.Context(), dsn, slog.New(slog.DiscardHandler)) })
	}
	wg.Wait()
	for i, db := range dbs {
		if db != nil {
			t.Cleanup(func() { db.Close() })
		}
		if errs[i] != nil {
			t.Fatalf("replica %d: %v", i, errs[i])
		}
	}
	for _, db := range dbs {
		waitListening(t, db)
	}
	return dbs
}

// TestPostgresReplicas starts replicas together (their migrations take
// turns under the advisory lock) and checks that a change committed on one
// reaches the subscribers of the others within a second.
func TestPostgresReplicas(t *testing.T) {
	dbs := openPGs(t, 3)
	a, b := dbs[0], dbs[1]
	ctx := actorCtx(t)
	alice := mkUser(t, a, "alice")
	mkOrg(t, a, "acme", alice)
	tok := mkToken(t, a, "acme", sot.Scope{AllProjects: true})
	onB := subscribe(t, b)
	onA := subscribe(t, a)

	_, err := a.RevokeToken(ctx, sot.TokenOwner{Org: "acme"}, tok.ID, time.Now())
	must(t, err)
	want := sot.Change{Kind: sot.ChangeToken, Org: "acme", TokenID: tok.ID}
	waitChange(t, onB, want)
	waitChange(t, onA, want)

	// The revocation is visible to the other replica as soon as it hears of it.
	got, err := b.FindToken(ctx, sot.TokenOwner{Org: "acme"}, tok.ID)
	must(t, err)
	if got.RevokedAt == nil {
		t.Fatal("replica b does not see the revocation")
	}
}

// TestPostgresListenerReconnect cuts the listener's connection and expects
// a ChangeAll once it is back, since changes may have been missed.
func TestPostgresListenerReconnect(t *testing.T) {
	db := openPG(t)
	ch := subscribe(t, db)
	var killed int
	deadline := time.Now().Add(5 * time.Second)
	for killed == 0 && time.Now().Before(deadline) {
		// The listener may not have sent LISTEN yet.
		must(t, db.r.QueryRowContext(t.Context(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid() AND query ILIKE 'listen%'`).Scan(&killed))
		time.Sleep(20 * time.Millisecond)
	}
	if killed == 0 {
		t.Fatal("no listener connection found")
	}
	// Let the first connection's ChangeAll, sent right after its LISTEN,
	// arrive before draining it.
	time.Sleep(200 * time.Millisecond)
	for len(ch) > 0 {
		<-ch
	}
	timeout := time.After(5 * time.Second)
	for {
		select {
		case c := <-ch:
			if c.Kind == sot.ChangeAll {
				return
			}
		case <-timeout:
			t.Fatal("no ChangeAll after the listener reconnected")
		}
	}
}
