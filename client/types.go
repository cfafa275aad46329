package client

import (
	"encoding/json"
	"time"
)

// Plans of an organization. Organization tokens need PlanTeam or
// PlanEnterprise.
const (
	PlanFree       = "free"
	PlanTeam       = "team"
	PlanEnterprise = "enterprise"
)

// Roles of a member in an organization.
const (
	RoleAdmin  = "admin"
	RoleMember = "member"
)

// Permissions an organization token may carry.
const (
	PermissionScan       = "scan"        // submit analyses
	PermissionBrowse     = "browse"      // read and search projects and analyses
	PermissionProvision  = "provision"   // create projects inside the token's scope
	PermissionSelfRotate = "self_rotate" // rotate its own secret
)

// Token kinds.
const (
	KindOrg      = "org"      // belongs to an organization; secret "sot_…"
	KindPersonal = "personal" // belongs to a user; secret "sotu_…"
)

// Token states, for listing an organization's tokens.
const (
	StateActive  = "active"
	StateExpired = "expired"
	StateRevoked = "revoked"
	StateAll     = "all"
)

// TokenPolicy is an organization's rule for the lifetime of its tokens.
type TokenPolicy struct {
	// MaxLifetimeDays bounds a new token's lifetime (default 365).
	MaxLifetimeDays int `json:"max_lifetime_days"`
	// AllowNonExpiring permits tokens without an expiry (default false).
	AllowNonExpiring bool `json:"allow_non_expiring"`
	// IdleWarningDays, when positive, flags tokens unused that long.
	IdleWarningDays int `json:"idle_warning_days"`
}

// Org is an organization: the owner of projects and organization tokens.
type Org struct {
	Key         string      `json:"key"`
	Name        string      `json:"name"`
	Description string      `json:"description"`
	Plan        string      `json:"plan"`
	TokenPolicy TokenPolicy `json:"token_policy"`
	CreatedAt   time.Time   `json:"created_at"`
	UpdatedAt   time.Time   `json:"updated_at"`
}

// CreateOrgRequest is the body of CreateOrg. Empty fields take the
// server's defaults: the key as name, the free plan, the default policy.
type CreateOrgRequest struct {
	Key         string       `json:"key"`
	Name        string       `json:"name,omitempty"`
	Description string       `json:"description,omitempty"`
	Plan        string       `json:"plan,omitempty"`
	TokenPolicy *TokenPolicy `json:"token_policy,omitempty"`
}

// OrgUpdate is a partial update of an organization: nil fields are kept.
// Changing the plan is for instance admins.
type OrgUpdate struct {
	Name        *string      `json:"name,omitempty"`
	Description *string      `json:"description,omitempty"`
	Plan        *string      `json:"plan,omitempty"`
	TokenPolicy *TokenPolicy `json:"token_policy,omitempty"`
}

