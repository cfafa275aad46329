package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/sot-dev/sot"
)

type orgTokenBody struct {
	Name         string        `json:"name"`
	Description  string        `json:"description,omitempty"`
	Scope        scopeJSON     `json:"scope"`
	Permissions  []string      `json:"permissions" enum:"scan,browse,provision,self_rotate"`
	AllowedCIDRs []string      `json:"allowed_cidrs,omitempty" doc:"Client networks allowed to use the token (CIDR or address); empty: any."`
	Rotation     *rotationJSON `json:"rotation,omitempty" doc:"Rotate on a schedule; the new secret goes out in a signed token.rotated webhook delivery."`
	ExpiryFields
}

type orgTokenCreateInput struct {
	Org  string `path:"org"`
	Body orgTokenBody
}

type orgTokenListInput struct {
	Org    string `path:"org"`
	State  string `query:"state" enum:"active,expired,revoked,all,expiring" doc:"Default active; expiring: live tokens that expire within 30 days (or within)."`
	Within string `query:"within" maxLength:"8" doc:"The horizon of state=expiring, such as 7d." example:"7d"`
	PageParams
}

type orgTokenInput struct {
	Org string `path:"org"`
	ID  int64  `path:"id"`
}

type orgTokenPatchInput struct {
	Org  string `path:"org"`
	ID   int64  `path:"id"`
	Body struct {
		Name         *string       `json:"name,omitempty"`
		Description  *string       `json:"description,omitempty"`
		Scope        *scopeJSON    `json:"scope,omitempty"`
		Permissions  []string      `json:"permissions,omitempty" enum:"scan,browse,provision,self_rotate"`
		AllowedCIDRs *[]string     `json:"allowed_cidrs,omitempty"`
		Rotation     *rotationJSON `json:"rotation,omitempty"`
	}
}

type tokenProjectsInput struct {
	Org string `path:"org"`
	ID  int64  `path:"id"`
	PageParams
}

type scopePreviewInput struct {
	Org  string `path:"org"`
	Body struct {
		Scope scopeJSON `json:"scope"`
	}
}

type scopePreview struct {
	Count int           `json:"count" doc:"How many projects the scope covers now."`
	Items []projectJSON `json:"items" doc:"The first projects covered."`
}

type auditListInput struct {
	Org    string `path:"org"`
	Action string `query:"action" maxLength:"100" doc:"Keep events with this action (token.created, member.removed, …)."`
	Target string `query:"target" maxLength:"500" doc:"Keep events about this target."`
	PageParams
}

