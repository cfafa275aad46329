package store

import (
	"bytes"
	"testing"
)

func TestInstanceKey(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *DB) {
		a, err := db.InstanceKey(t.Context(), "session", 32)
		must(t, err)
		if len(a) != 32 || bytes.Equal(a, make([]byte, 32)) {
			t.Fatalf("key = %x", a)
		}
		b, err := db.InstanceKey(t.Context(), "session", 32)
		must(t, err)
		if !bytes.Equal(a, b) {
			t.Fatal("a second call made a new key")
		}
		c, err := db.InstanceKey(t.Context(), "other", 32)
		must(t, err)
		if bytes.Equal(a, c) {
			t.Fatal("two names share a key")
		}
		if _, err := db.InstanceKey(t.Context(), "session", 16); err == nil {
			t.Fatal("a key of another size was accepted")
		}
	})
}
