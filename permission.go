package sot

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Permission is one thing a principal may do on an organization's projects.
// The first four can be granted to organization tokens; the last two exist
// only for users, so that every decision goes through Principal.Authorize.
type Permission uint8

// Permissions. The order is fixed: it is the bit layout of PermissionSet.
const (
	PermissionScan       Permission = iota // submit analyses
	PermissionBrowse                       // read and search projects and analyses
	PermissionProvision                    // create projects inside the token's scope
	PermissionSelfRotate                   // rotate its own secret
	PermissionOrgRead                      // see the organization itself (users and its tokens)
	PermissionOrgAdmin                     // administer the organization (users only)
	numPermissions
)

// TokenPermissions lists the permissions an organization token may carry,
// in display order.
var TokenPermissions = [...]Permission{PermissionScan, PermissionBrowse, PermissionProvision, PermissionSelfRotate}

var permissionNames = [numPermissions]string{"scan", "browse", "provision", "self_rotate", "org_read", "org_admin"}

// String returns the permission's wire name.
func (p Permission) String() string {
	if p < numPermissions {
		return permissionNames[p]
	}
	return fmt.Sprintf("permission(%d)", uint8(p))
}

// Grantable reports whether p may be given to an organization token.
func (p Permission) Grantable() bool { return p <= PermissionSelfRotate }

// ParsePermission parses the wire name of a grantable permission.
func ParsePermission(s string) (Permission, error) {
	for _, p := range TokenPermissions {
		if permissionNames[p] == s {
			return p, nil
		}
	}
	return 0, fmt.Errorf("unknown permission %q (want one of scan, browse, provision, self_rotate)", s)
}

// PermissionSet is a set of permissions as a bit mask: testing membership
// costs one AND, which keeps the check path free of allocation.
type PermissionSet uint8

// NewPermissionSet returns the set of the given permissions.
func NewPermissionSet(perms ...Permission) PermissionSet {
	var s PermissionSet
	for _, p := range perms {
		s |= 1 << p
	}
	return s
}

// Has reports whether p is in the set.
func (s PermissionSet) Has(p Permission) bool { return s&(1<<p) != 0 }

// List returns the permissions of the set in display order.
func (s PermissionSet) List() []Permission {
	var out []Permission
	for p := Permission(0); p < numPermissions; p++ {
		if s.Has(p) {
			out = append(out, p)
		}
	}
	return out
}

// Strings returns the wire names of the set, in display order.
func (s PermissionSet) Strings() []string {
	out := []string{}
	for _, p := range s.List() {
		out = append(out, p.String())
	}
	return out
}

// String returns the wire names joined by commas.
func (s PermissionSet) String() string { return strings.Join(s.Strings(), ",") }

// ParsePermissionSet parses a list of wire names. It refuses unknown names,
// non-grantable permissions and an empty list, naming the offending index.
func ParsePermissionSet(names []string) (PermissionSet, error) {
	if len(names) == 0 {
		return 0, Invalid("at least one permission is required",
			FieldError{Field: "permissions", Message: "at least one permission is required"})
	}
	var s PermissionSet
	var fields []FieldError
	for i, n := range names {
		p, err := ParsePermission(n)
		if err != nil {
			fields = append(fields, FieldError{Field: fmt.Sprintf("permissions[%d]", i), Message: err.Error()})
			continue
		}
		s |= 1 << p
	}
	if fields != nil {
		return 0, Invalid("invalid permissions", fields...)
	}
	return s, nil
}

// MarshalJSON encodes the set as a list of wire names.
func (s PermissionSet) MarshalJSON() ([]byte, error) { return json.Marshal(s.Strings()) }

// UnmarshalJSON decodes a list of wire names.
func (s *PermissionSet) UnmarshalJSON(b []byte) error {
	var names []string
	if err := json.Unmarshal(b, &names); err != nil {
		return err
	}
	v, err := ParsePermissionSet(names)
	if err != nil {
		return err
	}
	*s = v
	return nil
}
