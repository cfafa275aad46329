package sot

import (
	"crypto/sha256"
	"errors"
	"hash/crc32"
	"strings"
	"testing"
)

func TestNewSecretFormat(t *testing.T) {
	for _, kind := range []TokenKind{TokenKindOrg, TokenKindPersonal} {
		seen := map[string]bool{}
		for range 200 {
			s := NewSecret(kind)
			got, err := ParseSecret(s)
			if err != nil {
				t.Fatalf("ParseSecret(%q) = %v", s, err)
			}
			if got != kind {
				t.Fatalf("ParseSecret(%q) kind = %q, want %q", s, got, kind)
			}
			if seen[s] {
				t.Fatalf("duplicate secret %q", s)
			}
			seen[s] = true
		}
	}
	if s := NewSecret(TokenKindOrg); !strings.HasPrefix(s, "sot_") || len(s) != 4+30+6 {
		t.Fatalf("org secret %q: want sot_ + 36 characters", s)
	}
	if s := NewSecret(TokenKindPersonal); !strings.HasPrefix(s, "sotu_") || len(s) != 5+30+6 {
		t.Fatalf("personal secret %q: want sotu_ + 36 characters", s)
	}
}

func TestParseSecret(t *testing.T) {
	good := NewSecret(TokenKindOrg)
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		return string(b)
	}
	tests := []struct {
		name   string
		secret string
		want   error
	}{
		{"valid", good, nil},
		{"empty", "", errMalformedSecret},
		{"no prefix", good[4:], errMalformedSecret},
		{"other prefix", "ghp_" + good[4:], errMalformedSecret},
		{"truncated", good[:len(good)-1], errMalformedSecret},
		{"extended", good + "a", errMalformedSecret},
		{"non-base62", good[:10] + "-" + good[11:], errMalformedSecret},
		{"typo in body", flip(good, 10), errBadChecksum},
		{"typo in checksum", flip(good, len(good)-1), errBadChecksum},
		{"org body under the personal prefix", "sotu_" + good[4:], errBadChecksum},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseSecret(tt.secret)
			if err != tt.want {
				t.Fatalf("ParseSecret(%q) = %v, want %v", tt.secret, err, tt.want)
			}
			if err != nil && !errors.Is(err, ErrUnauthenticated) {
				t.Fatalf("error %v is not EUNAUTHENTICATED", err)
			}
		})
	}
}

func TestSecretHint(t *testing.T) {
	s := NewSecret(TokenKindOrg)
	if h := SecretHint(s); h != "sot_…"+s[len(s)-4:] {
		t.Fatalf("SecretHint = %q", h)
	}
	p := NewSecret(TokenKindPersonal)
	if h := SecretHint(p); !strings.HasPrefix(h, "sotu_…") {
		t.Fatalf("SecretHint = %q", h)
	}
}

func FuzzParseSecret(f *testing.F) {
	f.Add(NewSecret(TokenKindOrg))
	f.Add(NewSecret(TokenKindPersonal))
	f.Add("sot_")
	f.Add("sotu_000000000000000000000000000000000000")
	f.Fuzz(func(t *testing.T, s string) {
		kind, err := ParseSecret(s)
		if err != nil {
			if ErrorCode(err) != EUNAUTHENTICATED {
				t.Fatalf("ParseSecret(%q) error code %q", s, ErrorCode(err))
			}
			return
		}
		// Anything accepted has the exact shape and a valid checksum.
		prefix := kind.secretPrefix()
		if !strings.HasPrefix(s, prefix) || len(s) != len(prefix)+36 {
			t.Fatalf("accepted %q of kind %q with the wrong shape", s, kind)
		}
		if checksum(s[:len(s)-6]) != s[len(s)-6:] {
			t.Fatalf("accepted %q with a bad checksum", s)
		}
	})
}

func BenchmarkParseAndHashSecret(b *testing.B) {
	s := NewSecret(TokenKindOrg)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseSecret(s); err != nil {
			b.Fatal(err)
		}
		_ = HashSecret(s)
	}
}

// The allocation-free HashSecret and checksum must agree with the standard
// library for any input, including inputs longer than a secret.
func FuzzHashAndChecksumMatchStdlib(f *testing.F) {
	for _, n := range []int{0, 1, 40, 41, 64, 65, 300} {
		f.Add(strings.Repeat("x", n))
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := HashSecret(s), sha256.Sum256([]byte(s)); got != want {
			t.Fatalf("HashSecret(%q) = %x, want %x", s, got, want)
		}
		if got, want := crc32IEEE(s), crc32.ChecksumIEEE([]byte(s)); got != want {
			t.Fatalf("crc32IEEE(%q) = %08x, want %08x", s, got, want)
		}
	})
}
