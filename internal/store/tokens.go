package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/sot-dev/sot"
)

// scopeChunk is how many project keys one statement resolves and stores:
// a 10,000-key scope takes 20 statements, each well under both databases'
// parameter limits.
const scopeChunk = 500

// maxUnknownListed bounds the unknown keys named in an error message.
const maxUnknownListed = 20

const tokenColumns = `t.id, t.kind, COALESCE(o.key, ''), COALESCE(t.user_id, 0), t.name, t.description, t.all_projects,
	t.patterns, t.permissions, t.allowed_cidrs, t.hint, t.source, COALESCE(t.created_by_id, 0), t.created_by_login,
	t.created_at, t.expires_at, t.last_used_at, t.last_used_ip, t.revoked_at, t.project_count,
	t.rotation_every, t.rotation_grace, t.next_rotation_at, t.rotated_at, t.previous_secret_expires_at,
	COALESCE(t.trust_policy_id, 0), t.oidc_identity`

const tokenFrom = ` FROM tokens t LEFT JOIN orgs o ON o.id = t.org_id`

// scanToken reads the tokenColumns of a row, then extra columns into extra.
func scanToken(s interface{ Scan(...any) error }, extra ...any) (*sot.Token, error) {
	var t sot.Token
	var kind, patterns, cidrs string
	var perms int64
	var created int64
	var expires, used, revoked sql.NullInt64
	var every, nextRot, rotated, prevExp sql.NullInt64
	var grace int64
	var identity string
	dest := []any{&t.ID, &kind, &t.Org, &t.UserID, &t.Name, &t.Description, &t.Scope.AllProjects,
		&patterns, &perms, &cidrs, &t.Hint, &t.Source, &t.CreatedBy.ID, &t.CreatedBy.Login,
		&created, &expires, &used, &t.LastUsedIP, &revoked, &t.ProjectCount,
		&every, &grace, &nextRot, &rotated, &prevExp, &t.TrustPolicyID, &identity}
	if err := s.Scan(append(dest, extra...)...); err != nil {
		return nil, err
	}
	if every.Valid {
		t.Rotation = &sot.TokenRotation{Every: time.Duration(every.Int64) * time.Second, GracePeriod: time.Duration(grace) * time.Second}
	}
	t.NextRotationAt, t.RotatedAt, t.PreviousSecretExpiresAt = timePtr(nextRot), timePtr(rotated), timePtr(prevExp)
	if identity != "" {
		t.OIDC = &sot.OIDCIdentity{}
		if err := json.Unmarshal([]byte(identity), t.OIDC); err != nil {
			return nil, fmt.Errorf("decode OIDC identity of token %d: %w", t.ID, err)
		}
	}
	t.Kind = sot.TokenKind(kind)
	t.Permissions = sot.PermissionSet(perms)
	t.CreatedAt = fromUnix(created)
	t.ExpiresAt, t.LastUsedAt, t.RevokedAt = timePtr(expires), timePtr(used), timePtr(revoked)
	if err := json.Unmarshal([]byte(patterns), &t.Scope.Patterns); err != nil {
		return nil, fmt.Errorf("decode patterns of token %d: %w", t.ID, err)
	}
	if len(t.Scope.Patterns) == 0 {
		t.Scope.Patterns = nil
	}
	var cidrList []string
	if err := json.Unmarshal([]byte(cidrs), &cidrList); err != nil {
		return nil, fmt.Errorf("decode allowed CIDRs of token %d: %w", t.ID, err)
	}
	for _, c := range cidrList {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return nil, fmt.Errorf("decode allowed CIDRs of token %d: %w", t.ID, err)
		}
		t.AllowedCIDRs = append(t.AllowedCIDRs, p)
	}
	return &t, nil
}

func encodePatterns(p []string) string {
	if len(p) == 0 {
		return "[]"
	}
	b, _ := json.Marshal(p) // cannot fail: strings
	return string(b)
}

func encodeCIDRs(cidrs []netip.Prefix) string {
	list := make([]string, len(cidrs))
	for i, c := range cidrs {
		list[i] = c.String()
	}
	b, _ := json.Marshal(list) // cannot fail: strings
	return string(b)
}

func tokenNotFound(id int64) error { return sot.Errorf(sot.ENOTFOUND, "token %d not found", id) }

// ownerClause returns the WHERE condition that keeps owner's tokens.
func ownerClause(ctx context.Context, c conn, owner sot.TokenOwner) (string, []any, error) {
	switch {
	case owner.Org != "":
		id, err := orgID(ctx, c, owner.Org)
		if err != nil {
			return "", nil, err
		}
		return `t.org_id = ? AND t.kind = 'org'`, []any{id}, nil
	case owner.UserID != 0:
		return `t.user_id = ? AND t.kind = 'personal'`, []any{owner.UserID}, nil
	}
	return "", nil, sot.Errorf(sot.ENOTFOUND, "no token owner given")
}

