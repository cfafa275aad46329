package sot

import (
	"context"
	"io"
	"net/netip"
	"time"
)

// The services below are implemented by internal/store over SQLite and
// PostgreSQL. They do no authorization: the edges (HTTP API, web UI) decide
// with Principal.Authorize before calling them. Every method that changes
// state writes an audit event, with the actor from ActorFrom(ctx), in the
// same transaction as the change, and publishes a Change after commit when
// the change can affect authentication. Every query on organization data is
// filtered by organization key, so an ID from another organization is
// ENOTFOUND. Lists are keyset-paginated and return the next page token ("" on
// the last page).

// UserService manages users.
type UserService interface {
	// CreateUser stores u with the given password hash ("" for none) and sets
	// u.ID and u.CreatedAt. ECONFLICT when the login exists.
	CreateUser(ctx context.Context, u *User, passwordHash string) error
	// FindUserByLogin returns the user, or ENOTFOUND.
	FindUserByLogin(ctx context.Context, login string) (*User, error)
	// FindUserByID returns the user, or ENOTFOUND.
	FindUserByID(ctx context.Context, id int64) (*User, error)
	// ListUsers lists users by ID.
	ListUsers(ctx context.Context, page Page) ([]*User, string, error)
	// PasswordHash returns the user and the stored password hash for login,
	// or ENOTFOUND.
	PasswordHash(ctx context.Context, login string) (*User, string, error)
	// CountUsers returns how many users exist (0 on a fresh instance).
	CountUsers(ctx context.Context) (int, error)
}

// OrgUpdate is a partial update of an organization; nil fields are kept.
type OrgUpdate struct {
	Name        *string
	Description *string
	Plan        *Plan
	TokenPolicy *TokenPolicy
}

// OrgFilter selects organizations.
type OrgFilter struct {
	// MemberID, when non-zero, keeps the organizations the user belongs to.
	MemberID int64
	// Keys, when non-empty, keeps these keys only.
	Keys []string
}

// OrgService manages organizations and their memberships.
type OrgService interface {
	// CreateOrg stores org (with DefaultTokenPolicy when its policy is zero)
	// and makes the user adminID its admin. ECONFLICT for a duplicate key.
	CreateOrg(ctx context.Context, org *Org, adminID int64) error
	// FindOrg returns the organization by key, or ENOTFOUND.
	FindOrg(ctx context.Context, key string) (*Org, error)
	// ListOrgs lists organizations by key.
	ListOrgs(ctx context.Context, filter OrgFilter, page Page) ([]*Org, string, error)
	// CountOrgs returns how many organizations filter selects.
	CountOrgs(ctx context.Context, filter OrgFilter) (int, error)
	// UpdateOrg applies upd and returns the result; a plan or policy change
	// publishes ChangeOrg.
	UpdateOrg(ctx context.Context, key string, upd OrgUpdate) (*Org, error)

	// ListMembers lists the organization's members by login.
	ListMembers(ctx context.Context, org string, page Page) ([]*Membership, string, error)
	// SetMember adds the user login to org with role, or changes their role.
	// It reports whether the membership was created. ENOTFOUND for an
	// unknown user or organization.
	SetMember(ctx context.Context, org, login string, role Role) (*Membership, bool, error)
	// RemoveMember removes login from org; ENOTFOUND if not a member.
	// Refuses (EINVALID) to remove the last admin.
	RemoveMember(ctx context.Context, org, login string) error
	// UserMemberships returns all memberships of a user.
	UserMemberships(ctx context.Context, userID int64) ([]*Membership, error)
}

// ProjectFilter selects projects of one organization.
type ProjectFilter struct {
	// Query keeps projects whose key or name contains it (case-insensitive).
	Query string
	// Match, when non-nil, keeps the projects whose key it accepts (a
	// token's compiled scope).
	Match func(key string) bool
	// TokenID, when non-zero, keeps the explicit projects of that token.
	TokenID int64
}

