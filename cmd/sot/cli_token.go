package main

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/sot-dev/sot/client"
)

// tokenCmd groups the organization token commands.
type tokenCmd struct {
	Create     tokenCreateCmd     `cmd:"" help:"Create an organization token and print its secret, once."`
	List       tokenListCmd       `cmd:"" help:"List an organization's tokens."`
	Get        tokenGetCmd        `cmd:"" help:"Show a token."`
	Revoke     tokenRevokeCmd     `cmd:"" help:"Revoke a token at once."`
	Rotate     tokenRotateCmd     `cmd:"" help:"Give a token a new secret and print it, once."`
	RotateSelf tokenRotateSelfCmd `cmd:"" name:"rotate-self" help:"Give the calling token (SOT_TOKEN, needs self_rotate) a new secret and print it, once: for a pipeline that stores it back."`
	Projects   tokenProjectsCmd   `cmd:"" help:"List the projects a token covers now."`
	Preview    tokenPreviewCmd    `cmd:"" help:"Show which projects a scope would cover, before creating a token."`
}

// scopeFlags choose a token's scope: every project, or explicit keys
// and/or patterns.
type scopeFlags struct {
	AllProjects bool     `xor:"all-project,all-pattern" help:"Cover every current and future project of the organization."`
	Project     []string `xor:"all-project" placeholder:"KEY" help:"Cover this project (repeatable; the project must exist)."`
	Pattern     []string `xor:"all-pattern" sep:"none" placeholder:"RE" help:"Cover projects whose whole key matches this RE2 regular expression, now and in future (repeatable)."`
}

func (f *scopeFlags) scope() (client.Scope, error) {
	if !f.AllProjects && len(f.Project) == 0 && len(f.Pattern) == 0 {
		return client.Scope{}, usageErrorf("give the scope: --all-projects, --project KEY or --pattern RE")
	}
	return client.Scope{AllProjects: f.AllProjects, Projects: f.Project, Patterns: f.Pattern}, nil
}

type tokenCreateCmd struct {
	Org         string `arg:"" help:"Organization key."`
	Name        string `required:"" help:"Token name, such as the pipeline that uses it."`
	Description string `help:"What the token is for."`
	scopeFlags
	Permission    []string `required:"" enum:"scan,browse,provision,self_rotate" placeholder:"PERM" help:"Permission to grant: scan, browse, provision or self_rotate (repeatable)."`
	Expires       string   `xor:"expiry" required:"" placeholder:"30d|90d|1y|YYYY-MM-DD" help:"Lifetime (<n>d or <n>y) or expiry date (00:00 UTC that day)."`
	NoExpiry      bool     `xor:"expiry" required:"" help:"Never expire (when the organization's policy allows it)."`
	AllowCIDR     []string `name:"allow-cidr" placeholder:"CIDR" help:"Accept the token only from this network (repeatable; default: anywhere)."`
	RotateEvery   string   `name:"rotate-every" placeholder:"30d" help:"Rotate the secret on this schedule; the new one is sent in a signed token.rotated webhook delivery."`
	RotationGrace string   `name:"rotation-grace" placeholder:"24h" help:"With --rotate-every: how long the previous secret keeps working after each rotation."`
}

var lifetimeRE = regexp.MustCompile(`^[1-9][0-9]{0,5}[dy]$`)

// expiry turns --expires or --no-expiry into the API's expiry.
func expiry(expires string, never bool) (client.Expiry, error) {
	switch {
	case never:
		return client.Expiry{Never: true}, nil
	case lifetimeRE.MatchString(expires):
		return client.Expiry{In: expires}, nil
	}
	at, err := time.Parse(time.DateOnly, expires)
	if err != nil {
		return client.Expiry{}, usageErrorf("--expires %q: want a lifetime such as 30d, 90d or 1y, or a date YYYY-MM-DD", expires)
	}
	return client.Expiry{At: at}, nil
}

