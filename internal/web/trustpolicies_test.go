package web

import (
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/sot-dev/sot"
)

func TestParseConditions(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		want    map[string]string
		wantErr string // a field message it must contain
	}{
		{"one", "repository_id = 42", map[string]string{"repository_id": "42"}, ""},
		{"blank lines and spaces", "\n  repository_owner_id=7  \n\nref =  refs/heads/*\n", map[string]string{"repository_owner_id": "7", "ref": "refs/heads/*"}, ""},
		{"value with equals", "sub = repo:a/b:environment=prod", map[string]string{"sub": "repo:a/b:environment=prod"}, ""},
		{"empty", "", map[string]string{}, ""},
		{"no equals", "ref\n", nil, "line 1: write claim = value"},
		{"no claim", "repository_id = 1\n= 2", nil, "line 2: write claim = value"},
		{"duplicate", "ref = a\nref = b", nil, "line 2: ref is already set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseConditions(tt.text)
			if tt.wantErr != "" {
				if err == nil || sot.ErrorCode(err) != sot.EINVALID {
					t.Fatalf("err %v, want EINVALID", err)
				}
				if msg := fieldMap(err)["conditions"]; !strings.Contains(msg, tt.wantErr) {
					t.Fatalf("field message %q, want %q", msg, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestUsesImmutableClaim(t *testing.T) {
	tests := []struct {
		name string
		cs   map[string]string
		want bool
	}{
		{"github ids", map[string]string{"repository_owner_id": "1", "ref": "refs/heads/main"}, true},
		{"gitlab project", map[string]string{"project_id": "9"}, true},
		{"names only", map[string]string{"repository": "acme/web", "repository_owner": "acme"}, false},
		{"none", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := usesImmutableClaim(tt.cs); got != tt.want {
				t.Fatalf("usesImmutableClaim(%v) = %v, want %v", tt.cs, got, tt.want)
			}
		})
	}
}

func TestFormatTTL(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{15 * time.Minute, "15m"}, {time.Hour, "1h"}, {90 * time.Minute, "90m"}, {24 * time.Hour, "24h"}, {90 * time.Second, "1m30s"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := formatTTL(tt.d); got != tt.want {
				t.Fatalf("formatTTL(%v) = %q, want %q", tt.d, got, tt.want)
			}
			if tt.d%time.Minute == 0 {
				if back, err := sot.ParseTrustTTL("ttl", tt.want); tt.d <= sot.MaxTrustTTL && (err != nil || back != tt.d) {
					t.Fatalf("ParseTrustTTL(%q) = %v, %v: the form would not read back what it shows", tt.want, back, err)
				}
			}
		})
	}
}
