package sot

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Tokenless CI: a trust policy lets the CI jobs whose OIDC identity token
// matches it exchange that token for a short-lived organization token, so
// that a pipeline stores no secret at all.

// Audit actions of trust policies and OIDC exchanges.
const (
	ActionTrustPolicyCreated = "trust_policy.created"
	ActionTrustPolicyUpdated = "trust_policy.updated"
	ActionTrustPolicyDeleted = "trust_policy.deleted"
	ActionTokenExchanged     = "token.exchanged"
)

// Limits and defaults of trust policies.
const (
	DefaultTrustTTL     = 15 * time.Minute
	MinTrustTTL         = time.Minute
	MaxTrustTTL         = time.Hour
	DefaultAudience     = "sot"
	MaxTrustConditions  = 50
	MaxClaimNameLen     = 100
	MaxClaimPatternLen  = 500
	MaxAudienceLen      = 500
	MaxIssuerLen        = 500
	maxTokenNameSummary = 120
)

// TrustPolicy says which CI identities (OIDC ID tokens of Issuer, for
// Audience, whose claims satisfy every condition) may obtain an
// organization token with Scope and Permissions that lives TTL.
type TrustPolicy struct {
	ID       int64
	Org      string
	Name     string
	Issuer   string
	Audience string
	// Conditions maps claim names to exact values or glob patterns (see
	// MatchClaim); every one must hold.
	Conditions  map[string]string
	Scope       Scope
	Permissions PermissionSet
	TTL         time.Duration
	CreatedBy   UserRef
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// TrustPolicyUpdate is a partial update of a trust policy; nil fields are
// kept.
type TrustPolicyUpdate struct {
	Name        *string
	Issuer      *string
	Audience    *string
	Conditions  *map[string]string
	Scope       *Scope
	Permissions *PermissionSet
	TTL         *time.Duration
}

// Apply returns p with upd applied.
func (upd TrustPolicyUpdate) Apply(p TrustPolicy) TrustPolicy {
	if upd.Name != nil {
		p.Name = *upd.Name
	}
	if upd.Issuer != nil {
		p.Issuer = *upd.Issuer
	}
	if upd.Audience != nil {
		p.Audience = *upd.Audience
	}
	if upd.Conditions != nil {
		p.Conditions = *upd.Conditions
	}
	if upd.Scope != nil {
		p.Scope = *upd.Scope
	}
	if upd.Permissions != nil {
		p.Permissions = *upd.Permissions
	}
	if upd.TTL != nil {
		p.TTL = *upd.TTL
	}
	return p
}

// ParseTrustTTL parses a policy's ttl ("15m", "1h"; "" is the default)
// under field.
func ParseTrustTTL(field, s string) (time.Duration, error) {
	if s == "" {
		return DefaultTrustTTL, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < MinTrustTTL || d > MaxTrustTTL {
		return 0, Invalid("invalid ttl", FieldError{Field: field, Message: "must be a duration from 1m to 1h, such as 15m"})
	}
	return d.Truncate(time.Second), nil
}

// ValidateTrustPolicy checks p for organization org the way a token is
// checked (plan, scope shape, permissions), plus its own fields. trusted
// reports whether the operator allows an issuer. Errors name the offending
// fields.
func ValidateTrustPolicy(org *Org, p *TrustPolicy, trusted func(issuer string) bool) error {
	if !org.Plan.AllowsOrgTokens() {
		return ErrPlanRequired
	}
	if err := ValidateTokenName("name", p.Name); err != nil {
		return err
	}
	if err := ValidateIssuerURL(p.Issuer); err != nil {
		return Invalid("invalid issuer", FieldError{Field: "issuer", Message: err.Error()})
	}
	if trusted == nil || !trusted(p.Issuer) {
		return Invalid("issuer not allowed", FieldError{Field: "issuer",
			Message: "the operator does not trust this issuer (see --oidc-issuers)"})
	}
	if p.Audience == "" || len(p.Audience) > MaxAudienceLen {
		return Invalid("invalid audience", FieldError{Field: "audience", Message: fmt.Sprintf("must be 1 to %d characters", MaxAudienceLen)})
	}
	if err := validateConditions(p.Conditions); err != nil {
		return err
	}
	if err := p.Scope.Validate("scope"); err != nil {
		return err
	}
	if p.Permissions == 0 {
		return Invalid("at least one permission is required", FieldError{Field: "permissions", Message: "at least one permission is required"})
	}
	for _, perm := range p.Permissions.List() {
		switch {
		case !perm.Grantable():
			return Invalid("invalid permissions", FieldError{Field: "permissions", Message: perm.String() + " cannot be granted to a token"})
		case perm == PermissionSelfRotate:
			return Invalid("invalid permissions", FieldError{Field: "permissions",
				Message: "tokens minted by an OIDC exchange cannot be renewed: self_rotate is not allowed"})
		}
	}
	if p.TTL < MinTrustTTL || p.TTL > MaxTrustTTL {
		return Invalid("invalid ttl", FieldError{Field: "ttl", Message: "must be a duration from 1m to 1h, such as 15m"})
	}
	return nil
}

var claimNameRE = regexp.MustCompile(`^[A-Za-z0-9_.:-]+$`)

func validateConditions(cs map[string]string) error {
	// A policy without conditions would let every job of a shared issuer
	// (every repository on GitHub) in.
	if len(cs) == 0 {
		return Invalid("at least one condition is required", FieldError{Field: "conditions",
			Message: "at least one condition is required, such as repository_owner_id"})
	}
	if len(cs) > MaxTrustConditions {
		return Invalid("too many conditions", FieldError{Field: "conditions", Message: fmt.Sprintf("at most %d", MaxTrustConditions)})
	}
	names := make([]string, 0, len(cs))
	for n := range cs {
		names = append(names, n)
	}
	slices.Sort(names)
	var fields []FieldError
	for _, n := range names {
		f := "conditions." + n
		switch v := cs[n]; {
		case len(n) > MaxClaimNameLen || !claimNameRE.MatchString(n):
			fields = append(fields, FieldError{Field: f, Message: "a claim name is 1 to 100 letters, digits, '_', '.', ':' or '-'"})
		case v == "" || len(v) > MaxClaimPatternLen:
			fields = append(fields, FieldError{Field: f, Message: fmt.Sprintf("the value must be 1 to %d characters", MaxClaimPatternLen)})
		default:
			if _, err := CompileClaimPattern(v); err != nil {
				fields = append(fields, FieldError{Field: f, Message: err.Error()})
			}
		}
	}
	if fields != nil {
		return Invalid("invalid conditions", fields...)
	}
	return nil
}

// ValidateIssuerURL checks that s is an issuer identifier as OIDC defines
// it: an https URL without query or fragment. Plain http is accepted for
// loopback hosts only, for local issuers and tests.
func ValidateIssuerURL(s string) error {
	if s == "" || len(s) > MaxIssuerLen {
		return fmt.Errorf("must be 1 to %d characters", MaxIssuerLen)
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return fmt.Errorf("must be an https URL without query or fragment")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if IsLoopbackHost(u.Hostname()) {
			return nil
		}
	}
	return fmt.Errorf("must be an https URL (http only for loopback addresses)")
}

// IsLoopbackHost reports whether host names this machine: "localhost" or a
// loopback address.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ClaimPattern is a compiled condition value. Its syntax is a glob chosen
// so that a pattern never reaches across a path separator by accident:
//
//   - any run of characters except '/'
//     **   any run of characters, '/' included
//     ?    one character except '/'
//     \x   the character x literally (\*, \?, \\)
//
// Everything else matches itself, and the pattern must match the whole
// value. A value without wildcards is an exact comparison. So
// "acme/*" matches "acme/web" but "refs/heads/*" does not match
// "refs/heads/feature/x"; "refs/heads/**" does.
type ClaimPattern struct {
	exact string
	re    *regexp.Regexp // nil for an exact value
}

// CompileClaimPattern compiles a condition value, which must be valid
// UTF-8 ('?' stands for one character, not one byte).
func CompileClaimPattern(p string) (*ClaimPattern, error) {
	if !utf8.ValidString(p) {
		return nil, fmt.Errorf("a pattern must be valid UTF-8")
	}
	if !strings.ContainsAny(p, `*?\`) {
		return &ClaimPattern{exact: p}, nil
	}
	rs := []rune(p)
	var b strings.Builder
	b.WriteString(`^(?s:`)
	for i := 0; i < len(rs); i++ {
		switch r := rs[i]; r {
		case '*':
			if i+1 < len(rs) && rs[i+1] == '*' {
				for i+1 < len(rs) && rs[i+1] == '*' {
					i++
				}
				b.WriteString(`.*`)
			} else {
				b.WriteString(`[^/]*`)
			}
		case '?':
			b.WriteString(`[^/]`)
		case '\\':
			if i+1 == len(rs) {
				return nil, fmt.Errorf("a pattern cannot end with a lone '\\'")
			}
			i++
			b.WriteString(regexp.QuoteMeta(string(rs[i])))
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString(`)$`)
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil, fmt.Errorf("invalid pattern: %w", err)
	}
	return &ClaimPattern{re: re}, nil
}

// Match reports whether the pattern matches the whole value.
func (c *ClaimPattern) Match(v string) bool {
	if c.re == nil {
		return v == c.exact
	}
	return c.re.MatchString(v)
}

// MatchClaim reports whether value satisfies pattern (see ClaimPattern);
// an invalid pattern matches nothing.
func MatchClaim(pattern, value string) bool {
	c, err := CompileClaimPattern(pattern)
	return err == nil && c.Match(value)
}

// IDToken is a verified OIDC ID token: its registered claims and all of
// its claims, decoded.
type IDToken struct {
	Issuer   string
	Subject  string
	Audience []string
	IssuedAt time.Time
	Expiry   time.Time
	// Claims holds every claim; numbers are json.Number.
	Claims map[string]any
}

// ClaimString returns a claim as a string: strings as they are, numbers
// in their JSON form, booleans as "true" or "false". It reports false for
// a missing claim or one of another type (arrays, objects, null).
func (t *IDToken) ClaimString(name string) (string, bool) {
	switch v := t.Claims[name].(type) {
	case string:
		return v, true
	case bool:
		return strconv.FormatBool(v), true
	case fmt.Stringer: // json.Number
		return v.String(), true
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	}
	return "", false
}

// HasAudience reports whether aud is one of the token's audiences.
func (t *IDToken) HasAudience(aud string) bool { return slices.Contains(t.Audience, aud) }

// FailedCondition is a condition of a policy that an ID token does not
// satisfy. It names the claim and the expected value, never the token's.
type FailedCondition struct {
	Claim    string
	Expected string
}

// Check returns the conditions of p that tok fails, by claim name; none
// means the policy matches (its issuer and audience are the caller's to
// check).
func (p *TrustPolicy) Check(tok *IDToken) []FailedCondition {
	names := make([]string, 0, len(p.Conditions))
	for n := range p.Conditions {
		names = append(names, n)
	}
	slices.Sort(names)
	var failed []FailedCondition
	for _, n := range names {
		want := p.Conditions[n]
		got, ok := tok.ClaimString(n)
		if !ok || !MatchClaim(want, got) {
			failed = append(failed, FailedCondition{Claim: n, Expected: want})
		}
	}
	return failed
}

// OIDCIdentity summarizes the CI identity a token was minted for, as kept
// with the token and written in the audit log.
type OIDCIdentity struct {
	Issuer     string `json:"issuer"`
	Subject    string `json:"subject"`
	Repository string `json:"repository,omitempty"` // GitHub repository, GitLab project_path, Azure repository
	Ref        string `json:"ref,omitempty"`
	RunID      string `json:"run_id,omitempty"`
	PolicyName string `json:"policy_name"`
}

// claimAliases lists, per summary field, the claims that carry it on
// GitHub Actions, GitLab CI and Azure Pipelines, in that order.
var claimAliases = struct{ repository, ref, runID []string }{
	repository: []string{"repository", "project_path", "repository_name"},
	ref:        []string{"ref", "ref_path", "ref_name"},
	runID:      []string{"run_id", "pipeline_id", "job_id", "build_id"},
}

func firstClaim(tok *IDToken, names []string) string {
	for _, n := range names {
		if v, ok := tok.ClaimString(n); ok && v != "" {
			return truncate(v, 500)
		}
	}
	return ""
}

// truncate cuts s to at most n bytes, on a character boundary: a cut
// character would be invalid UTF-8, which PostgreSQL refuses to store.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// IdentityOf summarizes tok for the token minted under policy.
func IdentityOf(tok *IDToken, policy *TrustPolicy) OIDCIdentity {
	return OIDCIdentity{
		Issuer:     truncate(tok.Issuer, MaxIssuerLen),
		Subject:    truncate(tok.Subject, 500),
		Repository: firstClaim(tok, claimAliases.repository),
		Ref:        firstClaim(tok, claimAliases.ref),
		RunID:      firstClaim(tok, claimAliases.runID),
		PolicyName: policy.Name,
	}
}

// PrepareOIDCToken returns the organization token that policy mints for
// the identity id at now, and its secret (to show once). The token cannot
// be renewed: it never carries self_rotate, and it expires after the
// policy's TTL. EPLAN when the organization's plan has no organization
// tokens.
func PrepareOIDCToken(org *Org, policy *TrustPolicy, id OIDCIdentity, now time.Time) (*Token, string, error) {
	if !org.Plan.AllowsOrgTokens() {
		return nil, "", ErrPlanRequired
	}
	now = now.UTC().Truncate(time.Second)
	expires := now.Add(policy.TTL)
	who := id.Repository
	if who == "" {
		who = id.Subject
	}
	secret := NewSecret(TokenKindOrg)
	t := &Token{
		Kind:          TokenKindOrg,
		Org:           org.Key,
		Name:          truncate("oidc: "+truncate(policy.Name, 60)+" ("+who, maxTokenNameSummary) + ")",
		Description:   "Minted by an OIDC exchange under trust policy " + strconv.Quote(policy.Name) + ".",
		Scope:         policy.Scope,
		Permissions:   policy.Permissions &^ NewPermissionSet(PermissionSelfRotate),
		Hint:          SecretHint(secret),
		Source:        TokenSourceOIDC,
		CreatedAt:     now,
		ExpiresAt:     &expires,
		ProjectCount:  len(policy.Scope.Projects),
		TrustPolicyID: policy.ID,
		OIDC:          &id,
	}
	return t, secret, nil
}
