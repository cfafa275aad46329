package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/sot-dev/sot"
)

const userColumns = `id, login, name, admin, created_at`

func scanUser(s interface{ Scan(...any) error }, extra ...any) (*sot.User, error) {
	var u sot.User
	var created int64
	if err := s.Scan(append([]any{&u.ID, &u.Login, &u.Name, &u.Admin, &created}, extra...)...); err != nil {
		return nil, err
	}
	u.CreatedAt = fromUnix(created)
	return &u, nil
}

// CreateUser stores u with passwordHash ("" for none).
func (db *DB) CreateUser(ctx context.Context, u *sot.User, passwordHash string) error {
	created := now()
	err := db.write(ctx, func(t *tx) error {
		err := t.queryRow(ctx, `INSERT INTO users (login, name, admin, password_hash, created_at) VALUES (?, ?, ?, ?, ?) RETURNING id`,
			u.Login, u.Name, u.Admin, passwordHash, unix(created)).Scan(&u.ID)
		if isUnique(err) {
			return sot.Errorf(sot.ECONFLICT, "user %q already exists", u.Login)
		}
		if err != nil {
			return err
		}
		return t.audit(ctx, "", sot.ActionUserCreated, "user:"+u.Login, map[string]any{"login": u.Login, "admin": u.Admin})
	})
	if err != nil {
		return fail("create user", err)
	}
	u.CreatedAt = created
	return nil
}

// FindUserByLogin returns the user with login, or ENOTFOUND.
func (db *DB) FindUserByLogin(ctx context.Context, login string) (*sot.User, error) {
	u, err := scanUser(db.read().queryRow(ctx, `SELECT `+userColumns+` FROM users WHERE login = ?`, login))
	return u, userErr("find user", login, err)
}

// FindUserByID returns the user with id, or ENOTFOUND.
func (db *DB) FindUserByID(ctx context.Context, id int64) (*sot.User, error) {
	u, err := scanUser(db.read().queryRow(ctx, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
	return u, userErr("find user", fmt.Sprint(id), err)
}

func userErr(op, name string, err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return sot.Errorf(sot.ENOTFOUND, "user %q not found", name)
	}
	if err != nil {
		return fail(op, err)
	}
	return nil
}

// ListUsers lists users by ID.
func (db *DB) ListUsers(ctx context.Context, page sot.Page) ([]*sot.User, string, error) {
	var after int64
	if page.Token != "" {
		var err error
		if after, err = parseIDCursor(page.Token); err != nil {
			return nil, "", err
		}
	}
	limit := page.Limit()
	rows, err := db.read().query(ctx, `SELECT `+userColumns+` FROM users WHERE id > ? ORDER BY id LIMIT ?`, after, limit+1)
	if err != nil {
		return nil, "", fail("list users", err)
	}
	defer rows.Close()
	var out []*sot.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, "", fail("list users", err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fail("list users", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		next = idCursor(out[limit-1].ID)
	}
	return out, next, nil
}

// PasswordHash returns the user login and its stored password hash.
func (db *DB) PasswordHash(ctx context.Context, login string) (*sot.User, string, error) {
	var hash string
	u, err := scanUser(db.read().queryRow(ctx, `SELECT `+userColumns+`, password_hash FROM users WHERE login = ?`, login), &hash)
	if err := userErr("find password hash", login, err); err != nil {
		return nil, "", err
	}
	return u, hash, nil
}

// CountUsers returns how many users exist.
func (db *DB) CountUsers(ctx context.Context) (int, error) {
	var n int
	if err := db.read().queryRow(ctx, `SELECT COUNT(*) FROM users`).Scan(&n); err != nil {
		return 0, fail("count users", err)
	}
	return n, nil
}
