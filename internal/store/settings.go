package store

import (
	"context"
	"crypto/rand"
	"fmt"
)

// InstanceKey returns the instance-wide random key called name, of size
// bytes, creating it on first use. Every replica on the same database gets
// the same key, so a web session signed by one is accepted by all, with no
// key to configure and distribute.
func (db *DB) InstanceKey(ctx context.Context, name string, size int) ([]byte, error) {
	fresh := make([]byte, size)
	rand.Read(fresh)
	// Two replicas may race here: the first insert wins and both read it.
	err := db.write(ctx, func(x *tx) error {
		_, err := x.exec(ctx, `INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING`, name, fresh)
		return err
	})
	if err != nil {
		return nil, fail("store instance key", err)
	}
	var key []byte
	if err := db.read().queryRow(ctx, `SELECT value FROM settings WHERE name = ?`, name).Scan(&key); err != nil {
		return nil, fail("read instance key", err)
	}
	if len(key) != size {
		return nil, fmt.Errorf("store: instance key %q has %d bytes, want %d", name, len(key), size)
	}
	return key, nil
}
