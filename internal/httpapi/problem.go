package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/sot-dev/sot"
)

// problem is an RFC 9457 problem details body. It is huma's error model for
// this API (see init), so validation errors produced by huma and domain
// errors returned by handlers come out in the same shape.
type problem struct {
	Type   string           `json:"type" doc:"Problem type: /problems/<slug>."`
	Title  string           `json:"title"`
	Status int              `json:"status"`
	Detail string           `json:"detail,omitempty"`
	Errors []sot.FieldError `json:"errors,omitempty" doc:"The offending fields, by JSON path."`

	cause      error  // the internal cause of a 5xx, logged and never shown
	retryAfter string // seconds, for a 429
}

// Error implements error with the user-safe detail.
func (p *problem) Error() string { return p.Detail }

// GetStatus implements huma.StatusError.
func (p *problem) GetStatus() int { return p.Status }

// ContentType implements huma.ContentTypeFilter.
func (p *problem) ContentType(string) string { return "application/problem+json" }

// kind is how one sot error code appears over HTTP.
type kind struct {
	status int
	slug   string
	title  string
}

// kinds maps every sot error code to its status and problem slug. It is the
// only place where domain errors become HTTP.
var kinds = map[string]kind{
	sot.EINVALID:         {http.StatusBadRequest, "validation", "Invalid request"},
	sot.EUNAUTHENTICATED: {http.StatusUnauthorized, "unauthenticated", "Unauthenticated"},
	sot.EFORBIDDEN:       {http.StatusForbidden, "forbidden", "Forbidden"},
	sot.ENOTFOUND:        {http.StatusNotFound, "not-found", "Not found"},
	sot.ECONFLICT:        {http.StatusConflict, "conflict", "Conflict"},
	sot.EPLAN:            {http.StatusForbidden, "plan-required", "Plan required"},
	sot.EPOLICY:          {http.StatusBadRequest, "policy-violation", "Token policy violation"},
	sot.ETOOLARGE:        {http.StatusRequestEntityTooLarge, "too-large", "Too large"},
	sot.ERATELIMITED:     {http.StatusTooManyRequests, "rate-limited", "Too many requests"},
	sot.EINTERNAL:        {http.StatusInternalServerError, "internal", "Internal error"},
}

// codeForStatus maps statuses that huma produces by itself (validation,
// body limits, content negotiation) to the sot code of the same meaning.
func codeForStatus(status int) string {
	switch status {
	case http.StatusBadRequest, http.StatusUnprocessableEntity, http.StatusUnsupportedMediaType,
		http.StatusRequestTimeout, http.StatusNotAcceptable:
		return sot.EINVALID
	case http.StatusUnauthorized:
		return sot.EUNAUTHENTICATED
	case http.StatusForbidden:
		return sot.EFORBIDDEN
	case http.StatusNotFound, http.StatusMethodNotAllowed:
		return sot.ENOTFOUND
	case http.StatusConflict:
		return sot.ECONFLICT
	case http.StatusRequestEntityTooLarge:
		return sot.ETOOLARGE
	case http.StatusTooManyRequests:
		return sot.ERATELIMITED
	}
	return sot.EINTERNAL
}

// problemFor maps err to its problem. Internal errors keep their cause for
// the log and show nothing of it.
func problemFor(err error) *problem {
	var p *problem
	if errors.As(err, &p) {
		return p
	}
	code := sot.ErrorCode(err)
	if _, ok := kinds[code]; !ok {
		code = sot.EINTERNAL
	}
	p = newProblem(code)
	if code == sot.EINTERNAL {
		p.Detail = "internal error"
		p.cause = err
		return p
	}
	p.Detail = sot.ErrorMessage(err)
	p.Errors = sot.ErrorFields(err)
	return p
}

func newProblem(code string) *problem {
	k := kinds[code]
	return &problem{Type: "/problems/" + k.slug, Title: k.title, Status: k.status}
}