func (c *tokenCreateCmd) Run(ctx context.Context, g *globals, std *stdio) error {
	scope, err := c.scope()
	if err != nil {
		return err
	}
	exp, err := expiry(c.Expires, c.NoExpiry)
	if err != nil {
		return err
	}
	var rotation *client.Rotation
	switch {
	case c.RotateEvery != "":
		if !lifetimeRE.MatchString(c.RotateEvery) {
			return usageErrorf("--rotate-every %q: want a number of days or years, such as 30d", c.RotateEvery)
		}
		if err := checkGrace(c.RotationGrace); err != nil {
			return usageErrorf("--rotation-grace %q: want a duration such as 24h", c.RotationGrace)
		}
		rotation = &client.Rotation{Every: c.RotateEvery, GracePeriod: c.RotationGrace}
	case c.RotationGrace != "":
		return usageErrorf("--rotation-grace needs --rotate-every")
	}
	api, err := g.client()
	if err != nil {
		return err
	}
	nt, err := api.CreateToken(ctx, c.Org, client.CreateTokenRequest{
		Name:         c.Name,
		Description:  c.Description,
		Scope:        scope,
		Permissions:  c.Permission,
		Expiry:       exp,
		AllowedCIDRs: c.AllowCIDR,
		Rotation:     rotation,
	})
	if err != nil {
		return err
	}
	return printSecret(std, g, nt, "created")
}

// printSecret shows a new secret: the {token, secret} object with -o json;
// otherwise a description on stderr and the secret alone on stdout, so that
// SECRET=$(sot token create …) works.
func printSecret(std *stdio, g *globals, nt *client.NewToken, verb string) error {
	if g.json() {
		return writeJSON(std.out, nt)
	}
	t := nt.Token
	fmt.Fprintf(std.err, "%s token %d %q of %s: %s; %s; expires %s\n",
		verb, t.ID, t.Name, t.Org, scopeSummary(&t), strings.Join(t.Permissions, ","), timeOr(t.ExpiresAt, "never"))
	fmt.Fprintln(std.err, "The secret is shown only this once; store it now:")
	fmt.Fprintln(std.out, nt.Secret)
	return nil
}

type tokenListCmd struct {
	Org   string `arg:"" help:"Organization key."`
	State string `enum:"active,expired,revoked,all" default:"active" help:"Which tokens: active, expired, revoked or all."`
}

func (c *tokenListCmd) Run(ctx context.Context, g *globals, std *stdio) error {
	api, err := g.client()
	if err != nil {
		return err
	}
	seq := api.Tokens(ctx, c.Org, c.State)
	if g.json() {
		ts, err := client.Collect(seq)
		if err != nil {
			return err
		}
		return writeJSON(std.out, nonNil(ts))
	}
	t := newTable(std.out, "ID", "NAME", "HINT", "SCOPE", "PERMISSIONS", "EXPIRES", "LAST USED", "STATE")
	for tok, err := range seq {
		if err != nil {
			t.flush()
			return err
		}
		t.row(fmt.Sprint(tok.ID), tok.Name, tok.Hint, scopeSummary(&tok), strings.Join(tok.Permissions, ","),
			timeOr(tok.ExpiresAt, "never"), timeOr(tok.LastUsedAt, "never"), tok.State)
	}
	return t.flush()
}

type tokenGetCmd struct {
	Org string `arg:"" help:"Organization key."`
	ID  int64  `arg:"" help:"Token ID."`
}

