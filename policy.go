package sot

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Day is the unit of token lifetimes.
const Day = 24 * time.Hour

// TokenPolicy is an organization's rule for the lifetime of its tokens.
// Non-expiring tokens are an explicit decision of the organization's admins.
type TokenPolicy struct {
	// MaxLifetimeDays bounds expires_at - now at creation (and rotation).
	MaxLifetimeDays int
	// AllowNonExpiring permits never_expires.
	AllowNonExpiring bool
	// IdleWarningDays, when positive, warns about tokens unused that long.
	IdleWarningDays int
}

// DefaultTokenPolicy is the policy of a new organization: one year at most,
// no token without an expiry.
func DefaultTokenPolicy() TokenPolicy {
	return TokenPolicy{MaxLifetimeDays: 365, AllowNonExpiring: false}
}

// MaxPolicyLifetimeDays bounds MaxLifetimeDays itself (ten years).
const MaxPolicyLifetimeDays = 3650

// Validate checks the policy's values.
func (p TokenPolicy) Validate() error {
	var fields []FieldError
	if p.MaxLifetimeDays < 1 || p.MaxLifetimeDays > MaxPolicyLifetimeDays {
		fields = append(fields, FieldError{Field: "token_policy.max_lifetime_days",
			Message: fmt.Sprintf("must be between 1 and %d", MaxPolicyLifetimeDays)})
	}
	if p.IdleWarningDays < 0 || p.IdleWarningDays > MaxPolicyLifetimeDays {
		fields = append(fields, FieldError{Field: "token_policy.idle_warning_days",
			Message: fmt.Sprintf("must be between 0 and %d", MaxPolicyLifetimeDays)})
	}
	if fields != nil {
		return Invalid("invalid token policy", fields...)
	}
	return nil
}

// ParseLifetime parses a lifetime preset: "<n>d" (days, "7d", "30d", "90d")
// or "<n>y" (years of 365 days, "1y"). It returns the number of days.
func ParseLifetime(s string) (int, error) {
	if len(s) < 2 || len(s) > 8 {
		return 0, fmt.Errorf("invalid lifetime %q: want <n>d or <n>y, such as 30d or 1y", s)
	}
	unit := s[len(s)-1]
	n, err := strconv.Atoi(s[:len(s)-1])
	if err != nil || n < 1 || strings.HasPrefix(s, "+") || strings.HasPrefix(s, "0") {
		return 0, fmt.Errorf("invalid lifetime %q: want <n>d or <n>y, such as 30d or 1y", s)
	}
	switch unit {
	case 'd':
	case 'y':
		n *= 365
	default:
		return 0, fmt.Errorf("invalid lifetime %q: want <n>d or <n>y, such as 30d or 1y", s)
	}
	if n > 100*365 {
		return 0, fmt.Errorf("invalid lifetime %q: at most 100 years", s)
	}
	return n, nil
}

// Expiry is how a create request asks for an expiry: exactly one of In
// (a lifetime preset), At (a time) or Never.
type Expiry struct {
	In    string
	At    *time.Time
	Never bool
}

// Resolve returns the expiry time under policy, or nil for a non-expiring
// token. A request beyond the policy is EPOLICY with the limit in the
// message; a malformed one is EINVALID naming the field.
func (e Expiry) Resolve(now time.Time, policy TokenPolicy) (*time.Time, error) {
	n := 0
	if e.In != "" {
		n++
	}
	if e.At != nil {
		n++
	}
	if e.Never {
		n++
	}
	if n != 1 {
		return nil, Invalid("give exactly one of expires_in, expires_at or never_expires",
			FieldError{Field: "expires_in", Message: "give exactly one of expires_in, expires_at or never_expires"})
	}
	var at time.Time
	switch {
	case e.Never:
		if !policy.AllowNonExpiring {
			return nil, Errorf(EPOLICY, "the organization's token policy does not allow non-expiring tokens (maximum lifetime %d days)", policy.MaxLifetimeDays)
		}
		return nil, nil
	case e.In != "":
		days, err := ParseLifetime(e.In)
		if err != nil {
			return nil, Invalid(err.Error(), FieldError{Field: "expires_in", Message: err.Error()})
		}
		if days > policy.MaxLifetimeDays {
			return nil, Errorf(EPOLICY, "expiry of %d days exceeds the organization's token policy: maximum lifetime is %d days", days, policy.MaxLifetimeDays)
		}
		at = now.Add(time.Duration(days) * Day)
	default:
		at = e.At.UTC()
		if !at.After(now) {
			return nil, Invalid("expires_at must be in the future", FieldError{Field: "expires_at", Message: "must be in the future"})
		}
		// A date picked for "one year from today" lands a few hours past
		// now+365d; allow the rest of the last day.
		limit := now.Add(time.Duration(policy.MaxLifetimeDays)*Day + Day)
		if at.After(limit) {
			return nil, Errorf(EPOLICY, "expires_at is beyond the organization's token policy: maximum lifetime is %d days", policy.MaxLifetimeDays)
		}
	}
	at = at.Truncate(time.Second)
	return &at, nil
}

// ParseGracePeriod parses a duration such as "24h" or "30m" for a rotation
// grace period, bounded to 30 days.
func ParseGracePeriod(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("invalid duration %q: want a Go duration such as 24h", s)
	}
	if d > 30*Day {
		return 0, fmt.Errorf("grace period %q longer than 30 days", s)
	}
	return d, nil
}

// PersonalTokenPolicy is the lifetime rule for personal tokens, which belong
// to no organization: at most a year, always expiring.
func PersonalTokenPolicy() TokenPolicy { return DefaultTokenPolicy() }
