// Package sot is the domain of scoped organization tokens: organizations,
// projects, users, memberships, tokens with their scopes and permissions,
// and the one function that decides every authorization (Principal.Authorize).
//
// It imports only the standard library. Storage, HTTP, the web UI and the
// CLI live in their own packages and depend on this one, never the reverse.
package sot

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"
)

// Plan is an organization's subscription plan.
type Plan string

// Plans.
const (
	PlanFree       Plan = "free"
	PlanTeam       Plan = "team"
	PlanEnterprise Plan = "enterprise"
)

// Valid reports whether p is a known plan.
func (p Plan) Valid() bool { return p == PlanFree || p == PlanTeam || p == PlanEnterprise }

// AllowsOrgTokens reports whether the plan includes organization tokens.
func (p Plan) AllowsOrgTokens() bool { return p == PlanTeam || p == PlanEnterprise }

// Org is an organization: the owner of projects and organization tokens.
type Org struct {
	ID          int64
	Key         string // immutable
	Name        string
	Description string
	Plan        Plan
	TokenPolicy TokenPolicy
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Project belongs to one organization; its key is unique there.
type Project struct {
	ID        int64
	Org       string // organization key
	Key       string
	Name      string
	CreatedAt time.Time
}

// User is a person (or the bootstrap admin). Admin users administer the
// instance: users and organizations.
type User struct {
	ID        int64
	Login     string
	Name      string
	Admin     bool
	CreatedAt time.Time
}

// Role is a user's role in an organization.
type Role string

// Roles.
const (
	RoleAdmin  Role = "admin"
	RoleMember Role = "member"
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r == RoleAdmin || r == RoleMember }

// Membership is a user's role in an organization.
type Membership struct {
	Org       string // organization key
	UserID    int64
	Login     string
	Name      string
	Role      Role
	CreatedAt time.Time
}

// Analysis is one uploaded analysis report of a project.
type Analysis struct {
	ID          int64
	Org         string
	Project     string
	Branch      string
	Commit      string
	Size        int64
	SHA256      string // hex
	CreatedAt   time.Time
	SubmittedBy Actor
}

// ActorType says what kind of principal did something.
type ActorType string

// Actor types, as written in audit events.
const (
	ActorUser          ActorType = "user"
	ActorOrgToken      ActorType = "org_token"
	ActorPersonalToken ActorType = "personal_token"
	ActorSystem        ActorType = "system"
	ActorAnonymous     ActorType = "anonymous"
)

// Actor is who did something, as recorded in the audit log.
type Actor struct {
	Type ActorType
	ID   int64
	Name string
	IP   string // client address, without port
}

type actorKey struct{}

// WithActor returns a context that carries the actor of a request. Stores
// read it to write audit events in the same transaction as the change.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns the actor carried by ctx, or the system actor.
func ActorFrom(ctx context.Context) Actor {
	if a, ok := ctx.Value(actorKey{}).(Actor); ok {
		return a
	}
	return Actor{Type: ActorSystem, Name: "system"}
}

// AuditEvent is one entry of an organization's (or the instance's) audit
// log. Details never hold a secret or a hash.
type AuditEvent struct {
	ID      int64
	At      time.Time
	Org     string // organization key; "" for instance-level events
	Actor   Actor
	Action  string
	Target  string
	Details map[string]any
}

// Audit actions.
const (
	ActionOrgCreated        = "org.created"
	ActionOrgUpdated        = "org.updated"
	ActionUserCreated       = "user.created"
	ActionMemberAdded       = "member.added"
	ActionMemberRemoved     = "member.removed"
	ActionMemberRoleChanged = "member.role_changed"
	ActionProjectCreated    = "project.created"
	ActionProjectDeleted    = "project.deleted"
	ActionTokenCreated      = "token.created"
	ActionTokenUpdated      = "token.updated"
	ActionTokenRevoked      = "token.revoked"
	ActionTokenRotated      = "token.rotated"
	ActionTokenExpiredUse   = "token.expired_use"
	ActionTokenLeaked       = "token.leaked"
	ActionAnalysisSubmitted = "analysis.submitted"
	ActionAuthFailed        = "auth.failed"
)

// Page asks for one page of a keyset-paginated list.
type Page struct {
	Size  int    // 1..MaxPageSize; 0 means DefaultPageSize
	Token string // opaque cursor from the previous page; "" for the first
}

// Page sizes.
const (
	DefaultPageSize = 50
	MaxPageSize     = 1000
)

// Limit returns the page size to use.
func (p Page) Limit() int {
	switch {
	case p.Size <= 0:
		return DefaultPageSize
	case p.Size > MaxPageSize:
		return MaxPageSize
	}
	return p.Size
}

// ChangeKind names what changed, for cache invalidation.
type ChangeKind string

// Change kinds.
const (
	ChangeToken   ChangeKind = "token"   // a token's state, scope, permissions, CIDRs or secrets
	ChangeMember  ChangeKind = "member"  // a membership of UserID in Org
	ChangeOrg     ChangeKind = "org"     // plan or policy of Org
	ChangeProject ChangeKind = "project" // a project of Org was deleted
	ChangeUser    ChangeKind = "user"    // a user was changed
	ChangeAll     ChangeKind = "all"     // anything may have changed (missed events)
)

// Change is an event that may invalidate cached authentication state.
type Change struct {
	Kind    ChangeKind
	Org     string
	TokenID int64
	UserID  int64
}

// ValidText reports whether s may be stored as a key, name or any other
// text of sot: valid UTF-8 holding no NUL. PostgreSQL refuses both in text
// columns, so the edges check every input with this before storage sees it.
func ValidText(s string) bool { return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 }
