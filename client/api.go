package client

import (
	"context"
	"fmt"
	"io"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Instance

// CreateUser creates a user. Instance admins only.
func (c *Client) CreateUser(ctx context.Context, req CreateUserRequest) (*User, error) {
	var u User
	if err := c.do(ctx, http.MethodPost, "/api/v1/users", nil, req, &u); err != nil {
		return nil, err
	}
	return &u, nil
}

// Users lists the instance's users. Instance admins only.
func (c *Client) Users(ctx context.Context) iter.Seq2[User, error] {
	return list[User](ctx, c, "/api/v1/users", nil)
}

// CreateUserToken makes a personal token for the user login, as the
// instance admin does to bootstrap users and automation.
func (c *Client) CreateUserToken(ctx context.Context, login string, req CreatePersonalTokenRequest) (*NewToken, error) {
	var t NewToken
	if err := c.do(ctx, http.MethodPost, "/api/v1/users/"+seg(login)+"/tokens", nil, req, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// CreateOrg creates an organization; the caller becomes its admin.
// Instance admins only.
func (c *Client) CreateOrg(ctx context.Context, req CreateOrgRequest) (*Org, error) {
	var o Org
	if err := c.do(ctx, http.MethodPost, "/api/v1/orgs", nil, req, &o); err != nil {
		return nil, err
	}
	return &o, nil
}

// Orgs lists the organizations the caller can see: for an organization
// token, exactly its own.
func (c *Client) Orgs(ctx context.Context) iter.Seq2[Org, error] {
	return list[Org](ctx, c, "/api/v1/orgs", nil)
}

// Self

// Me returns the caller: a user with their memberships, or an
// organization token with its organization.
func (c *Client) Me(ctx context.Context) (*Me, error) {
	var m Me
	if err := c.do(ctx, http.MethodGet, "/api/v1/me", nil, nil, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// PersonalTokens lists the caller's personal tokens.
func (c *Client) PersonalTokens(ctx context.Context) iter.Seq2[Token, error] {
	return list[Token](ctx, c, "/api/v1/user/tokens", nil)
}

// CreatePersonalToken creates a personal token for the caller. The secret
// is in the result, once.
func (c *Client) CreatePersonalToken(ctx context.Context, req CreatePersonalTokenRequest) (*NewToken, error) {
	var t NewToken
	if err := c.do(ctx, http.MethodPost, "/api/v1/user/tokens", nil, req, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// DeletePersonalToken revokes one of the caller's personal tokens.
func (c *Client) DeletePersonalToken(ctx context.Context, id int64) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/user/tokens/"+strconv.FormatInt(id, 10), nil, nil, nil)
}

// rotateRequest is the body of the rotate endpoints.
type rotateRequest struct {
	GracePeriod string `json:"grace_period,omitempty"`
}

// RotateSelf gives the calling organization token a new secret; the old
// one keeps working for grace (a duration such as "24h"; "" for none). It
// needs the self_rotate permission. Use the returned secret from now on.
func (c *Client) RotateSelf(ctx context.Context, grace string) (*NewToken, error) {
	var t NewToken
	if err := c.do(ctx, http.MethodPost, "/api/v1/tokens/self/rotate", nil, rotateRequest{grace}, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// RotatePersonalToken gives one of the caller's personal tokens a new
// secret; the old one keeps working for grace ("" for none).
func (c *Client) RotatePersonalToken(ctx context.Context, id int64, grace string) (*NewToken, error) {
	var t NewToken
	if err := c.do(ctx, http.MethodPost, "/api/v1/user/tokens/"+strconv.FormatInt(id, 10)+"/rotate", nil, rotateRequest{grace}, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// Organization

func orgPath(org string) string { return "/api/v1/orgs/" + seg(org) }

// Org returns an organization, for any member or token of it.
func (c *Client) Org(ctx context.Context, org string) (*Org, error) {
	var o Org
	if err := c.do(ctx, http.MethodGet, orgPath(org), nil, nil, &o); err != nil {
		return nil, err
	}
	return &o, nil
}

// UpdateOrg changes an organization's name, plan (instance admins) or token
// policy, and returns the result. Org admins only.
func (c *Client) UpdateOrg(ctx context.Context, org string, upd OrgUpdate) (*Org, error) {
	var o Org
	if err := c.do(ctx, http.MethodPatch, orgPath(org), nil, upd, &o); err != nil {
		return nil, err
	}
	return &o, nil
}

// Members lists an organization's members.
func (c *Client) Members(ctx context.Context, org string) iter.Seq2[Membership, error] {
	return list[Membership](ctx, c, orgPath(org)+"/members", nil)
}

// SetMember adds the user login to the organization with role, or changes
// their role.
func (c *Client) SetMember(ctx context.Context, org, login, role string) (*Membership, error) {
	var m Membership
	body := struct {
		Role string `json:"role"`
	}{role}
	if err := c.do(ctx, http.MethodPut, orgPath(org)+"/members/"+seg(login), nil, body, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// RemoveMember removes the user login from the organization. Their
// personal tokens lose the organization at once.
func (c *Client) RemoveMember(ctx context.Context, org, login string) error {
	return c.do(ctx, http.MethodDelete, orgPath(org)+"/members/"+seg(login), nil, nil, nil)
}

// Projects lists an organization's projects whose key or name contains
// query ("" for all). A token with browse sees only the projects in its
// scope.
func (c *Client) Projects(ctx context.Context, org, query string) iter.Seq2[Project, error] {
	q := url.Values{}
	if query != "" {
		q.Set("q", query)
	}
	return list[Project](ctx, c, orgPath(org)+"/projects", q)
}

// CreateProject creates a project: org admins, or tokens with provision
// whose scope covers the key.
func (c *Client) CreateProject(ctx context.Context, org string, req CreateProjectRequest) (*Project, error) {
	var p Project
	if err := c.do(ctx, http.MethodPost, orgPath(org)+"/projects", nil, req, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// Project returns one project.
func (c *Client) Project(ctx context.Context, org, project string) (*Project, error) {
	var p Project
	if err := c.do(ctx, http.MethodGet, orgPath(org)+"/projects/"+seg(project), nil, nil, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// DeleteProject deletes a project.
func (c *Client) DeleteProject(ctx context.Context, org, project string) error {
	return c.do(ctx, http.MethodDelete, orgPath(org)+"/projects/"+seg(project), nil, nil, nil)
}

func tokenPath(org string, id int64) string {
	return orgPath(org) + "/tokens/" + strconv.FormatInt(id, 10)
}

// CreateToken creates an organization token. The secret is in the result,
// once: store it where the pipeline reads it.
func (c *Client) CreateToken(ctx context.Context, org string, req CreateTokenRequest) (*NewToken, error) {
	var t NewToken
	if err := c.do(ctx, http.MethodPost, orgPath(org)+"/tokens", nil, req, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// Tokens lists an organization's tokens in state (StateActive,
// StateExpired, StateRevoked, StateAll; "" means active).
func (c *Client) Tokens(ctx context.Context, org, state string) iter.Seq2[Token, error] {
	q := url.Values{}
	if state != "" {
		q.Set("state", state)
	}
	return list[Token](ctx, c, orgPath(org)+"/tokens", q)
}

// Token returns one organization token.
func (c *Client) Token(ctx context.Context, org string, id int64) (*Token, error) {
	var t Token
	if err := c.do(ctx, http.MethodGet, tokenPath(org, id), nil, nil, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// UpdateToken changes a token's name, description, scope, permissions or
// network allowlist; it takes effect at once.
func (c *Client) UpdateToken(ctx context.Context, org string, id int64, upd TokenUpdate) (*Token, error) {
	var t Token
	if err := c.do(ctx, http.MethodPatch, tokenPath(org, id), nil, upd, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// RevokeToken revokes a token at once. It stays listed, with RevokedAt.
func (c *Client) RevokeToken(ctx context.Context, org string, id int64) error {
	return c.do(ctx, http.MethodDelete, tokenPath(org, id), nil, nil, nil)
}

// RotateToken gives a token a new secret; the old one keeps working for
// grace (a duration such as "24h"; "" for none).
func (c *Client) RotateToken(ctx context.Context, org string, id int64, grace string) (*NewToken, error) {
	var t NewToken
	if err := c.do(ctx, http.MethodPost, tokenPath(org, id)+"/rotate", nil, rotateRequest{grace}, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// TokenProjects lists the projects a token covers now.
func (c *Client) TokenProjects(ctx context.Context, org string, id int64) iter.Seq2[Project, error] {
	return list[Project](ctx, c, tokenPath(org, id)+"/projects", nil)
}

// PreviewScope returns how many of the organization's projects scope
// covers now, with the first of them.
func (c *Client) PreviewScope(ctx context.Context, org string, scope Scope) (*ScopePreview, error) {
	var p ScopePreview
	body := struct {
		Scope Scope `json:"scope"`
	}{scope}
	if err := c.do(ctx, http.MethodPost, orgPath(org)+"/scope-preview", nil, body, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// Audit lists an organization's audit events, newest first, with the given
// action only ("" for all).
func (c *Client) Audit(ctx context.Context, org, action string) iter.Seq2[AuditEvent, error] {
	q := url.Values{}
	if action != "" {
		q.Set("action", action)
	}
	return list[AuditEvent](ctx, c, orgPath(org)+"/audit", q)
}

// Scans

func analysesPath(org, project string) string {
	return orgPath(org) + "/projects/" + seg(project) + "/analyses"
}

// UploadOptions describe an analysis report being uploaded.
type UploadOptions struct {
	Branch string
	Commit string
	// Size is the report's length in bytes when known (for example from a
	// file's Stat); it lets the server refuse an oversized report before
	// reading it. Zero means unknown.
	Size int64
}

// Upload submits an analysis report of a project, streaming it from r
// without holding it in memory. It needs the scan permission (or, for a
// user, membership of the organization).
func (c *Client) Upload(ctx context.Context, org, project string, r io.Reader, opts UploadOptions) (*Analysis, error) {
	q := url.Values{}
	if opts.Branch != "" {
		q.Set("branch", opts.Branch)
	}
	if opts.Commit != "" {
		q.Set("commit", opts.Commit)
	}
	req, err := c.newRequest(ctx, http.MethodPost, analysesPath(org, project), q, r)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	if opts.Size > 0 {
		req.ContentLength = opts.Size
	}
	var a Analysis
	if err := c.send(req, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// Analyses lists a project's analyses. It needs browse.
func (c *Client) Analyses(ctx context.Context, org, project string) iter.Seq2[Analysis, error] {
	return list[Analysis](ctx, c, analysesPath(org, project), nil)
}

// Analysis returns one analysis. It needs browse.
func (c *Client) Analysis(ctx context.Context, org, project string, id int64) (*Analysis, error) {
	var a Analysis
	if err := c.do(ctx, http.MethodGet, analysesPath(org, project)+"/"+strconv.FormatInt(id, 10), nil, nil, &a); err != nil {
		return nil, err
	}
	return &a, nil
}

// AnalysisReport opens the uploaded report of an analysis. The caller must
// close it. It needs browse.
func (c *Client) AnalysisReport(ctx context.Context, org, project string, id int64) (io.ReadCloser, error) {
	req, err := c.newRequest(ctx, http.MethodGet, analysesPath(org, project)+"/"+strconv.FormatInt(id, 10)+"/report", nil, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("client: GET %s: %w", req.URL.Path, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, decodeError(resp)
	}
	return resp.Body, nil
}

// Authorization check

// Check asks whether the client's credential may use permission on the
// project: (true, nil) when allowed, (false, nil) when the credential is
// valid but not allowed, and an *Error with Status 401 when the credential
// itself is bad (missing, unknown, expired or revoked). An empty permission
// means scan.
func (c *Client) Check(ctx context.Context, org, project, permission string) (bool, error) {
	err := c.Authorize(ctx, org, project, permission)
	switch {
	case err == nil:
		return true, nil
	case IsForbidden(err):
		return false, nil
	}
	return false, err
}

// Authorize is Check with the server's reason: nil when allowed, an *Error
// with Status 403 whose Detail names the missing permission or says that
// the project is outside the token's scope, or one with Status 401 for a
// bad credential.
func (c *Client) Authorize(ctx context.Context, org, project, permission string) error {
	q := url.Values{"org": {org}, "project": {project}}
	if permission != "" {
		q.Set("permission", permission)
	}
	return c.do(ctx, http.MethodGet, "/api/v1/check", q, nil, nil)
}

// SonarQube Cloud compatibility

// ValidateAuthentication reports whether the server accepts the client's
// credential, as SonarQube's /api/authentication/validate does.
func (c *Client) ValidateAuthentication(ctx context.Context) (bool, error) {
	var v struct {
		Valid bool `json:"valid"`
	}
	if err := c.do(ctx, http.MethodGet, "/api/authentication/validate", nil, nil, &v); err != nil {
		return false, err
	}
	return v.Valid, nil
}

// SonarOrgSearch is the query of SearchOrganizations.
type SonarOrgSearch struct {
	// Member keeps the caller's organizations: for an organization token,
	// exactly its own.
	Member bool
	// Organizations keeps these keys only.
	Organizations []string
	// Page is 1-based; PageSize is at most 500. Zero means the server's
	// default.
	Page, PageSize int
}

// SearchOrganizations lists organizations as SonarQube Cloud's
// /api/organizations/search does, which is what CI plugins call to verify
// a service connection and to offer an organization pick-list.
func (c *Client) SearchOrganizations(ctx context.Context, s SonarOrgSearch) (*SonarOrganizations, error) {
	q := url.Values{}
	if s.Member {
		q.Set("member", "true")
	}
	if len(s.Organizations) > 0 {
		q.Set("organizations", strings.Join(s.Organizations, ","))
	}
	if s.Page > 0 {
		q.Set("p", strconv.Itoa(s.Page))
	}
	if s.PageSize > 0 {
		q.Set("ps", strconv.Itoa(s.PageSize))
	}
	var out SonarOrganizations
	if err := c.do(ctx, http.MethodGet, "/api/organizations/search", q, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ServerVersion returns the server's version string.
func (c *Client) ServerVersion(ctx context.Context) (string, error) {
	req, err := c.newRequest(ctx, http.MethodGet, "/api/server/version", nil, nil)
	if err != nil {
		return "", err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("client: GET %s: %w", req.URL.Path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", decodeError(resp)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1024))
	if err != nil {
		return "", fmt.Errorf("client: reading version: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// Operations

// Ready returns nil when the server is up and its storage reachable
// (GET /readyz answers 200).
func (c *Client) Ready(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/readyz", nil, nil, nil)
}

// Leaked secrets

// RevokeSecrets revokes every valid secret in secrets, with no other
// credential (holding a secret proves the right to revoke it), and returns
// how many were revoked. Use it when secrets have leaked.
func (c *Client) RevokeSecrets(ctx context.Context, secrets []string) (int, error) {
	var out struct {
		Revoked int `json:"revoked"`
	}
	body := struct {
		Secrets []string `json:"secrets"`
	}{secrets}
	if err := c.do(ctx, http.MethodPost, "/api/v1/tokens/revoke", nil, body, &out); err != nil {
		return 0, err
	}
	return out.Revoked, nil
}
