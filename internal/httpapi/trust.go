package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/danielgtaylor/huma/v2"

	"github.com/sot-dev/sot"
)

// Tokenless CI: trust policies and the OIDC exchange.

type oidcIdentityJSON struct {
	Issuer     string `json:"issuer"`
	Subject    string `json:"subject"`
	Repository string `json:"repository,omitempty" doc:"GitHub repository, GitLab project_path, or Azure repository name."`
	Ref        string `json:"ref,omitempty"`
	RunID      string `json:"run_id,omitempty" doc:"GitHub run_id, GitLab pipeline_id, or Azure build id."`
	PolicyName string `json:"policy_name" doc:"The name of the trust policy when the token was minted."`
}

type trustPolicyJSON struct {
	ID          int64             `json:"id"`
	Org         string            `json:"org"`
	Name        string            `json:"name"`
	Issuer      string            `json:"issuer"`
	Audience    string            `json:"audience"`
	Conditions  map[string]string `json:"conditions"`
	Scope       scopeJSON         `json:"scope"`
	Permissions []string          `json:"permissions"`
	TTL         string            `json:"ttl" example:"15m"`
	CreatedBy   userRefJSON       `json:"created_by"`
	CreatedAt   time.Time         `json:"created_at"`
	UpdatedAt   time.Time         `json:"updated_at"`
}

func toTrustPolicy(p *sot.TrustPolicy) trustPolicyJSON {
	return trustPolicyJSON{
		ID: p.ID, Org: p.Org, Name: p.Name, Issuer: p.Issuer, Audience: p.Audience, Conditions: p.Conditions,
		Scope:       scopeJSON{AllProjects: p.Scope.AllProjects, Projects: p.Scope.Projects, Patterns: p.Scope.Patterns},
		Permissions: p.Permissions.Strings(), TTL: formatTTL(p.TTL),
		CreatedBy: userRefJSON{ID: p.CreatedBy.ID, Login: p.CreatedBy.Login},
		CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt,
	}
}

// formatTTL writes a TTL as it is usually given: "15m", "1h", "90s".
func formatTTL(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return fmt.Sprintf("%ds", d/time.Second)
}

type trustPolicyBody struct {
	Name        string            `json:"name" maxLength:"200"`
	Issuer      string            `json:"issuer" maxLength:"500" doc:"The OIDC issuer URL; it must be on the operator's allowlist (--oidc-issuers)." example:"https://token.actions.githubusercontent.com"`
	Audience    string            `json:"audience,omitempty" maxLength:"500" doc:"The audience (aud) the ID token must carry; default \"sot\"."`
	Conditions  map[string]string `json:"conditions" doc:"Claim name to exact value or glob (* within a /-separated segment, ** across, ? one character); every one must hold."`
	Scope       scopeJSON         `json:"scope"`
	Permissions []string          `json:"permissions" enum:"scan,browse,provision,self_rotate" doc:"self_rotate is refused: minted tokens cannot be renewed."`
	TTL         string            `json:"ttl,omitempty" doc:"Lifetime of minted tokens, 1m to 1h; default 15m." example:"15m"`
}

type trustPolicyCreateInput struct {
	Org  string `path:"org"`
	Body trustPolicyBody
}

type trustPolicyListInput struct {
	Org string `path:"org"`
	PageParams
}

type trustPolicyInput struct {
	Org string `path:"org"`
	ID  int64  `path:"id"`
}

type trustPolicyPatchInput struct {
	Org  string `path:"org"`
	ID   int64  `path:"id"`
	Body struct {
		Name        *string            `json:"name,omitempty" maxLength:"200"`
		Issuer      *string            `json:"issuer,omitempty" maxLength:"500"`
		Audience    *string            `json:"audience,omitempty" maxLength:"500"`
		Conditions  *map[string]string `json:"conditions,omitempty"`
		Scope       *scopeJSON         `json:"scope,omitempty"`
		Permissions []string           `json:"permissions,omitempty" enum:"scan,browse,provision,self_rotate"`
		TTL         *string            `json:"ttl,omitempty"`
	}
}

