package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/danielgtaylor/huma/v2"

	"github.com/sot-dev/sot"
)

type webhookJSON struct {
	ID        int64       `json:"id"`
	Org       string      `json:"org"`
	URL       string      `json:"url"`
	Events    []string    `json:"events"`
	CreatedBy userRefJSON `json:"created_by"`
	CreatedAt time.Time   `json:"created_at"`
	UpdatedAt time.Time   `json:"updated_at"`
	// Secret is set only in the response that created it.
	Secret string `json:"secret,omitempty" doc:"The signing secret: only in the response to the request that set it."`
}

func toWebhook(w *sot.Webhook) webhookJSON {
	return webhookJSON{ID: w.ID, Org: w.Org, URL: w.URL, Events: w.Events,
		CreatedBy: userRefJSON{ID: w.CreatedBy.ID, Login: w.CreatedBy.Login}, CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt}
}

type webhookCreateInput struct {
	Org  string `path:"org"`
	Body struct {
		URL    string   `json:"url" maxLength:"2000" doc:"Where deliveries are POSTed: http or https, any host (receivers are often on internal networks)."`
		Events []string `json:"events" minItems:"1" maxItems:"7" enum:"token.created,token.revoked,token.rotated,token.expiring,token.expired,token.idle,token.leaked"`
		Secret string   `json:"secret,omitempty" doc:"HMAC signing secret (16 to 200 characters); generated, and shown once, when not given."`
	}
}

type webhookInput struct {
	Org string `path:"org"`
	ID  int64  `path:"id"`
}

type webhookPatchInput struct {
	Org  string `path:"org"`
	ID   int64  `path:"id"`
	Body struct {
		URL    *string  `json:"url,omitempty" maxLength:"2000"`
		Events []string `json:"events,omitempty" maxItems:"7" enum:"token.created,token.revoked,token.rotated,token.expiring,token.expired,token.idle,token.leaked"`
		Secret *string  `json:"secret,omitempty" doc:"A new signing secret (16 to 200 characters)."`
	}
}

type webhookListInput struct {
	Org string `path:"org"`
	PageParams
}

type deliveryListInput struct {
	Org string `path:"org"`
	ID  int64  `path:"id"`
	PageParams
}

type attemptJSON struct {
	At         time.Time `json:"at"`
	StatusCode int       `json:"status_code" doc:"The receiver's HTTP status; 0 when it did not answer."`
	Error      string    `json:"error,omitempty"`
	DurationMS int64     `json:"duration_ms"`
}

type deliveryJSON struct {
	ID            int64         `json:"id" doc:"Also sent as X-Sot-Delivery."`
	WebhookID     int64         `json:"webhook_id"`
	Event         string        `json:"event"`
	State         string        `json:"state" enum:"pending,delivered,failed"`
	CreatedAt     time.Time     `json:"created_at"`
	NextAttemptAt *time.Time    `json:"next_attempt_at"`
	DeliveredAt   *time.Time    `json:"delivered_at"`
	Attempts      []attemptJSON `json:"attempts"`
}

func toDelivery(d *sot.Delivery) deliveryJSON {
	out := deliveryJSON{ID: d.ID, WebhookID: d.WebhookID, Event: d.Event, State: d.State, CreatedAt: d.CreatedAt,
		NextAttemptAt: d.NextAttemptAt, DeliveredAt: d.DeliveredAt, Attempts: make([]attemptJSON, len(d.Attempts))}
	for i, a := range d.Attempts {
		out.Attempts[i] = attemptJSON{At: a.At, StatusCode: a.StatusCode, Error: a.Error, DurationMS: a.Duration.Milliseconds()}
	}
	return out
}

