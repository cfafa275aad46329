package sot

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
)

// TokenRotation is a token's rotation schedule: the server gives it a new
// secret every Every, and the previous secret keeps working for
// GracePeriod so that a pipeline has time to pick up the new one.
type TokenRotation struct {
	Every       time.Duration // whole days
	GracePeriod time.Duration
}

// ParseRotation parses a rotation schedule ("30d", "24h") under policy:
// Every is "<n>d" or "<n>y" and at most the policy's maximum lifetime;
// the grace period is a duration shorter than Every. Fields are named
// under field ("rotation").
func ParseRotation(field, every, grace string, policy TokenPolicy) (*TokenRotation, error) {
	days, err := ParseLifetime(every)
	if err != nil {
		return nil, Invalid(err.Error(), FieldError{Field: field + ".every", Message: err.Error()})
	}
	if days > policy.MaxLifetimeDays {
		return nil, Errorf(EPOLICY, "rotation every %d days exceeds the organization's token policy: maximum lifetime is %d days", days, policy.MaxLifetimeDays)
	}
	g, err := ParseGracePeriod(grace)
	if err != nil {
		return nil, Invalid(err.Error(), FieldError{Field: field + ".grace_period", Message: err.Error()})
	}
	r := &TokenRotation{Every: time.Duration(days) * Day, GracePeriod: g}
	if g >= r.Every {
		return nil, Invalid("grace period must be shorter than the rotation interval",
			FieldError{Field: field + ".grace_period", Message: "must be shorter than every"})
	}
	return r, nil
}

// EveryString formats Every as the API writes it ("30d").
func (r TokenRotation) EveryString() string { return fmt.Sprintf("%dd", int(r.Every/Day)) }

// RotatedExpiry returns the expiry of t rotated at now: now plus the
// token's lifetime (from its creation or last rotation to its expiry),
// capped by policy; nil for a non-expiring token that policy still allows.
func (t *Token) RotatedExpiry(now time.Time, policy TokenPolicy) *time.Time {
	max := time.Duration(policy.MaxLifetimeDays) * Day
	if t.ExpiresAt == nil {
		if policy.AllowNonExpiring {
			return nil
		}
		at := now.Add(max).UTC().Truncate(time.Second)
		return &at
	}
	start := t.CreatedAt
	if t.RotatedAt != nil {
		start = *t.RotatedAt
	}
	life := t.ExpiresAt.Sub(start)
	if life <= 0 || life > max {
		life = max
	}
	at := now.Add(life).UTC().Truncate(time.Second)
	return &at
}

// RotateRequest is a rotation as the store performs it.
type RotateRequest struct {
	Now   time.Time
	Grace time.Duration // how long the current secrets keep working
	Hash  SecretHash    // of the new secret
	Hint  string        // of the new secret
	// Secret is the new secret itself, given only for a scheduled rotation:
	// the token.rotated delivery is how the pipeline learns it. The store
	// keeps it in the delivery until it is delivered or given up, never
	// longer.
	Secret string
	// IfNextRotationAt, when set, makes the rotation happen only while the
	// token's next scheduled rotation is still this time, so that of
	// several replicas that saw the same due token exactly one rotates it
	// (the others get ECONFLICT).
	IfNextRotationAt *time.Time
}

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

// WebhookEvents lists every event a webhook can subscribe to.
var WebhookEvents = []string{EventTokenCreated, EventTokenRevoked, EventTokenRotated,
	EventTokenExpiring, EventTokenExpired, EventTokenIdle, EventTokenLeaked}

