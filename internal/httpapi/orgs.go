package httpapi

import (
	"context"
	"net/http"

	"github.com/danielgtaylor/huma/v2"

	"github.com/sot-dev/sot"
)

type orgInput struct {
	Org string `path:"org"`
}

type policyPatch struct {
	MaxLifetimeDays  *int  `json:"max_lifetime_days,omitempty"`
	AllowNonExpiring *bool `json:"allow_non_expiring,omitempty"`
	IdleWarningDays  *int  `json:"idle_warning_days,omitempty"`
}

type orgPatchInput struct {
	Org  string `path:"org"`
	Body struct {
		Name        *string      `json:"name,omitempty"`
		Description *string      `json:"description,omitempty"`
		Plan        *string      `json:"plan,omitempty" enum:"free,team,enterprise" doc:"Instance admin only."`
		TokenPolicy *policyPatch `json:"token_policy,omitempty"`
	}
}

type memberListInput struct {
	Org string `path:"org"`
	PageParams
}

type memberInput struct {
	Org   string `path:"org"`
	Login string `path:"login"`
}

type memberSetInput struct {
	Org   string `path:"org"`
	Login string `path:"login"`
	Body  struct {
		Role string `json:"role" enum:"admin,member"`
	}
}

type memberSetOutput struct {
	Status int
	Body   memberJSON
}

type projectListInput struct {
	Org string `path:"org"`
	Q   string `query:"q" maxLength:"400" doc:"Keep projects whose key or name contains this (case-insensitive)."`
	PageParams
}

type projectInput struct {
	Org     string `path:"org"`
	Project string `path:"project"`
}

type projectCreateInput struct {
	Org  string `path:"org"`
	Body struct {
		Key  string `json:"key" doc:"Project key: ^[A-Za-z0-9][A-Za-z0-9_.:-]{0,399}$"`
		Name string `json:"name,omitempty" doc:"Default: the key."`
	}
}

