package store

import (
	"strings"
	"testing"
	"time"

	"github.com/sot-dev/sot"
)

// An event is written with the change that caused it; a claimed delivery
// is leased to one owner until the lease ends; only the owner records its
// attempt; a done token.rotated delivery loses its secret.
func TestOutboxLeases(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *DB) {
		ctx := actorCtx(t)
		alice := mkUser(t, db, "alice")
		mkOrg(t, db, "acme", alice)
		mkOrg(t, db, "other", alice)
		w := &sot.Webhook{Org: "acme", URL: "https://hooks.example/x", Events: []string{sot.EventTokenRotated, sot.EventTokenRevoked}, Secret: "0123456789abcdef"}
		must(t, db.CreateWebhook(ctx, w))
		mkToken(t, db, "other", sot.Scope{AllProjects: true}) // another org's events never reach acme's webhook
		tok := mkToken(t, db, "acme", sot.Scope{AllProjects: true})
		now := time.Now().UTC().Truncate(time.Second)
		secret := sot.NewSecret(sot.TokenKindOrg)
		_, err := db.RotateToken(ctx, sot.TokenOwner{Org: "acme"}, tok.ID, sot.RotateRequest{Now: now, Hash: sot.HashSecret(secret), Hint: sot.SecretHint(secret), Secret: secret})
		must(t, err)

		got, err := db.ClaimDeliveries(ctx, now, time.Minute, "a", 10)
		must(t, err)
		if len(got) != 1 || got[0].Event != sot.EventTokenRotated || !strings.Contains(string(got[0].Body), secret) || got[0].Secret != w.Secret {
			t.Fatalf("claimed %+v", got)
		}
		again, err := db.ClaimDeliveries(ctx, now.Add(30*time.Second), time.Minute, "b", 10)
		must(t, err)
		if len(again) != 0 {
			t.Fatalf("a leased delivery was claimed again: %+v", again)
		}
		wantCode(t, db.FinishAttempt(ctx, got[0].ID, "b", sot.DeliveryAttempt{At: now, StatusCode: 200}, nil), sot.ECONFLICT)
		next := now.Add(30 * time.Second)
		must(t, db.FinishAttempt(ctx, got[0].ID, "a", sot.DeliveryAttempt{At: now, StatusCode: 500, Error: "HTTP 500"}, &next))
		if early, _ := db.ClaimDeliveries(ctx, now.Add(10*time.Second), time.Minute, "b", 10); len(early) != 0 {
			t.Fatalf("claimed before its retry time: %+v", early)
		}
		retry, err := db.ClaimDeliveries(ctx, next, time.Minute, "b", 10)
		must(t, err)
		if len(retry) != 1 || retry[0].Attempts != 1 {
			t.Fatalf("retry = %+v", retry)
		}
		must(t, db.FinishAttempt(ctx, retry[0].ID, "b", sot.DeliveryAttempt{At: next, StatusCode: 204}, nil))
		var body string
		must(t, db.read().queryRow(ctx, `SELECT body FROM webhook_deliveries WHERE id = ?`, retry[0].ID).Scan(&body))
		if strings.Contains(body, secret) || strings.Contains(body, `"secret"`) {
			t.Fatalf("a delivered body keeps the secret: %s", body)
		}
		ds, _, err := db.ListDeliveries(ctx, "acme", w.ID, sot.Page{})
		must(t, err)
		if len(ds) != 1 || ds[0].State != sot.DeliveryDelivered || len(ds[0].Attempts) != 2 {
			t.Fatalf("deliveries = %+v", ds)
		}
		_, _, err = db.ListDeliveries(ctx, "other", w.ID, sot.Page{})
		wantCode(t, err, sot.ENOTFOUND)
	})
}