// Webhook is an organization's subscription to token events. Secret (the
// HMAC key deliveries are signed with) is set only when the webhook is
// created or its secret replaced.
type Webhook struct {
	ID        int64
	Org       string
	URL       string
	Events    []string
	Secret    string
	CreatedBy UserRef
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Limits of webhooks.
const (
	MaxWebhookURLLen    = 2000
	MinWebhookSecretLen = 16
	MaxWebhookSecretLen = 200
)

// NewWebhookSecret returns a random signing secret (256 bits, hex).
func NewWebhookSecret() string {
	var b [32]byte
	rand.Read(b[:])
	return "whsec_" + hex.EncodeToString(b[:])
}

// ValidateWebhook checks a webhook's URL (http or https, any host:
// receivers are often on internal networks), events and secret.
func ValidateWebhook(w *Webhook) error {
	var fields []FieldError
	u, err := url.Parse(w.URL)
	switch {
	case len(w.URL) > MaxWebhookURLLen:
		fields = append(fields, FieldError{Field: "url", Message: fmt.Sprintf("at most %d characters", MaxWebhookURLLen)})
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		fields = append(fields, FieldError{Field: "url", Message: "must be an absolute http or https URL"})
	case u.User != nil:
		fields = append(fields, FieldError{Field: "url", Message: "must not hold credentials: deliveries are signed with the webhook secret"})
	}
	if len(w.Events) == 0 {
		fields = append(fields, FieldError{Field: "events", Message: "at least one event is required"})
	}
	for i, e := range w.Events {
		if !slices.Contains(WebhookEvents, e) {
			fields = append(fields, FieldError{Field: fieldIndex("events", i),
				Message: "unknown event; want one of " + strings.Join(WebhookEvents, ", ")})
		}
	}
	if n := len(w.Secret); n < MinWebhookSecretLen || n > MaxWebhookSecretLen {
		fields = append(fields, FieldError{Field: "secret", Message: fmt.Sprintf("must be %d to %d characters", MinWebhookSecretLen, MaxWebhookSecretLen)})
	}
	if fields != nil {
		return Invalid("invalid webhook", fields...)
	}
	slices.Sort(w.Events)
	w.Events = slices.Compact(w.Events)
	return nil
}

// WebhookUpdate is a partial update of a webhook; nil fields are kept.
type WebhookUpdate struct {
	URL    *string
	Events *[]string
	Secret *string
	At     time.Time // when the update is made
}

// Delivery states.
const (
	DeliveryPending   = "pending"   // waiting for its first or next attempt
	DeliveryDelivered = "delivered" // a 2xx answer
	DeliveryFailed    = "failed"    // retries given up (after MaxDeliveryAge)
)

// MaxDeliveryAge is how long a delivery is retried before it is given up.
const MaxDeliveryAge = 24 * time.Hour

// Delivery is one event sent (or to send) to one webhook, with its attempts.
type Delivery struct {
	ID            int64
	WebhookID     int64
	Event         string
	State         string
	CreatedAt     time.Time
	NextAttemptAt *time.Time
	DeliveredAt   *time.Time
	Attempts      []DeliveryAttempt
}

// DeliveryAttempt is one try to deliver.
type DeliveryAttempt struct {
	At         time.Time
	StatusCode int    // 0 when no response came
	Error      string // why the attempt failed; "" on success
	Duration   time.Duration
}

// OutboundDelivery is a delivery claimed by one replica for sending.
type OutboundDelivery struct {
	ID        int64
	WebhookID int64
	URL       string
	Secret    string
	Event     string
	Body      []byte
	Attempts  int // before this one
	CreatedAt time.Time
}

// LeakReport is where a leaked secret was found, for the audit event.
type LeakReport struct {
	Source string // "github" or "public"
	URL    string // where it was found, when known
	Kind   string // what the reporter calls it ("sot_org_token")
}

// LeakResult is the outcome for one reported secret.
type LeakResult struct {
	Found   bool // the secret is (or was) one of ours
	Revoked bool // it was live and has been revoked now
	Token   *Token
}

// LifecycleService rotates tokens, keeps the webhook outbox, and runs the
// scheduled work of token lifecycles. Every event it emits is written in
// the same transaction as the change it reports.
type LifecycleService interface {
	// RotateToken gives owner's token a new secret (req.Hash) and a new
	// expiry (RotatedExpiry under the organization's policy); the current
	// secrets keep working until req.Now+req.Grace. ENOTFOUND, EINVALID for
	// a revoked or expired token, ECONFLICT when req.IfNextRotationAt no
	// longer holds.
	RotateToken(ctx context.Context, owner TokenOwner, id int64, req RotateRequest) (*Token, error)
	// SetTokenRotation sets (nil: removes) the schedule of owner's token;
	// the next rotation is now+Every.
	SetTokenRotation(ctx context.Context, owner TokenOwner, id int64, r *TokenRotation, now time.Time) (*Token, error)
	// DueRotations returns up to limit live tokens whose scheduled rotation
	// is due at now.
	DueRotations(ctx context.Context, now time.Time, limit int) ([]*Token, error)
	// SweepExpiry emits token.expiring (30, 7 and 1 days before expiry) and
	// token.expired, each once per token, and returns how many it emitted.
	SweepExpiry(ctx context.Context, now time.Time) (int, error)
	// SweepIdle emits token.idle once per idle period for tokens unused for
	// their organization's idle_warning_days. Tokens are never deleted.
	SweepIdle(ctx context.Context, now time.Time) (int, error)
	// RevokeLeaked revokes the live tokens whose secrets have the given
	// hashes, auditing and emitting token.leaked; the result is in order.
	RevokeLeaked(ctx context.Context, hashes []SecretHash, report LeakReport, now time.Time) ([]LeakResult, error)
	// CountExpiring counts live tokens per organization that expire
	// within d of now.
	CountExpiring(ctx context.Context, now time.Time, d time.Duration) (map[string]int, error)
}

// WebhookService manages webhooks and their persistent delivery queue.
type WebhookService interface {
	// CreateWebhook stores w and sets ID and times.
	CreateWebhook(ctx context.Context, w *Webhook) error
	// FindWebhook returns a webhook of org (without its secret), or ENOTFOUND.
	FindWebhook(ctx context.Context, org string, id int64) (*Webhook, error)
	// ListWebhooks lists org's webhooks by ID.
	ListWebhooks(ctx context.Context, org string, page Page) ([]*Webhook, string, error)
	// UpdateWebhook applies upd.
	UpdateWebhook(ctx context.Context, org string, id int64, upd WebhookUpdate) (*Webhook, error)
	// DeleteWebhook deletes the webhook and its deliveries.
	DeleteWebhook(ctx context.Context, org string, id int64) error
	// ListDeliveries lists a webhook's deliveries, newest first, with
	// their attempts.
	ListDeliveries(ctx context.Context, org string, webhookID int64, page Page) ([]*Delivery, string, error)
	// ClaimDeliveries leases up to limit due deliveries to owner until
	// now+lease; a delivery leased to one replica is not claimed by another
	// before the lease ends.
	ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, owner string, limit int) ([]*OutboundDelivery, error)
	// FinishAttempt records an attempt of a delivery leased to owner: it
	// is delivered when a.Error is "", else retried at next, or given up
	// when next is nil.
	FinishAttempt(ctx context.Context, id int64, owner string, a DeliveryAttempt, next *time.Time) error
}

// Audit actions of webhooks and scheduled lifecycle work.
const (
	ActionWebhookCreated = "webhook.created"
	ActionWebhookUpdated = "webhook.updated"
	ActionWebhookDeleted = "webhook.deleted"
)

// OrgReceives reports whether a webhook of org receives event: a
// scheduled rotation needs one for token.rotated, the only place its new
// secret goes.
func OrgReceives(ctx context.Context, svc WebhookService, org, event string) (bool, error) {
	page := Page{Size: 1000}
	for {
		ws, next, err := svc.ListWebhooks(ctx, org, page)
		if err != nil {
			return false, err
		}
		for _, w := range ws {
			if slices.Contains(w.Events, event) {
				return true, nil
			}
		}
		if next == "" {
			return false, nil
		}
		page.Token = next
	}
}
