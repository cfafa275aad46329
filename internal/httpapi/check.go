package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/danielgtaylor/huma/v2"

	"github.com/sot-dev/sot"
)

// checkPath is the path of the check endpoint, served before routing.
const (
	checkPath  = "/api/v1/check"
	checkRoute = "GET " + checkPath
)

// PathTemplate extracts the organization and the project from a request
// URI forwarded by a reverse proxy. Segments are literals, "{org}",
// "{project}", "*" (any one segment), or a final "..." (any rest).
type PathTemplate struct {
	segs []string
	rest bool // ends in "..."
}

// ParsePathTemplate parses a check path template such as
// "/{org}/{project}/..." or "/api/{org}/projects/{project}/*". It must name
// {org}; {project} is optional (organization-level checks).
func ParsePathTemplate(s string) (*PathTemplate, error) {
	if !strings.HasPrefix(s, "/") {
		return nil, errors.New("must start with /")
	}
	t := &PathTemplate{segs: strings.Split(s[1:], "/")}
	if n := len(t.segs); t.segs[n-1] == "..." {
		t.rest = true
		t.segs = t.segs[:n-1]
	}
	var org, project int
	for _, seg := range t.segs {
		switch {
		case seg == "{org}":
			org++
		case seg == "{project}":
			project++
		case seg == "...":
			return nil, errors.New(`"..." may only end the template`)
		case strings.ContainsAny(seg, "{}"):
			return nil, fmt.Errorf("unknown placeholder %q (want {org} or {project})", seg)
		}
	}
	if org != 1 || project > 1 {
		return nil, errors.New("must hold {org} once and {project} at most once")
	}
	return t, nil
}

// match returns the organization and project of uri (a request URI, with
// or without query), and whether it matches. It does not allocate.
func (t *PathTemplate) match(uri string) (org, project string, ok bool) {
	if i := strings.IndexAny(uri, "?#"); i >= 0 {
		uri = uri[:i]
	}
	if !strings.HasPrefix(uri, "/") {
		return "", "", false
	}
	rest := uri[1:]
	for _, seg := range t.segs {
		if rest == "" {
			return "", "", false
		}
		var part string
		part, rest, _ = strings.Cut(rest, "/")
		switch seg {
		case "{org}":
			org = part
		case "{project}":
			project = part
		case "*":
		default:
			if part != seg {
				return "", "", false
			}
		}
	}
	if rest != "" && !t.rest {
		return "", "", false
	}
	return org, project, org != ""
}

var (
	errCheckOrg      = sot.Invalid("org is required", sot.FieldError{Field: "query.org", Message: "required"})
	errCheckTemplate = sot.Invalid("X-Forwarded-Uri does not match the check path template", sot.FieldError{Field: "header.X-Forwarded-Uri", Message: "does not match the template"})
)

// serveCheck is GET /api/v1/check, the authorization check for reverse
// proxies and other services: 204 allowed, 401 bad credential, 403 not
// allowed. It is the hot path: ServeHTTP calls it before any routing, and
// it uses no huma, no JSON and no allocation of its own when the answer is
// yes. It returns the status it wrote.
func (a *API) serveCheck(w http.ResponseWriter, r *http.Request, ri *reqInfo) int {
	raw := r.URL.RawQuery
	org, project := queryValue(raw, "org"), queryValue(raw, "project")
	if a.check != nil && org == "" {
		if uri := r.Header.Get("X-Forwarded-Uri"); uri != "" {
			var ok bool
			if org, project, ok = a.check.match(uri); !ok {
				return writeError(ri, w, errCheckTemplate)
			}
		}
	}
	if org == "" {
		return writeError(ri, w, errCheckOrg)
	}
	perm := sot.PermissionScan
	if s := queryValue(raw, "permission"); s != "" {
		p, err := sot.ParsePermission(s)
		if err != nil {
			return writeError(ri, w, sot.Invalid(err.Error(), sot.FieldError{Field: "query.permission", Message: err.Error()}))
		}
		perm = p
	}
	secret, ok := credential(r.Header.Get("Authorization"))
	if !ok {
		a.metrics.authOutcome("missing")
		return writeError(ri, w, errAuthRequired)
	}
	p, err := a.authSecret(r.Context(), secret, ri.ip)
	if err == nil {
		ri.principal = p
		err = p.Authorize(perm, org, project)
	}
	switch sot.ErrorCode(err) {
	case "":
		// An allowed check is a bare 204 for a proxy or a service. The
		// browser security headers set around the API protect no content
		// here, and writing them costs a fifth of the request's CPU
		// (measured with sot bench); refusals keep them.
		clear(w.Header())
		w.WriteHeader(http.StatusNoContent)
		return http.StatusNoContent
	case sot.ENOTFOUND:
		// The check speaks 204, 401 and 403 only: an organization the
		// caller cannot see is simply not allowed.
		return writeError(ri, w, &sot.Error{Code: sot.EFORBIDDEN, Message: sot.ErrorMessage(err)})
	}
	return writeError(ri, w, err)
}

// queryValue returns the first value of key in the raw query, without the
// allocations of url.Values (none unless the value is escaped).
func queryValue(raw, key string) string {
	for raw != "" {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(kv, "=")
		if k != key {
			continue
		}
		if strings.ContainsAny(v, "%+") {
			if u, err := url.QueryUnescape(v); err == nil {
				return u
			}
			return ""
		}
		return v
	}
	return ""
}

// documentCheck adds the check endpoint, served outside huma, to the
// OpenAPI document.
func (a *API) documentCheck() {
	param := func(name, doc string) *huma.Param {
		return &huma.Param{Name: name, In: "query", Description: doc, Schema: &huma.Schema{Type: "string"}}
	}
	a.huma.OpenAPI().AddOperation(&huma.Operation{
		OperationID: "check",
		Method:      http.MethodGet,
		Path:        checkPath,
		Summary:     "Check whether the credential may act on a project",
		Description: "For reverse proxies (nginx auth_request, Traefik ForwardAuth) and other services. " +
			"Without org, and with a check path template configured, org and project are read from X-Forwarded-Uri.",
		Tags: []string{"Authorization check"},
		Parameters: []*huma.Param{
			param("org", "Organization key."),
			param("project", "Project key; empty for the organization itself."),
			param("permission", "scan (default), browse, provision or self_rotate."),
			{Name: "X-Forwarded-Uri", In: "header", Description: "The original request URI, matched against the check path template.", Schema: &huma.Schema{Type: "string"}},
		},
		Responses: map[string]*huma.Response{
			"204": {Description: "Allowed."},
			"400": {Description: "No organization, or an unknown permission."},
			"401": {Description: "Missing, malformed, unknown, expired or revoked credential."},
			"403": {Description: "Authenticated but not allowed; the detail says why."},
		},
	})
	a.huma.OpenAPI().AddOperation(&huma.Operation{
		OperationID: "sonar-server-version",
		Method:      http.MethodGet,
		Path:        "/api/server/version",
		Summary:     "Server version (text/plain)",
		Tags:        []string{"SonarQube compatibility"},
		Security:    []map[string][]string{},
		Responses: map[string]*huma.Response{"200": {
			Description: "The version.",
			Content:     map[string]*huma.MediaType{"text/plain": {Schema: &huma.Schema{Type: "string"}}},
		}},
	})
}
