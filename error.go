package sot

import (
	"errors"
	"fmt"
)

// Error codes. Each edge (HTTP API, web UI, CLI) maps them to its own form
// exactly once; the domain never speaks HTTP.
const (
	EINVALID         = "invalid"          // bad input
	ENOTFOUND        = "not_found"        // unknown resource, or one the caller may not see
	ECONFLICT        = "conflict"         // duplicate key
	EUNAUTHENTICATED = "unauthenticated"  // missing, malformed, unknown, expired or revoked credential
	EFORBIDDEN       = "forbidden"        // authenticated but not allowed
	EPLAN            = "plan_required"    // the organization's plan does not include the feature
	EPOLICY          = "policy_violation" // the request breaks the organization's token policy
	ETOOLARGE        = "too_large"        // a body or a list beyond its limit
	ERATELIMITED     = "rate_limited"     // too many failed attempts
	EINTERNAL        = "internal"         // a bug or an unavailable dependency
)

// Sentinel errors for the domain outcomes callers branch on. They match any
// *Error with the same code under errors.Is, so a store can return a detailed
// message and a caller can still test errors.Is(err, sot.ErrNotFound).
var (
	ErrNotFound        = &Error{Code: ENOTFOUND, Message: "not found"}
	ErrConflict        = &Error{Code: ECONFLICT, Message: "already exists"}
	ErrUnauthenticated = &Error{Code: EUNAUTHENTICATED, Message: "unauthenticated"}
	ErrForbidden       = &Error{Code: EFORBIDDEN, Message: "forbidden"}
	ErrPlanRequired    = &Error{Code: EPLAN, Message: "organization tokens need the team or enterprise plan"}
)

// FieldError names one invalid field of a request, by its JSON path
// (for example "scope.patterns[0]").
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error is a domain error: a code, a message that is safe to show to the
// caller, optional field details, and an internal cause that is logged but
// never shown.
type Error struct {
	Code    string
	Message string
	Fields  []FieldError
	Err     error
}

// Error implements the error interface. It includes the cause, so it is for
// logs; use ErrorMessage for what a user may see.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Unwrap returns the internal cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is an *Error with the same code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Errorf returns an *Error with the given code and a formatted, user-safe message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns an EINVALID error that lists the offending fields.
func Invalid(message string, fields ...FieldError) *Error {
	return &Error{Code: EINVALID, Message: message, Fields: fields}
}

// Internal wraps an unexpected cause as EINTERNAL. The cause is logged by
// the edge and never shown.
func Internal(err error) *Error {
	return &Error{Code: EINTERNAL, Message: "internal error", Err: err}
}

// ErrorCode returns the code of the first *Error in err's chain, EINTERNAL for
// any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the user-safe message of err: the message of its first
// *Error, or "internal error" for anything else.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) && e.Code != EINTERNAL {
		return e.Message
	}
	return "internal error"
}

// ErrorFields returns the field errors of the first *Error in err's chain.
func ErrorFields(err error) []FieldError {
	var e *Error
	if errors.As(err, &e) {
		return e.Fields
	}
	return nil
}

func fieldIndex(field string, i int) string { return fmt.Sprintf("%s[%d]", field, i) }
