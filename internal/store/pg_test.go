package store

import "testing"

// openPG opens a fresh PostgreSQL database.
func openPG(t testing.TB) *DB {
	t.Skip("PostgreSQL harness not wired yet")
	return nil
}