// A scheduled rotation happens only while the schedule the caller saw
// still holds; the old secret is kept with its end.
func TestScheduledRotationClaim(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *DB) {
		ctx := actorCtx(t)
		alice := mkUser(t, db, "alice")
		mkOrg(t, db, "acme", alice)
		tok, oldHash := mkTokenWith(t, db, &sot.Token{Kind: sot.TokenKindOrg, Org: "acme", Scope: sot.Scope{AllProjects: true},
			Rotation: &sot.TokenRotation{Every: 7 * sot.Day, GracePeriod: time.Hour}})
		now := tok.CreatedAt.Add(7*sot.Day + time.Minute)
		due, err := db.DueRotations(ctx, now, 10)
		must(t, err)
		if len(due) != 1 || due[0].ID != tok.ID {
			t.Fatalf("due = %+v", due)
		}
		rotate := func() error {
			s := sot.NewSecret(sot.TokenKindOrg)
			_, err := db.RotateToken(ctx, sot.TokenOwner{Org: "acme"}, tok.ID, sot.RotateRequest{Now: now, Grace: time.Hour,
				Hash: sot.HashSecret(s), Hint: sot.SecretHint(s), Secret: s, IfNextRotationAt: due[0].NextRotationAt})
			return err
		}
		must(t, rotate())
		wantCode(t, rotate(), sot.ECONFLICT)
		old, err := db.TokenBySecretHash(ctx, oldHash)
		must(t, err)
		if old.SecretExpiresAt == nil || !old.SecretExpiresAt.Equal(now.Add(time.Hour)) || old.NextRotationAt == nil || !old.NextRotationAt.Equal(now.Add(7*sot.Day)) {
			t.Fatalf("after rotation: secret expires %v, next rotation %v", old.SecretExpiresAt, old.NextRotationAt)
		}
		if due, _ := db.DueRotations(ctx, now, 10); len(due) != 0 {
			t.Fatalf("still due after the rotation: %+v", due)
		}
	})
}

// BenchmarkSweepSteadyState measures one lifecycle sweep's storage work
// (due rotations, expiry and idle windows, due deliveries) over 10,000
// organization tokens (none idle yet) whose expiry warnings were all sent
// already: the cost every replica pays every interval.
func BenchmarkSweepSteadyState(b *testing.B) {
	for _, dialect := range []string{DialectSQLite, DialectPostgres} {
		b.Run(dialect, func(b *testing.B) {
			var db *DB
			if dialect == DialectSQLite {
				db = openSQLiteTest(b)
			} else {
				db = openPG(b)
			}
			ctx := b.Context()
			u := &sot.User{Login: "alice"}
			if err := db.CreateUser(ctx, u, ""); err != nil {
				b.Fatal(err)
			}
			o := &sot.Org{Key: "acme", Name: "Acme", Plan: sot.PlanTeam, TokenPolicy: sot.TokenPolicy{MaxLifetimeDays: 365, IdleWarningDays: 30}}
			if err := db.CreateOrg(ctx, o, u.ID); err != nil {
				b.Fatal(err)
			}
			now := time.Now().UTC().Truncate(time.Second)
			err := db.write(ctx, func(x *tx) error {
				_, err := x.exec(ctx, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10000)
					INSERT INTO tokens (kind, org_id, name, all_projects, permissions, hint, source, created_at, expires_at, rotation_every, next_rotation_at)
					SELECT 'org', (SELECT id FROM orgs WHERE key = 'acme'), 'ci', TRUE, 1, 'sot_…', 'api', ?, ? + (i % 400) * 86400, 2592000, ? + (i % 30 + 1) * 86400 FROM n`,
					unix(now), unix(now), unix(now))
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
			for {
				n, err := db.SweepExpiry(ctx, now) // a batch at a time
				if err != nil {
					b.Fatal(err)
				}
				if n == 0 {
					break
				}
			}
			for b.Loop() {
				if due, err := db.DueRotations(ctx, now, 100); err != nil || len(due) != 0 {
					b.Fatalf("due rotations: %d, %v", len(due), err)
				}
				if n, err := db.SweepExpiry(ctx, now); err != nil || n != 0 {
					b.Fatalf("expiry sweep: %d, %v", n, err)
				}
				if n, err := db.SweepIdle(ctx, now); err != nil || n != 0 {
					b.Fatalf("idle sweep: %d, %v", n, err)
				}
				if ds, err := db.ClaimDeliveries(ctx, now, time.Minute, "bench", 100); err != nil || len(ds) != 0 {
					b.Fatalf("claim: %d, %v", len(ds), err)
				}
			}
		})
	}
}