// findToken returns owner's token id without its explicit keys.
func findToken(ctx context.Context, c conn, owner sot.TokenOwner, id int64) (*sot.Token, error) {
	where, args, err := ownerClause(ctx, c, owner)
	if err != nil {
		return nil, err
	}
	t, err := scanToken(c.queryRow(ctx, `SELECT `+tokenColumns+tokenFrom+` WHERE t.id = ? AND `+where, append([]any{id}, args...)...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, tokenNotFound(id)
	}
	return t, err
}

// insertScope stores keys, projects of the organization orgID, as the
// explicit scope of token tokenID and returns how many it stored. Each
// chunk of keys is resolved and inserted by one INSERT … SELECT; only when
// a chunk stores fewer rows than it has keys does a second query find the
// unknown ones, and the error names them (the caller's transaction then
// rolls back).
func insertScope(ctx context.Context, c conn, orgID, tokenID int64, keys []string) (int, error) {
	keys = uniqueKeys(keys)
	stored := 0
	var unknown []string
	nUnknown := 0
	for chunk := range slices.Chunk(keys, scopeChunk) {
		args := make([]any, 0, len(chunk)+2)
		args = append(args, tokenID, orgID)
		for _, k := range chunk {
			args = append(args, k)
		}
		res, err := c.exec(ctx, `INSERT INTO token_projects (token_id, project_id)
			SELECT ?, id FROM projects WHERE org_id = ? AND key IN (`+placeholders(len(chunk))+`)`, args...)
		if err != nil {
			return 0, err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return 0, err
		}
		stored += int(n)
		if int(n) == len(chunk) {
			continue
		}
		missing, err := missingKeys(ctx, c, orgID, chunk)
		if err != nil {
			return 0, err
		}
		nUnknown += len(missing)
		for _, k := range missing {
			if len(unknown) < maxUnknownListed {
				unknown = append(unknown, fmt.Sprintf("%q", k))
			}
		}
	}
	if nUnknown > 0 {
		msg := "unknown projects: " + strings.Join(unknown, ", ")
		if nUnknown > len(unknown) {
			msg += fmt.Sprintf(" and %d more", nUnknown-len(unknown))
		}
		return 0, sot.Invalid(msg, sot.FieldError{Field: "scope.projects", Message: msg})
	}
	return stored, nil
}

// uniqueKeys returns keys without repeats, in their first order.
func uniqueKeys(keys []string) []string {
	seen := make(map[string]struct{}, len(keys))
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		if _, dup := seen[k]; !dup {
			seen[k] = struct{}{}
			out = append(out, k)
		}
	}
	return out
}

// missingKeys returns the keys of chunk that are not projects of orgID.
func missingKeys(ctx context.Context, c conn, orgID int64, chunk []string) ([]string, error) {
	args := make([]any, 0, len(chunk)+1)
	args = append(args, orgID)
	for _, k := range chunk {
		args = append(args, k)
	}
	rows, err := c.query(ctx, `SELECT key FROM projects WHERE org_id = ? AND key IN (`+placeholders(len(chunk))+`)`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	found := make(map[string]bool, len(chunk))
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, err
		}
		found[k] = true
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var missing []string
	for _, k := range chunk {
		if !found[k] {
			missing = append(missing, k)
		}
	}
	return missing, nil
}

// setScope replaces the explicit scope of token tokenID with keys and
// returns how many projects it names.
func setScope(ctx context.Context, c conn, orgID, tokenID int64, keys []string, replace bool) (int, error) {
	if replace {
		if _, err := c.exec(ctx, `DELETE FROM token_projects WHERE token_id = ?`, tokenID); err != nil {
			return 0, err
		}
	}
	return insertScope(ctx, c, orgID, tokenID, keys)
}

func permissionNames(s sot.PermissionSet) []string {
	var out []string
	for _, p := range s.List() {
		out = append(out, p.String())
	}
	return out
}