type exchangeInput struct {
	Body struct {
		Org     string `json:"org" maxLength:"400" doc:"The organization whose trust policies decide."`
		IDToken string `json:"id_token" maxLength:"16384" doc:"The CI job's OIDC ID token (a JWT)."`
	}
}

type exchangeResult struct {
	Token     tokenJSON `json:"token"`
	Secret    string    `json:"secret" doc:"The minted token's secret, shown only this once."`
	ExpiresAt time.Time `json:"expires_at"`
}

// trusts reports whether the operator allows issuer.
func (a *API) trusts(issuer string) bool { return a.cfg.OIDC != nil && a.cfg.OIDC.Trusts(issuer) }

// validTrustPolicy validates p for org the way a token is validated.
func (a *API) validTrustPolicy(ctx context.Context, p *sot.TrustPolicy) error {
	org, err := a.cfg.Orgs.FindOrg(ctx, p.Org)
	if err != nil {
		return err
	}
	return sot.ValidateTrustPolicy(org, p, a.trusts)
}

func (a *API) registerTrust() {
	const tag = "Tokenless CI"
	huma.Register(a.huma, operation(http.MethodPost, "/api/v1/orgs/{org}/trust-policies", "create-trust-policy", tag, "Create a trust policy", http.StatusCreated),
		func(ctx context.Context, in *trustPolicyCreateInput) (*bodyOutput[trustPolicyJSON], error) {
			p := principal(ctx)
			if err := p.Authorize(sot.PermissionOrgAdmin, in.Org, ""); err != nil {
				return nil, err
			}
			b := in.Body
			perms, err := sot.ParsePermissionSet(b.Permissions)
			if err != nil {
				return nil, err
			}
			ttl, err := sot.ParseTrustTTL("ttl", b.TTL)
			if err != nil {
				return nil, err
			}
			aud := b.Audience
			if aud == "" {
				aud = sot.DefaultAudience
			}
			tp := &sot.TrustPolicy{Org: in.Org, Name: b.Name, Issuer: b.Issuer, Audience: aud, Conditions: b.Conditions,
				Scope: b.Scope.scope(), Permissions: perms, TTL: ttl, CreatedBy: sot.UserRef{ID: p.UserID(), Login: p.User.Login}}
			if err := a.validTrustPolicy(ctx, tp); err != nil {
				return nil, err
			}
			if err := a.cfg.TrustPolicies.CreateTrustPolicy(ctx, tp); err != nil {
				return nil, err
			}
			return &bodyOutput[trustPolicyJSON]{Body: toTrustPolicy(tp)}, nil
		})

	huma.Register(a.huma, operation(http.MethodGet, "/api/v1/orgs/{org}/trust-policies", "list-trust-policies", tag, "List trust policies, in the order an exchange tries them", http.StatusOK),
		func(ctx context.Context, in *trustPolicyListInput) (*listOutput[trustPolicyJSON], error) {
			if err := principal(ctx).Authorize(sot.PermissionOrgAdmin, in.Org, ""); err != nil {
				return nil, err
			}
			ps, next, err := a.cfg.TrustPolicies.ListTrustPolicies(ctx, in.Org, in.page())
			if err != nil {
				return nil, err
			}
			return listOf(ps, next, toTrustPolicy), nil
		})

	huma.Register(a.huma, operation(http.MethodGet, "/api/v1/orgs/{org}/trust-policies/{id}", "get-trust-policy", tag, "Get a trust policy", http.StatusOK),
		func(ctx context.Context, in *trustPolicyInput) (*bodyOutput[trustPolicyJSON], error) {
			if err := principal(ctx).Authorize(sot.PermissionOrgAdmin, in.Org, ""); err != nil {
				return nil, err
			}
			tp, err := a.cfg.TrustPolicies.FindTrustPolicy(ctx, in.Org, in.ID)
			if err != nil {
				return nil, err
			}
			return &bodyOutput[trustPolicyJSON]{Body: toTrustPolicy(tp)}, nil
		})

	huma.Register(a.huma, operation(http.MethodPatch, "/api/v1/orgs/{org}/trust-policies/{id}", "update-trust-policy", tag, "Update a trust policy (tokens minted before keep what they have until they expire)", http.StatusOK),
		func(ctx context.Context, in *trustPolicyPatchInput) (*bodyOutput[trustPolicyJSON], error) {
			if err := principal(ctx).Authorize(sot.PermissionOrgAdmin, in.Org, ""); err != nil {
				return nil, err
			}
			b := in.Body
			upd := sot.TrustPolicyUpdate{Name: b.Name, Issuer: b.Issuer, Audience: b.Audience, Conditions: b.Conditions}
			if b.Scope != nil {
				s := b.Scope.scope()
				upd.Scope = &s
			}
			if b.Permissions != nil {
				perms, err := sot.ParsePermissionSet(b.Permissions)
				if err != nil {
					return nil, err
				}
				upd.Permissions = &perms
			}
			if b.TTL != nil {
				ttl, err := sot.ParseTrustTTL("ttl", *b.TTL)
				if err != nil {
					return nil, err
				}
				upd.TTL = &ttl
			}
			cur, err := a.cfg.TrustPolicies.FindTrustPolicy(ctx, in.Org, in.ID)
			if err != nil {
				return nil, err
			}
			// The result is validated whole: an unchanged issuer that the
			// operator no longer trusts must be replaced before anything
			// else changes.
			next := upd.Apply(*cur)
			if err := a.validTrustPolicy(ctx, &next); err != nil {
				return nil, err
			}
			tp, err := a.cfg.TrustPolicies.UpdateTrustPolicy(ctx, in.Org, in.ID, upd)
			if err != nil {
				return nil, err
			}
			return &bodyOutput[trustPolicyJSON]{Body: toTrustPolicy(tp)}, nil
		})

	huma.Register(a.huma, operation(http.MethodDelete, "/api/v1/orgs/{org}/trust-policies/{id}", "delete-trust-policy", tag, "Delete a trust policy and revoke the live tokens it minted", http.StatusNoContent),
		func(ctx context.Context, in *trustPolicyInput) (*struct{}, error) {
			if err := principal(ctx).Authorize(sot.PermissionOrgAdmin, in.Org, ""); err != nil {
				return nil, err
			}
			_, err := a.cfg.TrustPolicies.DeleteTrustPolicy(ctx, in.Org, in.ID, a.now())
			return nil, err
		})

	op := optionalAuth(operation(http.MethodPost, "/api/v1/oidc/exchange", "oidc-exchange", tag,
		"Exchange a CI job's OIDC ID token for a short-lived organization token", http.StatusCreated))
	op.Description = "No credential is needed: the ID token is the proof. 401 for an invalid, expired or untrusted ID token " +
		"or one whose audience no policy accepts; 403 when no trust policy matches (the detail names the failing conditions)."
	op.Security = []map[string][]string{}
	op.MaxBodyBytes = 64 << 10
	op.Errors = append(op.Errors, http.StatusTooManyRequests)
	huma.Register(a.huma, op, func(ctx context.Context, in *exchangeInput) (*bodyOutput[exchangeResult], error) {
		ip := info(ctx).ip
		if a.limiter != nil {
			if d := a.limiter.wait(ip, a.now()); d > 0 {
				// A *problem is written as is: its headers go along.
				p := rateLimited(d)
				return nil, huma.ErrorWithHeaders(p, http.Header{"Retry-After": {p.retryAfter}})
			}
		}
		out, err := a.exchange(ctx, in.Body.Org, in.Body.IDToken, ip.String())
		if err != nil && a.limiter != nil && sot.ErrorCode(err) == sot.EUNAUTHENTICATED {
			a.limiter.fail(ip, a.now())
		}
		if err != nil {
			return nil, err
		}
		return &bodyOutput[exchangeResult]{Body: *out}, nil
	})
}

