package main

import (
	"context"
	"fmt"
	"iter"
	"strconv"
	"time"

	"github.com/sot-dev/sot/client"
)

// orgCmd groups the organization commands.
type orgCmd struct {
	Create orgCreateCmd `cmd:"" help:"Create an organization (instance admins); you become its admin."`
	List   orgListCmd   `cmd:"" help:"List the organizations you can see."`
	Get    orgGetCmd    `cmd:"" help:"Show an organization."`
	Policy orgPolicyCmd `cmd:"" help:"Change an organization's token policy."`
}

type orgCreateCmd struct {
	Key  string `arg:"" help:"Organization key."`
	Name string `help:"Display name (default: the key)."`
	Plan string `enum:"free,team,enterprise" default:"free" help:"Plan: free, team or enterprise (organization tokens need team or enterprise)."`
}

func (c *orgCreateCmd) Run(ctx context.Context, g *globals, std *stdio) error {
	api, err := g.client()
	if err != nil {
		return err
	}
	name := c.Name
	if name == "" {
		name = c.Key
	}
	o, err := api.CreateOrg(ctx, client.CreateOrgRequest{Key: c.Key, Name: name, Plan: c.Plan})
	if err != nil {
		return err
	}
	return printOrg(std, g, o)
}

type orgListCmd struct{}

func (c *orgListCmd) Run(ctx context.Context, g *globals, std *stdio) error {
	api, err := g.client()
	if err != nil {
		return err
	}
	if g.json() {
		orgs, err := client.Collect(api.Orgs(ctx))
		if err != nil {
			return err
		}
		return writeJSON(std.out, nonNil(orgs))
	}
	t := newTable(std.out, "KEY", "NAME", "PLAN", "MAX LIFETIME", "NON-EXPIRING")
	for o, err := range api.Orgs(ctx) {
		if err != nil {
			t.flush()
			return err
		}
		t.row(o.Key, o.Name, o.Plan, fmt.Sprintf("%dd", o.TokenPolicy.MaxLifetimeDays), yesNo(o.TokenPolicy.AllowNonExpiring))
	}
	return t.flush()
}

type orgGetCmd struct {
	Key string `arg:"" help:"Organization key."`
}

func (c *orgGetCmd) Run(ctx context.Context, g *globals, std *stdio) error {
	api, err := g.client()
	if err != nil {
		return err
	}
	o, err := api.Org(ctx, c.Key)
	if err != nil {
		return err
	}
	return printOrg(std, g, o)
}

type orgPolicyCmd struct {
	Key              string `arg:"" help:"Organization key."`
	MaxLifetime      string `placeholder:"365d" help:"Longest lifetime of a new token: <n>d or <n>y."`
	AllowNonExpiring *bool  `negatable:"" help:"Allow tokens that never expire (--allow-non-expiring=false or --no-allow-non-expiring to forbid)."`
}

func (c *orgPolicyCmd) Run(ctx context.Context, g *globals, std *stdio) error {
	if c.MaxLifetime == "" && c.AllowNonExpiring == nil {
		return usageErrorf("give --max-lifetime and/or --allow-non-expiring")
	}
	api, err := g.client()
	if err != nil {
		return err
	}
	// The policy is replaced whole, so start from the current one to change
	// only what the flags name.
	o, err := api.Org(ctx, c.Key)
	if err != nil {
		return err
	}
	p := o.TokenPolicy
	if c.MaxLifetime != "" {
		days, err := parseDays(c.MaxLifetime)
		if err != nil {
			return usageErrorf("--max-lifetime: %v", err)
		}
		p.MaxLifetimeDays = days
	}
	if c.AllowNonExpiring != nil {
		p.AllowNonExpiring = *c.AllowNonExpiring
	}
	o, err = api.UpdateOrg(ctx, c.Key, client.OrgUpdate{TokenPolicy: &p})
	if err != nil {
		return err
	}
	return printOrg(std, g, o)
}

// parseDays parses "<n>d" or "<n>y" (365 days) into days.
func parseDays(s string) (int, error) {
	if len(s) < 2 {
		return 0, fmt.Errorf("invalid lifetime %q: want <n>d or <n>y, such as 365d or 1y", s)
	}
	n, err := strconv.Atoi(s[:len(s)-1])
	if err != nil || n < 1 {
		return 0, fmt.Errorf("invalid lifetime %q: want <n>d or <n>y, such as 365d or 1y", s)
	}
	switch s[len(s)-1] {
	case 'd':
		return n, nil
	case 'y':
		return n * 365, nil
	}
	return 0, fmt.Errorf("invalid lifetime %q: want <n>d or <n>y, such as 365d or 1y", s)
}

