package client

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// decodeError also meets responses that are not the server's problem
// details: a reverse proxy's error page, an empty body.
func TestDecodeError(t *testing.T) {
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string
		header      http.Header
		want        Error
		wantMessage string
	}{
		{
			name: "problem details", status: 400, contentType: "application/problem+json",
			body: `{"type":"/problems/validation","title":"Bad Request","status":400,"detail":"invalid scope",` +
				`"errors":[{"field":"scope.patterns[0]","message":"invalid regular expression: missing ')'"}]}`,
			want: Error{Status: 400, Type: "/problems/validation", Title: "Bad Request", Detail: "invalid scope",
				Errors: []FieldError{{Field: "scope.patterns[0]", Message: "invalid regular expression: missing ')'"}}},
			wantMessage: "invalid scope (HTTP 400): scope.patterns[0]: invalid regular expression: missing ')'",
		},
		{
			name: "the status line wins", status: 403, contentType: "application/problem+json",
			body:        `{"type":"/problems/forbidden","title":"Forbidden","status":200,"detail":"missing permission scan"}`,
			want:        Error{Status: 403, Type: "/problems/forbidden", Title: "Forbidden", Detail: "missing permission scan"},
			wantMessage: "missing permission scan (HTTP 403)",
		},
		{
			name: "rate limited", status: 429, contentType: "application/problem+json; charset=utf-8",
			body:   `{"type":"/problems/rate-limited","title":"Too Many Requests","status":429,"detail":"too many failed authentications"}`,
			header: http.Header{"Retry-After": {"30"}},
			want: Error{Status: 429, Type: "/problems/rate-limited", Title: "Too Many Requests",
				Detail: "too many failed authentications", RetryAfter: 30 * time.Second},
			wantMessage: "too many failed authentications (HTTP 429)",
		},
		{
			name: "proxy HTML page", status: 502, contentType: "text/html",
			body:        "<html><body><h1>502 Bad Gateway</h1></body></html>",
			want:        Error{Status: 502, Title: "Bad Gateway"},
			wantMessage: "Bad Gateway (HTTP 502)",
		},
		{
			name: "plain text", status: 503, contentType: "text/plain",
			body:        "upstream\nunavailable",
			want:        Error{Status: 503, Title: "Service Unavailable", Detail: "upstream unavailable"},
			wantMessage: "upstream unavailable (HTTP 503)",
		},
		{
			name: "malformed JSON", status: 500, contentType: "application/json", body: `{"status":`,
			want:        Error{Status: 500, Title: "Internal Server Error", Detail: `{"status":`},
			wantMessage: `{"status": (HTTP 500)`,
		},
		{
			name: "empty body", status: 401,
			want:        Error{Status: 401, Title: "Unauthorized"},
			wantMessage: "Unauthorized (HTTP 401)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.header {
				h[k] = v
			}
			if tt.contentType != "" {
				h.Set("Content-Type", tt.contentType)
			}
			resp := &http.Response{StatusCode: tt.status, Header: h, Body: io.NopCloser(strings.NewReader(tt.body))}
			err := decodeError(resp)
			e, ok := err.(*Error)
			if !ok {
				t.Fatalf("decodeError = %v (%T), want *Error", err, err)
			}
			if e.Status != tt.want.Status || e.Type != tt.want.Type || e.Title != tt.want.Title ||
				e.Detail != tt.want.Detail || e.RetryAfter != tt.want.RetryAfter || len(e.Errors) != len(tt.want.Errors) {
				t.Fatalf("decodeError = %+v, want %+v", e, tt.want)
			}
			for i := range e.Errors {
				if e.Errors[i] != tt.want.Errors[i] {
					t.Fatalf("field error %d = %+v, want %+v", i, e.Errors[i], tt.want.Errors[i])
				}
			}
			if e.Error() != tt.wantMessage {
				t.Fatalf("Error() = %q, want %q", e.Error(), tt.wantMessage)
			}
		})
	}
}

func TestErrorCode(t *testing.T) {
	e := &Error{Status: 404, Type: "/problems/not-found"}
	if e.Code() != ProblemNotFound || !IsNotFound(e) || IsForbidden(e) {
		t.Fatalf("Code() = %q, IsNotFound = %v", e.Code(), IsNotFound(e))
	}
	if StatusCode(io.EOF) != 0 || IsNotFound(nil) {
		t.Fatal("a non-API error has no status")
	}
}