// ProjectService manages projects.
type ProjectService interface {
	// CreateProject stores p (p.Org, p.Key, p.Name) and sets ID and CreatedAt.
	// ECONFLICT for a duplicate key, ENOTFOUND for an unknown organization.
	CreateProject(ctx context.Context, p *Project) error
	// FindProject returns the project, or ENOTFOUND.
	FindProject(ctx context.Context, org, key string) (*Project, error)
	// ListProjects lists the organization's projects by key.
	ListProjects(ctx context.Context, org string, filter ProjectFilter, page Page) ([]*Project, string, error)
	// CountProjects counts the projects filter selects.
	CountProjects(ctx context.Context, org string, filter ProjectFilter) (int, error)
	// DeleteProject deletes the project, its analyses and its place in
	// token scopes; publishes ChangeProject.
	DeleteProject(ctx context.Context, org, key string) error
}

// TokenOwner names whose tokens a call is about: an organization's
// (Org set) or a user's personal ones (UserID set).
type TokenOwner struct {
	Org    string
	UserID int64
}

// TokenFilter selects tokens.
type TokenFilter struct {
	State TokenState // "" means active
	Now   time.Time  // the time that decides expired/active
	// ExpiringWithin is the horizon of TokenStateExpiring;
	// DefaultExpiringWithin when 0.
	ExpiringWithin time.Duration
}

// TokenUpdate is a partial update of an organization token; nil fields are kept.
type TokenUpdate struct {
	Name         *string
	Description  *string
	Scope        *Scope
	Permissions  *PermissionSet
	AllowedCIDRs *[]netip.Prefix
}

// TokenUse is one use of a token, for the batched last-used write.
type TokenUse struct {
	TokenID int64
	At      time.Time
	IP      string
}

// TokenService manages tokens. Secrets never reach it: only their hashes.
type TokenService interface {
	// CreateToken stores t with the hash of its secret and sets ID and
	// CreatedAt. For an organization token, every key in t.Scope.Projects
	// must exist in t.Org: EINVALID listing the unknown keys otherwise.
	CreateToken(ctx context.Context, t *Token, hash SecretHash) error
	// FindToken returns a token of owner, with its full scope, or ENOTFOUND.
	FindToken(ctx context.Context, owner TokenOwner, id int64) (*Token, error)
	// ListTokens lists owner's tokens, newest first. Listed tokens carry
	// ProjectCount but not the explicit project keys.
	ListTokens(ctx context.Context, owner TokenOwner, filter TokenFilter, page Page) ([]*Token, string, error)
	// UpdateToken applies upd to an organization token (validating explicit
	// keys like CreateToken) and publishes ChangeToken.
	UpdateToken(ctx context.Context, owner TokenOwner, id int64, upd TokenUpdate) (*Token, error)
	// RevokeToken marks the token revoked at now (idempotent) and publishes
	// ChangeToken.
	RevokeToken(ctx context.Context, owner TokenOwner, id int64, now time.Time) (*Token, error)

	// TokenBySecretHash returns the token one of whose secrets has hash,
	// without its explicit project keys, or ENOTFOUND. Revoked and expired
	// tokens, and secrets replaced by a rotation (with SecretExpiresAt
	// set), are returned too: the caller decides with its clock and audits.
	TokenBySecretHash(ctx context.Context, hash SecretHash) (*Token, error)
	// TokenProjectKeys returns the explicit project keys of a token.
	TokenProjectKeys(ctx context.Context, tokenID int64) ([]string, error)
	// RecordTokenUses writes the last use of each token in one transaction,
	// keeping the latest time per token.
	RecordTokenUses(ctx context.Context, uses []TokenUse) error
}

// AuditFilter selects audit events.
type AuditFilter struct {
	Action string // exact action, or "" for all
	Target string // exact target, or "" for all
}

// AuditService reads the audit log and records events that are not part of
// a state change (failed authentication).
type AuditService interface {
	// RecordEvent stores ev (setting ID and At when zero).
	RecordEvent(ctx context.Context, ev *AuditEvent) error
	// ListEvents lists an organization's events ("" for instance events),
	// newest first.
	ListEvents(ctx context.Context, org string, filter AuditFilter, page Page) ([]*AuditEvent, string, error)
}

