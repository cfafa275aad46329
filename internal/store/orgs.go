package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/sot-dev/sot"
)

const orgColumns = `o.id, o.key, o.name, o.description, o.plan, o.max_lifetime_days, o.allow_non_expiring, o.idle_warning_days, o.created_at, o.updated_at`

func scanOrg(s interface{ Scan(...any) error }) (*sot.Org, error) {
	var o sot.Org
	var plan string
	var created, updated int64
	err := s.Scan(&o.ID, &o.Key, &o.Name, &o.Description, &plan, &o.TokenPolicy.MaxLifetimeDays,
		&o.TokenPolicy.AllowNonExpiring, &o.TokenPolicy.IdleWarningDays, &created, &updated)
	if err != nil {
		return nil, err
	}
	o.Plan = sot.Plan(plan)
	o.CreatedAt, o.UpdatedAt = fromUnix(created), fromUnix(updated)
	return &o, nil
}

func orgNotFound(key string) error {
	return sot.Errorf(sot.ENOTFOUND, "organization %q not found", key)
}

// orgID returns the ID of the organization key, or ENOTFOUND.
func orgID(ctx context.Context, c conn, key string) (int64, error) {
	var id int64
	err := c.queryRow(ctx, `SELECT id FROM orgs WHERE key = ?`, key).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, orgNotFound(key)
	}
	return id, err
}

