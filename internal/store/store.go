// Package store implements the sot services over database/sql, with one
// code path for SQLite (modernc.org/sqlite) and PostgreSQL (pgx). Queries
// are written once with ? placeholders and rebound for PostgreSQL; the
// schema differs only in column types, in one embedded migration set per
// dialect.
package store

import (
	"context"
	"database/sql"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/sot-dev/sot"
)

// Dialect names, as returned by DB.Dialect.
const (
	DialectSQLite   = "sqlite"
	DialectPostgres = "postgres"
)

//go:embed migrations
var migrations embed.FS

// pingIdle is how long a pooled PostgreSQL connection may sit idle before
// it is pinged on its next use.
const pingIdle = 100 * time.Millisecond

// migrationLockID is the PostgreSQL advisory lock that serializes the
// migrations of replicas starting together ("sot" in ASCII).
const migrationLockID = 0x736f74

// DB is the storage of sot. It implements every service of package sot.
type DB struct {
	dialect string
	logger  *slog.Logger
	// w runs write transactions. On SQLite it holds a single connection so
	// writers queue in Go instead of failing with SQLITE_BUSY; on
	// PostgreSQL it is the same pool as r.
	w *sql.DB
	// r runs reads outside transactions.
	r    *sql.DB
	pool *pgxpool.Pool // PostgreSQL only
	bus  *bus
	// stopListener ends the PostgreSQL notification listener.
	stopListener func()
	// listening is closed once the listener has first sent LISTEN: from
	// then on no change of another replica is missed without a ChangeAll.
	listening chan struct{}
	// writes counts committed write transactions (see Writes).
	writes atomic.Uint64
}

var (
	_ sot.UserService     = (*DB)(nil)
	_ sot.OrgService      = (*DB)(nil)
	_ sot.ProjectService  = (*DB)(nil)
	_ sot.TokenService    = (*DB)(nil)
	_ sot.AuditService    = (*DB)(nil)
	_ sot.AnalysisService = (*DB)(nil)
	_ sot.ChangeBus       = (*DB)(nil)
)

// Open opens the database named by dsn ("sqlite:path/to/file.db",
// "postgres://…" or "postgresql://…") and brings its schema up to date.
func Open(ctx context.Context, dsn string, logger *slog.Logger) (*DB, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case strings.HasPrefix(dsn, "sqlite:"):
		return openSQLite(ctx, strings.TrimPrefix(dsn, "sqlite:"), logger)
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return openPostgres(ctx, dsn, logger)
	}
	return nil, errors.New("open database: unsupported DSN: want sqlite:PATH or postgres://…")
}

// sqliteDSN returns the driver DSN of the file at path. synchronous=FULL
// makes every commit durable before it is acknowledged: a revocation that
// was reported done must survive a power loss, which NORMAL does not
// guarantee in WAL mode. Write transactions begin IMMEDIATE so that a
// transaction that reads then writes never fails to upgrade its lock.
func sqliteDSN(path string, readOnly bool) string {
	q := "_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=busy_timeout(10000)"
	if readOnly {
		q += "&_pragma=query_only(1)"
	} else {
		q += "&_txlock=immediate"
	}
	return "file:" + path + "?" + q
}