// CreateToken stores t and the hash of its secret.
func (db *DB) CreateToken(ctx context.Context, t *sot.Token, hash sot.SecretHash) error {
	if t.CreatedAt.IsZero() {
		t.CreatedAt = now()
	}
	t.CreatedAt = t.CreatedAt.UTC().Truncate(time.Second)
	err := db.write(ctx, func(x *tx) error {
		var orgIDArg, userIDArg sql.NullInt64
		details := map[string]any{"name": t.Name, "kind": string(t.Kind)}
		switch t.Kind {
		case sot.TokenKindOrg:
			oid, err := orgID(ctx, x.conn, t.Org)
			if err != nil {
				return err
			}
			orgIDArg = sql.NullInt64{Int64: oid, Valid: true}
			details["permissions"] = permissionNames(t.Permissions)
			details["scope"] = t.Scope.Summary()
		case sot.TokenKindPersonal:
			if t.UserID == 0 {
				return sot.Invalid("a personal token needs its user")
			}
			t.Org = ""
			userIDArg = sql.NullInt64{Int64: t.UserID, Valid: true}
			details["user_id"] = t.UserID
		default:
			return sot.Invalid(fmt.Sprintf("unknown token kind %q", t.Kind))
		}
		if t.ExpiresAt != nil {
			details["expires_at"] = t.ExpiresAt.UTC().Format(time.RFC3339)
		}
		var createdBy sql.NullInt64
		if t.CreatedBy.ID != 0 {
			createdBy = sql.NullInt64{Int64: t.CreatedBy.ID, Valid: true}
		}
		every, grace := rotationArgs(t.Rotation)
		t.NextRotationAt = nil
		if t.Rotation != nil {
			next := t.CreatedAt.Add(t.Rotation.Every)
			t.NextRotationAt = &next
			details["rotation_every"] = t.Rotation.EveryString()
		}
		err := x.queryRow(ctx, `INSERT INTO tokens (kind, org_id, user_id, name, description, all_projects, patterns, permissions,
			allowed_cidrs, hint, source, created_by_id, created_by_login, created_at, expires_at, project_count,
			rotation_every, rotation_grace, next_rotation_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?) RETURNING id`,
			string(t.Kind), orgIDArg, userIDArg, t.Name, t.Description, t.Scope.AllProjects, encodePatterns(t.Scope.Patterns),
			int64(t.Permissions), encodeCIDRs(t.AllowedCIDRs), t.Hint, t.Source, createdBy, t.CreatedBy.Login,
			unix(t.CreatedAt), unixPtr(t.ExpiresAt), every, grace, unixPtr(t.NextRotationAt)).Scan(&t.ID)
		if isForeignKey(err) {
			return sot.Errorf(sot.ENOTFOUND, "user %d not found", t.UserID)
		}
		if err != nil {
			return err
		}
		if _, err := x.exec(ctx, `INSERT INTO token_secrets (token_id, hash, created_at) VALUES (?, ?, ?)`,
			t.ID, hash[:], unix(t.CreatedAt)); err != nil {
			if isUnique(err) {
				return sot.Errorf(sot.ECONFLICT, "a token with this secret already exists")
			}
			return err
		}
		t.ProjectCount = 0
		if t.Kind == sot.TokenKindOrg && len(t.Scope.Projects) > 0 {
			n, err := setScope(ctx, x.conn, orgIDArg.Int64, t.ID, t.Scope.Projects, false)
			if err != nil {
				return err
			}
			if _, err := x.exec(ctx, `UPDATE tokens SET project_count = ? WHERE id = ?`, n, t.ID); err != nil {
				return err
			}
			t.ProjectCount = n
		}
		if err := x.emit(ctx, t, sot.EventTokenCreated, t.CreatedAt, "", nil); err != nil {
			return err
		}
		return x.audit(ctx, t.Org, sot.ActionTokenCreated, fmt.Sprintf("token:%d", t.ID), details)
	})
	if err != nil {
		t.ID = 0
		return fail("create token", err)
	}
	return nil
}

// FindToken returns owner's token id with its full scope.
func (db *DB) FindToken(ctx context.Context, owner sot.TokenOwner, id int64) (*sot.Token, error) {
	c := db.read()
	t, err := findToken(ctx, c, owner, id)
	if err != nil {
		return nil, fail("find token", err)
	}
	if err := loadScopeKeys(ctx, c, t); err != nil {
		return nil, fail("find token", err)
	}
	return t, nil
}