// Project belongs to one organization; its key is unique there.
type Project struct {
	Org       string    `json:"org"`
	Key       string    `json:"key"`
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// CreateProjectRequest is the body of CreateProject. An empty Name means
// the key.
type CreateProjectRequest struct {
	Key  string `json:"key"`
	Name string `json:"name,omitempty"`
}

// User is a person, or the instance's bootstrap admin.
type User struct {
	ID        int64     `json:"id,omitempty"`
	Login     string    `json:"login"`
	Name      string    `json:"name"`
	Admin     bool      `json:"admin"`
	CreatedAt time.Time `json:"created_at,omitzero"`
}

// CreateUserRequest is the body of CreateUser.
type CreateUserRequest struct {
	Login    string `json:"login"`
	Name     string `json:"name,omitempty"`
	Password string `json:"password"`
	Admin    bool   `json:"admin,omitempty"`
}

// Membership is a user's role in an organization.
type Membership struct {
	Org       string    `json:"org"`
	Login     string    `json:"login,omitempty"`
	Name      string    `json:"name,omitempty"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"created_at,omitzero"`
}

// Scope says which projects of its organization an organization token
// covers: all of them (AllProjects, alone), or explicit Projects and RE2
// Patterns matched against the whole key, so that a project created later
// that matches is covered at once.
type Scope struct {
	AllProjects bool     `json:"all_projects,omitempty"`
	Projects    []string `json:"projects,omitempty"`
	Patterns    []string `json:"patterns,omitempty"`
}

// UserRef names a user.
type UserRef struct {
	ID    int64  `json:"id"`
	Login string `json:"login"`
}

// Rotation is a token's rotation schedule: the server rotates it every
// Every (such as "30d"), keeps the old secret valid for GracePeriod (such as
// "24h"), and sends the new secret in a signed token.rotated webhook
// delivery. In a TokenUpdate, an empty Every removes the schedule.
type Rotation struct {
	Every       string `json:"every"`
	GracePeriod string `json:"grace_period,omitempty"`
}

// Token is an organization or personal token. It never holds the secret.
type Token struct {
	ID int64 `json:"id"`
	// Org is the organization of an organization token; "" for a personal
	// token.
	Org         string `json:"org,omitempty"`
	Name        string `json:"name"`
	Description string `json:"description"`
	// Kind is KindOrg or KindPersonal.
	Kind string `json:"kind"`
	// Scope is the scope of an organization token; nil for a personal
	// token. Lists leave out the explicit projects: see ProjectCount.
	Scope *Scope `json:"scope"`
	// ProjectCount is the number of explicit projects in the scope.
	ProjectCount int      `json:"project_count"`
	Permissions  []string `json:"permissions"`
	// Hint shows the secret's start and end ("sot_…a1b2"), to recognise it.
	Hint string `json:"hint"`
	// Source is "api" for a token made by a user, "oidc" for one minted by
	// an OIDC exchange.
	Source string `json:"source,omitempty"`
	// State is StateActive, StateExpired or StateRevoked.
	State        string     `json:"state"`
	CreatedBy    UserRef    `json:"created_by"`
	CreatedAt    time.Time  `json:"created_at"`
	ExpiresAt    *time.Time `json:"expires_at"`
	LastUsedAt   *time.Time `json:"last_used_at"`
	LastUsedIP   *string    `json:"last_used_ip"`
	RevokedAt    *time.Time `json:"revoked_at"`
	AllowedCIDRs []string   `json:"allowed_cidrs"`
	// Rotation is the token's rotation schedule, or nil for none.
	Rotation *Rotation `json:"rotation"`
	// NextRotationAt is when the schedule next rotates the token.
	NextRotationAt *time.Time `json:"next_rotation_at"`
	// RotatedAt is when the token was last rotated.
	RotatedAt *time.Time `json:"rotated_at"`
	// PreviousSecretExpiresAt is, while the secret replaced by the last
	// rotation still works, when it stops.
	PreviousSecretExpiresAt *time.Time `json:"previous_secret_expires_at"`
	// TrustPolicyID and OIDC are set on a token minted by an OIDC
	// exchange (Source "oidc"): the trust policy and the CI identity.
	TrustPolicyID *int64        `json:"trust_policy_id,omitempty"`
	OIDC          *OIDCIdentity `json:"oidc,omitempty"`
}

// NewToken is a token with its secret, as returned once by creation and
// rotation.
type NewToken struct {
	Token  Token  `json:"token"`
	Secret string `json:"secret"`
}

// Expiry says when a new token expires: exactly one of In (a lifetime such
// as "30d", "90d" or "1y"), At, or Never (when the organization's policy
// allows it).
type Expiry struct {
	In    string
	At    time.Time
	Never bool
}

// expiryFields is Expiry's wire form, flattened into create requests.
type expiryFields struct {
	ExpiresIn    string     `json:"expires_in,omitempty"`
	ExpiresAt    *time.Time `json:"expires_at,omitempty"`
	NeverExpires bool       `json:"never_expires,omitempty"`
}

func (e Expiry) fields() expiryFields {
	f := expiryFields{ExpiresIn: e.In, NeverExpires: e.Never}
	if !e.At.IsZero() {
		at := e.At.UTC()
		f.ExpiresAt = &at
	}
	return f
}

// CreateTokenRequest is the body of CreateToken.
type CreateTokenRequest struct {
	Name         string
	Description  string
	Scope        Scope
	Permissions  []string
	Expiry       Expiry
	AllowedCIDRs []string
	Rotation     *Rotation
}

// MarshalJSON writes the request in the API's form, with the expiry
// flattened into expires_in, expires_at or never_expires.
func (r CreateTokenRequest) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Name         string    `json:"name"`
		Description  string    `json:"description,omitempty"`
		Scope        Scope     `json:"scope"`
		Permissions  []string  `json:"permissions"`
		AllowedCIDRs []string  `json:"allowed_cidrs,omitempty"`
		Rotation     *Rotation `json:"rotation,omitempty"`
		expiryFields
	}{r.Name, r.Description, r.Scope, r.Permissions, r.AllowedCIDRs, r.Rotation, r.Expiry.fields()})
}