func openSQLite(ctx context.Context, path string, logger *slog.Logger) (*DB, error) {
	if path == "" || strings.HasPrefix(path, ":memory:") {
		return nil, errors.New("open database: sqlite needs a file path, such as sqlite:./sot.db")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	if err := migrateSQLite(ctx, path); err != nil {
		return nil, err
	}
	w, err := sql.Open("sqlite", sqliteDSN(path, false))
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	r, err := sql.Open("sqlite", sqliteDSN(path, true))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	n := max(4, runtime.NumCPU())
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	db := &DB{dialect: DialectSQLite, logger: logger, w: w, r: r, bus: newBus(logger), stopListener: func() {}}
	if err := db.Ping(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	return db, nil
}

// migrateSQLite migrates through a connection of its own, since goose may
// need a second connection while a migration transaction is open and the
// writer pool has only one.
func migrateSQLite(ctx context.Context, path string) error {
	mdb, err := sql.Open("sqlite", sqliteDSN(path, false))
	if err != nil {
		return fmt.Errorf("open database %s: %w", path, err)
	}
	defer mdb.Close()
	if err := migrate(ctx, mdb, goose.DialectSQLite3, "migrations/sqlite"); err != nil {
		return fmt.Errorf("migrate database %s: %w", path, oneLine(err))
	}
	return nil
}

func openPostgres(ctx context.Context, dsn string, logger *slog.Logger) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("open database: invalid PostgreSQL DSN: %w", oneLine(err))
	}
	// A restart of PostgreSQL ends every session, and the pool learns of
	// it only when it next uses a connection: that request would fail.
	// Pinging connections idle for more than pingIdle costs one round
	// trip and keeps restarts (which take longer) invisible to clients;
	// pgx's default of one second lets a quick restart through.
	cfg.ShouldPing = func(_ context.Context, p pgxpool.ShouldPingParams) bool { return p.IdleDuration > pingIdle }
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", oneLine(err))
	}
	sdb := stdlib.OpenDBFromPool(pool)
	db := &DB{dialect: DialectPostgres, logger: logger, w: sdb, r: sdb, pool: pool, bus: newBus(logger), stopListener: func() {}, listening: make(chan struct{})}
	if err := db.Ping(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open database %s@%s/%s: %w", cfg.ConnConfig.User, cfg.ConnConfig.Host, cfg.ConnConfig.Database, oneLine(err))
	}
	if err := migrate(ctx, sdb, goose.DialectPostgres, "migrations/postgres"); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate database: %w", oneLine(err))
	}
	db.stopListener = db.listen(cfg.ConnConfig.Copy())
	return db, nil
}

// migrate applies the embedded migrations of dir. On PostgreSQL a session
// advisory lock makes replicas that start together take turns.
func migrate(ctx context.Context, db *sql.DB, dialect goose.Dialect, dir string) error {
	fsys, err := fs.Sub(migrations, dir)
	if err != nil {
		return err
	}
	var opts []goose.ProviderOption
	if dialect == goose.DialectPostgres {
		// Try the lock every second (goose's default is every 5 s), for
		// up to 5 minutes: a replica that waits for another one's
		// migrations becomes ready about a second after it.
		locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(migrationLockID), lock.WithLockTimeout(1, 300))
		if err != nil {
			return err
		}
		opts = append(opts, goose.WithSessionLocker(locker))
	}
	p, err := goose.NewProvider(dialect, db, fsys, opts...)
	if err != nil {
		return err
	}
	_, err = p.Up(ctx)
	return err
}

// oneLine keeps an error message on one line, as the CLI prints it.
func oneLine(err error) error {
	msg := err.Error()
	if !strings.ContainsAny(msg, "\r\n") {
		return err
	}
	return errors.New(strings.Join(strings.Fields(msg), " "))
}

// Close stops the change listener and closes the database.
func (db *DB) Close() error {
	db.stopListener()
	var errs []error
	if db.w != db.r {
		errs = append(errs, db.w.Close())
	}
	errs = append(errs, db.r.Close())
	if db.pool != nil {
		db.pool.Close()
	}
	return errors.Join(errs...)
}

// Ping checks that the database answers, for readiness probes.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.r.PingContext(ctx); err != nil {
		return err
	}
	if db.w != db.r {
		return db.w.PingContext(ctx)
	}
	return nil
}

// Writes returns how many write transactions this handle has committed.
// Every write goes through one, so a caller can prove that a path, such as
// the token check, writes nothing.
func (db *DB) Writes() uint64 { return db.writes.Load() }

// Dialect returns "sqlite" or "postgres".
func (db *DB) Dialect() string { return db.dialect }

// execer is what both *sql.DB and *sql.Tx provide.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// conn runs queries written with ? placeholders on either dialect.
type conn struct {
	pg bool
	x  execer
}

func (c conn) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return c.x.ExecContext(ctx, c.rebind(q), args...)
}

func (c conn) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return c.x.QueryContext(ctx, c.rebind(q), args...)
}

func (c conn) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	return c.x.QueryRowContext(ctx, c.rebind(q), args...)
}

