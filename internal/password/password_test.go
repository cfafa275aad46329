package password

import (
	"errors"
	"strings"
	"testing"
)

func TestHashVerify(t *testing.T) {
	h, err := Hash("correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$") {
		t.Fatalf("hash %q is not PHC argon2id", h)
	}
	tests := []struct {
		name string
		pw   string
		want error
	}{
		{"right", "correct horse battery staple", nil},
		{"wrong", "correct horse battery stapler", ErrMismatch},
		{"empty", "", ErrMismatch},
		{"huge", strings.Repeat("x", 5000), ErrMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Verify(h, tt.pw); !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestHashSalted(t *testing.T) {
	a, _ := Hash("pw-pw-pw-pw")
	b, _ := Hash("pw-pw-pw-pw")
	if a == b {
		t.Fatal("two hashes of one password are equal: salt missing")
	}
}

func TestVerifyMalformed(t *testing.T) {
	for _, h := range []string{"", "plain", "$argon2i$v=19$m=1,t=1,p=1$AA$AA", "$argon2id$v=19$m=x$AA$AA", "$argon2id$v=19$m=1,t=1,p=1$!!$AA"} {
		if err := Verify(h, "pw"); err == nil || errors.Is(err, ErrMismatch) {
			t.Errorf("Verify(%q) = %v, want a format error", h, err)
		}
	}
}

func TestGenerate(t *testing.T) {
	if a, b := Generate(), Generate(); a == b || len(a) != 24 {
		t.Fatalf("Generate gave %q and %q", a, b)
	}
}