// CreatePersonalTokenRequest is the body of CreatePersonalToken and
// CreateUserToken.
type CreatePersonalTokenRequest struct {
	Name   string
	Expiry Expiry
}

// MarshalJSON writes the request in the API's form.
func (r CreatePersonalTokenRequest) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Name string `json:"name"`
		expiryFields
	}{r.Name, r.Expiry.fields()})
}

// TokenUpdate is a partial update of an organization token: nil fields are
// kept. It takes effect at once.
type TokenUpdate struct {
	Name         *string   `json:"name,omitempty"`
	Description  *string   `json:"description,omitempty"`
	Scope        *Scope    `json:"scope,omitempty"`
	Permissions  []string  `json:"permissions,omitempty"`
	AllowedCIDRs *[]string `json:"allowed_cidrs,omitempty"`
	Rotation     *Rotation `json:"rotation,omitempty"`
}

// ScopePreview is how many projects a scope covers now, with the first
// page of them.
type ScopePreview struct {
	Count int       `json:"count"`
	Items []Project `json:"items"`
}

// Me is the caller as the server sees it: a user with their memberships,
// or an organization token with its organization. Type says which.
type Me struct {
	// Type is "user" or "org_token".
	Type        string       `json:"type"`
	User        *User        `json:"user,omitempty"`
	Memberships []Membership `json:"memberships,omitempty"`
	Token       *Token       `json:"token,omitempty"`
	Org         *Org         `json:"org,omitempty"`
}

// Actor is who did something.
type Actor struct {
	// Type is "user", "org_token", "personal_token" or "system".
	Type string `json:"type"`
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

// AuditEvent is one entry of an organization's audit log. It never holds a
// secret.
type AuditEvent struct {
	ID      int64          `json:"id"`
	At      time.Time      `json:"at"`
	Org     string         `json:"org,omitempty"`
	Actor   Actor          `json:"actor"`
	Action  string         `json:"action"`
	Target  string         `json:"target"`
	IP      string         `json:"ip"`
	Details map[string]any `json:"details"`
}

// Analysis is one uploaded analysis report of a project.
type Analysis struct {
	ID          int64     `json:"id"`
	Org         string    `json:"org"`
	Project     string    `json:"project"`
	Branch      string    `json:"branch"`
	Commit      string    `json:"commit"`
	Size        int64     `json:"size"`
	SHA256      string    `json:"sha256"`
	CreatedAt   time.Time `json:"created_at"`
	SubmittedBy Actor     `json:"submitted_by"`
}

// SonarOrganization is an organization as the SonarQube Cloud
// compatibility API lists it.
type SonarOrganization struct {
	Key         string `json:"key"`
	Name        string `json:"name"`
	Description string `json:"description"`
}

// SonarPaging is the paging block of a SonarQube-style list.
type SonarPaging struct {
	PageIndex int `json:"pageIndex"`
	PageSize  int `json:"pageSize"`
	Total     int `json:"total"`
}

// SonarOrganizations is the response of SearchOrganizations.
type SonarOrganizations struct {
	Paging        SonarPaging         `json:"paging"`
	Organizations []SonarOrganization `json:"organizations"`
}
