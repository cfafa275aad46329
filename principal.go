package sot

import "net/netip"

// PrincipalKind says how a caller authenticated.
type PrincipalKind uint8

// Principal kinds.
const (
	PrincipalUser          PrincipalKind = iota + 1 // a web session
	PrincipalPersonalToken                          // a "sotu_" token acting as its user
	PrincipalOrgToken                               // a "sot_" token of an organization
)

// Principal is an authenticated caller and everything needed to decide what
// it may do, so that a cached Principal decides without I/O.
type Principal struct {
	Kind PrincipalKind
	// User is the user (PrincipalUser, PrincipalPersonalToken).
	User *User
	// Token is the token used (token kinds).
	Token *Token
	// Memberships maps organization keys to the user's current role.
	Memberships map[string]Role
	// OrgPlan is the plan of the token's organization (PrincipalOrgToken).
	OrgPlan Plan
	// Scope is the compiled scope of an organization token.
	Scope *ScopeMatcher
}

// Actor returns the principal as an audit actor with the client address ip.
func (p *Principal) Actor(ip string) Actor {
	switch p.Kind {
	case PrincipalOrgToken:
		return Actor{Type: ActorOrgToken, ID: p.Token.ID, Name: p.Token.Name, IP: ip}
	case PrincipalPersonalToken:
		return Actor{Type: ActorPersonalToken, ID: p.Token.ID, Name: p.User.Login, IP: ip}
	case PrincipalUser:
		return Actor{Type: ActorUser, ID: p.User.ID, Name: p.User.Login, IP: ip}
	}
	return Actor{Type: ActorAnonymous, IP: ip}
}

// IsInstanceAdmin reports whether the principal administers the instance.
// Organization tokens never do.
func (p *Principal) IsInstanceAdmin() bool {
	return p != nil && p.Kind != PrincipalOrgToken && p.User != nil && p.User.Admin
}

// UserID returns the acting user's ID, or 0 for an organization token.
func (p *Principal) UserID() int64 {
	if p == nil || p.Kind == PrincipalOrgToken || p.User == nil {
		return 0
	}
	return p.User.ID
}

// Authorization refusals. They are values, not formatted at run time, so an
// authorization decision never allocates.
var (
	errOrgNotFound      = &Error{Code: ENOTFOUND, Message: "organization not found"}
	errAdminRequired    = &Error{Code: EFORBIDDEN, Message: "this needs the admin role in the organization"}
	errTokenCannotAdmin = &Error{Code: EFORBIDDEN, Message: "organization tokens cannot administer anything"}
	errOutOfScope       = &Error{Code: EFORBIDDEN, Message: "the project is outside the token's scope"}
	errNoPrincipal      = &Error{Code: EUNAUTHENTICATED, Message: "authentication required"}
	errMissingPerm      = func() (out [numPermissions]*Error) {
		for p := range numPermissions {
			out[p] = &Error{Code: EFORBIDDEN, Message: "the token lacks the " + p.String() + " permission"}
		}
		return out
	}()
	errIPNotAllowed = &Error{Code: EFORBIDDEN, Message: "the client address is not in the token's allowed networks"}
)

// Authorize decides whether the principal may use perm in organization org
// on project (or on the organization itself when project is ""). It returns
// nil when allowed, or an *Error whose message names the missing permission
// or says the project is outside the token's scope:
//   - ENOTFOUND for an organization the principal cannot see;
//   - EPLAN for an organization token of an organization on the free plan;
//   - EFORBIDDEN otherwise.
//
// Every authorization decision in sot goes through this function. It does no
// I/O and no allocation.
func (p *Principal) Authorize(perm Permission, org, project string) error {
	if p == nil {
		return errNoPrincipal
	}
	switch p.Kind {
	case PrincipalOrgToken:
		if p.Token == nil || p.Token.Org != org {
			return errOrgNotFound
		}
		if !p.OrgPlan.AllowsOrgTokens() {
			return ErrPlanRequired
		}
		switch perm {
		case PermissionOrgAdmin:
			return errTokenCannotAdmin
		case PermissionOrgRead:
			return nil
		}
		if !p.Token.Permissions.Has(perm) {
			return errMissingPerm[perm]
		}
		if project != "" && !p.Scope.Match(project) {
			return errOutOfScope
		}
		return nil
	case PrincipalUser, PrincipalPersonalToken:
		if p.User == nil {
			return errNoPrincipal
		}
		role, member := p.Memberships[org]
		if p.User.Admin {
			return nil
		}
		if !member {
			return errOrgNotFound
		}
		switch perm {
		case PermissionOrgAdmin, PermissionProvision:
			if role != RoleAdmin {
				return errAdminRequired
			}
		}
		return nil
	}
	return errNoPrincipal
}

// CheckIP refuses a client address outside the token's allowed networks.
func (p *Principal) CheckIP(ip netip.Addr) error {
	if p == nil || p.Token == nil || p.Token.AllowsIP(ip) {
		return nil
	}
	return errIPNotAllowed
}
