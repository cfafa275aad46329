package httpapi

import (
	"cmp"
	"context"
	"net/http"
	"slices"

	"github.com/danielgtaylor/huma/v2"

	"github.com/sot-dev/sot"
)

type meMembership struct {
	Org  string `json:"org"`
	Role string `json:"role" enum:"admin,member"`
}

// meJSON describes the caller: a user (by session or personal token) or an
// organization token.
type meJSON struct {
	Type        string         `json:"type" enum:"user,org_token"`
	User        *userJSON      `json:"user,omitempty"`
	Memberships []meMembership `json:"memberships,omitempty"`
	Token       *tokenJSON     `json:"token,omitempty" doc:"The token used, for token callers."`
	Org         *orgJSON       `json:"org,omitempty" doc:"The organization of an organization token."`
}

type idInput struct {
	ID int64 `path:"id"`
}

var errNoPersonalTokens = &sot.Error{Code: sot.EFORBIDDEN, Message: "organization tokens have no personal tokens: use a user's credential"}

// requireUser refuses organization tokens, which act for no user.
func requireUser(ctx context.Context) (*sot.Principal, error) {
	p := principal(ctx)
	if p.UserID() == 0 {
		return nil, errNoPersonalTokens
	}
	return p, nil
}

type userTokenListInput struct {
	State string `query:"state" enum:"active,expired,revoked,all" doc:"Default active."`
	PageParams
}

func (a *API) registerSelf() {
	huma.Register(a.huma, operation(http.MethodGet, "/api/v1/me", "get-me", "Self", "Describe the caller", http.StatusOK),
		func(ctx context.Context, _ *struct{}) (*bodyOutput[meJSON], error) {
			p := principal(ctx)
			now := a.now()
			if p.Kind == sot.PrincipalOrgToken {
				org, err := a.cfg.Orgs.FindOrg(ctx, p.Token.Org)
				if err != nil {
					return nil, err
				}
				t, o := toToken(p.Token, now), toOrg(org)
				return &bodyOutput[meJSON]{Body: meJSON{Type: "org_token", Token: &t, Org: &o}}, nil
			}
			u := toUser(p.User)
			me := meJSON{Type: "user", User: &u, Memberships: []meMembership{}}
			for org, role := range p.Memberships {
				me.Memberships = append(me.Memberships, meMembership{Org: org, Role: string(role)})
			}
			slices.SortFunc(me.Memberships, func(x, y meMembership) int { return cmp.Compare(x.Org, y.Org) })
			if p.Token != nil {
				t := toToken(p.Token, now)
				me.Token = &t
			}
			return &bodyOutput[meJSON]{Body: me}, nil
		})

	huma.Register(a.huma, operation(http.MethodGet, "/api/v1/user/tokens", "list-user-tokens", "Self", "List the caller's personal tokens", http.StatusOK),
		func(ctx context.Context, in *userTokenListInput) (*listOutput[tokenJSON], error) {
			p, err := requireUser(ctx)
			if err != nil {
				return nil, err
			}
			return a.listTokens(ctx, sot.TokenOwner{UserID: p.UserID()}, in.State, in.page())
		})

	huma.Register(a.huma, operation(http.MethodPost, "/api/v1/user/tokens", "create-user-token-self", "Self", "Create a personal token for the caller", http.StatusCreated),
		func(ctx context.Context, in *struct{ Body personalTokenBody }) (*bodyOutput[createdToken], error) {
			p, err := requireUser(ctx)
			if err != nil {
				return nil, err
			}
			return a.createPersonalToken(ctx, p.User, sot.UserRef{ID: p.User.ID, Login: p.User.Login}, in.Body)
		})

	huma.Register(a.huma, operation(http.MethodDelete, "/api/v1/user/tokens/{id}", "revoke-user-token", "Self", "Revoke one of the caller's personal tokens", http.StatusNoContent),
		func(ctx context.Context, in *idInput) (*struct{}, error) {
			p, err := requireUser(ctx)
			if err != nil {
				return nil, err
			}
			if _, err := a.cfg.Tokens.RevokeToken(ctx, sot.TokenOwner{UserID: p.UserID()}, in.ID, a.now()); err != nil {
				return nil, err
			}
			return nil, nil
		})
}

// createPersonalToken creates a personal token of user, made by creator.
func (a *API) createPersonalToken(ctx context.Context, user *sot.User, creator sot.UserRef, b personalTokenBody) (*bodyOutput[createdToken], error) {
	req := sot.TokenRequest{Name: b.Name, Expiry: b.expiry()}
	now := a.now()
	t, secret, err := sot.PreparePersonalToken(user, creator, req, sot.PersonalTokenPolicy(), now)
	if err != nil {
		return nil, err
	}
	if err := a.cfg.Tokens.CreateToken(ctx, t, sot.HashSecret(secret)); err != nil {
		return nil, err
	}
	return &bodyOutput[createdToken]{Body: createdToken{Token: toToken(t, now), Secret: secret}}, nil
}

// listTokens lists owner's tokens in a state ("" for active).
func (a *API) listTokens(ctx context.Context, owner sot.TokenOwner, state string, page sot.Page) (*listOutput[tokenJSON], error) {
	return a.listTokensFiltered(ctx, owner, sot.TokenFilter{State: sot.TokenState(state)}, page)
}

// listTokensFiltered lists owner's tokens that filter selects at now.
func (a *API) listTokensFiltered(ctx context.Context, owner sot.TokenOwner, filter sot.TokenFilter, page sot.Page) (*listOutput[tokenJSON], error) {
	if filter.State == "" {
		filter.State = sot.TokenStateActive
	}
	if !filter.State.Valid() {
		return nil, sot.Invalid("invalid state", sot.FieldError{Field: "state", Message: "want active, expired, revoked, all or expiring"})
	}
	now := a.now()
	filter.Now = now
	tokens, next, err := a.cfg.Tokens.ListTokens(ctx, owner, filter, page)
	if err != nil {
		return nil, err
	}
	return listOf(tokens, next, func(t *sot.Token) tokenJSON { return toToken(t, now) }), nil
}
