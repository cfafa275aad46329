package store

import (
	"context"
	"testing"
	"time"

	"github.com/sot-dev/sot"
)

// subscribe returns a channel of the changes db delivers from now on.
func subscribe(t *testing.T, db *DB) <-chan sot.Change {
	t.Helper()
	ch := make(chan sot.Change, 1000)
	db.Subscribe(t.Context(), func(c sot.Change) {
		select {
		case ch <- c:
		default:
			t.Errorf("change channel full, dropped %+v", c)
		}
	})
	return ch
}

// waitChange waits up to a second for want, skipping other changes.
func waitChange(t *testing.T, ch <-chan sot.Change, want sot.Change) {
	t.Helper()
	timeout := time.After(time.Second)
	for {
		select {
		case c := <-ch:
			if c == want {
				return
			}
		case <-timeout:
			t.Fatalf("no change %+v within 1s", want)
		}
	}
}

func TestChangeBus(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *DB) {
		ctx := actorCtx(t)
		alice := mkUser(t, db, "alice")
		mkOrg(t, db, "acme", alice)
		mkProjects(t, db, "acme", "web")
		tok := mkToken(t, db, "acme", sot.Scope{AllProjects: true})

		subCtx, cancel := context.WithCancel(t.Context())
		ch := make(chan sot.Change, 100)
		db.Subscribe(subCtx, func(c sot.Change) { ch <- c })

		_, err := db.RevokeToken(ctx, sot.TokenOwner{Org: "acme"}, tok.ID, time.Now())
		must(t, err)
		waitChange(t, ch, sot.Change{Kind: sot.ChangeToken, Org: "acme", TokenID: tok.ID})
		must(t, db.DeleteProject(ctx, "acme", "web"))
		waitChange(t, ch, sot.Change{Kind: sot.ChangeProject, Org: "acme"})

		// After its context ends, a subscriber hears nothing more.
		cancel()
		time.Sleep(50 * time.Millisecond)
		for len(ch) > 0 {
			<-ch
		}
		name := "renamed"
		_, err = db.UpdateOrg(ctx, "acme", sot.OrgUpdate{Name: &name})
		must(t, err)
		plan := sot.PlanFree
		_, err = db.UpdateOrg(ctx, "acme", sot.OrgUpdate{Plan: &plan})
		must(t, err)
		time.Sleep(200 * time.Millisecond)
		if len(ch) != 0 {
			t.Fatalf("unsubscribed function got %+v", <-ch)
		}
	})
}

// TestChangeBusRollback checks that a failed change publishes nothing.
func TestChangeBusRollback(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *DB) {
		ctx := actorCtx(t)
		alice := mkUser(t, db, "alice")
		mkOrg(t, db, "acme", alice)
		mkProjects(t, db, "acme", "web")
		tok := mkToken(t, db, "acme", sot.Scope{AllProjects: true})
		marker := mkToken(t, db, "acme", sot.Scope{AllProjects: true})
		ch := subscribe(t, db)
		// On PostgreSQL the setup's notifications may still be on their way
		// through the listener. Notifications arrive in commit order, so
		// once a later marker change has come through the listener (its
		// second delivery, after the local one), nothing older is pending.
		_, err := db.RevokeToken(ctx, sot.TokenOwner{Org: "acme"}, marker.ID, time.Now())
		must(t, err)
		want := sot.Change{Kind: sot.ChangeToken, Org: "acme", TokenID: marker.ID}
		deliveries := 1
		if db.Dialect() == DialectPostgres {
			deliveries = 2
		}
		for range deliveries {
			waitChange(t, ch, want)
		}
		_, err = db.UpdateToken(ctx, sot.TokenOwner{Org: "acme"}, tok.ID, sot.TokenUpdate{Scope: &sot.Scope{Projects: []string{"nope"}}})
		wantCode(t, err, sot.EINVALID)
		time.Sleep(200 * time.Millisecond)
		for len(ch) > 0 {
			if c := <-ch; c.Kind != sot.ChangeAll {
				t.Fatalf("rolled-back update published %+v", c)
			}
		}
	})
}
