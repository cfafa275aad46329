package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Problem types (the slug after "/problems/") that the server uses.
const (
	ProblemValidation      = "validation"
	ProblemUnauthenticated = "unauthenticated"
	ProblemForbidden       = "forbidden"
	ProblemNotFound        = "not-found"
	ProblemConflict        = "conflict"
	ProblemPlanRequired    = "plan-required"
	ProblemPolicyViolation = "policy-violation"
	ProblemTooLarge        = "too-large"
	ProblemRateLimited     = "rate-limited"
)

// FieldError names one invalid field of a request by its JSON path, such
// as "scope.patterns[0]".
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error is an API error: the server's RFC 9457 problem details, or, for a
// response that is not one (a proxy's error page), the status and a short
// excerpt of the body.
type Error struct {
	// Status is the HTTP status code.
	Status int `json:"status"`
	// Type is the problem type URI, "/problems/<slug>".
	Type string `json:"type"`
	// Title is a short summary of the problem type.
	Title string `json:"title"`
	// Detail explains this occurrence; it is written for a person.
	Detail string `json:"detail,omitempty"`
	// Errors lists the invalid fields of a 400.
	Errors []FieldError `json:"errors,omitempty"`
	// RetryAfter is the server's Retry-After of a 429 or 503, or zero.
	RetryAfter time.Duration `json:"-"`
}

// Error returns the detail (or title) and the field errors on one line.
func (e *Error) Error() string {
	var b strings.Builder
	msg := e.Detail
	if msg == "" {
		msg = e.Title
	}
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	fmt.Fprintf(&b, "%s (HTTP %d)", msg, e.Status)
	for i, f := range e.Errors {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		if f.Field != "" {
			b.WriteString(f.Field + ": ")
		}
		b.WriteString(f.Message)
	}
	return b.String()
}

// Code returns the problem type's slug ("not-found", "policy-violation"…),
// or "" when the server sent no problem type.
func (e *Error) Code() string {
	return strings.TrimPrefix(e.Type, "/problems/")
}

// StatusCode returns the HTTP status of the first *Error in err's chain, or
// 0 when err holds none (a network error, for instance).
func StatusCode(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// IsNotFound reports whether err is a 404: an unknown resource, or an
// organization the caller cannot see.
func IsNotFound(err error) bool { return StatusCode(err) == http.StatusNotFound }

// IsUnauthenticated reports whether err is a 401: a missing, malformed,
// unknown, expired or revoked credential.
func IsUnauthenticated(err error) bool { return StatusCode(err) == http.StatusUnauthorized }

// IsForbidden reports whether err is a 403: authenticated, but not allowed
// (including an organization whose plan lacks organization tokens).
func IsForbidden(err error) bool { return StatusCode(err) == http.StatusForbidden }

// IsConflict reports whether err is a 409: a duplicate key.
func IsConflict(err error) bool { return StatusCode(err) == http.StatusConflict }

// IsInvalid reports whether err is a 400: bad input, including a request
// beyond the organization's token policy.
func IsInvalid(err error) bool { return StatusCode(err) == http.StatusBadRequest }

// maxErrorBody bounds how much of an error response is read.
const maxErrorBody = 1 << 20

// decodeError turns a non-2xx response into an *Error.
func decodeError(resp *http.Response) error {
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if err != nil {
		return fmt.Errorf("client: reading %d response: %w", resp.StatusCode, err)
	}
	e := &Error{}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt == "application/problem+json" || mt == "application/json" {
		if json.Unmarshal(body, e) != nil {
			e = &Error{}
		}
	}
	// The status line is what proxies and caches acted on; it wins over
	// the body's.
	e.Status = resp.StatusCode
	if e.Title == "" {
		e.Title = http.StatusText(resp.StatusCode)
	}
	if e.Detail == "" && e.Type == "" && len(body) > 0 && !strings.HasPrefix(mt, "text/html") {
		e.Detail = excerpt(body)
	}
	if s := resp.Header.Get("Retry-After"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n >= 0 {
			e.RetryAfter = time.Duration(n) * time.Second
		}
	}
	return e
}

// excerpt returns the start of a non-problem error body, on one line.
func excerpt(b []byte) string {
	const max = 200
	if len(b) > max {
		b = b[:max]
		for len(b) > 0 && !utf8.Valid(b) {
			b = b[:len(b)-1]
		}
	}
	return strings.Join(strings.Fields(string(b)), " ")
}
