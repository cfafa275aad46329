package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sot-dev/sot"
)

var _ sot.LifecycleService = (*DB)(nil)

// Bits of tokens.expiry_warned: the warnings already emitted.
const (
	warned30      = 1
	warned7       = 2
	warned1       = 4
	warnedExpired = 8
	warnedAll     = warned30 | warned7 | warned1 | warnedExpired
)

// warnBits pairs each expiry warning (days before expiry) with its bit,
// longest first.
var warnBits = []struct {
	days int
	bit  int64
}{{30, warned30}, {7, warned7}, {1, warned1}}

// sweepLimit bounds the tokens one sweep handles; the next sweep takes the rest.
const sweepLimit = 500

func rotationArgs(r *sot.TokenRotation) (sql.NullInt64, int64) {
	if r == nil {
		return sql.NullInt64{}, 0
	}
	return sql.NullInt64{Int64: int64(r.Every / time.Second), Valid: true}, int64(r.GracePeriod / time.Second)
}

// eventToken is a token as webhook payloads describe it: no scope, never
// a hash.
type eventToken struct {
	ID        int64      `json:"id"`
	Org       string     `json:"org"`
	Name      string     `json:"name"`
	Kind      string     `json:"kind"`
	Hint      string     `json:"hint"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt *time.Time `json:"expires_at"`
	LastUsed  *time.Time `json:"last_used_at"`
}

// eventBody is the JSON body of a delivery.
type eventBody struct {
	Event   string         `json:"event"`
	At      time.Time      `json:"at"`
	Org     string         `json:"org"`
	Token   eventToken     `json:"token"`
	Secret  string         `json:"secret,omitempty"`
	Details map[string]any `json:"details,omitempty"`
}

// emit writes a delivery of event about t, at time at, for every webhook
// of t's organization subscribed to it, in the transaction of the change:
// the outbox. Only token.rotated may carry a secret. Personal tokens
// belong to no organization and have no webhooks.
func (x *tx) emit(ctx context.Context, t *sot.Token, event string, at time.Time, secret string, details map[string]any) error {
	if t.Kind != sot.TokenKindOrg || t.Org == "" {
		return nil
	}
	if secret != "" && event != sot.EventTokenRotated {
		return fmt.Errorf("emit %s: only token.rotated carries a secret", event)
	}
	rows, err := x.query(ctx, `SELECT w.id, w.events FROM webhooks w JOIN orgs o ON o.id = w.org_id WHERE o.key = ?`, t.Org)
	if err != nil {
		return fmt.Errorf("emit %s: %w", event, err)
	}
	var targets []int64
	for rows.Next() {
		var id int64
		var events string
		if err := rows.Scan(&id, &events); err != nil {
			rows.Close()
			return fmt.Errorf("emit %s: %w", event, err)
		}
		var list []string
		if err := json.Unmarshal([]byte(events), &list); err != nil {
			rows.Close()
			return fmt.Errorf("emit %s: events of webhook %d: %w", event, id, err)
		}
		if slices.Contains(list, event) {
			targets = append(targets, id)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("emit %s: %w", event, err)
	}
	if len(targets) == 0 {
		return nil
	}
	at = at.UTC().Truncate(time.Second)
	body, err := json.Marshal(eventBody{
		Event: event, At: at, Org: t.Org, Secret: secret, Details: details,
		Token: eventToken{ID: t.ID, Org: t.Org, Name: t.Name, Kind: string(t.Kind), Hint: t.Hint,
			CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt, LastUsed: t.LastUsedAt},
	})
	if err != nil {
		return fmt.Errorf("emit %s: %w", event, err)
	}
	for _, id := range targets {
		if _, err := x.exec(ctx, `INSERT INTO webhook_deliveries (webhook_id, event, body, state, created_at, next_attempt_at)
			VALUES (?, ?, ?, ?, ?, ?)`, id, event, string(body), sot.DeliveryPending, unix(at), unix(at)); err != nil {
			return fmt.Errorf("emit %s: %w", event, err)
		}
	}
	return nil
}

// tokenPolicy returns the lifetime policy of t: its organization's, or
// the personal token policy.
func tokenPolicy(ctx context.Context, c conn, t *sot.Token) (sot.TokenPolicy, error) {
	if t.Kind != sot.TokenKindOrg {
		return sot.PersonalTokenPolicy(), nil
	}
	var p sot.TokenPolicy
	err := c.queryRow(ctx, `SELECT max_lifetime_days, allow_non_expiring, idle_warning_days FROM orgs WHERE key = ?`, t.Org).
		Scan(&p.MaxLifetimeDays, &p.AllowNonExpiring, &p.IdleWarningDays)
	return p, err
}

// RotateToken gives owner's token id a new secret.
func (db *DB) RotateToken(ctx context.Context, owner sot.TokenOwner, id int64, req sot.RotateRequest) (*sot.Token, error) {
	var out *sot.Token
	now := req.Now.UTC().Truncate(time.Second)
	err := db.write(ctx, func(x *tx) error {
		if _, err := x.lock(ctx, "tokens", "id = ?", id); err != nil {
			return err
		}
		t, err := findToken(ctx, x.conn, owner, id)
		if err != nil {
			return err
		}
		if req.IfNextRotationAt != nil && (t.NextRotationAt == nil || !t.NextRotationAt.Equal(*req.IfNextRotationAt)) {
			return sot.Errorf(sot.ECONFLICT, "token %d was rotated already", id)
		}
		switch t.State(now) {
		case sot.TokenStateRevoked:
			return sot.Invalid("a revoked token cannot be rotated")
		case sot.TokenStateExpired:
			return sot.Invalid("an expired token cannot be rotated: create a new one")
		}
		policy, err := tokenPolicy(ctx, x.conn, t)
		if err != nil {
			return err
		}
		expires := t.RotatedExpiry(now, policy)
		graceEnd := now.Add(req.Grace)
		// Every secret still working stops at the end of the grace period
		// (an earlier rotation's shorter grace is kept). The rows stay, so
		// that a use after the end is answered "token rotated".
		if _, err := x.exec(ctx, `UPDATE token_secrets SET expires_at = ? WHERE token_id = ? AND (expires_at IS NULL OR expires_at > ?)`,
			unix(graceEnd), id, unix(graceEnd)); err != nil {
			return err
		}
		if _, err := x.exec(ctx, `INSERT INTO token_secrets (token_id, hash, created_at) VALUES (?, ?, ?)`, id, req.Hash[:], unix(now)); err != nil {
			if isUnique(err) {
				return sot.Errorf(sot.ECONFLICT, "a token with this secret already exists")
			}
			return err
		}
		var next *time.Time
		if t.Rotation != nil {
			n := now.Add(t.Rotation.Every)
			next = &n
		}
		if _, err := x.exec(ctx, `UPDATE tokens SET hint = ?, expires_at = ?, rotated_at = ?, previous_secret_expires_at = ?,
			next_rotation_at = ?, expiry_warned = 0 WHERE id = ?`,
			req.Hint, unixPtr(expires), unix(now), unix(graceEnd), unixPtr(next), id); err != nil {
			return err
		}
		t.Hint, t.ExpiresAt, t.RotatedAt, t.PreviousSecretExpiresAt, t.NextRotationAt = req.Hint, expires, &now, &graceEnd, next
		x.changed(sot.Change{Kind: sot.ChangeToken, Org: t.Org, TokenID: id})
		details := map[string]any{"name": t.Name, "grace_period": req.Grace.String(), "scheduled": req.IfNextRotationAt != nil}
		if expires != nil {
			details["expires_at"] = expires.Format(time.RFC3339)
		}
		if err := x.audit(ctx, t.Org, sot.ActionTokenRotated, fmt.Sprintf("token:%d", id), details); err != nil {
			return err
		}
		evDetails := map[string]any{"grace_period": req.Grace.String(), "previous_secret_expires_at": graceEnd.Format(time.RFC3339),
			"scheduled": req.IfNextRotationAt != nil}
		if err := x.emit(ctx, t, sot.EventTokenRotated, now, req.Secret, evDetails); err != nil {
			return err
		}
		if err := loadScopeKeys(ctx, x.conn, t); err != nil {
			return err
		}
		out = t
		return nil
	})
	if err != nil {
		return nil, fail("rotate token", err)
	}
	return out, nil
}

// SetTokenRotation sets or removes the rotation schedule of owner's token.
func (db *DB) SetTokenRotation(ctx context.Context, owner sot.TokenOwner, id int64, r *sot.TokenRotation, now time.Time) (*sot.Token, error) {
	var out *sot.Token
	err := db.write(ctx, func(x *tx) error {
		if _, err := x.lock(ctx, "tokens", "id = ?", id); err != nil {
			return err
		}
		t, err := findToken(ctx, x.conn, owner, id)
		if err != nil {
			return err
		}
		every, grace := rotationArgs(r)
		var next *time.Time
		details := map[string]any{"rotation": nil}
		if r != nil {
			n := now.UTC().Truncate(time.Second).Add(r.Every)
			next = &n
			details["rotation"] = map[string]any{"every": r.EveryString(), "grace_period": r.GracePeriod.String()}
		}
		if _, err := x.exec(ctx, `UPDATE tokens SET rotation_every = ?, rotation_grace = ?, next_rotation_at = ? WHERE id = ?`,
			every, grace, unixPtr(next), id); err != nil {
			return err
		}
		t.Rotation, t.NextRotationAt = r, next
		if err := x.audit(ctx, t.Org, sot.ActionTokenUpdated, fmt.Sprintf("token:%d", id), details); err != nil {
			return err
		}
		if err := loadScopeKeys(ctx, x.conn, t); err != nil {
			return err
		}
		out = t
		return nil
	})
	if err != nil {
		return nil, fail("set token rotation", err)
	}
	return out, nil
}

// DueRotations returns live tokens whose scheduled rotation is due.
func (db *DB) DueRotations(ctx context.Context, now time.Time, limit int) ([]*sot.Token, error) {
	rows, err := db.read().query(ctx, `SELECT `+tokenColumns+tokenFrom+` WHERE t.next_rotation_at <= ? AND t.revoked_at IS NULL
		AND (t.expires_at IS NULL OR t.expires_at > ?) ORDER BY t.next_rotation_at, t.id LIMIT ?`, unix(now), unix(now), limit)
	if err != nil {
		return nil, fail("due rotations", err)
	}
	defer rows.Close()
	var out []*sot.Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fail("due rotations", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fail("due rotations", err)
	}
	return out, nil
}

// candidate is a token a sweep may warn about, with the flags it read.
type candidate struct {
	tok      *sot.Token
	warned   int64         // expiry_warned
	idleFor  sql.NullInt64 // idle_warned_for
	idleDays int           // idle_warning_days of its organization
}

func (db *DB) candidates(ctx context.Context, where string, args ...any) ([]candidate, error) {
	rows, err := db.read().query(ctx, `SELECT `+tokenColumns+`, t.expiry_warned, t.idle_warned_for, o.idle_warning_days`+tokenFrom+
		` WHERE t.kind = 'org' AND t.revoked_at IS NULL AND `+where+` ORDER BY t.id LIMIT ?`, append(args, sweepLimit)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []candidate
	for rows.Next() {
		var c candidate
		var err error
		if c.tok, err = scanToken(rows, &c.warned, &c.idleFor, &c.idleDays); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// SweepExpiry emits token.expiring and token.expired, each once per token.
// A claim (a conditional UPDATE of the warned bits) in the transaction of
// the emitted event makes each happen once, whichever replica sweeps.
func (db *DB) SweepExpiry(ctx context.Context, now time.Time) (int, error) {
	now = now.UTC().Truncate(time.Second)
	// One query per window selects only the tokens that still lack that
	// window's event, so tokens already warned never crowd out the others.
	type window struct {
		event   string
		days    int   // the threshold (0: expired)
		from    int64 // expires_at > from (expired: no lower bound)
		to      int64 // expires_at <= to
		bit     int64
		setBits int64 // this warning and the longer ones, skipped when a token starts inside a shorter window
	}
	windows := []window{{event: sot.EventTokenExpired, to: unix(now), bit: warnedExpired, setBits: warnedAll}}
	longer := int64(0)
	for i, w := range warnBits {
		lower := now
		if i+1 < len(warnBits) {
			lower = now.Add(time.Duration(warnBits[i+1].days) * sot.Day)
		}
		longer |= w.bit
		windows = append(windows, window{event: sot.EventTokenExpiring, days: w.days, from: unix(lower),
			to: unix(now.Add(time.Duration(w.days) * sot.Day)), bit: w.bit, setBits: longer})
	}
	n := 0
	for _, w := range windows {
		where := fmt.Sprintf(`t.expires_at IS NOT NULL AND t.expires_at <= ? AND (t.expiry_warned & %d) = 0`, w.bit)
		args := []any{w.to}
		if w.event == sot.EventTokenExpiring {
			where += ` AND t.expires_at > ?`
			args = append(args, w.from)
		}
		cs, err := db.candidates(ctx, where, args...)
		if err != nil {
			return n, fail("sweep expiry", err)
		}
		for _, c := range cs {
			details := map[string]any{}
			if w.event == sot.EventTokenExpiring {
				details["days"] = w.days
				details["expires_in_hours"] = int(c.tok.ExpiresAt.Sub(now) / time.Hour)
			}
			err := db.write(ctx, func(x *tx) error {
				// The claim: it fails when another replica (or a rotation,
				// which resets the bits) changed them since the read.
				res, err := x.exec(ctx, `UPDATE tokens SET expiry_warned = ? WHERE id = ? AND expiry_warned = ?`, c.warned|w.setBits, c.tok.ID, c.warned)
				if err != nil {
					return err
				}
				if k, err := res.RowsAffected(); err != nil || k == 0 {
					return err
				}
				n++
				return x.emit(ctx, c.tok, w.event, now, "", details)
			})
			if err != nil {
				return n, fail("sweep expiry", err)
			}
		}
	}
	return n, nil
}

// SweepIdle emits token.idle once per idle period. The period starts at
// the token's last use (or creation); a use starts a new one.
func (db *DB) SweepIdle(ctx context.Context, now time.Time) (int, error) {
	now = now.UTC().Truncate(time.Second)
	cs, err := db.candidates(ctx, `o.idle_warning_days > 0 AND (t.expires_at IS NULL OR t.expires_at > ?)
		AND COALESCE(t.last_used_at, t.created_at) <= CAST(? AS BIGINT) - o.idle_warning_days * 86400
		AND (t.idle_warned_for IS NULL OR t.idle_warned_for <> COALESCE(t.last_used_at, t.created_at))`, unix(now), unix(now))
	if err != nil {
		return 0, fail("sweep idle", err)
	}
	n := 0
	for _, c := range cs {
		since := c.tok.CreatedAt
		if c.tok.LastUsedAt != nil {
			since = *c.tok.LastUsedAt
		}
		err := db.write(ctx, func(x *tx) error {
			res, err := x.exec(ctx, `UPDATE tokens SET idle_warned_for = ? WHERE id = ? AND (idle_warned_for IS NULL OR idle_warned_for <> ?)`,
				unix(since), c.tok.ID, unix(since))
			if err != nil {
				return err
			}
			if k, err := res.RowsAffected(); err != nil || k == 0 {
				return err
			}
			n++
			return x.emit(ctx, c.tok, sot.EventTokenIdle, now, "", map[string]any{
				"idle_days": int(now.Sub(since) / sot.Day), "idle_warning_days": c.idleDays, "idle_since": since.Format(time.RFC3339)})
		})
		if err != nil {
			return n, fail("sweep idle", err)
		}
	}
	return n, nil
}

// RevokeLeaked revokes the live tokens of hashes, audited as token.leaked.
func (db *DB) RevokeLeaked(ctx context.Context, hashes []sot.SecretHash, report sot.LeakReport, now time.Time) ([]sot.LeakResult, error) {
	now = now.UTC().Truncate(time.Second)
	out := make([]sot.LeakResult, len(hashes))
	err := db.write(ctx, func(x *tx) error {
		for i, h := range hashes {
			var secretExp sql.NullInt64
			t, err := scanToken(x.queryRow(ctx, `SELECT `+tokenColumns+`, s.expires_at FROM token_secrets s JOIN tokens t ON t.id = s.token_id
				LEFT JOIN orgs o ON o.id = t.org_id WHERE s.hash = ?`, h[:]), &secretExp)
			if errors.Is(err, sql.ErrNoRows) {
				continue
			}
			if err != nil {
				return err
			}
			out[i] = sot.LeakResult{Found: true, Token: t}
			live := t.State(now) == sot.TokenStateActive && (!secretExp.Valid || secretExp.Int64 > unix(now))
			if live {
				if _, err := x.lock(ctx, "tokens", "id = ?", t.ID); err != nil {
					return err
				}
				res, err := x.exec(ctx, `UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, unix(now), t.ID)
				if err != nil {
					return err
				}
				if k, _ := res.RowsAffected(); k > 0 {
					t.RevokedAt = &now
					out[i].Revoked = true
					x.changed(sot.Change{Kind: sot.ChangeToken, Org: t.Org, TokenID: t.ID})
				}
			}
			details := map[string]any{"name": t.Name, "hint": t.Hint, "source": report.Source, "revoked": out[i].Revoked}
			if report.URL != "" {
				details["url"] = report.URL
			}
			if report.Kind != "" {
				details["type"] = report.Kind
			}
			if err := x.audit(ctx, t.Org, sot.ActionTokenLeaked, fmt.Sprintf("token:%d", t.ID), details); err != nil {
				return err
			}
			evDetails := map[string]any{"source": report.Source, "url": report.URL, "revoked": out[i].Revoked}
			if err := x.emit(ctx, t, sot.EventTokenLeaked, now, "", evDetails); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fail("revoke leaked tokens", err)
	}
	return out, nil
}

// CountExpiring counts live organization tokens per organization that
// expire within d of now.
func (db *DB) CountExpiring(ctx context.Context, now time.Time, d time.Duration) (map[string]int, error) {
	rows, err := db.read().query(ctx, `SELECT o.key, COUNT(*) FROM tokens t JOIN orgs o ON o.id = t.org_id
		WHERE t.kind = 'org' AND t.revoked_at IS NULL AND t.expires_at > ? AND t.expires_at <= ? GROUP BY o.key`,
		unix(now), unix(now.Add(d)))
	if err != nil {
		return nil, fail("count expiring tokens", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var k string
		var n int
		if err := rows.Scan(&k, &n); err != nil {
			return nil, fail("count expiring tokens", err)
		}
		out[k] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fail("count expiring tokens", err)
	}
	return out, nil
}
