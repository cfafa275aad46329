package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sot-dev/sot/client"
)

// trustPolicyCmd groups the trust policy commands (tokenless CI).
type trustPolicyCmd struct {
	Create trustPolicyCreateCmd `cmd:"" help:"Let CI jobs whose OIDC identity matches exchange it for a short-lived organization token."`
	List   trustPolicyListCmd   `cmd:"" help:"List an organization's trust policies, in the order an exchange tries them."`
	Get    trustPolicyGetCmd    `cmd:"" help:"Show a trust policy."`
	Update trustPolicyUpdateCmd `cmd:"" help:"Change a trust policy (tokens minted before keep theirs until they expire)."`
	Delete trustPolicyDeleteCmd `cmd:"" help:"Delete a trust policy and revoke the live tokens it minted."`
}

// parseConditions turns CLAIM=VALUE flags into conditions.
func parseConditions(in []string) (map[string]string, error) {
	out := make(map[string]string, len(in))
	for _, c := range in {
		k, v, ok := strings.Cut(c, "=")
		if !ok || k == "" || v == "" {
			return nil, usageErrorf("--condition %q: want CLAIM=VALUE, such as repository_owner_id=123456", c)
		}
		out[k] = v
	}
	return out, nil
}

type trustPolicyCreateCmd struct {
	Org       string   `arg:"" help:"Organization key."`
	Name      string   `required:"" help:"Policy name, such as the workflow it admits."`
	Issuer    string   `required:"" placeholder:"URL" help:"OIDC issuer: https://token.actions.githubusercontent.com, https://gitlab.com, https://vstoken.dev.azure.com/<org-id>, … (the server must trust it)."`
	Audience  string   `placeholder:"AUD" help:"Audience the ID token must carry (default: sot)."`
	Condition []string `required:"" sep:"none" placeholder:"CLAIM=VALUE" help:"Claim condition (repeatable; all must hold): an exact value or a glob (* within a /-segment, ** across, ? one character). Prefer immutable claims such as repository_owner_id."`
	scopeFlags
	Permission []string `required:"" enum:"scan,browse,provision" placeholder:"PERM" help:"Permission of minted tokens: scan, browse or provision (repeatable)."`
	TTL        string   `name:"ttl" placeholder:"15m" help:"Lifetime of minted tokens, 1m to 1h (default 15m)."`
}

func (c *trustPolicyCreateCmd) Run(ctx context.Context, g *globals, std *stdio) error {
	scope, err := c.scope()
	if err != nil {
		return err
	}
	conds, err := parseConditions(c.Condition)
	if err != nil {
		return err
	}
	api, err := g.client()
	if err != nil {
		return err
	}
	p, err := api.CreateTrustPolicy(ctx, c.Org, client.CreateTrustPolicyRequest{
		Name: c.Name, Issuer: c.Issuer, Audience: c.Audience, Conditions: conds,
		Scope: scope, Permissions: c.Permission, TTL: c.TTL,
	})
	if err != nil {
		return err
	}
	return printTrustPolicy(std, g, p)
}

type trustPolicyListCmd struct {
	Org string `arg:"" help:"Organization key."`
}

func (c *trustPolicyListCmd) Run(ctx context.Context, g *globals, std *stdio) error {
	api, err := g.client()
	if err != nil {
		return err
	}
	seq := api.TrustPolicies(ctx, c.Org)
	if g.json() {
		ps, err := client.Collect(seq)
		if err != nil {
			return err
		}
		return writeJSON(std.out, nonNil(ps))
	}
	t := newTable(std.out, "ID", "NAME", "ISSUER", "CONDITIONS", "SCOPE", "PERMISSIONS", "TTL")
	for p, err := range seq {
		if err != nil {
			t.flush()
			return err
		}
		t.row(fmt.Sprint(p.ID), p.Name, p.Issuer, conditionsSummary(p.Conditions), scopeOf(p.Scope),
			strings.Join(p.Permissions, ","), p.TTL)
	}
	return t.flush()
}