// rebind turns ? placeholders into PostgreSQL's $n. No query of this
// package has a ? inside a literal.
func (c conn) rebind(q string) string {
	if !c.pg || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

// read returns a conn for reads outside a transaction.
func (db *DB) read() conn { return conn{pg: db.dialect == DialectPostgres, x: db.r} }

// tx is a write transaction: its audit events and changes commit with it.
type tx struct {
	conn
	db      *DB
	changes []sot.Change
}

// write runs fn in a transaction and commits it, then publishes the
// changes fn recorded. On PostgreSQL the changes are also sent with
// pg_notify inside the transaction, so other replicas hear of them only on
// commit.
func (db *DB) write(ctx context.Context, fn func(t *tx) error) error {
	stx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	t := &tx{conn: conn{pg: db.dialect == DialectPostgres, x: stx}, db: db}
	if err := fn(t); err != nil {
		stx.Rollback()
		return err
	}
	if t.pg {
		for _, c := range t.changes {
			if _, err := t.exec(ctx, "SELECT pg_notify(?, ?)", notifyChannel, encodeChange(c)); err != nil {
				stx.Rollback()
				return fmt.Errorf("notify: %w", err)
			}
		}
	}
	if err := stx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	db.writes.Add(1)
	// Local subscribers hear of the change before the write returns, on
	// both databases, so the replica that made a change never serves the
	// stale state after acknowledging it. On PostgreSQL the listener
	// delivers it again; invalidating twice is harmless.
	for _, c := range t.changes {
		db.bus.publish(c)
	}
	return nil
}

// changed records a change to publish after commit.
func (t *tx) changed(c sot.Change) { t.changes = append(t.changes, c) }

// lock takes the write lock of a row before a read-modify-write, and
// reports whether the row exists. SQLite serializes writers already; on
// PostgreSQL this no-op UPDATE takes the row lock that SELECT … FOR UPDATE
// would, in SQL that both databases accept. The where clause names the
// row by its columns, for example "key = ?".
func (t *tx) lock(ctx context.Context, table, where string, args ...any) (bool, error) {
	res, err := t.exec(ctx, `UPDATE `+table+` SET id = id WHERE `+where, args...)
	if err != nil {
		return false, fmt.Errorf("lock %s: %w", table, err)
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// fail returns err unchanged when it is a domain error, and as EINTERNAL
// naming the operation otherwise.
func fail(op string, err error) error {
	var e *sot.Error
	if errors.As(err, &e) {
		return err
	}
	return sot.Internal(fmt.Errorf("%s: %w", op, err))
}

// isUnique reports whether err is a unique-constraint violation.
func isUnique(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// isForeignKey reports whether err is a foreign-key violation.
func isForeignKey(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
	}
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23503"
}

// now returns the current time as stored: UTC, whole seconds.
func now() time.Time { return time.Now().UTC().Truncate(time.Second) }

// unix returns t as stored.
func unix(t time.Time) int64 { return t.Unix() }

// fromUnix returns a stored time.
func fromUnix(s int64) time.Time { return time.Unix(s, 0).UTC() }

// unixPtr returns the stored form of an optional time.
func unixPtr(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.Unix(), Valid: true}
}

// timePtr returns an optional stored time.
func timePtr(n sql.NullInt64) *time.Time {
	if !n.Valid {
		return nil
	}
	t := fromUnix(n.Int64)
	return &t
}

// errPageToken is the answer to a page token this package did not issue.
var errPageToken = sot.Invalid("invalid page token", sot.FieldError{Field: "page_token", Message: "invalid page token"})

// Page tokens are the base64url of the last row's sort key, behind a
// one-letter type tag, so a token of one list is refused by another kind.
func stringCursor(key string) string {
	return base64.RawURLEncoding.EncodeToString([]byte("s" + key))
}

func idCursor(id int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("i" + strconv.FormatInt(id, 10)))
}

func parseStringCursor(tok string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) < 2 || b[0] != 's' {
		return "", errPageToken
	}
	return string(b[1:]), nil
}

func parseIDCursor(tok string) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) < 2 || b[0] != 'i' {
		return 0, errPageToken
	}
	id, err := strconv.ParseInt(string(b[1:]), 10, 64)
	if err != nil || id <= 0 {
		return 0, errPageToken
	}
	return id, nil
}

// placeholders returns "?, ?, …" with n marks.
func placeholders(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat("?, ", n-1) + "?"
}

// likePattern returns a LIKE pattern (with ESCAPE '\') matching s anywhere,
// lower-cased for a case-insensitive comparison against lower(column).
func likePattern(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(strings.ToLower(s)) + "%"
}

// queryIDs runs a query whose single column is an ID and returns them all.
func queryIDs(ctx context.Context, c conn, q string, args ...any) ([]int64, error) {
	rows, err := c.query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}