func (a *API) registerOrgs() {
	huma.Register(a.huma, operation(http.MethodGet, "/api/v1/orgs/{org}", "get-org", "Organization", "Get an organization", http.StatusOK),
		func(ctx context.Context, in *orgInput) (*bodyOutput[orgJSON], error) {
			if err := principal(ctx).Authorize(sot.PermissionOrgRead, in.Org, ""); err != nil {
				return nil, err
			}
			org, err := a.cfg.Orgs.FindOrg(ctx, in.Org)
			if err != nil {
				return nil, err
			}
			return &bodyOutput[orgJSON]{Body: toOrg(org)}, nil
		})

	huma.Register(a.huma, operation(http.MethodPatch, "/api/v1/orgs/{org}", "update-org", "Organization", "Update an organization", http.StatusOK),
		func(ctx context.Context, in *orgPatchInput) (*bodyOutput[orgJSON], error) {
			p := principal(ctx)
			if err := p.Authorize(sot.PermissionOrgAdmin, in.Org, ""); err != nil {
				return nil, err
			}
			b := in.Body
			upd := sot.OrgUpdate{Name: b.Name, Description: b.Description}
			if b.Name != nil && *b.Name == "" {
				return nil, sot.Invalid("invalid name", sot.FieldError{Field: "name", Message: "must not be empty"})
			}
			if b.Plan != nil {
				if !p.IsInstanceAdmin() {
					return nil, &sot.Error{Code: sot.EFORBIDDEN, Message: "changing the plan needs an instance administrator"}
				}
				plan := sot.Plan(*b.Plan)
				upd.Plan = &plan
			}
			if b.TokenPolicy != nil {
				org, err := a.cfg.Orgs.FindOrg(ctx, in.Org)
				if err != nil {
					return nil, err
				}
				pol := org.TokenPolicy
				if v := b.TokenPolicy.MaxLifetimeDays; v != nil {
					pol.MaxLifetimeDays = *v
				}
				if v := b.TokenPolicy.AllowNonExpiring; v != nil {
					pol.AllowNonExpiring = *v
				}
				if v := b.TokenPolicy.IdleWarningDays; v != nil {
					pol.IdleWarningDays = *v
				}
				if err := pol.Validate(); err != nil {
					return nil, err
				}
				upd.TokenPolicy = &pol
			}
			org, err := a.cfg.Orgs.UpdateOrg(ctx, in.Org, upd)
			if err != nil {
				return nil, err
			}
			return &bodyOutput[orgJSON]{Body: toOrg(org)}, nil
		})

	huma.Register(a.huma, operation(http.MethodGet, "/api/v1/orgs/{org}/members", "list-members", "Organization", "List members", http.StatusOK),
		func(ctx context.Context, in *memberListInput) (*listOutput[memberJSON], error) {
			if err := principal(ctx).Authorize(sot.PermissionOrgAdmin, in.Org, ""); err != nil {
				return nil, err
			}
			ms, next, err := a.cfg.Orgs.ListMembers(ctx, in.Org, in.page())
			if err != nil {
				return nil, err
			}
			return listOf(ms, next, toMember), nil
		})

	huma.Register(a.huma, operation(http.MethodPut, "/api/v1/orgs/{org}/members/{login}", "set-member", "Organization", "Add a member or change their role", http.StatusOK),
		func(ctx context.Context, in *memberSetInput) (*memberSetOutput, error) {
			if err := principal(ctx).Authorize(sot.PermissionOrgAdmin, in.Org, ""); err != nil {
				return nil, err
			}
			m, created, err := a.cfg.Orgs.SetMember(ctx, in.Org, in.Login, sot.Role(in.Body.Role))
			if err != nil {
				return nil, err
			}
			out := &memberSetOutput{Status: http.StatusOK, Body: toMember(m)}
			if created {
				out.Status = http.StatusCreated
			}
			return out, nil
		})

	huma.Register(a.huma, operation(http.MethodDelete, "/api/v1/orgs/{org}/members/{login}", "remove-member", "Organization", "Remove a member", http.StatusNoContent),
		func(ctx context.Context, in *memberInput) (*struct{}, error) {
			if err := principal(ctx).Authorize(sot.PermissionOrgAdmin, in.Org, ""); err != nil {
				return nil, err
			}
			return nil, a.cfg.Orgs.RemoveMember(ctx, in.Org, in.Login)
		})

	huma.Register(a.huma, operation(http.MethodGet, "/api/v1/orgs/{org}/projects", "list-projects", "Organization", "List or search projects", http.StatusOK),
		func(ctx context.Context, in *projectListInput) (*listOutput[projectJSON], error) {
			p := principal(ctx)
			if err := p.Authorize(sot.PermissionBrowse, in.Org, ""); err != nil {
				return nil, err
			}
			filter := sot.ProjectFilter{Query: in.Q}
			if p.Kind == sot.PrincipalOrgToken && !p.Scope.All() {
				filter.Match = p.Scope.Match
			}
			ps, next, err := a.cfg.Projects.ListProjects(ctx, in.Org, filter, in.page())
			if err != nil {
				return nil, err
			}
			return listOf(ps, next, toProject), nil
		})

	huma.Register(a.huma, operation(http.MethodPost, "/api/v1/orgs/{org}/projects", "create-project", "Organization", "Create a project", http.StatusCreated),
		func(ctx context.Context, in *projectCreateInput) (*bodyOutput[projectJSON], error) {
			b := in.Body
			if !sot.ValidKey(b.Key) {
				// Check the organization first, so a stranger learns nothing.
				if err := principal(ctx).Authorize(sot.PermissionOrgRead, in.Org, ""); err != nil {
					return nil, err
				}
				return nil, sot.Invalid("invalid project key", sot.FieldError{Field: "key", Message: "must match ^[A-Za-z0-9][A-Za-z0-9_.:-]{0,399}$"})
			}
			if err := principal(ctx).Authorize(sot.PermissionProvision, in.Org, b.Key); err != nil {
				return nil, err
			}
			if b.Name == "" {
				b.Name = b.Key
			}
			pr := &sot.Project{Org: in.Org, Key: b.Key, Name: b.Name}
			if err := a.cfg.Projects.CreateProject(ctx, pr); err != nil {
				return nil, err
			}
			return &bodyOutput[projectJSON]{Body: toProject(pr)}, nil
		})

	huma.Register(a.huma, operation(http.MethodGet, "/api/v1/orgs/{org}/projects/{project}", "get-project", "Organization", "Get a project", http.StatusOK),
		func(ctx context.Context, in *projectInput) (*bodyOutput[projectJSON], error) {
			if err := principal(ctx).Authorize(sot.PermissionBrowse, in.Org, in.Project); err != nil {
				return nil, err
			}
			pr, err := a.cfg.Projects.FindProject(ctx, in.Org, in.Project)
			if err != nil {
				return nil, err
			}
			return &bodyOutput[projectJSON]{Body: toProject(pr)}, nil
		})

	huma.Register(a.huma, operation(http.MethodDelete, "/api/v1/orgs/{org}/projects/{project}", "delete-project", "Organization", "Delete a project and its analyses", http.StatusNoContent),
		func(ctx context.Context, in *projectInput) (*struct{}, error) {
			if err := principal(ctx).Authorize(sot.PermissionOrgAdmin, in.Org, in.Project); err != nil {
				return nil, err
			}
			return nil, a.cfg.Projects.DeleteProject(ctx, in.Org, in.Project)
		})
}