// conditionsSummary writes conditions as "claim=value, …", by claim.
func conditionsSummary(cs map[string]string) string {
	keys := make([]string, 0, len(cs))
	for k := range cs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + cs[k]
	}
	return strings.Join(parts, ", ")
}

// scopeOf summarizes a scope as the token commands do.
func scopeOf(s client.Scope) string {
	return scopeSummary(&client.Token{Scope: &s, ProjectCount: len(s.Projects)})
}

type trustPolicyGetCmd struct {
	Org string `arg:"" help:"Organization key."`
	ID  int64  `arg:"" help:"Trust policy ID."`
}

func (c *trustPolicyGetCmd) Run(ctx context.Context, g *globals, std *stdio) error {
	api, err := g.client()
	if err != nil {
		return err
	}
	p, err := api.TrustPolicy(ctx, c.Org, c.ID)
	if err != nil {
		return err
	}
	return printTrustPolicy(std, g, p)
}

func printTrustPolicy(std *stdio, g *globals, p *client.TrustPolicy) error {
	if g.json() {
		return writeJSON(std.out, p)
	}
	return fields(std.out,
		"id", fmt.Sprint(p.ID),
		"org", p.Org,
		"name", p.Name,
		"issuer", p.Issuer,
		"audience", p.Audience,
		"conditions", conditionsSummary(p.Conditions),
		"scope", scopeOf(p.Scope),
		"permissions", strings.Join(p.Permissions, ","),
		"ttl", p.TTL,
		"created", p.CreatedAt.UTC().Format(time.RFC3339)+" by "+p.CreatedBy.Login,
		"updated", p.UpdatedAt.UTC().Format(time.RFC3339),
	)
}

type trustPolicyUpdateCmd struct {
	Org       string   `arg:"" help:"Organization key."`
	ID        int64    `arg:"" help:"Trust policy ID."`
	Name      *string  `help:"New name."`
	Issuer    *string  `placeholder:"URL" help:"New issuer."`
	Audience  *string  `placeholder:"AUD" help:"New audience."`
	Condition []string `sep:"none" placeholder:"CLAIM=VALUE" help:"Replace the conditions with these (repeatable)."`
	scopeFlags
	Permission []string `enum:"scan,browse,provision" placeholder:"PERM" help:"Replace the permissions (repeatable)."`
	TTL        *string  `name:"ttl" placeholder:"15m" help:"New lifetime of minted tokens."`
}

func (c *trustPolicyUpdateCmd) Run(ctx context.Context, g *globals, std *stdio) error {
	upd := client.TrustPolicyUpdate{Name: c.Name, Issuer: c.Issuer, Audience: c.Audience, Permissions: c.Permission, TTL: c.TTL}
	if len(c.Condition) > 0 {
		conds, err := parseConditions(c.Condition)
		if err != nil {
			return err
		}
		upd.Conditions = &conds
	}
	if c.AllProjects || len(c.Project) > 0 || len(c.Pattern) > 0 {
		s, err := c.scope()
		if err != nil {
			return err
		}
		upd.Scope = &s
	}
	api, err := g.client()
	if err != nil {
		return err
	}
	p, err := api.UpdateTrustPolicy(ctx, c.Org, c.ID, upd)
	if err != nil {
		return err
	}
	return printTrustPolicy(std, g, p)
}

type trustPolicyDeleteCmd struct {
	Org string `arg:"" help:"Organization key."`
	ID  int64  `arg:"" help:"Trust policy ID."`
}

func (c *trustPolicyDeleteCmd) Run(ctx context.Context, g *globals, std *stdio) error {
	api, err := g.client()
	if err != nil {
		return err
	}
	if err := api.DeleteTrustPolicy(ctx, c.Org, c.ID); err != nil {
		return err
	}
	if !g.json() {
		fmt.Fprintf(std.out, "deleted trust policy %d of %s; the live tokens it minted are revoked\n", c.ID, c.Org)
	}
	return nil
}
