package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/sot-dev/sot"
)

// audit writes an event of the actor of ctx in the transaction, so the
// event exists exactly when the change does.
func (t *tx) audit(ctx context.Context, org, action, target string, details map[string]any) error {
	ev := &sot.AuditEvent{Org: org, Actor: sot.ActorFrom(ctx), Action: action, Target: target, Details: details}
	return insertEvent(ctx, t.conn, ev)
}

func insertEvent(ctx context.Context, c conn, ev *sot.AuditEvent) error {
	if ev.At.IsZero() {
		ev.At = now()
	}
	ev.At = ev.At.UTC().Truncate(time.Second)
	details := []byte("{}")
	if len(ev.Details) > 0 {
		var err error
		if details, err = json.Marshal(ev.Details); err != nil {
			return fmt.Errorf("encode audit details: %w", err)
		}
	}
	err := c.queryRow(ctx, `INSERT INTO audit_events (at, org_key, actor_type, actor_id, actor_name, actor_ip, action, target, details)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		unix(ev.At), ev.Org, string(ev.Actor.Type), ev.Actor.ID, ev.Actor.Name, ev.Actor.IP, ev.Action, ev.Target, string(details)).Scan(&ev.ID)
	if err != nil {
		return fmt.Errorf("insert audit event: %w", err)
	}
	return nil
}

// RecordEvent stores ev, an event that is not part of a state change. A
// zero actor is taken from ctx.
func (db *DB) RecordEvent(ctx context.Context, ev *sot.AuditEvent) error {
	if ev.Actor == (sot.Actor{}) {
		ev.Actor = sot.ActorFrom(ctx)
	}
	err := db.write(ctx, func(t *tx) error { return insertEvent(ctx, t.conn, ev) })
	if err != nil {
		return fail("record event", err)
	}
	return nil
}

// ListEvents lists the events of org ("" for the instance), newest first.
func (db *DB) ListEvents(ctx context.Context, org string, filter sot.AuditFilter, page sot.Page) ([]*sot.AuditEvent, string, error) {
	q := `SELECT id, at, org_key, actor_type, actor_id, actor_name, actor_ip, action, target, details
		FROM audit_events WHERE org_key = ?`
	args := []any{org}
	if filter.Action != "" {
		q += " AND action = ?"
		args = append(args, filter.Action)
	}
	if filter.Target != "" {
		q += " AND target = ?"
		args = append(args, filter.Target)
	}
	if page.Token != "" {
		after, err := parseIDCursor(page.Token)
		if err != nil {
			return nil, "", err
		}
		q += " AND id < ?"
		args = append(args, after)
	}
	limit := page.Limit()
	q += " ORDER BY id DESC LIMIT ?"
	args = append(args, limit+1)
	rows, err := db.read().query(ctx, q, args...)
	if err != nil {
		return nil, "", fail("list events", err)
	}
	defer rows.Close()
	var out []*sot.AuditEvent
	for rows.Next() {
		var ev sot.AuditEvent
		var at int64
		var actorType, details string
		if err := rows.Scan(&ev.ID, &at, &ev.Org, &actorType, &ev.Actor.ID, &ev.Actor.Name, &ev.Actor.IP, &ev.Action, &ev.Target, &details); err != nil {
			return nil, "", fail("list events", err)
		}
		ev.At = fromUnix(at)
		ev.Actor.Type = sot.ActorType(actorType)
		if details != "{}" {
			if err := json.Unmarshal([]byte(details), &ev.Details); err != nil {
				return nil, "", fail("list events", fmt.Errorf("decode details of event %d: %w", ev.ID, err))
			}
		}
		out = append(out, &ev)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fail("list events", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = idCursor(out[limit-1].ID)
	}
	return out, next, nil
}
