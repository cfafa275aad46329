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

var _ sot.TrustPolicyService = (*DB)(nil)

const trustColumns = `p.id, o.key, p.name, p.issuer, p.audience, p.conditions, p.all_projects, p.projects, p.patterns,
	p.permissions, p.ttl_seconds, COALESCE(p.created_by_id, 0), p.created_by_login, p.created_at, p.updated_at`

const trustFrom = ` FROM trust_policies p JOIN orgs o ON o.id = p.org_id`

func scanTrustPolicy(s interface{ Scan(...any) error }) (*sot.TrustPolicy, error) {
	var p sot.TrustPolicy
	var conds, projects, patterns string
	var perms, ttl, created, updated int64
	if err := s.Scan(&p.ID, &p.Org, &p.Name, &p.Issuer, &p.Audience, &conds, &p.Scope.AllProjects, &projects, &patterns,
		&perms, &ttl, &p.CreatedBy.ID, &p.CreatedBy.Login, &created, &updated); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(conds), &p.Conditions); err != nil {
		return nil, fmt.Errorf("decode conditions of trust policy %d: %w", p.ID, err)
	}
	if err := json.Unmarshal([]byte(projects), &p.Scope.Projects); err != nil {
		return nil, fmt.Errorf("decode projects of trust policy %d: %w", p.ID, err)
	}
	if err := json.Unmarshal([]byte(patterns), &p.Scope.Patterns); err != nil {
		return nil, fmt.Errorf("decode patterns of trust policy %d: %w", p.ID, err)
	}
	if len(p.Scope.Projects) == 0 {
		p.Scope.Projects = nil
	}
	if len(p.Scope.Patterns) == 0 {
		p.Scope.Patterns = nil
	}
	p.Permissions = sot.PermissionSet(perms)
	p.TTL = time.Duration(ttl) * time.Second
	p.CreatedAt, p.UpdatedAt = fromUnix(created), fromUnix(updated)
	return &p, nil
}

func trustPolicyNotFound(id int64) error {
	return sot.Errorf(sot.ENOTFOUND, "trust policy %d not found", id)
}

func encodeConditions(c map[string]string) string {
	b, _ := json.Marshal(c) // cannot fail: strings
	return string(b)
}

// checkScopeProjects refuses explicit keys that are not projects of orgID,
// naming them, as a token's scope does.
func checkScopeProjects(ctx context.Context, c conn, orgID int64, keys []string) error {
	keys = uniqueKeys(keys)
	var missing []string
	for start := 0; start < len(keys); start += scopeChunk {
		m, err := missingKeys(ctx, c, orgID, keys[start:min(start+scopeChunk, len(keys))])
		if err != nil {
			return err
		}
		missing = append(missing, m...)
	}
	if len(missing) == 0 {
		return nil
	}
	msg := "unknown projects: "
	for i, k := range missing {
		if i == maxUnknownListed {
			msg += fmt.Sprintf(" and %d more", len(missing)-i)
			break
		}
		if i > 0 {
			msg += ", "
		}
		msg += fmt.Sprintf("%q", k)
	}
	return sot.Invalid(msg, sot.FieldError{Field: "scope.projects", Message: msg})
}

func trustDetails(p *sot.TrustPolicy) map[string]any {
	return map[string]any{
		"name": p.Name, "issuer": p.Issuer, "audience": p.Audience, "conditions": p.Conditions,
		"scope": p.Scope.Summary(), "permissions": permissionNames(p.Permissions), "ttl": p.TTL.String(),
	}
}

