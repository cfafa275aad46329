package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sot-dev/sot"
)

var _ sot.WebhookService = (*DB)(nil)

// maxAttemptError bounds the error text kept per delivery attempt.
const maxAttemptError = 500

func webhookNotFound(id int64) error { return sot.Errorf(sot.ENOTFOUND, "webhook %d not found", id) }

const webhookColumns = `w.id, o.key, w.url, w.events, w.created_by_id, w.created_by_login, w.created_at, w.updated_at`

func scanWebhook(s interface{ Scan(...any) error }) (*sot.Webhook, error) {
	var w sot.Webhook
	var events string
	var by sql.NullInt64
	var created, updated int64
	if err := s.Scan(&w.ID, &w.Org, &w.URL, &events, &by, &w.CreatedBy.Login, &created, &updated); err != nil {
		return nil, err
	}
	w.CreatedBy.ID = by.Int64
	w.CreatedAt, w.UpdatedAt = fromUnix(created), fromUnix(updated)
	if err := json.Unmarshal([]byte(events), &w.Events); err != nil {
		return nil, fmt.Errorf("decode events of webhook %d: %w", w.ID, err)
	}
	return &w, nil
}

func encodeEvents(events []string) string {
	b, _ := json.Marshal(events) // cannot fail: strings
	return string(b)
}

func findWebhook(ctx context.Context, c conn, org string, id int64) (*sot.Webhook, error) {
	w, err := scanWebhook(c.queryRow(ctx, `SELECT `+webhookColumns+` FROM webhooks w JOIN orgs o ON o.id = w.org_id
		WHERE w.id = ? AND o.key = ?`, id, org))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, webhookNotFound(id)
	}
	return w, err
}