// ListTokens lists owner's tokens, newest first, without explicit keys.
func (db *DB) ListTokens(ctx context.Context, owner sot.TokenOwner, filter sot.TokenFilter, page sot.Page) ([]*sot.Token, string, error) {
	c := db.read()
	where, args, err := ownerClause(ctx, c, owner)
	if err != nil {
		return nil, "", fail("list tokens", err)
	}
	at := filter.Now
	if at.IsZero() {
		at = time.Now()
	}
	switch filter.State {
	case "", sot.TokenStateActive:
		where += ` AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > ?)`
		args = append(args, unix(at))
	case sot.TokenStateExpired:
		where += ` AND t.revoked_at IS NULL AND t.expires_at <= ?`
		args = append(args, unix(at))
	case sot.TokenStateRevoked:
		where += ` AND t.revoked_at IS NOT NULL`
	case sot.TokenStateExpiring:
		within := filter.ExpiringWithin
		if within <= 0 {
			within = sot.DefaultExpiringWithin
		}
		where += ` AND t.revoked_at IS NULL AND t.expires_at > ? AND t.expires_at <= ?`
		args = append(args, unix(at), unix(at.Add(within)))
	case sot.TokenStateAll:
	default:
		return nil, "", sot.Invalid(fmt.Sprintf("unknown token state %q", filter.State),
			sot.FieldError{Field: "state", Message: "must be active, expired, revoked or all"})
	}
	if page.Token != "" {
		before, err := parseIDCursor(page.Token)
		if err != nil {
			return nil, "", err
		}
		where += ` AND t.id < ?`
		args = append(args, before)
	}
	limit := page.Limit()
	rows, err := c.query(ctx, `SELECT `+tokenColumns+tokenFrom+` WHERE `+where+` ORDER BY t.id DESC LIMIT ?`, append(args, limit+1)...)
	if err != nil {
		return nil, "", fail("list tokens", err)
	}
	defer rows.Close()
	var out []*sot.Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, "", fail("list tokens", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fail("list tokens", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = idCursor(out[limit-1].ID)
	}
	return out, next, nil
}

// UpdateToken applies upd to owner's token id. Scope and permissions apply
// to organization tokens only.
func (db *DB) UpdateToken(ctx context.Context, owner sot.TokenOwner, id int64, upd sot.TokenUpdate) (*sot.Token, error) {
	var out *sot.Token
	err := db.write(ctx, func(x *tx) error {
		if _, err := x.lock(ctx, "tokens", "id = ?", id); err != nil {
			return err
		}
		t, err := findToken(ctx, x.conn, owner, id)
		if err != nil {
			return err
		}
		if t.Kind != sot.TokenKindOrg && (upd.Scope != nil || upd.Permissions != nil) {
			return sot.Invalid("a personal token has no scope or permissions: it acts as its user")
		}
		changed := map[string]any{}
		if upd.Name != nil && *upd.Name != t.Name {
			t.Name = *upd.Name
			changed["name"] = t.Name
		}
		if upd.Description != nil && *upd.Description != t.Description {
			t.Description = *upd.Description
			changed["description"] = t.Description
		}
		if upd.Permissions != nil && *upd.Permissions != t.Permissions {
			t.Permissions = *upd.Permissions
			changed["permissions"] = permissionNames(t.Permissions)
		}
		if upd.AllowedCIDRs != nil {
			cidrs := *upd.AllowedCIDRs
			if encodeCIDRs(cidrs) != encodeCIDRs(t.AllowedCIDRs) {
				t.AllowedCIDRs = cidrs
				changed["allowed_cidrs"] = len(cidrs)
			}
		}
		if upd.Scope != nil {
			var oid int64
			if err := x.queryRow(ctx, `SELECT org_id FROM tokens WHERE id = ?`, id).Scan(&oid); err != nil {
				return err
			}
			n, err := setScope(ctx, x.conn, oid, id, upd.Scope.Projects, true)
			if err != nil {
				return err
			}
			t.Scope.AllProjects = upd.Scope.AllProjects
			t.Scope.Patterns = upd.Scope.Patterns
			t.ProjectCount = n
			changed["scope"] = upd.Scope.Summary()
		}
		if len(changed) > 0 {
			if _, err := x.exec(ctx, `UPDATE tokens SET name = ?, description = ?, all_projects = ?, patterns = ?, permissions = ?,
				allowed_cidrs = ?, project_count = ? WHERE id = ?`,
				t.Name, t.Description, t.Scope.AllProjects, encodePatterns(t.Scope.Patterns), int64(t.Permissions),
				encodeCIDRs(t.AllowedCIDRs), t.ProjectCount, id); err != nil {
				return err
			}
			x.changed(sot.Change{Kind: sot.ChangeToken, Org: t.Org, TokenID: id})
			if err := x.audit(ctx, t.Org, sot.ActionTokenUpdated, fmt.Sprintf("token:%d", id), changed); err != nil {
				return err
			}
		}
		if err := loadScopeKeys(ctx, x.conn, t); err != nil {
			return err
		}
		out = t
		return nil
	})
	if err != nil {
		return nil, fail("update token", err)
	}
	return out, nil
}

// RevokeToken marks owner's token id revoked at now, once.
func (db *DB) RevokeToken(ctx context.Context, owner sot.TokenOwner, id int64, at time.Time) (*sot.Token, error) {
	var out *sot.Token
	err := db.write(ctx, func(x *tx) error {
		if _, err := x.lock(ctx, "tokens", "id = ?", id); err != nil {
			return err
		}
		t, err := findToken(ctx, x.conn, owner, id)
		if err != nil {
			return err
		}
		if t.RevokedAt == nil {
			at := at.UTC().Truncate(time.Second)
			if _, err := x.exec(ctx, `UPDATE tokens SET revoked_at = ? WHERE id = ?`, unix(at), id); err != nil {
				return err
			}
			t.RevokedAt = &at
			x.changed(sot.Change{Kind: sot.ChangeToken, Org: t.Org, TokenID: id})
			if err := x.audit(ctx, t.Org, sot.ActionTokenRevoked, fmt.Sprintf("token:%d", id), map[string]any{"name": t.Name}); err != nil {
				return err
			}
			if err := x.emit(ctx, t, sot.EventTokenRevoked, at, "", nil); err != nil {
				return err
			}
		}
		if err := loadScopeKeys(ctx, x.conn, t); err != nil {
			return err
		}
		out = t
		return nil
	})
	if err != nil {
		return nil, fail("revoke token", err)
	}
	return out, nil
}

// TokenBySecretHash returns the token one of whose secrets has hash, with
// SecretExpiresAt set for a secret that a rotation replaced: whether that
// secret still works is the caller's decision, with its clock. Replaced
// secrets are kept so that their use is told apart ("token rotated") from
// an unknown secret.
func (db *DB) TokenBySecretHash(ctx context.Context, hash sot.SecretHash) (*sot.Token, error) {
	var secretExp sql.NullInt64
	t, err := scanToken(db.read().queryRow(ctx, `SELECT `+tokenColumns+`, s.expires_at FROM token_secrets s JOIN tokens t ON t.id = s.token_id
		LEFT JOIN orgs o ON o.id = t.org_id WHERE s.hash = ?`, hash[:]), &secretExp)
	if err == nil {
		t.SecretExpiresAt = timePtr(secretExp)
	}
	if errors.Is(err, sql.ErrNoRows) {
		return nil, sot.Errorf(sot.ENOTFOUND, "unknown token")
	}
	if err != nil {
		return nil, fail("find token by secret", err)
	}
	return t, nil
}

// TokenProjectKeys returns the explicit project keys of a token, sorted.
func (db *DB) TokenProjectKeys(ctx context.Context, tokenID int64) ([]string, error) {
	keys, err := tokenProjectKeys(ctx, db.read(), tokenID)
	if err != nil {
		return nil, fail("token project keys", err)
	}
	return keys, nil
}

// loadScopeKeys fills t.Scope.Projects with the token's explicit project
// keys, when it has any.
func loadScopeKeys(ctx context.Context, c conn, t *sot.Token) (err error) {
	if t.ProjectCount > 0 {
		t.Scope.Projects, err = tokenProjectKeys(ctx, c, t.ID)
	}
	return err
}

func tokenProjectKeys(ctx context.Context, c conn, tokenID int64) ([]string, error) {
	rows, err := c.query(ctx, `SELECT p.key FROM token_projects tp JOIN projects p ON p.id = tp.project_id
		WHERE tp.token_id = ? ORDER BY p.key`, tokenID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var keys []string
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	return keys, rows.Err()
}

// RecordTokenUses writes the latest use of each token in one transaction.
// A use older than the stored one is ignored, so batches may land out of
// order.
func (db *DB) RecordTokenUses(ctx context.Context, uses []sot.TokenUse) error {
	if len(uses) == 0 {
		return nil
	}
	latest := make(map[int64]sot.TokenUse, len(uses))
	for _, u := range uses {
		if cur, ok := latest[u.TokenID]; !ok || u.At.After(cur.At) {
			latest[u.TokenID] = u
		}
	}
	ids := make([]int64, 0, len(latest))
	for id := range latest {
		ids = append(ids, id)
	}
	// A fixed order keeps two replicas' batches from deadlocking on
	// PostgreSQL's row locks.
	slices.Sort(ids)
	err := db.write(ctx, func(x *tx) error {
		for _, id := range ids {
			u := latest[id]
			at := unix(u.At)
			if _, err := x.exec(ctx, `UPDATE tokens SET last_used_at = ?, last_used_ip = ?
				WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)`, at, u.IP, id, at); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fail("record token uses", err)
	}
	return nil
}