// newHumaError is huma.NewError for this API: huma's own errors (422
// validation, unknown fields, broken JSON, oversized bodies) become 400/413
// problems with field paths relative to the body, and sot errors returned
// by handlers are mapped by problemFor.
func newHumaError(status int, msg string, errs ...error) huma.StatusError {
	if status == http.StatusInternalServerError && msg == huma500BodyRead {
		// The body could not be read: broken chunking, a client gone, a
		// deadline. The client's doing, not the server's.
		status, msg = http.StatusBadRequest, "cannot read the request body"
	}
	if (status == 0 || status == http.StatusInternalServerError) && len(errs) == 1 {
		// A handler returned a plain error (huma calls it "unexpected" and
		// asks for a 500), or the API wrote one with status 0: the error
		// itself knows its status.
		return problemFor(errs[0])
	}
	code := codeForStatus(status)
	p := newProblem(code)
	if code == sot.EINTERNAL {
		p.Detail = "internal error"
		p.cause = errors.Join(append([]error{errors.New(msg)}, errs...)...)
		return p
	}
	p.Detail = msg
	if msg == "validation failed" {
		p.Detail = "invalid request"
	}
	for _, e := range errs {
		var d huma.ErrorDetailer
		switch {
		case e == nil:
		case errors.As(e, &d):
			det := d.ErrorDetail()
			p.Errors = append(p.Errors, sot.FieldError{Field: fieldPath(det.Location), Message: det.Message})
		default:
			p.Errors = append(p.Errors, sot.FieldError{Message: sot.ErrorMessage(e)})
		}
	}
	return p
}

// huma500BodyRead is the message of huma's 500 for a request body that
// could not be read (huma v2's readBody).
const huma500BodyRead = "cannot read request body"

// fieldPath turns huma's location ("body.scope.patterns[0]") into the
// contract's field path ("scope.patterns[0]"); parameters keep their
// location ("query.page_size").
func fieldPath(loc string) string {
	if loc == "body" {
		return ""
	}
	return strings.TrimPrefix(loc, "body.")
}

// newHumaErrorWithContext adds what a problem needs beyond its body: the
// challenge of a 401, the Retry-After of a 429, and the cause of a 500 for
// the request log.
func newHumaErrorWithContext(ctx huma.Context, status int, msg string, errs ...error) huma.StatusError {
	p := newHumaError(status, msg, errs...).(*problem)
	if ctx != nil {
		setProblemHeaders(ctx.SetHeader, p)
		if p.cause != nil {
			if ri := info(ctx.Context()); ri != nil {
				ri.cause = p.cause
			}
		}
	}
	return p
}

// Huma's error constructors are package variables; this package is the
// only importer of huma (DESIGN.md), so setting them once here is safe.
func init() {
	huma.NewError = newHumaError
	huma.NewErrorWithContext = newHumaErrorWithContext
}

// challenge is the WWW-Authenticate value of every 401.
const challenge = `Bearer realm="sot", error="invalid_token"`

func setProblemHeaders(set func(name, value string), p *problem) {
	switch p.Status {
	case http.StatusUnauthorized:
		set("WWW-Authenticate", challenge)
	case http.StatusTooManyRequests:
		ra := p.retryAfter
		if ra == "" {
			ra = strconv.Itoa(int(authFailureWindow / time.Second))
		}
		set("Retry-After", ra)
	}
}

// writeError writes err as a problem to a plain (non-huma) handler's
// response, keeps the cause of a 5xx in ri (may be nil) for the request log,
// and returns the status.
func writeError(ri *reqInfo, w http.ResponseWriter, err error) int {
	p := problemFor(err)
	if p.cause != nil && ri != nil {
		ri.cause = p.cause
	}
	h := w.Header()
	setProblemHeaders(h.Set, p)
	h.Set("Content-Type", "application/problem+json")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
	return p.Status
}