// CreateWebhook stores w.
func (db *DB) CreateWebhook(ctx context.Context, w *sot.Webhook) error {
	if w.CreatedAt.IsZero() {
		w.CreatedAt = now()
	}
	w.CreatedAt = w.CreatedAt.UTC().Truncate(time.Second)
	w.UpdatedAt = w.CreatedAt
	err := db.write(ctx, func(x *tx) error {
		oid, err := orgID(ctx, x.conn, w.Org)
		if err != nil {
			return err
		}
		var by sql.NullInt64
		if w.CreatedBy.ID != 0 {
			by = sql.NullInt64{Int64: w.CreatedBy.ID, Valid: true}
		}
		if err := x.queryRow(ctx, `INSERT INTO webhooks (org_id, url, events, secret, created_by_id, created_by_login, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, oid, w.URL, encodeEvents(w.Events), w.Secret, by, w.CreatedBy.Login,
			unix(w.CreatedAt), unix(w.UpdatedAt)).Scan(&w.ID); err != nil {
			return err
		}
		return x.audit(ctx, w.Org, sot.ActionWebhookCreated, fmt.Sprintf("webhook:%d", w.ID), map[string]any{"url": w.URL, "events": w.Events})
	})
	if err != nil {
		w.ID = 0
		return fail("create webhook", err)
	}
	return nil
}

// FindWebhook returns a webhook of org, without its secret.
func (db *DB) FindWebhook(ctx context.Context, org string, id int64) (*sot.Webhook, error) {
	w, err := findWebhook(ctx, db.read(), org, id)
	if err != nil {
		return nil, fail("find webhook", err)
	}
	return w, nil
}

// ListWebhooks lists org's webhooks by ID.
func (db *DB) ListWebhooks(ctx context.Context, org string, page sot.Page) ([]*sot.Webhook, string, error) {
	c := db.read()
	oid, err := orgID(ctx, c, org)
	if err != nil {
		return nil, "", fail("list webhooks", err)
	}
	q := `SELECT ` + webhookColumns + ` FROM webhooks w JOIN orgs o ON o.id = w.org_id WHERE w.org_id = ?`
	args := []any{oid}
	if page.Token != "" {
		after, err := parseIDCursor(page.Token)
		if err != nil {
			return nil, "", err
		}
		q += ` AND w.id > ?`
		args = append(args, after)
	}
	limit := page.Limit()
	rows, err := c.query(ctx, q+` ORDER BY w.id LIMIT ?`, append(args, limit+1)...)
	if err != nil {
		return nil, "", fail("list webhooks", err)
	}
	defer rows.Close()
	var out []*sot.Webhook
	for rows.Next() {
		w, err := scanWebhook(rows)
		if err != nil {
			return nil, "", fail("list webhooks", err)
		}
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fail("list webhooks", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = idCursor(out[limit-1].ID)
	}
	return out, next, nil
}

// UpdateWebhook applies upd to a webhook of org.
func (db *DB) UpdateWebhook(ctx context.Context, org string, id int64, upd sot.WebhookUpdate) (*sot.Webhook, error) {
	var out *sot.Webhook
	err := db.write(ctx, func(x *tx) error {
		w, err := findWebhook(ctx, x.conn, org, id)
		if err != nil {
			return err
		}
		changed := map[string]any{}
		if upd.URL != nil && *upd.URL != w.URL {
			w.URL = *upd.URL
			changed["url"] = w.URL
		}
		if upd.Events != nil {
			w.Events = *upd.Events
			changed["events"] = w.Events
		}
		secretArg := sql.NullString{}
		if upd.Secret != nil {
			secretArg = sql.NullString{String: *upd.Secret, Valid: true}
			changed["secret"] = "replaced"
		}
		if len(changed) == 0 {
			out = w
			return nil
		}
		w.UpdatedAt = upd.At.UTC().Truncate(time.Second)
		if upd.At.IsZero() {
			w.UpdatedAt = now()
		}
		if _, err := x.exec(ctx, `UPDATE webhooks SET url = ?, events = ?, secret = COALESCE(?, secret), updated_at = ? WHERE id = ?`,
			w.URL, encodeEvents(w.Events), secretArg, unix(w.UpdatedAt), id); err != nil {
			return err
		}
		out = w
		return x.audit(ctx, org, sot.ActionWebhookUpdated, fmt.Sprintf("webhook:%d", id), changed)
	})
	if err != nil {
		return nil, fail("update webhook", err)
	}
	return out, nil
}

// DeleteWebhook deletes a webhook of org and its deliveries.
func (db *DB) DeleteWebhook(ctx context.Context, org string, id int64) error {
	err := db.write(ctx, func(x *tx) error {
		w, err := findWebhook(ctx, x.conn, org, id)
		if err != nil {
			return err
		}
		if _, err := x.exec(ctx, `DELETE FROM webhooks WHERE id = ?`, id); err != nil {
			return err
		}
		return x.audit(ctx, org, sot.ActionWebhookDeleted, fmt.Sprintf("webhook:%d", id), map[string]any{"url": w.URL})
	})
	if err != nil {
		return fail("delete webhook", err)
	}
	return nil
}

// ListDeliveries lists a webhook's deliveries, newest first, with their
// attempts (bodies are not listed: a token.rotated body holds a secret
// until it is delivered).
func (db *DB) ListDeliveries(ctx context.Context, org string, webhookID int64, page sot.Page) ([]*sot.Delivery, string, error) {
	c := db.read()
	if _, err := findWebhook(ctx, c, org, webhookID); err != nil {
		return nil, "", fail("list deliveries", err)
	}
	q := `SELECT id, webhook_id, event, state, created_at, next_attempt_at, delivered_at FROM webhook_deliveries WHERE webhook_id = ?`
	args := []any{webhookID}
	if page.Token != "" {
		before, err := parseIDCursor(page.Token)
		if err != nil {
			return nil, "", err
		}
		q += ` AND id < ?`
		args = append(args, before)
	}
	limit := page.Limit()
	rows, err := c.query(ctx, q+` ORDER BY id DESC LIMIT ?`, append(args, limit+1)...)
	if err != nil {
		return nil, "", fail("list deliveries", err)
	}
	var out []*sot.Delivery
	byID := map[int64]*sot.Delivery{}
	for rows.Next() {
		var d sot.Delivery
		var created int64
		var next, delivered sql.NullInt64
		if err := rows.Scan(&d.ID, &d.WebhookID, &d.Event, &d.State, &created, &next, &delivered); err != nil {
			rows.Close()
			return nil, "", fail("list deliveries", err)
		}
		d.CreatedAt, d.DeliveredAt = fromUnix(created), timePtr(delivered)
		if d.State == sot.DeliveryPending {
			d.NextAttemptAt = timePtr(next)
		}
		d.Attempts = []sot.DeliveryAttempt{}
		out = append(out, &d)
		byID[d.ID] = &d
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, "", fail("list deliveries", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = idCursor(out[limit-1].ID)
	}
	if len(out) == 0 {
		return out, next, nil
	}
	ids := make([]any, len(out))
	for i, d := range out {
		ids[i] = d.ID
	}
	arows, err := c.query(ctx, `SELECT delivery_id, at, status_code, error, duration_ms FROM webhook_attempts
		WHERE delivery_id IN (`+placeholders(len(ids))+`) ORDER BY id`, ids...)
	if err != nil {
		return nil, "", fail("list deliveries", err)
	}
	defer arows.Close()
	for arows.Next() {
		var id, at, ms int64
		var a sot.DeliveryAttempt
		if err := arows.Scan(&id, &at, &a.StatusCode, &a.Error, &ms); err != nil {
			return nil, "", fail("list deliveries", err)
		}
		a.At, a.Duration = fromUnix(at), time.Duration(ms)*time.Millisecond
		if d := byID[id]; d != nil {
			d.Attempts = append(d.Attempts, a)
		}
	}
	if err := arows.Err(); err != nil {
		return nil, "", fail("list deliveries", err)
	}
	return out, next, nil
}

// ClaimDeliveries leases due deliveries to owner. Each claim is a
// conditional UPDATE that succeeds only while the row is unleased (or its
// lease has run out), so two replicas never both send one delivery: on
// PostgreSQL the second UPDATE waits for the first's row lock and then no
// longer matches.
func (db *DB) ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, owner string, limit int) ([]*sot.OutboundDelivery, error) {
	at := unix(now)
	var out []*sot.OutboundDelivery
	err := db.write(ctx, func(x *tx) error {
		out = nil
		ids, err := queryIDs(ctx, x.conn, `SELECT id FROM webhook_deliveries WHERE state = ? AND next_attempt_at <= ? AND lease_until <= ?
			ORDER BY next_attempt_at, id LIMIT ?`,
			sot.DeliveryPending, at, at, limit)
		if err != nil {
			return err
		}
		for _, id := range ids {
			res, err := x.exec(ctx, `UPDATE webhook_deliveries SET lease_owner = ?, lease_until = ?
				WHERE id = ? AND state = ? AND lease_until <= ?`, owner, unix(now.Add(lease)), id, sot.DeliveryPending, at)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil || n == 0 {
				if err != nil {
					return err
				}
				continue
			}
			var d sot.OutboundDelivery
			var body string
			var created int64
			if err := x.queryRow(ctx, `SELECT d.id, d.webhook_id, w.url, w.secret, d.event, d.body, d.attempts, d.created_at
				FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id WHERE d.id = ?`, id).
				Scan(&d.ID, &d.WebhookID, &d.URL, &d.Secret, &d.Event, &body, &d.Attempts, &created); err != nil {
				return err
			}
			d.Body, d.CreatedAt = []byte(body), fromUnix(created)
			out = append(out, &d)
		}
		return nil
	})
	if err != nil {
		return nil, fail("claim deliveries", err)
	}
	return out, nil
}

// FinishAttempt records an attempt of a delivery leased to owner. Once a
// delivery is done (delivered or given up) its body loses any secret.
func (db *DB) FinishAttempt(ctx context.Context, id int64, owner string, a sot.DeliveryAttempt, next *time.Time) error {
	state := sot.DeliveryPending
	var delivered sql.NullInt64
	switch {
	case a.Error == "":
		state = sot.DeliveryDelivered
		delivered = sql.NullInt64{Int64: unix(a.At), Valid: true}
	case next == nil:
		state = sot.DeliveryFailed
	}
	msg := a.Error
	if len(msg) > maxAttemptError {
		msg = msg[:maxAttemptError]
	}
	err := db.write(ctx, func(x *tx) error {
		var body string
		if err := x.queryRow(ctx, `SELECT body FROM webhook_deliveries WHERE id = ? AND lease_owner = ?`, id, owner).Scan(&body); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return sot.Errorf(sot.ECONFLICT, "delivery %d is not leased to this replica", id)
			}
			return err
		}
		if state != sot.DeliveryPending {
			body = scrubSecret(body)
		}
		if _, err := x.exec(ctx, `UPDATE webhook_deliveries SET state = ?, next_attempt_at = ?, delivered_at = ?, attempts = attempts + 1,
			lease_owner = '', lease_until = 0, body = ? WHERE id = ? AND lease_owner = ?`,
			state, unixPtr(next), delivered, body, id, owner); err != nil {
			return err
		}
		_, err := x.exec(ctx, `INSERT INTO webhook_attempts (delivery_id, at, status_code, error, duration_ms) VALUES (?, ?, ?, ?, ?)`,
			id, unix(a.At), a.StatusCode, msg, a.Duration.Milliseconds())
		return err
	})
	if err != nil {
		return fail("finish delivery attempt", err)
	}
	return nil
}

// scrubSecret removes the "secret" member of a delivery body.
func scrubSecret(body string) string {
	var m map[string]json.RawMessage
	if json.Unmarshal([]byte(body), &m) != nil {
		return body
	}
	if _, ok := m["secret"]; !ok {
		return body
	}
	delete(m, "secret")
	b, err := json.Marshal(m)
	if err != nil {
		return body
	}
	return string(b)
}