var errNoIssuers = &sot.Error{Code: sot.EUNAUTHENTICATED, Message: "this server trusts no OIDC issuer (see --oidc-issuers)"}

// exchange verifies idToken, finds the first trust policy of org that
// matches it, and mints the token.
func (a *API) exchange(ctx context.Context, org, idToken, ip string) (*exchangeResult, error) {
	if a.cfg.OIDC == nil || a.cfg.TrustPolicies == nil {
		return nil, errNoIssuers
	}
	tok, err := a.cfg.OIDC.Verify(ctx, idToken)
	if err != nil {
		return nil, err
	}
	noPolicy := sot.Errorf(sot.EFORBIDDEN, "no trust policy of organization %q accepts ID tokens of %s", org, tok.Issuer)
	if !sot.ValidKey(org) {
		return nil, noPolicy
	}
	policies, err := a.cfg.TrustPolicies.TrustPoliciesForIssuer(ctx, org, tok.Issuer)
	if err != nil {
		return nil, err
	}
	if len(policies) == 0 {
		return nil, noPolicy
	}
	var audiences []string
	var refusals []string
	var fields []sot.FieldError
	var match *sot.TrustPolicy
	for _, p := range policies {
		if !tok.HasAudience(p.Audience) {
			audiences = append(audiences, p.Audience)
			continue
		}
		failed := p.Check(tok)
		if len(failed) == 0 {
			match = p
			break
		}
		conds := make([]string, len(failed))
		for i, f := range failed {
			conds[i] = fmt.Sprintf("%s must match %q", f.Claim, f.Expected)
			fields = append(fields, sot.FieldError{Field: "conditions." + f.Claim,
				Message: fmt.Sprintf("trust policy %q expects %q", p.Name, f.Expected)})
		}
		refusals = append(refusals, fmt.Sprintf("%q: %s", p.Name, strings.Join(conds, ", ")))
	}
	if match == nil {
		if len(refusals) == 0 {
			slices.Sort(audiences)
			audiences = slices.Compact(audiences)
			return nil, sot.Errorf(sot.EUNAUTHENTICATED, "the ID token's audience is not accepted: trust policies of %q expect %s",
				org, strings.Join(quoteAll(audiences), " or "))
		}
		return nil, &sot.Error{Code: sot.EFORBIDDEN, Message: "no trust policy matches the ID token: " + strings.Join(refusals, "; "), Fields: fields}
	}
	o, err := a.cfg.Orgs.FindOrg(ctx, org)
	if err != nil {
		if errors.Is(err, sot.ErrNotFound) {
			return nil, noPolicy
		}
		return nil, err
	}
	now := a.now()
	t, secret, err := sot.PrepareOIDCToken(o, match, sot.IdentityOf(tok, match), now)
	if err != nil {
		return nil, err
	}
	// The CI identity is the actor of the exchange: there is no user.
	actx := sot.WithActor(ctx, sot.Actor{Type: sot.ActorAnonymous, Name: truncate("oidc:"+tok.Subject, 200), IP: ip})
	if err := a.cfg.TrustPolicies.CreateOIDCToken(actx, t, sot.HashSecret(secret)); err != nil {
		if errors.Is(err, sot.ErrNotFound) {
			return nil, sot.Errorf(sot.EFORBIDDEN, "trust policy %q was deleted", match.Name)
		}
		return nil, err
	}
	return &exchangeResult{Token: toToken(t, now), Secret: secret, ExpiresAt: *t.ExpiresAt}, nil
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

// truncate cuts s to at most n bytes, on a character boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
