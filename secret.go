package sot

import (
	"crypto/rand"
	"crypto/sha256"
	"hash/crc32"
	"strings"
)

// Secret prefixes. The prefix tells a reader (and a secret scanner) what a
// string is without any lookup.
const (
	OrgTokenPrefix      = "sot_"
	PersonalTokenPrefix = "sotu_"
)

const (
	secretRandomLen   = 30 // 30 base62 characters: about 178 bits of entropy
	secretChecksumLen = 6  // base62 of a CRC32: 62^6 > 2^32
	base62Alphabet    = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
)

// SecretHash is the SHA-256 of a secret: what storage keeps and looks up.
type SecretHash [sha256.Size]byte

// HashSecret returns the SHA-256 of secret. The secret carries ~178 bits of
// randomness, so a plain fast hash is safe and keeps the check path cheap.
func HashSecret(secret string) SecretHash {
	// A secret fits a stack buffer; []byte(secret) would escape into the
	// hash and cost an allocation on every check.
	var buf [64]byte
	if len(secret) <= len(buf) {
		return sha256.Sum256(buf[:copy(buf[:], secret)])
	}
	return sha256.Sum256([]byte(secret))
}

// NewSecret returns a fresh secret for a token of the given kind:
// prefix, 30 random base62 characters, 6 base62 characters of CRC32.
func NewSecret(kind TokenKind) string {
	prefix := kind.secretPrefix()
	var b strings.Builder
	b.Grow(len(prefix) + secretRandomLen + secretChecksumLen)
	b.WriteString(prefix)
	// Rejection sampling keeps every character uniform: 248 is the largest
	// multiple of 62 that fits a byte.
	var buf [64]byte
	for n := 0; n < secretRandomLen; {
		rand.Read(buf[:])
		for _, c := range buf {
			if c >= 248 {
				continue
			}
			b.WriteByte(base62Alphabet[c%62])
			if n++; n == secretRandomLen {
				break
			}
		}
	}
	body := b.String()
	return body + checksum(body)
}

// checksum returns the 6-character base62 CRC32 (IEEE) of s.
func checksum(s string) string {
	sum := checksumOf(s)
	return string(sum[:])
}

// checksumOf is checksum without the string, so that ParseSecret compares
// it in place.
func checksumOf(s string) [secretChecksumLen]byte {
	var out [secretChecksumLen]byte
	v := crc32IEEE(s)
	for i := secretChecksumLen - 1; i >= 0; i-- {
		out[i] = base62Alphabet[v%62]
		v /= 62
	}
	return out
}

// crc32IEEE is crc32.ChecksumIEEE of a string. The standard function takes
// a []byte that escapes, which would cost an allocation per check; a
// byte-at-a-time loop over its table is as fast for 36 bytes.
func crc32IEEE(s string) uint32 {
	crc := ^uint32(0)
	for i := 0; i < len(s); i++ {
		crc = crc32.IEEETable[byte(crc)^s[i]] ^ crc>>8
	}
	return ^crc
}

// ParseSecret checks the form of secret (prefix, length, alphabet, checksum)
// without any I/O and returns the kind of token it belongs to. A typo, a
// truncated copy or random garbage is refused here, before storage is touched.
func ParseSecret(secret string) (TokenKind, error) {
	var kind TokenKind
	var prefix string
	switch {
	case strings.HasPrefix(secret, PersonalTokenPrefix):
		kind, prefix = TokenKindPersonal, PersonalTokenPrefix
	case strings.HasPrefix(secret, OrgTokenPrefix):
		kind, prefix = TokenKindOrg, OrgTokenPrefix
	default:
		return "", errMalformedSecret
	}
	if len(secret) != len(prefix)+secretRandomLen+secretChecksumLen {
		return "", errMalformedSecret
	}
	for i := len(prefix); i < len(secret); i++ {
		if !isBase62(secret[i]) {
			return "", errMalformedSecret
		}
	}
	cut := len(secret) - secretChecksumLen
	if sum := checksumOf(secret[:cut]); string(sum[:]) != secret[cut:] {
		return "", errBadChecksum
	}
	return kind, nil
}

var (
	errMalformedSecret = &Error{Code: EUNAUTHENTICATED, Message: "malformed token"}
	errBadChecksum     = &Error{Code: EUNAUTHENTICATED, Message: "malformed token: bad checksum"}
)

func isBase62(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z'
}

// SecretHint returns the displayable hint of a secret: its prefix, an
// ellipsis and its last four characters ("sot_…a1b2"). It is enough to tell
// tokens apart in a list and useless to an attacker.
func SecretHint(secret string) string {
	prefix := OrgTokenPrefix
	if strings.HasPrefix(secret, PersonalTokenPrefix) {
		prefix = PersonalTokenPrefix
	}
	if len(secret) < 4 {
		return prefix + "…"
	}
	return prefix + "…" + secret[len(secret)-4:]
}
