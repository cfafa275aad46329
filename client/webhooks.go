package client

import (
	"context"
	"iter"
	"net/http"
	"strconv"
	"time"
)

// Webhook events.
const (
	EventTokenCreated  = "token.created"
	EventTokenRevoked  = "token.revoked"
	EventTokenRotated  = "token.rotated"
	EventTokenExpiring = "token.expiring"
	EventTokenExpired  = "token.expired"
	EventTokenIdle     = "token.idle"
	EventTokenLeaked   = "token.leaked"
)

// Webhook is an organization's subscription to token events. Deliveries
// are POSTed to URL and signed with the webhook's secret in X-Sot-Signature.
type Webhook struct {
	ID        int64     `json:"id"`
	Org       string    `json:"org"`
	URL       string    `json:"url"`
	Events    []string  `json:"events"`
	CreatedBy UserRef   `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// Secret is the signing secret, only in the response to the request
	// that set it.
	Secret string `json:"secret,omitempty"`
}

// CreateWebhookRequest is the body of CreateWebhook. An empty Secret makes
// the server generate one, returned once.
type CreateWebhookRequest struct {
	URL    string   `json:"url"`
	Events []string `json:"events"`
	Secret string   `json:"secret,omitempty"`
}

// WebhookUpdate is a partial update of a webhook: nil fields are kept.
type WebhookUpdate struct {
	URL    *string  `json:"url,omitempty"`
	Events []string `json:"events,omitempty"`
	Secret *string  `json:"secret,omitempty"`
}

// Delivery states.
const (
	DeliveryPending   = "pending"   // waiting for its first or next attempt
	DeliveryDelivered = "delivered" // a 2xx answer
	DeliveryFailed    = "failed"    // retries given up
)

// Delivery is one event sent (or to send) to a webhook, with its attempts.
type Delivery struct {
	// ID is also sent as X-Sot-Delivery.
	ID            int64             `json:"id"`
	WebhookID     int64             `json:"webhook_id"`
	Event         string            `json:"event"`
	State         string            `json:"state"`
	CreatedAt     time.Time         `json:"created_at"`
	NextAttemptAt *time.Time        `json:"next_attempt_at"`
	DeliveredAt   *time.Time        `json:"delivered_at"`
	Attempts      []DeliveryAttempt `json:"attempts"`
}

// DeliveryAttempt is one try to deliver.
type DeliveryAttempt struct {
	At time.Time `json:"at"`
	// StatusCode is the receiver's HTTP status; 0 when it did not answer.
	StatusCode int    `json:"status_code"`
	Error      string `json:"error,omitempty"`
	DurationMS int64  `json:"duration_ms"`
}

func webhookPath(org string, id int64) string {
	return orgPath(org) + "/webhooks/" + strconv.FormatInt(id, 10)
}

// CreateWebhook subscribes a URL to token events of the organization. The
// result holds the signing secret, once. Org admins only.
func (c *Client) CreateWebhook(ctx context.Context, org string, req CreateWebhookRequest) (*Webhook, error) {
	var w Webhook
	if err := c.do(ctx, http.MethodPost, orgPath(org)+"/webhooks", nil, req, &w); err != nil {
		return nil, err
	}
	return &w, nil
}

// Webhooks lists an organization's webhooks.
func (c *Client) Webhooks(ctx context.Context, org string) iter.Seq2[Webhook, error] {
	return list[Webhook](ctx, c, orgPath(org)+"/webhooks", nil)
}

// Webhook returns one webhook, without its secret.
func (c *Client) Webhook(ctx context.Context, org string, id int64) (*Webhook, error) {
	var w Webhook
	if err := c.do(ctx, http.MethodGet, webhookPath(org, id), nil, nil, &w); err != nil {
		return nil, err
	}
	return &w, nil
}

// UpdateWebhook changes a webhook's URL, events or secret.
func (c *Client) UpdateWebhook(ctx context.Context, org string, id int64, upd WebhookUpdate) (*Webhook, error) {
	var w Webhook
	if err := c.do(ctx, http.MethodPatch, webhookPath(org, id), nil, upd, &w); err != nil {
		return nil, err
	}
	return &w, nil
}

// DeleteWebhook deletes a webhook and its deliveries.
func (c *Client) DeleteWebhook(ctx context.Context, org string, id int64) error {
	return c.do(ctx, http.MethodDelete, webhookPath(org, id), nil, nil, nil)
}

// Deliveries lists a webhook's deliveries, newest first, with their
// attempts and outcomes.
func (c *Client) Deliveries(ctx context.Context, org string, id int64) iter.Seq2[Delivery, error] {
	return list[Delivery](ctx, c, webhookPath(org, id)+"/deliveries", nil)
}
