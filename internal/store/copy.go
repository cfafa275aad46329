package store

import (
	"context"
	"fmt"
	"strings"
)

// copyTable describes a table for Copy: its columns, the ones that are
// booleans (integers on SQLite), and whether it has an identity column.
type copyTable struct {
	name    string
	columns []string
	order   string
	bools   []string
	// identity is true for tables whose id PostgreSQL generates: their
	// sequence must move past the copied IDs.
	identity bool
}

// copyTables lists every table in an order that satisfies the foreign keys.
var copyTables = []copyTable{
	{name: "orgs", columns: []string{"id", "key", "name", "description", "plan", "max_lifetime_days", "allow_non_expiring",
		"idle_warning_days", "created_at", "updated_at"}, order: "id", bools: []string{"allow_non_expiring"}, identity: true},
	{name: "users", columns: []string{"id", "login", "name", "admin", "password_hash", "created_at"},
		order: "id", bools: []string{"admin"}, identity: true},
	{name: "memberships", columns: []string{"org_id", "user_id", "role", "created_at"}, order: "org_id, user_id"},
	{name: "projects", columns: []string{"id", "org_id", "key", "name", "created_at"}, order: "id", identity: true},
	{name: "trust_policies", columns: []string{"id", "org_id", "name", "issuer", "audience", "conditions", "all_projects",
		"projects", "patterns", "permissions", "ttl_seconds", "created_by_id", "created_by_login", "created_at", "updated_at"},
		order: "id", bools: []string{"all_projects"}, identity: true},
	{name: "tokens", columns: []string{"id", "kind", "org_id", "user_id", "name", "description", "all_projects", "patterns",
		"permissions", "allowed_cidrs", "hint", "source", "created_by_id", "created_by_login", "created_at", "expires_at",
		"last_used_at", "last_used_ip", "revoked_at", "project_count", "rotation_every", "rotation_grace", "next_rotation_at",
		"rotated_at", "previous_secret_expires_at", "expiry_warned", "idle_warned_for", "trust_policy_id", "oidc_identity"}, order: "id", bools: []string{"all_projects"}, identity: true},
	{name: "token_secrets", columns: []string{"id", "token_id", "hash", "created_at", "expires_at"}, order: "id", identity: true},
	{name: "token_projects", columns: []string{"token_id", "project_id"}, order: "token_id, project_id"},
	{name: "audit_events", columns: []string{"id", "at", "org_key", "actor_type", "actor_id", "actor_name", "actor_ip",
		"action", "target", "details"}, order: "id", identity: true},
	{name: "analyses", columns: []string{"id", "project_id", "branch", "commit_sha", "size", "sha256", "created_at",
		"actor_type", "actor_id", "actor_name", "actor_ip"}, order: "id", identity: true},
	{name: "analysis_reports", columns: []string{"analysis_id", "body"}, order: "analysis_id"},
	{name: "webhooks", columns: []string{"id", "org_id", "url", "events", "secret", "created_by_id", "created_by_login",
		"created_at", "updated_at"}, order: "id", identity: true},
	{name: "webhook_deliveries", columns: []string{"id", "webhook_id", "event", "body", "state", "created_at", "next_attempt_at",
		"lease_owner", "lease_until", "attempts", "delivered_at"}, order: "id", identity: true},
	{name: "webhook_attempts", columns: []string{"id", "delivery_id", "at", "status_code", "error", "duration_ms"}, order: "id", identity: true},
}

// Batches of a copy: at most copyBatchRows rows, or about copyBatchBytes
// of data (reports can be large), per INSERT.
const (
	copyBatchRows  = 500
	copyBatchBytes = 8 << 20
)

// Copy copies every row of every table of from into to, which must be
// empty, keeping IDs, in one transaction on to. It then checks that both
// databases have the same number of rows in each table and returns those
// counts. It backs "sot migrate-data": run it while no server writes to
// from.
func Copy(ctx context.Context, from, to *DB) (map[string]int64, error) {
	for _, t := range copyTables {
		n, err := countRows(ctx, to.read(), t.name)
		if err != nil {
			return nil, fmt.Errorf("copy: count %s in target: %w", t.name, err)
		}
		if n > 0 {
			return nil, fmt.Errorf("copy: the target database is not empty (table %s has %d rows): copy into a new database", t.name, n)
		}
	}
	err := to.write(ctx, func(tx *tx) error {
		for _, t := range copyTables {
			if err := copyRows(ctx, from.read(), tx.conn, t); err != nil {
				return fmt.Errorf("copy %s: %w", t.name, err)
			}
			if t.identity && tx.pg {
				// The next generated ID must follow the copied ones.
				if _, err := tx.exec(ctx, `SELECT setval(pg_get_serial_sequence('`+t.name+`', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM `+t.name); err != nil {
					return fmt.Errorf("reset the ID sequence of %s: %w", t.name, err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("copy: %w", err)
	}
	counts := make(map[string]int64, len(copyTables))
	for _, t := range copyTables {
		src, err := countRows(ctx, from.read(), t.name)
		if err != nil {
			return nil, fmt.Errorf("copy: count %s in source: %w", t.name, err)
		}
		dst, err := countRows(ctx, to.read(), t.name)
		if err != nil {
			return nil, fmt.Errorf("copy: count %s in target: %w", t.name, err)
		}
		if src != dst {
			return nil, fmt.Errorf("copy: table %s has %d rows in the source and %d in the target", t.name, src, dst)
		}
		counts[t.name] = dst
	}
	return counts, nil
}

func countRows(ctx context.Context, c conn, table string) (int64, error) {
	var n int64
	err := c.queryRow(ctx, `SELECT COUNT(*) FROM `+table).Scan(&n)
	return n, err
}

// copyRows streams table t from src into dst in multi-row INSERTs.
func copyRows(ctx context.Context, src, dst conn, t copyTable) error {
	cols := strings.Join(t.columns, ", ")
	rows, err := src.query(ctx, `SELECT `+cols+` FROM `+t.name+` ORDER BY `+t.order)
	if err != nil {
		return err
	}
	defer rows.Close()
	isBool := make([]bool, len(t.columns))
	for i, c := range t.columns {
		for _, b := range t.bools {
			isBool[i] = isBool[i] || c == b
		}
	}
	row := "(" + placeholders(len(t.columns)) + ")"
	var args []any
	n, size := 0, 0
	flush := func() error {
		if n == 0 {
			return nil
		}
		q := `INSERT INTO ` + t.name + ` (` + cols + `) VALUES ` + strings.Repeat(row+", ", n-1) + row
		if _, err := dst.exec(ctx, q, args...); err != nil {
			return err
		}
		args, n, size = args[:0], 0, 0
		return nil
	}
	vals := make([]any, len(t.columns))
	ptrs := make([]any, len(t.columns))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		for i, v := range vals {
			// SQLite keeps booleans as integers; PostgreSQL wants bool.
			if iv, ok := v.(int64); ok && isBool[i] {
				v = iv != 0
			}
			switch v := v.(type) {
			case []byte:
				size += len(v)
			case string:
				size += len(v)
			}
			args = append(args, v)
		}
		n++
		if n == copyBatchRows || size >= copyBatchBytes {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	return flush()
}