func (a *API) registerWebhooks() {
	const tag = "Webhooks"
	huma.Register(a.huma, operation(http.MethodPost, "/api/v1/orgs/{org}/webhooks", "create-webhook", tag, "Create a webhook", http.StatusCreated),
		func(ctx context.Context, in *webhookCreateInput) (*bodyOutput[webhookJSON], error) {
			p := principal(ctx)
			if err := p.Authorize(sot.PermissionOrgAdmin, in.Org, ""); err != nil {
				return nil, err
			}
			w := &sot.Webhook{Org: in.Org, URL: in.Body.URL, Events: in.Body.Events, Secret: in.Body.Secret, CreatedAt: a.now()}
			if w.Secret == "" {
				w.Secret = sot.NewWebhookSecret()
			}
			if p.User != nil {
				w.CreatedBy = sot.UserRef{ID: p.User.ID, Login: p.User.Login}
			}
			if err := sot.ValidateWebhook(w); err != nil {
				return nil, err
			}
			if err := a.cfg.Webhooks.CreateWebhook(ctx, w); err != nil {
				return nil, err
			}
			out := toWebhook(w)
			out.Secret = w.Secret
			return &bodyOutput[webhookJSON]{Body: out}, nil
		})

	huma.Register(a.huma, operation(http.MethodGet, "/api/v1/orgs/{org}/webhooks", "list-webhooks", tag, "List webhooks", http.StatusOK),
		func(ctx context.Context, in *webhookListInput) (*listOutput[webhookJSON], error) {
			if err := principal(ctx).Authorize(sot.PermissionOrgAdmin, in.Org, ""); err != nil {
				return nil, err
			}
			ws, next, err := a.cfg.Webhooks.ListWebhooks(ctx, in.Org, in.page())
			if err != nil {
				return nil, err
			}
			return listOf(ws, next, toWebhook), nil
		})

	huma.Register(a.huma, operation(http.MethodGet, "/api/v1/orgs/{org}/webhooks/{id}", "get-webhook", tag, "Get a webhook", http.StatusOK),
		func(ctx context.Context, in *webhookInput) (*bodyOutput[webhookJSON], error) {
			if err := principal(ctx).Authorize(sot.PermissionOrgAdmin, in.Org, ""); err != nil {
				return nil, err
			}
			w, err := a.cfg.Webhooks.FindWebhook(ctx, in.Org, in.ID)
			if err != nil {
				return nil, err
			}
			return &bodyOutput[webhookJSON]{Body: toWebhook(w)}, nil
		})

	huma.Register(a.huma, operation(http.MethodPatch, "/api/v1/orgs/{org}/webhooks/{id}", "update-webhook", tag, "Update a webhook", http.StatusOK),
		func(ctx context.Context, in *webhookPatchInput) (*bodyOutput[webhookJSON], error) {
			if err := principal(ctx).Authorize(sot.PermissionOrgAdmin, in.Org, ""); err != nil {
				return nil, err
			}
			cur, err := a.cfg.Webhooks.FindWebhook(ctx, in.Org, in.ID)
			if err != nil {
				return nil, err
			}
			// Validate the result as a whole, with a placeholder secret
			// when it is kept (the stored one is never read back here).
			check := *cur
			check.Secret = "kept-secret-placeholder"
			upd := sot.WebhookUpdate{URL: in.Body.URL, Secret: in.Body.Secret, At: a.now()}
			if in.Body.URL != nil {
				check.URL = *in.Body.URL
			}
			if in.Body.Events != nil {
				check.Events = in.Body.Events
			}
			if in.Body.Secret != nil {
				check.Secret = *in.Body.Secret
			}
			if err := sot.ValidateWebhook(&check); err != nil {
				return nil, err
			}
			if in.Body.Events != nil {
				upd.Events = &check.Events
			}
			w, err := a.cfg.Webhooks.UpdateWebhook(ctx, in.Org, in.ID, upd)
			if err != nil {
				return nil, err
			}
			return &bodyOutput[webhookJSON]{Body: toWebhook(w)}, nil
		})

	huma.Register(a.huma, operation(http.MethodDelete, "/api/v1/orgs/{org}/webhooks/{id}", "delete-webhook", tag, "Delete a webhook and its deliveries", http.StatusNoContent),
		func(ctx context.Context, in *webhookInput) (*struct{}, error) {
			if err := principal(ctx).Authorize(sot.PermissionOrgAdmin, in.Org, ""); err != nil {
				return nil, err
			}
			return nil, a.cfg.Webhooks.DeleteWebhook(ctx, in.Org, in.ID)
		})

	huma.Register(a.huma, operation(http.MethodGet, "/api/v1/orgs/{org}/webhooks/{id}/deliveries", "list-webhook-deliveries", tag,
		"List a webhook's deliveries, newest first, with their attempts and outcomes", http.StatusOK),
		func(ctx context.Context, in *deliveryListInput) (*listOutput[deliveryJSON], error) {
			if err := principal(ctx).Authorize(sot.PermissionOrgAdmin, in.Org, ""); err != nil {
				return nil, err
			}
			ds, next, err := a.cfg.Webhooks.ListDeliveries(ctx, in.Org, in.ID, in.page())
			if err != nil {
				return nil, err
			}
			return listOf(ds, next, toDelivery), nil
		})
}
