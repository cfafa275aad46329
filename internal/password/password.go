// Package password hashes and verifies user passwords with argon2id.
package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Parameters of new hashes (RFC 9106's second recommended option, with
// less memory so that a 2-core server can log users in concurrently).
const (
	timeCost   = 3
	memoryKiB  = 64 * 1024
	threads    = 2
	keyLen     = 32
	saltLen    = 16
	maxPassLen = 1024
	// MinLength is the shortest password accepted for a new user.
	MinLength = 8
)

// ErrMismatch is returned by Verify for a wrong password.
var ErrMismatch = errors.New("password mismatch")

// Hash returns the PHC-formatted argon2id hash of pw with a random salt.
func Hash(pw string) (string, error) {
	if len(pw) > maxPassLen {
		return "", fmt.Errorf("password longer than %d bytes", maxPassLen)
	}
	salt := make([]byte, saltLen)
	rand.Read(salt)
	key := argon2.IDKey([]byte(pw), salt, timeCost, memoryKiB, threads, keyLen)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, memoryKiB, timeCost, threads, enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

// Verify reports whether pw matches hash (in constant time). It returns
// ErrMismatch for a wrong password and another error for a malformed hash.
func Verify(hash, pw string) error {
	if len(pw) > maxPassLen {
		return ErrMismatch
	}
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return errors.New("password: unsupported hash format")
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return errors.New("password: unsupported argon2 version")
	}
	var m uint32
	var t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil {
		return fmt.Errorf("password: bad parameters: %w", err)
	}
	enc := base64.RawStdEncoding
	salt, err := enc.DecodeString(parts[4])
	if err != nil {
		return fmt.Errorf("password: bad salt: %w", err)
	}
	want, err := enc.DecodeString(parts[5])
	if err != nil {
		return fmt.Errorf("password: bad key: %w", err)
	}
	got := argon2.IDKey([]byte(pw), salt, t, m, p, uint32(len(want)))
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return ErrMismatch
	}
	return nil
}

// Generate returns a random password of 24 base64url characters (144 bits).
func Generate() string {
	b := make([]byte, 18)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
