package client

import (
	"context"
	"iter"
	"net/http"
	"strconv"
	"time"
)

// Tokenless CI: trust policies and the OIDC exchange.

// OIDCIdentity is the CI identity a token was minted for by an OIDC
// exchange.
type OIDCIdentity struct {
	Issuer  string `json:"issuer"`
	Subject string `json:"subject"`
	// Repository is GitHub's repository, GitLab's project_path or Azure's
	// repository name.
	Repository string `json:"repository,omitempty"`
	Ref        string `json:"ref,omitempty"`
	// RunID is GitHub's run_id, GitLab's pipeline_id or Azure's build id.
	RunID      string `json:"run_id,omitempty"`
	PolicyName string `json:"policy_name"`
}

// TrustPolicy lets the CI jobs whose OIDC ID token comes from Issuer, for
// Audience, and satisfies every condition, exchange it for an organization
// token with Scope and Permissions that lives TTL.
type TrustPolicy struct {
	ID       int64  `json:"id"`
	Org      string `json:"org"`
	Name     string `json:"name"`
	Issuer   string `json:"issuer"`
	Audience string `json:"audience"`
	// Conditions map claim names to exact values or globs: * within a
	// "/"-separated segment, ** across segments, ? one character.
	Conditions  map[string]string `json:"conditions"`
	Scope       Scope             `json:"scope"`
	Permissions []string          `json:"permissions"`
	// TTL is the lifetime of minted tokens, such as "15m" (at most "1h").
	TTL       string    `json:"ttl"`
	CreatedBy UserRef   `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// CreateTrustPolicyRequest is the body of CreateTrustPolicy. An empty
// Audience means "sot", an empty TTL 15 minutes.
type CreateTrustPolicyRequest struct {
	Name        string            `json:"name"`
	Issuer      string            `json:"issuer"`
	Audience    string            `json:"audience,omitempty"`
	Conditions  map[string]string `json:"conditions"`
	Scope       Scope             `json:"scope"`
	Permissions []string          `json:"permissions"`
	TTL         string            `json:"ttl,omitempty"`
}

// TrustPolicyUpdate is a partial update of a trust policy: nil fields are
// kept.
type TrustPolicyUpdate struct {
	Name        *string            `json:"name,omitempty"`
	Issuer      *string            `json:"issuer,omitempty"`
	Audience    *string            `json:"audience,omitempty"`
	Conditions  *map[string]string `json:"conditions,omitempty"`
	Scope       *Scope             `json:"scope,omitempty"`
	Permissions []string           `json:"permissions,omitempty"`
	TTL         *string            `json:"ttl,omitempty"`
}

// ExchangedToken is the result of an OIDC exchange: a short-lived
// organization token and its secret, shown once.
type ExchangedToken struct {
	Token     Token     `json:"token"`
	Secret    string    `json:"secret"`
	ExpiresAt time.Time `json:"expires_at"`
}

func trustPolicyPath(org string, id int64) string {
	return orgPath(org) + "/trust-policies/" + strconv.FormatInt(id, 10)
}

// CreateTrustPolicy creates a trust policy. Org admins only; the issuer
// must be one the server's operator trusts.
func (c *Client) CreateTrustPolicy(ctx context.Context, org string, req CreateTrustPolicyRequest) (*TrustPolicy, error) {
	var p TrustPolicy
	if err := c.do(ctx, http.MethodPost, orgPath(org)+"/trust-policies", nil, req, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// TrustPolicies lists an organization's trust policies in the order an
// exchange tries them.
func (c *Client) TrustPolicies(ctx context.Context, org string) iter.Seq2[TrustPolicy, error] {
	return list[TrustPolicy](ctx, c, orgPath(org)+"/trust-policies", nil)
}

// TrustPolicy returns one trust policy.
func (c *Client) TrustPolicy(ctx context.Context, org string, id int64) (*TrustPolicy, error) {
	var p TrustPolicy
	if err := c.do(ctx, http.MethodGet, trustPolicyPath(org, id), nil, nil, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// UpdateTrustPolicy changes a trust policy; tokens it minted before keep
// what they have until they expire.
func (c *Client) UpdateTrustPolicy(ctx context.Context, org string, id int64, upd TrustPolicyUpdate) (*TrustPolicy, error) {
	var p TrustPolicy
	if err := c.do(ctx, http.MethodPatch, trustPolicyPath(org, id), nil, upd, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

// DeleteTrustPolicy deletes a trust policy and revokes the live tokens it
// minted.
func (c *Client) DeleteTrustPolicy(ctx context.Context, org string, id int64) error {
	return c.do(ctx, http.MethodDelete, trustPolicyPath(org, id), nil, nil, nil)
}

// ExchangeIDToken trades a CI job's OIDC ID token for a short-lived
// organization token of org. It needs no credential: a client made with
// an empty token will do.
func (c *Client) ExchangeIDToken(ctx context.Context, org, idToken string) (*ExchangedToken, error) {
	var t ExchangedToken
	body := struct {
		Org     string `json:"org"`
		IDToken string `json:"id_token"`
	}{org, idToken}
	if err := c.do(ctx, http.MethodPost, "/api/v1/oidc/exchange", nil, body, &t); err != nil {
		return nil, err
	}
	return &t, nil
}
