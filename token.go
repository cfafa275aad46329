package sot

import (
	"fmt"
	"net/netip"
	"time"
)

// TokenKind says whom a token belongs to.
type TokenKind string

// Token kinds.
const (
	TokenKindOrg      TokenKind = "org"      // belongs to an organization; secret "sot_…"
	TokenKindPersonal TokenKind = "personal" // belongs to a user; secret "sotu_…"
)

func (k TokenKind) secretPrefix() string {
	if k == TokenKindPersonal {
		return PersonalTokenPrefix
	}
	return OrgTokenPrefix
}

// Token sources.
const (
	TokenSourceAPI  = "api"  // created by a user
	TokenSourceOIDC = "oidc" // minted by an OIDC exchange
)

// MaxAllowedCIDRs bounds a token's network allowlist.
const MaxAllowedCIDRs = 100

// Token is an organization token or a personal token. It never holds its
// secret; storage keeps only the secret's SHA-256.
type Token struct {
	ID          int64
	Kind        TokenKind
	Org         string // organization key (organization tokens)
	UserID      int64  // owner (personal tokens)
	Name        string
	Description string
	// Scope and Permissions apply to organization tokens only; a personal
	// token acts as its user's current memberships.
	Scope        Scope
	Permissions  PermissionSet
	AllowedCIDRs []netip.Prefix
	Hint         string
	Source       string
	CreatedBy    UserRef
	CreatedAt    time.Time
	ExpiresAt    *time.Time
	LastUsedAt   *time.Time
	LastUsedIP   string
	RevokedAt    *time.Time
	// ProjectCount is len(Scope.Projects), kept so lists can show it
	// without loading a large scope.
	ProjectCount int
	// Rotation is the token's rotation schedule, if any, and
	// NextRotationAt when it next rotates.
	Rotation       *TokenRotation
	NextRotationAt *time.Time
	// RotatedAt is the time of the last rotation.
	RotatedAt *time.Time
	// PreviousSecretExpiresAt is when the secret replaced by the last
	// rotation stops working (the end of its grace period).
	PreviousSecretExpiresAt *time.Time
	// SecretExpiresAt is set by TokenService.TokenBySecretHash: the end
	// of the grace period of the secret looked up, nil for the current
	// secret. Authentication compares it with its clock.
	SecretExpiresAt *time.Time
	// TrustPolicyID is the trust policy that minted the token (Source
	// "oidc"); 0 otherwise.
	TrustPolicyID int64
	// OIDC is the CI identity an OIDC exchange minted the token for; nil
	// for other tokens.
	OIDC *OIDCIdentity
}

// UserRef names a user.
type UserRef struct {
	ID    int64
	Login string
}

// TokenState is where a token is in its life.
type TokenState string

// Token states, as used by list filters.
const (
	TokenStateActive  TokenState = "active"
	TokenStateExpired TokenState = "expired"
	TokenStateRevoked TokenState = "revoked"
	TokenStateAll     TokenState = "all"
	// TokenStateExpiring is a list filter only: live tokens that expire
	// soon (TokenFilter.ExpiringWithin).
	TokenStateExpiring TokenState = "expiring"
)

// DefaultExpiringWithin is the horizon of the "expiring" filter.
const DefaultExpiringWithin = 30 * Day

// Valid reports whether s is a known state filter.
func (s TokenState) Valid() bool {
	switch s {
	case TokenStateActive, TokenStateExpired, TokenStateRevoked, TokenStateAll, TokenStateExpiring:
		return true
	}
	return false
}

// State returns the token's state at now.
func (t *Token) State(now time.Time) TokenState {
	switch {
	case t.RevokedAt != nil:
		return TokenStateRevoked
	case t.ExpiresAt != nil && !now.Before(*t.ExpiresAt):
		return TokenStateExpired
	}
	return TokenStateActive
}