func printOrg(std *stdio, g *globals, o *client.Org) error {
	if g.json() {
		return writeJSON(std.out, o)
	}
	return fields(std.out,
		"key", o.Key,
		"name", o.Name,
		"plan", o.Plan,
		"max token lifetime", fmt.Sprintf("%d days", o.TokenPolicy.MaxLifetimeDays),
		"non-expiring tokens", allowed(o.TokenPolicy.AllowNonExpiring),
		"created", o.CreatedAt.UTC().Format(time.RFC3339))
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func allowed(b bool) string {
	if b {
		return "allowed"
	}
	return "not allowed"
}

// nonNil makes an empty list print as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// projectCmd groups the project commands.
type projectCmd struct {
	Create projectCreateCmd `cmd:"" help:"Create a project (org admins, or a token with provision)."`
	List   projectListCmd   `cmd:"" help:"List or search an organization's projects."`
	Get    projectGetCmd    `cmd:"" help:"Show a project; exit 1 when there is no such project (a CI step's existence check)."`
	Delete projectDeleteCmd `cmd:"" help:"Delete a project."`
}

type projectCreateCmd struct {
	Org  string `arg:"" help:"Organization key."`
	Key  string `arg:"" help:"Project key."`
	Name string `help:"Display name (default: the key)."`
}

func (c *projectCreateCmd) Run(ctx context.Context, g *globals, std *stdio) error {
	api, err := g.client()
	if err != nil {
		return err
	}
	name := c.Name
	if name == "" {
		name = c.Key
	}
	p, err := api.CreateProject(ctx, c.Org, client.CreateProjectRequest{Key: c.Key, Name: name})
	if err != nil {
		return err
	}
	if g.json() {
		return writeJSON(std.out, p)
	}
	fmt.Fprintf(std.out, "created project %s in %s\n", p.Key, c.Org)
	return nil
}

type projectListCmd struct {
	Org   string `arg:"" help:"Organization key."`
	Query string `short:"q" help:"Keep projects whose key or name contains this."`
}

func (c *projectListCmd) Run(ctx context.Context, g *globals, std *stdio) error {
	api, err := g.client()
	if err != nil {
		return err
	}
	return printProjects(std, g, api.Projects(ctx, c.Org, c.Query))
}

// printProjects writes a list of projects, streaming the table.
func printProjects(std *stdio, g *globals, seq iter.Seq2[client.Project, error]) error {
	if g.json() {
		ps, err := client.Collect(seq)
		if err != nil {
			return err
		}
		return writeJSON(std.out, nonNil(ps))
	}
	t := newTable(std.out, "KEY", "NAME", "CREATED")
	for p, err := range seq {
		if err != nil {
			t.flush()
			return err
		}
		t.row(p.Key, p.Name, p.CreatedAt.UTC().Format(time.RFC3339))
	}
	return t.flush()
}

type projectGetCmd struct {
	Org string `arg:"" help:"Organization key."`
	Key string `arg:"" help:"Project key."`
}

func (c *projectGetCmd) Run(ctx context.Context, g *globals, std *stdio) error {
	api, err := g.client()
	if err != nil {
		return err
	}
	p, err := api.Project(ctx, c.Org, c.Key)
	if err != nil {
		return err
	}
	if g.json() {
		return writeJSON(std.out, p)
	}
	return fields(std.out, "org", p.Org, "key", p.Key, "name", p.Name, "created", p.CreatedAt.UTC().Format(time.RFC3339))
}

type projectDeleteCmd struct {
	Org string `arg:"" help:"Organization key."`
	Key string `arg:"" help:"Project key."`
}

func (c *projectDeleteCmd) Run(ctx context.Context, g *globals, std *stdio) error {
	api, err := g.client()
	if err != nil {
		return err
	}
	if err := api.DeleteProject(ctx, c.Org, c.Key); err != nil {
		return err
	}
	if !g.json() {
		fmt.Fprintf(std.out, "deleted project %s of %s\n", c.Key, c.Org)
	}
	return nil
}

// memberCmd groups the membership commands.
type memberCmd struct {
	Set    memberSetCmd    `cmd:"" help:"Add a user to an organization, or change their role."`
	Remove memberRemoveCmd `cmd:"" help:"Remove a user from an organization (their personal tokens lose it at once)."`
	List   memberListCmd   `cmd:"" help:"List an organization's members."`
}

type memberSetCmd struct {
	Org   string `arg:"" help:"Organization key."`
	Login string `arg:"" help:"User login."`
	Role  string `required:"" enum:"admin,member" help:"Role: admin or member."`
}

func (c *memberSetCmd) Run(ctx context.Context, g *globals, std *stdio) error {
	api, err := g.client()
	if err != nil {
		return err
	}
	m, err := api.SetMember(ctx, c.Org, c.Login, c.Role)
	if err != nil {
		return err
	}
	if g.json() {
		return writeJSON(std.out, m)
	}
	fmt.Fprintf(std.out, "%s is %s of %s\n", c.Login, m.Role, c.Org)
	return nil
}

type memberRemoveCmd struct {
	Org   string `arg:"" help:"Organization key."`
	Login string `arg:"" help:"User login."`
}

func (c *memberRemoveCmd) Run(ctx context.Context, g *globals, std *stdio) error {
	api, err := g.client()
	if err != nil {
		return err
	}
	if err := api.RemoveMember(ctx, c.Org, c.Login); err != nil {
		return err
	}
	if !g.json() {
		fmt.Fprintf(std.out, "removed %s from %s\n", c.Login, c.Org)
	}
	return nil
}

type memberListCmd struct {
	Org string `arg:"" help:"Organization key."`
}

func (c *memberListCmd) Run(ctx context.Context, g *globals, std *stdio) error {
	api, err := g.client()
	if err != nil {
		return err
	}
	if g.json() {
		ms, err := client.Collect(api.Members(ctx, c.Org))
		if err != nil {
			return err
		}
		return writeJSON(std.out, nonNil(ms))
	}
	t := newTable(std.out, "LOGIN", "NAME", "ROLE")
	for m, err := range api.Members(ctx, c.Org) {
		if err != nil {
			t.flush()
			return err
		}
		t.row(m.Login, m.Name, m.Role)
	}
	return t.flush()
}