// AnalysisService stores analysis reports.
type AnalysisService interface {
	// CreateAnalysis reads the report from r (at most limit bytes: ETOOLARGE
	// beyond), computes its size and SHA-256, and commits report and
	// metadata before returning. It sets a's ID, Size, SHA256 and CreatedAt.
	CreateAnalysis(ctx context.Context, a *Analysis, r io.Reader, limit int64) error
	// FindAnalysis returns an analysis of the project, or ENOTFOUND.
	FindAnalysis(ctx context.Context, org, project string, id int64) (*Analysis, error)
	// ListAnalyses lists a project's analyses, newest first.
	ListAnalyses(ctx context.Context, org, project string, page Page) ([]*Analysis, string, error)
	// OpenReport returns the report bytes of an analysis.
	OpenReport(ctx context.Context, org, project string, id int64) (io.ReadCloser, error)
}

// ChangeBus carries Change events between the stores that publish them and
// the caches that must forget what changed, within one process or, on
// PostgreSQL, across replicas.
type ChangeBus interface {
	// Subscribe calls fn for every change published after the call, from any
	// replica, until ctx is done. fn must be quick and must not block.
	Subscribe(ctx context.Context, fn func(Change))
}

// Authenticator turns credentials into principals. It is the check hot path:
// implementations parse the secret first (no I/O for a malformed one), cache
// principals, and forget them when a Change says so.
type Authenticator interface {
	// AuthenticateSecret returns the principal of a token secret used from
	// client address ip. EUNAUTHENTICATED (message "token expired", "token
	// revoked", "unknown token", "malformed token") for a bad credential;
	// EPLAN for an organization token of a free organization; EFORBIDDEN
	// when ip is outside the token's allowed networks.
	AuthenticateSecret(ctx context.Context, secret string, ip netip.Addr) (*Principal, error)
	// UserPrincipal returns the principal of a logged-in user (web session).
	UserPrincipal(ctx context.Context, userID int64) (*Principal, error)
}

// TrustPolicyService manages trust policies and the tokens they mint. The
// edges validate policies (ValidateTrustPolicy) and verify ID tokens before
// calling it.
type TrustPolicyService interface {
	// CreateTrustPolicy stores p and sets ID, CreatedAt and UpdatedAt.
	// ECONFLICT for a duplicate name in the organization, EINVALID listing
	// explicit scope projects that do not exist, ENOTFOUND for an unknown
	// organization.
	CreateTrustPolicy(ctx context.Context, p *TrustPolicy) error
	// FindTrustPolicy returns a policy of org, or ENOTFOUND.
	FindTrustPolicy(ctx context.Context, org string, id int64) (*TrustPolicy, error)
	// ListTrustPolicies lists org's policies by ID: the order in which an
	// exchange tries them.
	ListTrustPolicies(ctx context.Context, org string, page Page) ([]*TrustPolicy, string, error)
	// TrustPoliciesForIssuer returns all of org's policies for issuer, by
	// ID; none (and no error) for an unknown organization.
	TrustPoliciesForIssuer(ctx context.Context, org, issuer string) ([]*TrustPolicy, error)
	// UpdateTrustPolicy applies upd (validated by the caller on the
	// result) and returns the result. Tokens minted before keep what they
	// were minted with until they expire.
	UpdateTrustPolicy(ctx context.Context, org string, id int64, upd TrustPolicyUpdate) (*TrustPolicy, error)
	// DeleteTrustPolicy deletes the policy, revokes the live tokens it
	// minted (at now) and publishes ChangeToken for each. It returns how
	// many tokens it revoked.
	DeleteTrustPolicy(ctx context.Context, org string, id int64, now time.Time) (int, error)
	// CreateOIDCToken stores a token minted by an OIDC exchange (t.Source
	// "oidc", t.TrustPolicyID and t.OIDC set) with the hash of its secret,
	// and audits token.exchanged. Explicit scope projects deleted since the
	// policy was written are left out. ENOTFOUND when the policy was
	// deleted meanwhile.
	CreateOIDCToken(ctx context.Context, t *Token, hash SecretHash) error
}

// IDTokenVerifier verifies OIDC ID tokens of the issuers the operator
// trusts.
type IDTokenVerifier interface {
	// Trusts reports whether the operator allows issuer.
	Trusts(issuer string) bool
	// Verify checks raw's signature against its issuer's keys and its
	// iss, exp, nbf and iat claims (not aud: policies say which audience
	// they accept). EUNAUTHENTICATED with a user-safe reason otherwise.
	Verify(ctx context.Context, raw string) (*IDToken, error)
}
