package sot

import (
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
)

// Valid reports whether s is a known state filter.
func (s TokenState) Valid() bool {
	switch s {
	case TokenStateActive, TokenStateExpired, TokenStateRevoked, TokenStateAll:
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
