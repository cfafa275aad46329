package httpapi

import (
	"context"
	"net/http"
	"regexp"
	"slices"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/sot-dev/sot"
)

var loginRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$`)

var errInstanceAdmin = &sot.Error{Code: sot.EFORBIDDEN, Message: "this needs an instance administrator"}

// requireInstanceAdmin refuses anyone but an instance administrator.
func requireInstanceAdmin(ctx context.Context) (*sot.Principal, error) {
	p := principal(ctx)
	if !p.IsInstanceAdmin() {
		return nil, errInstanceAdmin
	}
	return p, nil
}

type userCreateInput struct {
	Body struct {
		Login    string `json:"login" doc:"Login name: letters, digits and _ . @ -, up to 100 characters."`
		Name     string `json:"name,omitempty"`
		Password string `json:"password" doc:"At least 8 characters."`
		Admin    bool   `json:"admin,omitempty" doc:"Make the user an instance administrator."`
	}
}

// ExpiryFields are the expiry fields of a token create request; exactly
// one of them is given. (Exported: huma documents embedded fields only when
// their type is exported.)
type ExpiryFields struct {
	ExpiresIn    string     `json:"expires_in,omitempty" doc:"Lifetime: 7d, 30d, 90d, 1y or any <n>d." example:"90d"`
	ExpiresAt    *time.Time `json:"expires_at,omitempty" doc:"Expiry time (RFC 3339)."`
	NeverExpires bool       `json:"never_expires,omitempty" doc:"No expiry, when the organization's policy allows it."`
}

func (e ExpiryFields) expiry() sot.Expiry {
	return sot.Expiry{In: e.ExpiresIn, At: e.ExpiresAt, Never: e.NeverExpires}
}

type personalTokenBody struct {
	Name string `json:"name"`
	ExpiryFields
}

type userTokenCreateInput struct {
	Login string `path:"login"`
	Body  personalTokenBody
}

// createdToken is the one response that holds a secret.
type createdToken struct {
	Token  tokenJSON `json:"token"`
	Secret string    `json:"secret" doc:"The token's secret, shown only this once."`
}

type orgCreateInput struct {
	Body struct {
		Key         string      `json:"key" doc:"Organization key: ^[A-Za-z0-9][A-Za-z0-9_.:-]{0,399}$"`
		Name        string      `json:"name,omitempty"`
		Description string      `json:"description,omitempty"`
		Plan        string      `json:"plan,omitempty" enum:"free,team,enterprise" doc:"Default free."`
		TokenPolicy *policyJSON `json:"token_policy,omitempty"`
	}
}

type orgListInput struct {
	PageParams
}

func (a *API) registerInstance() {
	huma.Register(a.huma, operation(http.MethodPost, "/api/v1/users", "create-user", "Instance", "Create a user (instance admin)", http.StatusCreated),
		func(ctx context.Context, in *userCreateInput) (*bodyOutput[userJSON], error) {
			if _, err := requireInstanceAdmin(ctx); err != nil {
				return nil, err
			}
			b := in.Body
			if !loginRE.MatchString(b.Login) {
				return nil, sot.Invalid("invalid login", sot.FieldError{Field: "login", Message: "letters, digits and _ . @ -, starting with a letter or digit, up to 100 characters"})
			}
			if b.Name == "" {
				b.Name = b.Login
			}
			hash, err := a.cfg.HashPassword(b.Password)
			if err != nil {
				return nil, err
			}
			u := &sot.User{Login: b.Login, Name: b.Name, Admin: b.Admin}
			if err := a.cfg.Users.CreateUser(ctx, u, hash); err != nil {
				return nil, err
			}
			return &bodyOutput[userJSON]{Body: toUser(u)}, nil
		})

	huma.Register(a.huma, operation(http.MethodGet, "/api/v1/users", "list-users", "Instance", "List users (instance admin)", http.StatusOK),
		func(ctx context.Context, in *orgListInput) (*listOutput[userJSON], error) {
			if _, err := requireInstanceAdmin(ctx); err != nil {
				return nil, err
			}
			users, next, err := a.cfg.Users.ListUsers(ctx, in.page())
			if err != nil {
				return nil, err
			}
			return listOf(users, next, toUser), nil
		})

	huma.Register(a.huma, operation(http.MethodPost, "/api/v1/users/{login}/tokens", "create-user-token", "Instance", "Create a personal token for a user (instance admin)", http.StatusCreated),
		func(ctx context.Context, in *userTokenCreateInput) (*bodyOutput[createdToken], error) {
			p, err := requireInstanceAdmin(ctx)
			if err != nil {
				return nil, err
			}
			u, err := a.cfg.Users.FindUserByLogin(ctx, in.Login)
			if err != nil {
				return nil, err
			}
			return a.createPersonalToken(ctx, u, sot.UserRef{ID: p.User.ID, Login: p.User.Login}, in.Body)
		})

	huma.Register(a.huma, operation(http.MethodPost, "/api/v1/orgs", "create-org", "Instance", "Create an organization (instance admin)", http.StatusCreated),
		func(ctx context.Context, in *orgCreateInput) (*bodyOutput[orgJSON], error) {
			p, err := requireInstanceAdmin(ctx)
			if err != nil {
				return nil, err
			}
			b := in.Body
			if !sot.ValidKey(b.Key) {
				return nil, sot.Invalid("invalid organization key", sot.FieldError{Field: "key", Message: "must match ^[A-Za-z0-9][A-Za-z0-9_.:-]{0,399}$"})
			}
			if b.Name == "" {
				b.Name = b.Key
			}
			if b.Plan == "" {
				b.Plan = string(sot.PlanFree)
			}
			org := &sot.Org{Key: b.Key, Name: b.Name, Description: b.Description, Plan: sot.Plan(b.Plan)}
			if b.TokenPolicy != nil {
				org.TokenPolicy = sot.TokenPolicy{
					MaxLifetimeDays:  b.TokenPolicy.MaxLifetimeDays,
					AllowNonExpiring: b.TokenPolicy.AllowNonExpiring,
					IdleWarningDays:  b.TokenPolicy.IdleWarningDays,
				}
				if err := org.TokenPolicy.Validate(); err != nil {
					return nil, err
				}
			}
			if err := a.cfg.Orgs.CreateOrg(ctx, org, p.UserID()); err != nil {
				return nil, err
			}
			return &bodyOutput[orgJSON]{Body: toOrg(org)}, nil
		})

	huma.Register(a.huma, operation(http.MethodGet, "/api/v1/orgs", "list-orgs", "Instance", "List the organizations the caller can see", http.StatusOK),
		func(ctx context.Context, in *orgListInput) (*listOutput[orgJSON], error) {
			orgs, next, err := a.visibleOrgs(ctx, nil, false, in.page())
			if err != nil {
				return nil, err
			}
			return listOf(orgs, next, toOrg), nil
		})
}

// visibleOrgs lists the organizations the caller can see, restricted to
// keys when given: an organization token sees exactly its own, a user their
// memberships, an instance admin all of them unless memberOnly.
func (a *API) visibleOrgs(ctx context.Context, keys []string, memberOnly bool, page sot.Page) ([]*sot.Org, string, error) {
	p := principal(ctx)
	if p.Kind == sot.PrincipalOrgToken {
		own := p.Token.Org
		if page.Token != "" || (len(keys) > 0 && !slices.Contains(keys, own)) || p.Authorize(sot.PermissionOrgRead, own, "") != nil {
			return nil, "", nil
		}
		org, err := a.cfg.Orgs.FindOrg(ctx, own)
		if err != nil {
			return nil, "", err
		}
		return []*sot.Org{org}, "", nil
	}
	return a.cfg.Orgs.ListOrgs(ctx, userOrgFilter(p, keys, memberOnly), page)
}

// userOrgFilter selects the organizations a user sees.
func userOrgFilter(p *sot.Principal, keys []string, memberOnly bool) sot.OrgFilter {
	f := sot.OrgFilter{Keys: keys}
	if memberOnly || !p.IsInstanceAdmin() {
		f.MemberID = p.UserID()
	}
	return f
}
