package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/sot-dev/sot/client"
)

func TestExpiry(t *testing.T) {
	tests := []struct {
		name    string
		expires string
		never   bool
		want    client.Expiry
		usage   bool
	}{
		{name: "days", expires: "30d", want: client.Expiry{In: "30d"}},
		{name: "a year", expires: "1y", want: client.Expiry{In: "1y"}},
		{name: "date", expires: "2027-03-01", want: client.Expiry{At: time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)}},
		{name: "never", never: true, want: client.Expiry{Never: true}},
		{name: "no unit", expires: "30", usage: true},
		{name: "zero days", expires: "0d", usage: true},
		{name: "hours", expires: "24h", usage: true},
		{name: "words", expires: "soon", usage: true},
		{name: "bad date", expires: "2027-02-30", usage: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := expiry(tt.expires, tt.never)
			var ue *usageError
			if tt.usage {
				if !errors.As(err, &ue) {
					t.Fatalf("expiry(%q) error = %v, want a usage error", tt.expires, err)
				}
				return
			}
			if err != nil || got.In != tt.want.In || !got.At.Equal(tt.want.At) || got.Never != tt.want.Never {
				t.Fatalf("expiry(%q) = %+v, %v; want %+v", tt.expires, got, err, tt.want)
			}
		})
	}
}

func TestParseDays(t *testing.T) {
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{"365d", 365, true},
		{"1y", 365, true},
		{"2y", 730, true},
		{"90d", 90, true},
		{"0d", 0, false},
		{"-5d", 0, false},
		{"d", 0, false},
		{"12", 0, false},
		{"1w", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseDays(tt.in)
			if (err == nil) != tt.ok || got != tt.want {
				t.Fatalf("parseDays(%q) = %d, %v; want %d, ok=%v", tt.in, got, err, tt.want, tt.ok)
			}
		})
	}
}

func TestHumanBytes(t *testing.T) {
	tests := []struct {
		n    int64
		want string
	}{
		{0, "0 B"},
		{1023, "1023 B"},
		{1024, "1.0 KiB"},
		{1536, "1.5 KiB"},
		{64 << 20, "64.0 MiB"},
		{3 << 30, "3.0 GiB"},
	}
	for _, tt := range tests {
		if got := humanBytes(tt.n); got != tt.want {
			t.Errorf("humanBytes(%d) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

func TestReadLine(t *testing.T) {
	tests := []struct {
		name, in, want, rest string
	}{
		{"newline", "sot_abc\nnext", "sot_abc", "next"},
		{"CRLF", "sot_abc\r\n", "sot_abc", ""},
		{"no newline", "sot_abc", "sot_abc", ""},
		{"empty", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := strings.NewReader(tt.in)
			got, err := readLine(r)
			if err != nil || got != tt.want {
				t.Fatalf("readLine = %q, %v; want %q", got, err, tt.want)
			}
			// Nothing after the line was consumed.
			if rest, _ := io.ReadAll(r); string(rest) != tt.rest {
				t.Fatalf("left %q, want %q", rest, tt.rest)
			}
		})
	}
}

// reportError is the one place where errors become exit statuses.
func TestReportError(t *testing.T) {
	tests := []struct {
		name  string
		err   error
		code  int
		lines []string
	}{
		{
			name: "unauthenticated", code: exitAuth,
			err:   &client.Error{Status: 401, Type: "/problems/unauthenticated", Title: "Unauthorized", Detail: "token expired"},
			lines: []string{"sot: token expired (HTTP 401)"},
		},
		{
			name: "forbidden", code: exitForbidden,
			err:   fmt.Errorf("scanning: %w", &client.Error{Status: 403, Title: "Forbidden", Detail: "the project is outside the token's scope"}),
			lines: []string{"sot: the project is outside the token's scope (HTTP 403)"},
		},
		{
			name: "plan required", code: exitForbidden,
			err:   &client.Error{Status: 403, Type: "/problems/plan-required", Title: "Forbidden", Detail: "organization tokens need the team or enterprise plan"},
			lines: []string{"sot: organization tokens need the team or enterprise plan (HTTP 403)"},
		},
		{
			name: "validation with fields", code: exitError,
			err: &client.Error{Status: 400, Title: "Bad Request", Detail: "invalid scope", Errors: []client.FieldError{
				{Field: "scope.patterns[0]", Message: "invalid regular expression: missing ')'"},
				{Message: "no field"},
			}},
			lines: []string{"sot: invalid scope (HTTP 400)", "  scope.patterns[0]: invalid regular expression: missing ')'", "  no field"},
		},
		{
			name: "title only", code: exitError,
			err:   &client.Error{Status: 502, Title: "Bad Gateway"},
			lines: []string{"sot: Bad Gateway (HTTP 502)"},
		},
		{
			name: "usage", code: exitUsage,
			err:   usageErrorf("give the scope: --all-projects, --project KEY or --pattern RE"),
			lines: []string{"sot: give the scope: --all-projects, --project KEY or --pattern RE"},
		},
		{
			name: "network", code: exitError,
			err:   errors.New("client: dial tcp 127.0.0.1:1: connect: connection refused"),
			lines: []string{"sot: client: dial tcp 127.0.0.1:1: connect: connection refused"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if code := reportError(&b, tt.err); code != tt.code {
				t.Fatalf("exit status %d, want %d", code, tt.code)
			}
			if got, want := b.String(), strings.Join(tt.lines, "\n")+"\n"; got != want {
				t.Fatalf("printed %q, want %q", got, want)
			}
		})
	}
}

func TestProgress(t *testing.T) {
	var out bytes.Buffer
	p := startProgress(&out, "report.json", 2048)
	n, err := io.Copy(io.Discard, p.reader(bytes.NewReader(make([]byte, 2048))))
	p.stop()
	if err != nil || n != 2048 {
		t.Fatalf("copied %d, %v", n, err)
	}
	got := out.String()
	if !strings.HasPrefix(got, "\ruploading report.json: ") || !strings.Contains(got, "2.0 KiB / 2.0 KiB (100%)") || !strings.HasSuffix(got, "\n") {
		t.Fatalf("progress output %q", got)
	}
}