func (a *API) registerTokens() {
	huma.Register(a.huma, operation(http.MethodPost, "/api/v1/orgs/{org}/tokens", "create-org-token", "Organization tokens", "Create an organization token", http.StatusCreated),
		func(ctx context.Context, in *orgTokenCreateInput) (*bodyOutput[createdToken], error) {
			p := principal(ctx)
			if err := p.Authorize(sot.PermissionOrgAdmin, in.Org, ""); err != nil {
				return nil, err
			}
			b := in.Body
			perms, err := sot.ParsePermissionSet(b.Permissions)
			if err != nil {
				return nil, err
			}
			cidrs, err := sot.ParseCIDRs("allowed_cidrs", b.AllowedCIDRs)
			if err != nil {
				return nil, err
			}
			org, err := a.cfg.Orgs.FindOrg(ctx, in.Org)
			if err != nil {
				return nil, err
			}
			now := a.now()
			req := sot.TokenRequest{Name: b.Name, Description: b.Description, Scope: b.Scope.scope(),
				Permissions: perms, Expiry: b.expiry(), AllowedCIDRs: cidrs}
			t, secret, err := sot.PrepareOrgToken(org, sot.UserRef{ID: p.User.ID, Login: p.User.Login}, req, now)
			if err != nil {
				return nil, err
			}
			if t.Rotation, err = a.rotation(ctx, in.Org, b.Rotation); err != nil {
				return nil, err
			}
			if err := a.cfg.Tokens.CreateToken(ctx, t, sot.HashSecret(secret)); err != nil {
				return nil, err
			}
			return &bodyOutput[createdToken]{Body: createdToken{Token: toToken(t, now), Secret: secret}}, nil
		})

	huma.Register(a.huma, operation(http.MethodGet, "/api/v1/orgs/{org}/tokens", "list-org-tokens", "Organization tokens", "List organization tokens", http.StatusOK),
		func(ctx context.Context, in *orgTokenListInput) (*listOutput[tokenJSON], error) {
			if err := principal(ctx).Authorize(sot.PermissionOrgAdmin, in.Org, ""); err != nil {
				return nil, err
			}
			filter := sot.TokenFilter{State: sot.TokenState(in.State)}
			if in.Within != "" {
				days, err := sot.ParseLifetime(in.Within)
				if err != nil {
					return nil, sot.Invalid(err.Error(), sot.FieldError{Field: "within", Message: err.Error()})
				}
				filter.ExpiringWithin = time.Duration(days) * sot.Day
			}
			return a.listTokensFiltered(ctx, sot.TokenOwner{Org: in.Org}, filter, in.page())
		})

	huma.Register(a.huma, operation(http.MethodGet, "/api/v1/orgs/{org}/tokens/{id}", "get-org-token", "Organization tokens", "Get an organization token", http.StatusOK),
		func(ctx context.Context, in *orgTokenInput) (*bodyOutput[tokenJSON], error) {
			if err := principal(ctx).Authorize(sot.PermissionOrgAdmin, in.Org, ""); err != nil {
				return nil, err
			}
			t, err := a.cfg.Tokens.FindToken(ctx, sot.TokenOwner{Org: in.Org}, in.ID)
			if err != nil {
				return nil, err
			}
			return &bodyOutput[tokenJSON]{Body: toToken(t, a.now())}, nil
		})

	huma.Register(a.huma, operation(http.MethodPatch, "/api/v1/orgs/{org}/tokens/{id}", "update-org-token", "Organization tokens", "Update an organization token (takes effect at once)", http.StatusOK),
		func(ctx context.Context, in *orgTokenPatchInput) (*bodyOutput[tokenJSON], error) {
			if err := principal(ctx).Authorize(sot.PermissionOrgAdmin, in.Org, ""); err != nil {
				return nil, err
			}
			b := in.Body
			upd := sot.TokenUpdate{Name: b.Name, Description: b.Description}
			if b.Name != nil {
				if err := sot.ValidateTokenName("name", *b.Name); err != nil {
					return nil, err
				}
			}
			if b.Description != nil && len(*b.Description) > sot.MaxTokenDescriptionLen {
				return nil, sot.Invalid("description too long", sot.FieldError{Field: "description", Message: "too long"})
			}
			if b.Scope != nil {
				s := b.Scope.scope()
				if err := s.Validate("scope"); err != nil {
					return nil, err
				}
				upd.Scope = &s
			}
			if b.Permissions != nil {
				perms, err := sot.ParsePermissionSet(b.Permissions)
				if err != nil {
					return nil, err
				}
				upd.Permissions = &perms
			}
			if b.AllowedCIDRs != nil {
				cidrs, err := sot.ParseCIDRs("allowed_cidrs", *b.AllowedCIDRs)
				if err != nil {
					return nil, err
				}
				upd.AllowedCIDRs = &cidrs
			}
			var rot *sot.TokenRotation
			if b.Rotation != nil {
				var err error
				if rot, err = a.rotation(ctx, in.Org, b.Rotation); err != nil {
					return nil, err
				}
			}
			t, err := a.cfg.Tokens.UpdateToken(ctx, sot.TokenOwner{Org: in.Org}, in.ID, upd)
			if err != nil {
				return nil, err
			}
			if b.Rotation != nil {
				if t, err = a.cfg.Lifecycle.SetTokenRotation(ctx, sot.TokenOwner{Org: in.Org}, in.ID, rot, a.now()); err != nil {
					return nil, err
				}
			}
			return &bodyOutput[tokenJSON]{Body: toToken(t, a.now())}, nil
		})

	huma.Register(a.huma, operation(http.MethodDelete, "/api/v1/orgs/{org}/tokens/{id}", "revoke-org-token", "Organization tokens", "Revoke an organization token", http.StatusNoContent),
		func(ctx context.Context, in *orgTokenInput) (*struct{}, error) {
			if err := principal(ctx).Authorize(sot.PermissionOrgAdmin, in.Org, ""); err != nil {
				return nil, err
			}
			_, err := a.cfg.Tokens.RevokeToken(ctx, sot.TokenOwner{Org: in.Org}, in.ID, a.now())
			return nil, err
		})

	huma.Register(a.huma, operation(http.MethodGet, "/api/v1/orgs/{org}/tokens/{id}/projects", "list-org-token-projects", "Organization tokens", "List the projects a token covers now", http.StatusOK),
		func(ctx context.Context, in *tokenProjectsInput) (*listOutput[projectJSON], error) {
			if err := principal(ctx).Authorize(sot.PermissionOrgAdmin, in.Org, ""); err != nil {
				return nil, err
			}
			t, err := a.cfg.Tokens.FindToken(ctx, sot.TokenOwner{Org: in.Org}, in.ID)
			if err != nil {
				return nil, err
			}
			filter, err := scopeFilter(t.Scope)
			if err != nil {
				return nil, err
			}
			ps, next, err := a.cfg.Projects.ListProjects(ctx, in.Org, filter, in.page())
			if err != nil {
				return nil, err
			}
			return listOf(ps, next, toProject), nil
		})

	huma.Register(a.huma, operation(http.MethodPost, "/api/v1/orgs/{org}/scope-preview", "preview-scope", "Organization tokens", "Preview the projects a scope covers", http.StatusOK),
		func(ctx context.Context, in *scopePreviewInput) (*bodyOutput[scopePreview], error) {
			if err := principal(ctx).Authorize(sot.PermissionOrgAdmin, in.Org, ""); err != nil {
				return nil, err
			}
			filter, err := scopeFilter(in.Body.Scope.scope())
			if err != nil {
				return nil, err
			}
			n, err := a.cfg.Projects.CountProjects(ctx, in.Org, filter)
			if err != nil {
				return nil, err
			}
			ps, _, err := a.cfg.Projects.ListProjects(ctx, in.Org, filter, sot.Page{})
			if err != nil {
				return nil, err
			}
			out := scopePreview{Count: n, Items: make([]projectJSON, len(ps))}
			for i, p := range ps {
				out.Items[i] = toProject(p)
			}
			return &bodyOutput[scopePreview]{Body: out}, nil
		})

	huma.Register(a.huma, operation(http.MethodGet, "/api/v1/orgs/{org}/audit", "list-audit", "Organization", "List audit events, newest first", http.StatusOK),
		func(ctx context.Context, in *auditListInput) (*listOutput[auditJSON], error) {
			if err := principal(ctx).Authorize(sot.PermissionOrgAdmin, in.Org, ""); err != nil {
				return nil, err
			}
			evs, next, err := a.cfg.Audit.ListEvents(ctx, in.Org, sot.AuditFilter{Action: in.Action, Target: in.Target}, in.page())
			if err != nil {
				return nil, err
			}
			return listOf(evs, next, toAudit), nil
		})
}

// scopeFilter compiles a scope into the project filter that selects what it
// covers.
func scopeFilter(s sot.Scope) (sot.ProjectFilter, error) {
	m, err := s.Compile()
	if err != nil {
		return sot.ProjectFilter{}, err
	}
	if m.All() {
		return sot.ProjectFilter{}, nil
	}
	return sot.ProjectFilter{Match: m.Match}, nil
}
