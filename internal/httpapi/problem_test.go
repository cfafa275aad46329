package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/danielgtaylor/huma/v2"

	"github.com/sot-dev/sot"
)

func TestProblemFor(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    error
		status int
		slug   string
		detail string
	}{
		{"invalid", sot.Invalid("bad scope", sot.FieldError{Field: "scope", Message: "x"}), 400, "validation", "bad scope"},
		{"unauthenticated", sot.Errorf(sot.EUNAUTHENTICATED, "token expired"), 401, "unauthenticated", "token expired"},
		{"forbidden", sot.ErrForbidden, 403, "forbidden", "forbidden"},
		{"not found", sot.Errorf(sot.ENOTFOUND, "organization not found"), 404, "not-found", "organization not found"},
		{"conflict", sot.ErrConflict, 409, "conflict", "already exists"},
		{"plan", sot.ErrPlanRequired, 403, "plan-required", sot.ErrPlanRequired.Message},
		{"policy", sot.Errorf(sot.EPOLICY, "max 365 days"), 400, "policy-violation", "max 365 days"},
		{"too large", sot.Errorf(sot.ETOOLARGE, "too big"), 413, "too-large", "too big"},
		{"rate limited", sot.Errorf(sot.ERATELIMITED, "slow down"), 429, "rate-limited", "slow down"},
		{"wrapped", fmt.Errorf("create: %w", sot.ErrConflict), 409, "conflict", "already exists"},
		{"internal hides the cause", sot.Internal(errors.New("disk on fire")), 500, "internal", "internal error"},
		{"plain error hides the cause", errors.New("pq: password authentication failed"), 500, "internal", "internal error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := problemFor(tc.err)
			if p.Status != tc.status || p.Type != "/problems/"+tc.slug || p.Detail != tc.detail {
				t.Fatalf("problem = %+v; want %d /problems/%s %q", p, tc.status, tc.slug, tc.detail)
			}
			if tc.status == 500 && p.cause == nil {
				t.Fatal("a 500 lost its cause")
			}
		})
	}
}

func TestHumaErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		errs   []error
		want   int
		slug   string
		field  string
	}{
		{"validation is 400, not 422", http.StatusUnprocessableEntity, []error{&huma.ErrorDetail{Location: "body.scope.patterns[0]", Message: "bad"}}, 400, "validation", "scope.patterns[0]"},
		{"parameter keeps its location", http.StatusUnprocessableEntity, []error{&huma.ErrorDetail{Location: "query.page_size", Message: "too big"}}, 400, "validation", "query.page_size"},
		{"broken JSON", http.StatusBadRequest, []error{&huma.ErrorDetail{Location: "body", Message: "unexpected EOF"}}, 400, "validation", ""},
		{"unknown content type", http.StatusUnsupportedMediaType, nil, 400, "validation", ""},
		{"body too large", http.StatusRequestEntityTooLarge, nil, 413, "too-large", ""},
		{"handler error", http.StatusInternalServerError, []error{sot.ErrNotFound}, 404, "not-found", ""},
		{"unexpected", http.StatusInternalServerError, []error{errors.New("boom"), errors.New("bang")}, 500, "internal", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := huma.NewError(tc.status, "msg", tc.errs...).(*problem)
			if p.Status != tc.want || p.Type != "/problems/"+tc.slug {
				t.Fatalf("problem = %+v; want %d %s", p, tc.want, tc.slug)
			}
			if tc.field != "" && (len(p.Errors) == 0 || p.Errors[0].Field != tc.field) {
				t.Fatalf("errors = %+v; want field %q", p.Errors, tc.field)
			}
			if p.Status == 500 && (len(p.Errors) != 0 || p.Detail != "internal error") {
				t.Fatalf("a 500 shows details: %+v", p)
			}
		})
	}
}