func (c *tokenGetCmd) Run(ctx context.Context, g *globals, std *stdio) error {
	api, err := g.client()
	if err != nil {
		return err
	}
	t, err := api.Token(ctx, c.Org, c.ID)
	if err != nil {
		return err
	}
	if g.json() {
		return writeJSON(std.out, t)
	}
	lastIP := "-"
	if t.LastUsedIP != nil && *t.LastUsedIP != "" {
		lastIP = *t.LastUsedIP
	}
	cidrs := "anywhere"
	if len(t.AllowedCIDRs) > 0 {
		cidrs = strings.Join(t.AllowedCIDRs, " ")
	}
	rotation := "none"
	if r := t.Rotation; r != nil {
		rotation = "every " + r.Every
		if r.GracePeriod != "" {
			rotation += ", grace " + r.GracePeriod
		}
		rotation += ", next " + timeOr(t.NextRotationAt, "-")
	}
	return fields(std.out,
		"id", fmt.Sprint(t.ID),
		"org", t.Org,
		"name", t.Name,
		"description", t.Description,
		"hint", t.Hint,
		"scope", scopeSummary(t),
		"permissions", strings.Join(t.Permissions, ","),
		"allowed from", cidrs,
		"created", t.CreatedAt.UTC().Format(time.RFC3339)+" by "+t.CreatedBy.Login,
		"expires", timeOr(t.ExpiresAt, "never"),
		"last used", timeOr(t.LastUsedAt, "never")+" from "+lastIP,
		"rotation", rotation,
		"rotated", timeOr(t.RotatedAt, "never"),
		"state", t.State,
		"source", tokenSource(t),
	)
}

type tokenRevokeCmd struct {
	Org string `arg:"" help:"Organization key."`
	ID  int64  `arg:"" help:"Token ID."`
}

func (c *tokenRevokeCmd) Run(ctx context.Context, g *globals, std *stdio) error {
	api, err := g.client()
	if err != nil {
		return err
	}
	if err := api.RevokeToken(ctx, c.Org, c.ID); err != nil {
		return err
	}
	if !g.json() {
		fmt.Fprintf(std.out, "revoked token %d of %s\n", c.ID, c.Org)
	}
	return nil
}

type tokenRotateCmd struct {
	Org   string `arg:"" help:"Organization key."`
	ID    int64  `arg:"" help:"Token ID."`
	Grace string `placeholder:"24h" help:"Keep the old secret working this long (default: stop it now)."`
}

func (c *tokenRotateCmd) Run(ctx context.Context, g *globals, std *stdio) error {
	if c.Grace != "" {
		if _, err := time.ParseDuration(c.Grace); err != nil {
			return usageErrorf("--grace %q: want a duration such as 24h or 30m", c.Grace)
		}
	}
	api, err := g.client()
	if err != nil {
		return err
	}
	nt, err := api.RotateToken(ctx, c.Org, c.ID, c.Grace)
	if err != nil {
		return err
	}
	return printSecret(std, g, nt, "rotated")
}

type tokenProjectsCmd struct {
	Org string `arg:"" help:"Organization key."`
	ID  int64  `arg:"" help:"Token ID."`
}

func (c *tokenProjectsCmd) Run(ctx context.Context, g *globals, std *stdio) error {
	api, err := g.client()
	if err != nil {
		return err
	}
	return printProjects(std, g, api.TokenProjects(ctx, c.Org, c.ID))
}

type tokenPreviewCmd struct {
	Org string `arg:"" help:"Organization key."`
	scopeFlags
}

func (c *tokenPreviewCmd) Run(ctx context.Context, g *globals, std *stdio) error {
	scope, err := c.scope()
	if err != nil {
		return err
	}
	api, err := g.client()
	if err != nil {
		return err
	}
	p, err := api.PreviewScope(ctx, c.Org, scope)
	if err != nil {
		return err
	}
	if g.json() {
		p.Items = nonNil(p.Items)
		return writeJSON(std.out, p)
	}
	fmt.Fprintf(std.out, "%s of %s covered now\n", plural(p.Count, "project"), c.Org)
	t := newTable(std.out, "KEY", "NAME")
	for _, pr := range p.Items {
		t.row(pr.Key, pr.Name)
	}
	if err := t.flush(); err != nil {
		return err
	}
	if p.Count > len(p.Items) {
		fmt.Fprintf(std.out, "… and %d more\n", p.Count-len(p.Items))
	}
	return nil
}