// CreateTrustPolicy stores p.
func (db *DB) CreateTrustPolicy(ctx context.Context, p *sot.TrustPolicy) error {
	at := now()
	err := db.write(ctx, func(x *tx) error {
		oid, err := orgID(ctx, x.conn, p.Org)
		if err != nil {
			return err
		}
		if err := checkScopeProjects(ctx, x.conn, oid, p.Scope.Projects); err != nil {
			return err
		}
		var createdBy sql.NullInt64
		if p.CreatedBy.ID != 0 {
			createdBy = sql.NullInt64{Int64: p.CreatedBy.ID, Valid: true}
		}
		err = x.queryRow(ctx, `INSERT INTO trust_policies (org_id, name, issuer, audience, conditions, all_projects, projects,
			patterns, permissions, ttl_seconds, created_by_id, created_by_login, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			oid, p.Name, p.Issuer, p.Audience, encodeConditions(p.Conditions), p.Scope.AllProjects,
			encodePatterns(uniqueKeys(p.Scope.Projects)), encodePatterns(p.Scope.Patterns), int64(p.Permissions),
			int64(p.TTL/time.Second), createdBy, p.CreatedBy.Login, unix(at), unix(at)).Scan(&p.ID)
		if isUnique(err) {
			return sot.Errorf(sot.ECONFLICT, "a trust policy named %q already exists", p.Name)
		}
		if err != nil {
			return err
		}
		return x.audit(ctx, p.Org, sot.ActionTrustPolicyCreated, fmt.Sprintf("trust_policy:%d", p.ID), trustDetails(p))
	})
	if err != nil {
		p.ID = 0
		return fail("create trust policy", err)
	}
	p.CreatedAt, p.UpdatedAt = at, at
	return nil
}

func findTrustPolicy(ctx context.Context, c conn, org string, id int64) (*sot.TrustPolicy, error) {
	p, err := scanTrustPolicy(c.queryRow(ctx, `SELECT `+trustColumns+trustFrom+` WHERE p.id = ? AND o.key = ?`, id, org))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, trustPolicyNotFound(id)
	}
	return p, err
}

// FindTrustPolicy returns a policy of org.
func (db *DB) FindTrustPolicy(ctx context.Context, org string, id int64) (*sot.TrustPolicy, error) {
	p, err := findTrustPolicy(ctx, db.read(), org, id)
	if err != nil {
		return nil, fail("find trust policy", err)
	}
	return p, nil
}

// ListTrustPolicies lists org's policies by ID.
func (db *DB) ListTrustPolicies(ctx context.Context, org string, page sot.Page) ([]*sot.TrustPolicy, string, error) {
	c := db.read()
	oid, err := orgID(ctx, c, org)
	if err != nil {
		return nil, "", fail("list trust policies", err)
	}
	where, args := `p.org_id = ?`, []any{oid}
	if page.Token != "" {
		after, err := parseIDCursor(page.Token)
		if err != nil {
			return nil, "", err
		}
		where += ` AND p.id > ?`
		args = append(args, after)
	}
	limit := page.Limit()
	out, err := queryTrustPolicies(ctx, c, `SELECT `+trustColumns+trustFrom+` WHERE `+where+` ORDER BY p.id LIMIT ?`, append(args, limit+1)...)
	if err != nil {
		return nil, "", fail("list trust policies", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = idCursor(out[limit-1].ID)
	}
	return out, next, nil
}

// TrustPoliciesForIssuer returns org's policies for issuer, by ID.
func (db *DB) TrustPoliciesForIssuer(ctx context.Context, org, issuer string) ([]*sot.TrustPolicy, error) {
	out, err := queryTrustPolicies(ctx, db.read(), `SELECT `+trustColumns+trustFrom+` WHERE o.key = ? AND p.issuer = ? ORDER BY p.id`, org, issuer)
	if err != nil {
		return nil, fail("find trust policies", err)
	}
	return out, nil
}

func queryTrustPolicies(ctx context.Context, c conn, q string, args ...any) ([]*sot.TrustPolicy, error) {
	rows, err := c.query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*sot.TrustPolicy
	for rows.Next() {
		p, err := scanTrustPolicy(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// UpdateTrustPolicy applies upd to a policy of org.
func (db *DB) UpdateTrustPolicy(ctx context.Context, org string, id int64, upd sot.TrustPolicyUpdate) (*sot.TrustPolicy, error) {
	var out *sot.TrustPolicy
	err := db.write(ctx, func(x *tx) error {
		if _, err := x.lock(ctx, "trust_policies", "id = ?", id); err != nil {
			return err
		}
		cur, err := findTrustPolicy(ctx, x.conn, org, id)
		if err != nil {
			return err
		}
		p := upd.Apply(*cur)
		if upd.Scope != nil {
			oid, err := orgID(ctx, x.conn, org)
			if err != nil {
				return err
			}
			if err := checkScopeProjects(ctx, x.conn, oid, p.Scope.Projects); err != nil {
				return err
			}
		}
		p.UpdatedAt = now()
		_, err = x.exec(ctx, `UPDATE trust_policies SET name = ?, issuer = ?, audience = ?, conditions = ?, all_projects = ?,
			projects = ?, patterns = ?, permissions = ?, ttl_seconds = ?, updated_at = ? WHERE id = ?`,
			p.Name, p.Issuer, p.Audience, encodeConditions(p.Conditions), p.Scope.AllProjects,
			encodePatterns(uniqueKeys(p.Scope.Projects)), encodePatterns(p.Scope.Patterns), int64(p.Permissions),
			int64(p.TTL/time.Second), unix(p.UpdatedAt), id)
		if isUnique(err) {
			return sot.Errorf(sot.ECONFLICT, "a trust policy named %q already exists", p.Name)
		}
		if err != nil {
			return err
		}
		if err := x.audit(ctx, org, sot.ActionTrustPolicyUpdated, fmt.Sprintf("trust_policy:%d", id), trustDetails(&p)); err != nil {
			return err
		}
		out = &p
		return nil
	})
	if err != nil {
		return nil, fail("update trust policy", err)
	}
	return out, nil
}

// DeleteTrustPolicy deletes a policy of org and revokes its live tokens.
func (db *DB) DeleteTrustPolicy(ctx context.Context, org string, id int64, at time.Time) (int, error) {
	revoked := 0
	err := db.write(ctx, func(x *tx) error {
		// Taken first, like CreateOIDCToken does: a token minted
		// concurrently is either revoked here or refused there.
		if _, err := x.lock(ctx, "trust_policies", "id = ?", id); err != nil {
			return err
		}
		p, err := findTrustPolicy(ctx, x.conn, org, id)
		if err != nil {
			return err
		}
		at := at.UTC().Truncate(time.Second)
		ids, err := queryIDs(ctx, x.conn, `UPDATE tokens SET revoked_at = ?
			WHERE trust_policy_id = ? AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?) RETURNING id`,
			unix(at), id, unix(at))
		if err != nil {
			return err
		}
		for _, tid := range ids {
			x.changed(sot.Change{Kind: sot.ChangeToken, Org: org, TokenID: tid})
			if err := x.audit(ctx, org, sot.ActionTokenRevoked, fmt.Sprintf("token:%d", tid),
				map[string]any{"reason": "trust policy deleted", "trust_policy_id": id}); err != nil {
				return err
			}
		}
		if _, err := x.exec(ctx, `DELETE FROM trust_policies WHERE id = ?`, id); err != nil {
			return err
		}
		revoked = len(ids)
		details := trustDetails(p)
		details["revoked_tokens"] = revoked
		return x.audit(ctx, org, sot.ActionTrustPolicyDeleted, fmt.Sprintf("trust_policy:%d", id), details)
	})
	if err != nil {
		return 0, fail("delete trust policy", err)
	}
	return revoked, nil
}

// CreateOIDCToken stores a token minted by an OIDC exchange and audits
// token.exchanged in the same transaction.
func (db *DB) CreateOIDCToken(ctx context.Context, t *sot.Token, hash sot.SecretHash) error {
	if t.Kind != sot.TokenKindOrg || t.Source != sot.TokenSourceOIDC || t.TrustPolicyID == 0 || t.OIDC == nil {
		return sot.Internal(errors.New("create OIDC token: not a token minted by an OIDC exchange"))
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = now()
	}
	t.CreatedAt = t.CreatedAt.UTC().Truncate(time.Second)
	identity, err := json.Marshal(t.OIDC)
	if err != nil {
		return fail("create OIDC token", err)
	}
	err = db.write(ctx, func(x *tx) error {
		// The policy's row lock orders this against its deletion: a token
		// is never minted by a policy deleted before it commits.
		ok, err := x.lock(ctx, "trust_policies", "id = ?", t.TrustPolicyID)
		if err != nil {
			return err
		}
		if !ok {
			return trustPolicyNotFound(t.TrustPolicyID)
		}
		oid, err := orgID(ctx, x.conn, t.Org)
		if err != nil {
			return err
		}
		// Projects deleted since the policy was written are left out.
		keys := uniqueKeys(t.Scope.Projects)
		var missing []string
		for start := 0; start < len(keys); start += scopeChunk {
			m, err := missingKeys(ctx, x.conn, oid, keys[start:min(start+scopeChunk, len(keys))])
			if err != nil {
				return err
			}
			missing = append(missing, m...)
		}
		if len(missing) > 0 {
			gone := make(map[string]bool, len(missing))
			for _, k := range missing {
				gone[k] = true
			}
			kept := keys[:0:0]
			for _, k := range keys {
				if !gone[k] {
					kept = append(kept, k)
				}
			}
			keys = kept
		}
		// A token that lives minutes by design is not announced as
		// expiring or expired: every expiry warning counts as sent.
		err = x.queryRow(ctx, `INSERT INTO tokens (kind, org_id, name, description, all_projects, patterns, permissions,
			allowed_cidrs, hint, source, created_by_login, created_at, expires_at, project_count, expiry_warned, trust_policy_id,
			oidc_identity)
			VALUES (?, ?, ?, ?, ?, ?, ?, '[]', ?, ?, '', ?, ?, 0, ?, ?, ?) RETURNING id`,
			string(t.Kind), oid, t.Name, t.Description, t.Scope.AllProjects, encodePatterns(t.Scope.Patterns),
			int64(t.Permissions), t.Hint, t.Source, unix(t.CreatedAt), unixPtr(t.ExpiresAt), warnedAll, t.TrustPolicyID,
			string(identity)).Scan(&t.ID)
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
		if len(keys) > 0 {
			n, err := setScope(ctx, x.conn, oid, t.ID, keys, false)
			if err != nil {
				return err
			}
			if _, err := x.exec(ctx, `UPDATE tokens SET project_count = ? WHERE id = ?`, n, t.ID); err != nil {
				return err
			}
			t.ProjectCount = n
		}
		t.Scope.Projects = keys
		details := map[string]any{
			"issuer":          t.OIDC.Issuer,
			"subject":         t.OIDC.Subject,
			"trust_policy_id": t.TrustPolicyID,
			"trust_policy":    t.OIDC.PolicyName,
			"permissions":     permissionNames(t.Permissions),
			"scope":           t.Scope.Summary(),
		}
		if t.ExpiresAt != nil {
			details["expires_at"] = t.ExpiresAt.UTC().Format(time.RFC3339)
		}
		for k, v := range map[string]string{"repository": t.OIDC.Repository, "ref": t.OIDC.Ref, "run_id": t.OIDC.RunID} {
			if v != "" {
				details[k] = v
			}
		}
		return x.audit(ctx, t.Org, sot.ActionTokenExchanged, fmt.Sprintf("token:%d", t.ID), details)
	})
	if err != nil {
		t.ID = 0
		return fail("create OIDC token", err)
	}
	return nil
}
