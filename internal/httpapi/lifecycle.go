package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/sot-dev/sot"
)

// rotationJSON is a token's rotation schedule.
type rotationJSON struct {
	Every       string `json:"every" doc:"Rotate every <n>d (within the organization's maximum lifetime); in PATCH, \"\" removes the schedule." example:"30d"`
	GracePeriod string `json:"grace_period,omitempty" doc:"How long the previous secret keeps working after each rotation, such as 24h." example:"24h"`
}

func toRotation(r *sot.TokenRotation) *rotationJSON {
	if r == nil {
		return nil
	}
	out := &rotationJSON{Every: r.EveryString()}
	if r.GracePeriod > 0 {
		out.GracePeriod = r.GracePeriod.String()
	}
	return out
}

// rotation parses a schedule under the organization's policy; nil for
// none. A schedule needs a webhook that receives token.rotated: that
// delivery is the only place the new secret goes, so without one the
// first scheduled rotation would lock the pipeline out.
func (a *API) rotation(ctx context.Context, org string, r *rotationJSON) (*sot.TokenRotation, error) {
	if r == nil || r.Every == "" {
		return nil, nil
	}
	o, err := a.cfg.Orgs.FindOrg(ctx, org)
	if err != nil {
		return nil, err
	}
	rot, err := sot.ParseRotation("rotation", r.Every, r.GracePeriod, o.TokenPolicy)
	if err != nil {
		return nil, err
	}
	ok, err := sot.OrgReceives(ctx, a.cfg.Webhooks, org, sot.EventTokenRotated)
	if err != nil {
		return nil, err
	}
	if !ok {
		msg := "a rotation schedule sends each new secret only in a token.rotated webhook delivery: create a webhook for token.rotated first"
		return nil, sot.Invalid(msg, sot.FieldError{Field: "rotation", Message: msg})
	}
	return rot, nil
}

type rotateBody struct {
	GracePeriod string `json:"grace_period,omitempty" doc:"How long the current secret keeps working, such as 24h (default: it stops now; at most 30 days)." example:"24h"`
}

func (b *rotateBody) grace() (time.Duration, error) {
	if b == nil {
		return 0, nil
	}
	g, err := sot.ParseGracePeriod(b.GracePeriod)
	if err != nil {
		return 0, sot.Invalid(err.Error(), sot.FieldError{Field: "grace_period", Message: err.Error()})
	}
	return g, nil
}

type orgTokenRotateInput struct {
	Org  string `path:"org"`
	ID   int64  `path:"id"`
	Body *rotateBody
}

type userTokenRotateInput struct {
	ID   int64 `path:"id"`
	Body *rotateBody
}

type selfRotateInput struct {
	Body *rotateBody
}

var errSelfRotate = &sot.Error{Code: sot.EFORBIDDEN, Message: "self-rotation is for organization tokens with the self_rotate permission; users rotate personal tokens with POST /api/v1/user/tokens/{id}/rotate"}

func (a *API) registerRotation() {
	huma.Register(a.huma, operation(http.MethodPost, "/api/v1/orgs/{org}/tokens/{id}/rotate", "rotate-org-token", "Organization tokens",
		"Give a token a new secret; the old one keeps working for the grace period", http.StatusOK),
		func(ctx context.Context, in *orgTokenRotateInput) (*bodyOutput[createdToken], error) {
			if err := principal(ctx).Authorize(sot.PermissionOrgAdmin, in.Org, ""); err != nil {
				return nil, err
			}
			return a.rotate(ctx, sot.TokenOwner{Org: in.Org}, in.ID, sot.TokenKindOrg, in.Body)
		})

	huma.Register(a.huma, operation(http.MethodPost, "/api/v1/user/tokens/{id}/rotate", "rotate-user-token", "Self",
		"Give one of the caller's personal tokens a new secret", http.StatusOK),
		func(ctx context.Context, in *userTokenRotateInput) (*bodyOutput[createdToken], error) {
			p, err := requireUser(ctx)
			if err != nil {
				return nil, err
			}
			return a.rotate(ctx, sot.TokenOwner{UserID: p.UserID()}, in.ID, sot.TokenKindPersonal, in.Body)
		})

	huma.Register(a.huma, operation(http.MethodPost, "/api/v1/tokens/self/rotate", "rotate-self", "Self",
		"Give the calling organization token a new secret (needs self_rotate)", http.StatusOK),
		func(ctx context.Context, in *selfRotateInput) (*bodyOutput[createdToken], error) {
			p := principal(ctx)
			if p.Kind != sot.PrincipalOrgToken {
				return nil, errSelfRotate
			}
			if err := p.Authorize(sot.PermissionSelfRotate, p.Token.Org, ""); err != nil {
				return nil, err
			}
			return a.rotate(ctx, sot.TokenOwner{Org: p.Token.Org}, p.Token.ID, sot.TokenKindOrg, in.Body)
		})
}

// rotate gives owner's token id (of kind) a new secret and returns it once.
func (a *API) rotate(ctx context.Context, owner sot.TokenOwner, id int64, kind sot.TokenKind, b *rotateBody) (*bodyOutput[createdToken], error) {
	grace, err := b.grace()
	if err != nil {
		return nil, err
	}
	now := a.now()
	secret := sot.NewSecret(kind)
	t, err := a.cfg.Lifecycle.RotateToken(ctx, owner, id, sot.RotateRequest{
		Now: now, Grace: grace, Hash: sot.HashSecret(secret), Hint: sot.SecretHint(secret),
	})
	if err != nil {
		return nil, err
	}
	return &bodyOutput[createdToken]{Body: createdToken{Token: toToken(t, now), Secret: secret}}, nil
}