// AllowsIP reports whether the client address ip may use the token.
// An empty allowlist allows every address.
func (t *Token) AllowsIP(ip netip.Addr) bool {
	if len(t.AllowedCIDRs) == 0 {
		return true
	}
	ip = ip.Unmap()
	for _, p := range t.AllowedCIDRs {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// ParseCIDRs parses an allowlist of CIDR prefixes (IPv4 or IPv6), naming
// the offending index under field.
func ParseCIDRs(field string, in []string) ([]netip.Prefix, error) {
	if len(in) > MaxAllowedCIDRs {
		return nil, Invalid("too many allowed_cidrs", FieldError{Field: field, Message: "at most 100 entries"})
	}
	out := make([]netip.Prefix, 0, len(in))
	var fields []FieldError
	for i, s := range in {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			// A bare address means a single host.
			if a, aerr := netip.ParseAddr(s); aerr == nil {
				p = netip.PrefixFrom(a, a.BitLen())
			} else {
				fields = append(fields, FieldError{Field: fieldIndex(field, i), Message: "invalid CIDR"})
				continue
			}
		}
		out = append(out, p.Masked())
	}
	if fields != nil {
		return nil, Invalid("invalid allowed_cidrs", fields...)
	}
	return out, nil
}

// TokenRequest is what a caller asks for when creating a token; both edges
// (API and web UI) build one and call Prepare, so the rules live in one place.
type TokenRequest struct {
	Name         string
	Description  string
	Scope        Scope         // organization tokens
	Permissions  PermissionSet // organization tokens
	Expiry       Expiry
	AllowedCIDRs []netip.Prefix
}

// Limits of token fields.
const (
	MaxTokenNameLen        = 200
	MaxTokenDescriptionLen = 2000
)

// ValidateTokenName checks a token name under field.
func ValidateTokenName(field, name string) error {
	if name == "" || len(name) > MaxTokenNameLen {
		return Invalid("invalid name", FieldError{Field: field, Message: fmt.Sprintf("must be 1 to %d characters", MaxTokenNameLen)})
	}
	return nil
}

// PrepareOrgToken validates req for organization org, created by creator at
// now, and returns the token to store and its secret (to show once). It
// checks the plan (EPLAN), the scope's shape (not that explicit projects
// exist: the store does), the permissions, and the expiry under the
// organization's policy (EPOLICY).
func PrepareOrgToken(org *Org, creator UserRef, req TokenRequest, now time.Time) (*Token, string, error) {
	if !org.Plan.AllowsOrgTokens() {
		return nil, "", ErrPlanRequired
	}
	if err := ValidateTokenName("name", req.Name); err != nil {
		return nil, "", err
	}
	if len(req.Description) > MaxTokenDescriptionLen {
		return nil, "", Invalid("description too long", FieldError{Field: "description", Message: fmt.Sprintf("at most %d characters", MaxTokenDescriptionLen)})
	}
	if err := req.Scope.Validate("scope"); err != nil {
		return nil, "", err
	}
	if req.Permissions == 0 {
		return nil, "", Invalid("at least one permission is required", FieldError{Field: "permissions", Message: "at least one permission is required"})
	}
	for _, p := range req.Permissions.List() {
		if !p.Grantable() {
			return nil, "", Invalid("invalid permissions", FieldError{Field: "permissions", Message: p.String() + " cannot be granted to a token"})
		}
	}
	expires, err := req.Expiry.Resolve(now, org.TokenPolicy)
	if err != nil {
		return nil, "", err
	}
	secret := NewSecret(TokenKindOrg)
	t := &Token{
		Kind:         TokenKindOrg,
		Org:          org.Key,
		Name:         req.Name,
		Description:  req.Description,
		Scope:        req.Scope,
		Permissions:  req.Permissions,
		AllowedCIDRs: req.AllowedCIDRs,
		Hint:         SecretHint(secret),
		Source:       TokenSourceAPI,
		CreatedBy:    creator,
		CreatedAt:    now.UTC().Truncate(time.Second),
		ExpiresAt:    expires,
		ProjectCount: len(req.Scope.Projects),
	}
	return t, secret, nil
}

// PreparePersonalToken validates req for a personal token of user, made by
// creator at now, under policy, and returns the token and its secret.
// Scope and permissions of req are ignored: a personal token acts as its
// user.
func PreparePersonalToken(user *User, creator UserRef, req TokenRequest, policy TokenPolicy, now time.Time) (*Token, string, error) {
	if err := ValidateTokenName("name", req.Name); err != nil {
		return nil, "", err
	}
	expires, err := req.Expiry.Resolve(now, policy)
	if err != nil {
		return nil, "", err
	}
	secret := NewSecret(TokenKindPersonal)
	t := &Token{
		Kind:      TokenKindPersonal,
		UserID:    user.ID,
		Name:      req.Name,
		Hint:      SecretHint(secret),
		Source:    TokenSourceAPI,
		CreatedBy: creator,
		CreatedAt: now.UTC().Truncate(time.Second),
		ExpiresAt: expires,
	}
	return t, secret, nil
}