// CreateOrg stores org and makes the user adminID its admin.
func (db *DB) CreateOrg(ctx context.Context, org *sot.Org, adminID int64) error {
	if org.TokenPolicy == (sot.TokenPolicy{}) {
		org.TokenPolicy = sot.DefaultTokenPolicy()
	}
	if org.Plan == "" {
		org.Plan = sot.PlanFree
	}
	if !org.Plan.Valid() {
		return sot.Invalid(fmt.Sprintf("unknown plan %q", org.Plan), sot.FieldError{Field: "plan", Message: "must be free, team or enterprise"})
	}
	if err := org.TokenPolicy.Validate(); err != nil {
		return err
	}
	created := now()
	err := db.write(ctx, func(t *tx) error {
		p := org.TokenPolicy
		err := t.queryRow(ctx, `INSERT INTO orgs (key, name, description, plan, max_lifetime_days, allow_non_expiring, idle_warning_days, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			org.Key, org.Name, org.Description, string(org.Plan), p.MaxLifetimeDays, p.AllowNonExpiring, p.IdleWarningDays, unix(created), unix(created)).Scan(&org.ID)
		if isUnique(err) {
			return sot.Errorf(sot.ECONFLICT, "organization %q already exists", org.Key)
		}
		if err != nil {
			return err
		}
		var login string
		err = t.queryRow(ctx, `SELECT login FROM users WHERE id = ?`, adminID).Scan(&login)
		if errors.Is(err, sql.ErrNoRows) {
			return sot.Errorf(sot.ENOTFOUND, "user %d not found", adminID)
		}
		if err != nil {
			return err
		}
		if _, err := t.exec(ctx, `INSERT INTO memberships (org_id, user_id, role, created_at) VALUES (?, ?, ?, ?)`,
			org.ID, adminID, string(sot.RoleAdmin), unix(created)); err != nil {
			return err
		}
		// The creator's cached principals must learn of the new membership.
		t.changed(sot.Change{Kind: sot.ChangeMember, Org: org.Key, UserID: adminID})
		return t.audit(ctx, org.Key, sot.ActionOrgCreated, "org:"+org.Key,
			map[string]any{"name": org.Name, "plan": string(org.Plan), "admin": login})
	})
	if err != nil {
		return fail("create organization", err)
	}
	org.CreatedAt, org.UpdatedAt = created, created
	return nil
}

// FindOrg returns the organization key, or ENOTFOUND.
func (db *DB) FindOrg(ctx context.Context, key string) (*sot.Org, error) {
	o, err := scanOrg(db.read().queryRow(ctx, `SELECT `+orgColumns+` FROM orgs o WHERE o.key = ?`, key))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, orgNotFound(key)
	}
	if err != nil {
		return nil, fail("find organization", err)
	}
	return o, nil
}

// orgWhere returns the FROM and WHERE clauses of filter.
func orgWhere(filter sot.OrgFilter) (string, []any) {
	q := ` FROM orgs o`
	var args []any
	if filter.MemberID != 0 {
		q += ` JOIN memberships m ON m.org_id = o.id AND m.user_id = ?`
		args = append(args, filter.MemberID)
	}
	q += ` WHERE 1 = 1`
	if len(filter.Keys) > 0 {
		q += ` AND o.key IN (` + placeholders(len(filter.Keys)) + `)`
		for _, k := range filter.Keys {
			args = append(args, k)
		}
	}
	return q, args
}

// ListOrgs lists the organizations filter selects, by key.
func (db *DB) ListOrgs(ctx context.Context, filter sot.OrgFilter, page sot.Page) ([]*sot.Org, string, error) {
	where, args := orgWhere(filter)
	q := `SELECT ` + orgColumns + where
	if page.Token != "" {
		after, err := parseStringCursor(page.Token)
		if err != nil {
			return nil, "", err
		}
		q += ` AND o.key > ?`
		args = append(args, after)
	}
	limit := page.Limit()
	q += ` ORDER BY o.key LIMIT ?`
	args = append(args, limit+1)
	rows, err := db.read().query(ctx, q, args...)
	if err != nil {
		return nil, "", fail("list organizations", err)
	}
	defer rows.Close()
	var out []*sot.Org
	for rows.Next() {
		o, err := scanOrg(rows)
		if err != nil {
			return nil, "", fail("list organizations", err)
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fail("list organizations", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = stringCursor(out[limit-1].Key)
	}
	return out, next, nil
}

// CountOrgs counts the organizations filter selects.
func (db *DB) CountOrgs(ctx context.Context, filter sot.OrgFilter) (int, error) {
	where, args := orgWhere(filter)
	var n int
	if err := db.read().queryRow(ctx, `SELECT COUNT(*)`+where, args...).Scan(&n); err != nil {
		return 0, fail("count organizations", err)
	}
	return n, nil
}

// UpdateOrg applies upd to the organization key.
func (db *DB) UpdateOrg(ctx context.Context, key string, upd sot.OrgUpdate) (*sot.Org, error) {
	var out *sot.Org
	err := db.write(ctx, func(t *tx) error {
		if _, err := t.lock(ctx, "orgs", "key = ?", key); err != nil {
			return err
		}
		o, err := scanOrg(t.queryRow(ctx, `SELECT `+orgColumns+` FROM orgs o WHERE o.key = ?`, key))
		if errors.Is(err, sql.ErrNoRows) {
			return orgNotFound(key)
		}
		if err != nil {
			return err
		}
		changed := map[string]any{}
		if upd.Name != nil && *upd.Name != o.Name {
			o.Name = *upd.Name
			changed["name"] = o.Name
		}
		if upd.Description != nil && *upd.Description != o.Description {
			o.Description = *upd.Description
			changed["description"] = o.Description
		}
		if upd.Plan != nil && *upd.Plan != o.Plan {
			if !upd.Plan.Valid() {
				return sot.Invalid(fmt.Sprintf("unknown plan %q", *upd.Plan), sot.FieldError{Field: "plan", Message: "must be free, team or enterprise"})
			}
			o.Plan = *upd.Plan
			changed["plan"] = string(o.Plan)
		}
		if upd.TokenPolicy != nil && *upd.TokenPolicy != o.TokenPolicy {
			if err := upd.TokenPolicy.Validate(); err != nil {
				return err
			}
			o.TokenPolicy = *upd.TokenPolicy
			changed["token_policy"] = map[string]any{
				"max_lifetime_days":  o.TokenPolicy.MaxLifetimeDays,
				"allow_non_expiring": o.TokenPolicy.AllowNonExpiring,
				"idle_warning_days":  o.TokenPolicy.IdleWarningDays,
			}
		}
		out = o
		if len(changed) == 0 {
			return nil
		}
		o.UpdatedAt = now()
		p := o.TokenPolicy
		if _, err := t.exec(ctx, `UPDATE orgs SET name = ?, description = ?, plan = ?, max_lifetime_days = ?, allow_non_expiring = ?,
			idle_warning_days = ?, updated_at = ? WHERE id = ?`,
			o.Name, o.Description, string(o.Plan), p.MaxLifetimeDays, p.AllowNonExpiring, p.IdleWarningDays, unix(o.UpdatedAt), o.ID); err != nil {
			return err
		}
		_, plan := changed["plan"]
		_, policy := changed["token_policy"]
		if plan || policy {
			t.changed(sot.Change{Kind: sot.ChangeOrg, Org: o.Key})
		}
		return t.audit(ctx, o.Key, sot.ActionOrgUpdated, "org:"+o.Key, changed)
	})
	if err != nil {
		return nil, fail("update organization", err)
	}
	return out, nil
}

const memberColumns = `o.key, u.id, u.login, u.name, m.role, m.created_at`

func scanMember(s interface{ Scan(...any) error }) (*sot.Membership, error) {
	var m sot.Membership
	var role string
	var created int64
	if err := s.Scan(&m.Org, &m.UserID, &m.Login, &m.Name, &role, &created); err != nil {
		return nil, err
	}
	m.Role = sot.Role(role)
	m.CreatedAt = fromUnix(created)
	return &m, nil
}

// ListMembers lists the members of org by login.
func (db *DB) ListMembers(ctx context.Context, org string, page sot.Page) ([]*sot.Membership, string, error) {
	c := db.read()
	id, err := orgID(ctx, c, org)
	if err != nil {
		return nil, "", fail("list members", err)
	}
	after := ""
	if page.Token != "" {
		if after, err = parseStringCursor(page.Token); err != nil {
			return nil, "", err
		}
	}
	limit := page.Limit()
	rows, err := c.query(ctx, `SELECT `+memberColumns+` FROM memberships m JOIN users u ON u.id = m.user_id JOIN orgs o ON o.id = m.org_id
		WHERE m.org_id = ? AND u.login > ? ORDER BY u.login LIMIT ?`, id, after, limit+1)
	if err != nil {
		return nil, "", fail("list members", err)
	}
	defer rows.Close()
	var out []*sot.Membership
	for rows.Next() {
		m, err := scanMember(rows)
		if err != nil {
			return nil, "", fail("list members", err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fail("list members", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = stringCursor(out[limit-1].Login)
	}
	return out, next, nil
}

// findMember returns the membership of login in org; ENOTFOUND for an
// unknown organization or user, and (nil, nil) for a user who is not a
// member.
func (t *tx) findMember(ctx context.Context, org, login string) (orgID, userID int64, m *sot.Membership, err error) {
	var name string
	// Membership changes of one organization take turns, so two
	// concurrent demotions cannot both pass the last-admin check.
	if ok, err := t.lock(ctx, "orgs", "key = ?", org); err != nil || !ok {
		if err == nil {
			err = orgNotFound(org)
		}
		return 0, 0, nil, err
	}
	err = t.queryRow(ctx, `SELECT id FROM orgs WHERE key = ?`, org).Scan(&orgID)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, nil, orgNotFound(org)
	}
	if err != nil {
		return 0, 0, nil, err
	}
	err = t.queryRow(ctx, `SELECT id, name FROM users WHERE login = ?`, login).Scan(&userID, &name)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, 0, nil, sot.Errorf(sot.ENOTFOUND, "user %q not found", login)
	}
	if err != nil {
		return 0, 0, nil, err
	}
	m, err = scanMember(t.queryRow(ctx, `SELECT `+memberColumns+` FROM memberships m JOIN users u ON u.id = m.user_id JOIN orgs o ON o.id = m.org_id
		WHERE m.org_id = ? AND m.user_id = ?`, orgID, userID))
	if errors.Is(err, sql.ErrNoRows) {
		return orgID, userID, nil, nil
	}
	return orgID, userID, m, err
}

// lastAdmin reports whether the organization has exactly one admin.
func (t *tx) lastAdmin(ctx context.Context, orgID int64) (bool, error) {
	var n int
	err := t.queryRow(ctx, `SELECT COUNT(*) FROM memberships WHERE org_id = ? AND role = ?`, orgID, string(sot.RoleAdmin)).Scan(&n)
	return n == 1, err
}

// SetMember adds login to org with role, or changes their role, and
// reports whether the membership was created.
func (db *DB) SetMember(ctx context.Context, org, login string, role sot.Role) (*sot.Membership, bool, error) {
	if !role.Valid() {
		return nil, false, sot.Invalid(fmt.Sprintf("unknown role %q", role), sot.FieldError{Field: "role", Message: "must be admin or member"})
	}
	var out *sot.Membership
	var created bool
	err := db.write(ctx, func(t *tx) error {
		orgID, userID, m, err := t.findMember(ctx, org, login)
		if err != nil {
			return err
		}
		target := "member:" + login
		switch {
		case m == nil:
			at := now()
			if _, err := t.exec(ctx, `INSERT INTO memberships (org_id, user_id, role, created_at) VALUES (?, ?, ?, ?)`,
				orgID, userID, string(role), unix(at)); err != nil {
				return err
			}
			var name string
			if err := t.queryRow(ctx, `SELECT name FROM users WHERE id = ?`, userID).Scan(&name); err != nil {
				return err
			}
			out = &sot.Membership{Org: org, UserID: userID, Login: login, Name: name, Role: role, CreatedAt: at}
			created = true
			t.changed(sot.Change{Kind: sot.ChangeMember, Org: org, UserID: userID})
			return t.audit(ctx, org, sot.ActionMemberAdded, target, map[string]any{"role": string(role)})
		case m.Role == role:
			out = m
			return nil
		}
		if m.Role == sot.RoleAdmin {
			last, err := t.lastAdmin(ctx, orgID)
			if err != nil {
				return err
			}
			if last {
				return sot.Invalid(fmt.Sprintf("%s is the last admin of organization %q: make another member admin first", login, org),
					sot.FieldError{Field: "role", Message: "the organization must keep an admin"})
			}
		}
		if _, err := t.exec(ctx, `UPDATE memberships SET role = ? WHERE org_id = ? AND user_id = ?`, string(role), orgID, userID); err != nil {
			return err
		}
		from := m.Role
		m.Role = role
		out = m
		t.changed(sot.Change{Kind: sot.ChangeMember, Org: org, UserID: userID})
		return t.audit(ctx, org, sot.ActionMemberRoleChanged, target, map[string]any{"from": string(from), "to": string(role)})
	})
	if err != nil {
		return nil, false, fail("set member", err)
	}
	return out, created, nil
}

// RemoveMember removes login from org, refusing to remove its last admin.
func (db *DB) RemoveMember(ctx context.Context, org, login string) error {
	err := db.write(ctx, func(t *tx) error {
		orgID, userID, m, err := t.findMember(ctx, org, login)
		if err != nil {
			return err
		}
		if m == nil {
			return sot.Errorf(sot.ENOTFOUND, "%s is not a member of organization %q", login, org)
		}
		if m.Role == sot.RoleAdmin {
			last, err := t.lastAdmin(ctx, orgID)
			if err != nil {
				return err
			}
			if last {
				return sot.Invalid(fmt.Sprintf("%s is the last admin of organization %q: make another member admin first", login, org))
			}
		}
		if _, err := t.exec(ctx, `DELETE FROM memberships WHERE org_id = ? AND user_id = ?`, orgID, userID); err != nil {
			return err
		}
		t.changed(sot.Change{Kind: sot.ChangeMember, Org: org, UserID: userID})
		return t.audit(ctx, org, sot.ActionMemberRemoved, "member:"+login, map[string]any{"role": string(m.Role)})
	})
	if err != nil {
		return fail("remove member", err)
	}
	return nil
}

// UserMemberships returns every membership of the user, by organization key.
func (db *DB) UserMemberships(ctx context.Context, userID int64) ([]*sot.Membership, error) {
	rows, err := db.read().query(ctx, `SELECT `+memberColumns+` FROM memberships m JOIN users u ON u.id = m.user_id JOIN orgs o ON o.id = m.org_id
		WHERE m.user_id = ? ORDER BY o.key`, userID)
	if err != nil {
		return nil, fail("list memberships", err)
	}
	defer rows.Close()
	var out []*sot.Membership
	for rows.Next() {
		m, err := scanMember(rows)
		if err != nil {
			return nil, fail("list memberships", err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fail("list memberships", err)
	}
	return out, nil
}
