package httpapi

import (
	"net/http"
	"net/netip"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/sot-dev/sot"
)

// The JSON shapes of the API, as written in the contract (API.md).

type userJSON struct {
	ID        int64     `json:"id"`
	Login     string    `json:"login"`
	Name      string    `json:"name"`
	Admin     bool      `json:"admin"`
	CreatedAt time.Time `json:"created_at"`
}

func toUser(u *sot.User) userJSON {
	return userJSON{ID: u.ID, Login: u.Login, Name: u.Name, Admin: u.Admin, CreatedAt: u.CreatedAt}
}

type policyJSON struct {
	MaxLifetimeDays  int  `json:"max_lifetime_days"`
	AllowNonExpiring bool `json:"allow_non_expiring"`
	IdleWarningDays  int  `json:"idle_warning_days"`
}

type orgJSON struct {
	Key         string     `json:"key"`
	Name        string     `json:"name"`
	Description string     `json:"description"`
	Plan        string     `json:"plan" enum:"free,team,enterprise"`
	TokenPolicy policyJSON `json:"token_policy"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   time.Time  `json:"updated_at"`
}

func toOrg(o *sot.Org) orgJSON {
	return orgJSON{
		Key: o.Key, Name: o.Name, Description: o.Description, Plan: string(o.Plan),
		TokenPolicy: policyJSON{
			MaxLifetimeDays:  o.TokenPolicy.MaxLifetimeDays,
			AllowNonExpiring: o.TokenPolicy.AllowNonExpiring,
			IdleWarningDays:  o.TokenPolicy.IdleWarningDays,
		},
		CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt,
	}
}

type projectJSON struct {
	Org       string    `json:"org"`
	Key       string    `json:"key"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

func toProject(p *sot.Project) projectJSON {
	return projectJSON{Org: p.Org, Key: p.Key, Name: p.Name, CreatedAt: p.CreatedAt}
}

type memberJSON struct {
	Org       string    `json:"org"`
	Login     string    `json:"login"`
	Name      string    `json:"name"`
	Role      string    `json:"role" enum:"admin,member"`
	CreatedAt time.Time `json:"created_at"`
}

func toMember(m *sot.Membership) memberJSON {
	return memberJSON{Org: m.Org, Login: m.Login, Name: m.Name, Role: string(m.Role), CreatedAt: m.CreatedAt}
}

// scopeJSON is a token scope, in requests and responses.
type scopeJSON struct {
	AllProjects bool     `json:"all_projects,omitempty" doc:"Every current and future project; excludes projects and patterns."`
	Projects    []string `json:"projects,omitempty" doc:"Explicit project keys (they must exist); up to 100,000."`
	Patterns    []string `json:"patterns,omitempty" doc:"RE2 regular expressions matched against the whole project key; up to 50."`
}

func (s scopeJSON) scope() sot.Scope {
	return sot.Scope{AllProjects: s.AllProjects, Projects: s.Projects, Patterns: s.Patterns}
}

type userRefJSON struct {
	ID    int64  `json:"id"`
	Login string `json:"login"`
}

type tokenJSON struct {
	ID          int64      `json:"id"`
	Org         *string    `json:"org" doc:"The organization of an organization token; null for a personal token."`
	Name        string     `json:"name"`
	Description string     `json:"description"`
	Kind        string     `json:"kind" enum:"org,personal"`
	Scope       *scopeJSON `json:"scope" doc:"The scope of an organization token (lists omit explicit projects: see project_count); null for a personal token."`
	// ProjectCount is the number of explicit projects in the scope.
	ProjectCount int         `json:"project_count"`
	Permissions  []string    `json:"permissions"`
	Hint         string      `json:"hint" example:"sot_…a1b2"`
	Source       string      `json:"source"`
	State        string      `json:"state" enum:"active,expired,revoked"`
	CreatedBy    userRefJSON `json:"created_by"`
	CreatedAt    time.Time   `json:"created_at"`
	ExpiresAt    *time.Time  `json:"expires_at"`
	LastUsedAt   *time.Time  `json:"last_used_at"`
	LastUsedIP   *string     `json:"last_used_ip"`
	RevokedAt    *time.Time  `json:"revoked_at"`
	AllowedCIDRs []string    `json:"allowed_cidrs"`
	// Rotation fields (additions to the contract's token object).
	Rotation                *rotationJSON `json:"rotation" doc:"The rotation schedule; null for none."`
	NextRotationAt          *time.Time    `json:"next_rotation_at" doc:"When the schedule next rotates the token."`
	RotatedAt               *time.Time    `json:"rotated_at" doc:"When the token was last rotated."`
	PreviousSecretExpiresAt *time.Time    `json:"previous_secret_expires_at" doc:"While the secret replaced by the last rotation still works: when it stops."`
	// OIDC fields (additions): the trust policy and CI identity of a token
	// minted by an OIDC exchange (source "oidc").
	TrustPolicyID *int64            `json:"trust_policy_id,omitempty" doc:"The trust policy that minted the token (source oidc)."`
	OIDC          *oidcIdentityJSON `json:"oidc,omitempty" doc:"The CI identity the token was minted for (source oidc)."`
}

func toToken(t *sot.Token, now time.Time) tokenJSON {
	out := tokenJSON{
		ID: t.ID, Name: t.Name, Description: t.Description, Kind: string(t.Kind),
		ProjectCount: t.ProjectCount, Permissions: t.Permissions.Strings(), Hint: t.Hint, Source: t.Source,
		State:     string(t.State(now)),
		CreatedBy: userRefJSON{ID: t.CreatedBy.ID, Login: t.CreatedBy.Login},
		CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt, LastUsedAt: t.LastUsedAt, RevokedAt: t.RevokedAt,
		AllowedCIDRs: cidrStrings(t.AllowedCIDRs),
		Rotation:     toRotation(t.Rotation), NextRotationAt: t.NextRotationAt, RotatedAt: t.RotatedAt,
	}
	if p := t.PreviousSecretExpiresAt; p != nil && now.Before(*p) {
		out.PreviousSecretExpiresAt = p
	}
	if t.Kind == sot.TokenKindOrg {
		org := t.Org
		out.Org = &org
		out.Scope = &scopeJSON{AllProjects: t.Scope.AllProjects, Projects: t.Scope.Projects, Patterns: t.Scope.Patterns}
		if out.ProjectCount == 0 {
			out.ProjectCount = len(t.Scope.Projects)
		}
	}
	if t.LastUsedIP != "" {
		ip := t.LastUsedIP
		out.LastUsedIP = &ip
	}
	if t.TrustPolicyID != 0 {
		id := t.TrustPolicyID
		out.TrustPolicyID = &id
	}
	if t.OIDC != nil {
		o := oidcIdentityJSON(*t.OIDC)
		out.OIDC = &o
	}
	return out
}

func cidrStrings(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

type actorJSON struct {
	Type string `json:"type" enum:"user,org_token,personal_token,system,anonymous"`
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

func toActor(a sot.Actor) actorJSON { return actorJSON{Type: string(a.Type), ID: a.ID, Name: a.Name} }

type auditJSON struct {
	ID      int64          `json:"id"`
	At      time.Time      `json:"at"`
	Org     string         `json:"org,omitempty"`
	Actor   actorJSON      `json:"actor"`
	Action  string         `json:"action"`
	Target  string         `json:"target"`
	IP      string         `json:"ip"`
	Details map[string]any `json:"details"`
}

func toAudit(e *sot.AuditEvent) auditJSON {
	d := e.Details
	if d == nil {
		d = map[string]any{}
	}
	return auditJSON{ID: e.ID, At: e.At, Org: e.Org, Actor: toActor(e.Actor), Action: e.Action, Target: e.Target, IP: e.Actor.IP, Details: d}
}

type analysisJSON struct {
	ID          int64     `json:"id"`
	Org         string    `json:"org"`
	Project     string    `json:"project"`
	Branch      string    `json:"branch"`
	Commit      string    `json:"commit"`
	Size        int64     `json:"size"`
	SHA256      string    `json:"sha256"`
	CreatedAt   time.Time `json:"created_at"`
	SubmittedBy actorJSON `json:"submitted_by"`
}

func toAnalysis(a *sot.Analysis) analysisJSON {
	return analysisJSON{ID: a.ID, Org: a.Org, Project: a.Project, Branch: a.Branch, Commit: a.Commit,
		Size: a.Size, SHA256: a.SHA256, CreatedAt: a.CreatedAt, SubmittedBy: toActor(a.SubmittedBy)}
}

// list is one page of a keyset-paginated list.
type list[T any] struct {
	Items         []T    `json:"items"`
	NextPageToken string `json:"next_page_token" doc:"Cursor of the next page; empty on the last page."`
}

type listOutput[T any] struct {
	Body list[T]
}

func listOf[S any, T any](items []S, next string, conv func(S) T) *listOutput[T] {
	out := make([]T, len(items))
	for i, it := range items {
		out[i] = conv(it)
	}
	return &listOutput[T]{Body: list[T]{Items: out, NextPageToken: next}}
}

// PageParams are the query parameters of every list. (Exported: huma
// reads embedded parameters only when their type is exported.)
type PageParams struct {
	PageSize  int    `query:"page_size" minimum:"1" maximum:"1000" default:"50" doc:"Items per page."`
	PageToken string `query:"page_token" maxLength:"1024" doc:"The next_page_token of the previous page."`
}

func (p PageParams) page() sot.Page { return sot.Page{Size: p.PageSize, Token: p.PageToken} }

type bodyOutput[T any] struct {
	Body T
}

// operation returns the description of an operation with the API's
// defaults: JSON bodies up to maxJSONBytes, authentication required.
func operation(method, path, id, tag, summary string, status int) huma.Operation {
	return huma.Operation{
		OperationID:   id,
		Method:        method,
		Path:          path,
		Summary:       summary,
		Tags:          []string{tag},
		DefaultStatus: status,
		MaxBodyBytes:  maxJSONBytes,
		Errors:        []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound},
		Metadata:      map[string]any{authKey: authRequired},
	}
}

// optionalAuth returns op for a caller that may send no credential, or a
// bad one.
func optionalAuth(op huma.Operation) huma.Operation {
	op.Metadata = map[string]any{authKey: authOptional}
	return op
}
