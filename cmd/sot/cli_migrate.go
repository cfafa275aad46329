package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sot-dev/sot/internal/store"
)

// migrateDataCmd copies a whole deployment from one database into a new,
// empty one: the way from the embedded SQLite to PostgreSQL.
type migrateDataCmd struct {
	From string `name:"from" required:"" placeholder:"DSN" help:"Source database, such as sqlite:./sot-data/sot.db. No server may write to it during the copy."`
	To   string `name:"to" required:"" placeholder:"DSN" help:"Target database, new and empty, such as postgres://sot@db.internal:5432/sot (a password is better given in PGPASSWORD)."`
}

// migrateDataResult is the -o json output.
type migrateDataResult struct {
	From    string           `json:"from"`
	To      string           `json:"to"`
	Rows    map[string]int64 `json:"rows"`
	Seconds float64          `json:"seconds"`
}

// Run opens both databases (bringing both schemas up to date, as sot serve
// would), copies every row in one transaction on the target, and prints
// the row count of each table, which Copy has checked on both sides.
func (c *migrateDataCmd) Run(ctx context.Context, g *globals, std *stdio) error {
	if c.From == c.To {
		return usageErrorf("--from and --to are the same database")
	}
	if path, ok := strings.CutPrefix(c.From, "sqlite:"); ok {
		// Opening a missing file would create an empty database and copy
		// nothing: a typo must not look like a successful migration.
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("migrate-data: the source database %s does not exist", path)
		}
	}
	logger := slog.New(slog.NewTextHandler(std.err, &slog.HandlerOptions{Level: slog.LevelWarn}))
	from, err := store.Open(ctx, c.From, logger)
	if err != nil {
		return fmt.Errorf("migrate-data: source: %w", err)
	}
	defer from.Close()
	to, err := store.Open(ctx, c.To, logger)
	if err != nil {
		return fmt.Errorf("migrate-data: target: %w", err)
	}
	defer to.Close()

	start := time.Now()
	counts, err := store.Copy(ctx, from, to)
	if err != nil {
		return fmt.Errorf("migrate-data: %w", err)
	}
	res := migrateDataResult{
		From:    redactDSN(c.From),
		To:      redactDSN(c.To),
		Rows:    counts,
		Seconds: time.Since(start).Seconds(),
	}
	if g.json() {
		return writeJSON(std.out, res)
	}
	t := newTable(std.out, "TABLE", "ROWS")
	var total int64
	for _, name := range slices.Sorted(maps.Keys(counts)) {
		t.row(name, strconv.FormatInt(counts[name], 10))
		total += counts[name]
	}
	t.row("total", strconv.FormatInt(total, 10))
	if err := t.flush(); err != nil {
		return err
	}
	_, err = fmt.Fprintf(std.out, "Copied %s into %s in %.1fs; row counts match. Point sot serve --db at the target.\n",
		res.From, res.To, res.Seconds)
	return err
}
