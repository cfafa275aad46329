// Package lifecycle runs the scheduled work of token lifecycles on every
// replica: scheduled rotations, expiry and idle warnings, and the delivery
// of webhook events from the database outbox. Every step claims its work
// in the database first, so that with several replicas, and across
// restarts, each rotation and each delivery happens exactly once.
package lifecycle

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sot-dev/sot"
)

// Defaults of Config.
const (
	DefaultInterval = 30 * time.Second
	// DefaultTimeout bounds one delivery attempt.
	DefaultTimeout = 10 * time.Second
	// lease is how long a claimed delivery is reserved for the replica
	// that claimed it: well beyond a batch of attempts, which run at once
	// and each end within DefaultTimeout.
	lease = 2 * time.Minute
	// batch bounds the rotations of one sweep.
	batch = 100
	// deliveryBatch is how many deliveries are claimed and sent at once,
	// and maxDeliveryBatches how many batches one sweep sends.
	deliveryBatch      = 10
	maxDeliveryBatches = 100
	// maxResponseBytes bounds what is read of a receiver's answer.
	maxResponseBytes = 4 << 10
	// firstRetry and maxRetry shape the exponential backoff.
	firstRetry = 30 * time.Second
	maxRetry   = time.Hour
)

// Config wires a Runner.
type Config struct {
	Store    sot.LifecycleService
	Webhooks sot.WebhookService
	// Now is the clock; time.Now when nil.
	Now    func() time.Time
	Logger *slog.Logger
	// Interval is the time between sweeps; DefaultInterval when 0.
	Interval time.Duration
	// Client sends deliveries; when nil, a client with DefaultTimeout
	// that follows no redirects.
	Client *http.Client
}

// Runner does the scheduled work.
type Runner struct {
	cfg   Config
	now   func() time.Time
	log   *slog.Logger
	owner string // this replica's name in delivery leases

	// skipped remembers when a skipped rotation was last logged, by
	// token, so that a misconfiguration is reported daily, not per sweep.
	mu      sync.Mutex
	skipped map[int64]time.Time
}

// New returns a Runner.
func New(cfg Config) *Runner {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{
			Timeout: DefaultTimeout,
			// A redirect is an answer, not a delivery: following it could
			// send a secret to a host the admin never configured.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	var b [8]byte
	rand.Read(b[:])
	return &Runner{cfg: cfg, now: cfg.Now, log: cfg.Logger, owner: hex.EncodeToString(b[:]), skipped: map[int64]time.Time{}}
}

// Run sweeps at once (work that fell due while no replica ran is done
// after a restart) and then every Interval, until ctx is done.
func (r *Runner) Run(ctx context.Context) {
	tick := time.NewTicker(r.cfg.Interval)
	defer tick.Stop()
	for {
		if err := r.Sweep(ctx); err != nil && ctx.Err() == nil {
			r.log.Error("lifecycle sweep", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// Sweep does the work due now: rotations, warnings, then deliveries (so
// that what the first steps emitted goes out in the same sweep).
func (r *Runner) Sweep(ctx context.Context) error {
	ctx = sot.WithActor(ctx, sot.Actor{Type: sot.ActorSystem, Name: "scheduler"})
	var errs []error
	if err := r.rotate(ctx); err != nil {
		errs = append(errs, err)
	}
	if _, err := r.cfg.Store.SweepExpiry(ctx, r.now()); err != nil {
		errs = append(errs, err)
	}
	if _, err := r.cfg.Store.SweepIdle(ctx, r.now()); err != nil {
		errs = append(errs, err)
	}
	if err := r.deliver(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// rotate rotates the tokens whose schedule is due. The new secret goes
// into the token.rotated delivery; nothing else keeps it.
func (r *Runner) rotate(ctx context.Context) error {
	now := r.now()
	due, err := r.cfg.Store.DueRotations(ctx, now, batch)
	if err != nil {
		return fmt.Errorf("due rotations: %w", err)
	}
	receivers := map[string]bool{} // by organization: has a token.rotated webhook
	for _, t := range due {
		ok, seen := receivers[t.Org]
		if !seen {
			if ok, err = sot.OrgReceives(ctx, r.cfg.Webhooks, t.Org, sot.EventTokenRotated); err != nil {
				return fmt.Errorf("webhooks of %s: %w", t.Org, err)
			}
			receivers[t.Org] = ok
		}
		if !ok {
			// The delivery is the only place the new secret goes: rotating
			// now would lock the pipeline out when the grace period ends.
			r.skip(t, now)
			continue
		}
		secret := sot.NewSecret(t.Kind)
		owner := sot.TokenOwner{Org: t.Org}
		if t.Kind == sot.TokenKindPersonal {
			owner = sot.TokenOwner{UserID: t.UserID}
		}
		_, err := r.cfg.Store.RotateToken(ctx, owner, t.ID, sot.RotateRequest{
			Now: now, Grace: t.Rotation.GracePeriod, Hash: sot.HashSecret(secret), Hint: sot.SecretHint(secret),
			Secret: secret, IfNextRotationAt: t.NextRotationAt,
		})
		switch {
		case errors.Is(err, sot.ErrConflict):
			// Another replica rotated it first.
		case err != nil:
			r.log.Error("scheduled rotation", "token_id", t.ID, "err", err)
		default:
			r.log.Info("scheduled rotation", "token_id", t.ID, "org", t.Org)
		}
	}
	return nil
}

// skip logs, at most daily per token, a scheduled rotation held back for
// want of a token.rotated webhook.
func (r *Runner) skip(t *sot.Token, now time.Time) {
	r.mu.Lock()
	last, logged := r.skipped[t.ID]
	if logged && now.Sub(last) < 24*time.Hour {
		r.mu.Unlock()
		return
	}
	r.skipped[t.ID] = now
	r.mu.Unlock()
	r.log.Warn("scheduled rotation held back: no webhook of the organization receives token.rotated, so the new secret would be lost",
		"token_id", t.ID, "org", t.Org)
}

// deliver sends the due deliveries this replica can claim, a batch at a
// time; the deliveries of a batch are sent concurrently, so one slow
// receiver does not hold up the others.
func (r *Runner) deliver(ctx context.Context) error {
	for range maxDeliveryBatches {
		ds, err := r.cfg.Webhooks.ClaimDeliveries(ctx, r.now(), lease, r.owner, deliveryBatch)
		if err != nil {
			return fmt.Errorf("claim deliveries: %w", err)
		}
		var wg sync.WaitGroup
		for _, d := range ds {
			wg.Go(func() { r.attempt(ctx, d) })
		}
		wg.Wait()
		if len(ds) < deliveryBatch || ctx.Err() != nil {
			return nil
		}
	}
	return nil
}

// attempt sends d once and records the outcome, even when ctx ended
// meanwhile (shutdown), so the delivery is not left leased.
func (r *Runner) attempt(ctx context.Context, d *sot.OutboundDelivery) {
	a := r.send(ctx, d)
	var next *time.Time
	if a.Error != "" {
		next = retryAt(d, a.At)
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := r.cfg.Webhooks.FinishAttempt(fctx, d.ID, r.owner, a, next); err != nil {
		r.log.Error("record delivery attempt", "delivery_id", d.ID, "err", err)
	}
}

// retryAt returns when to try d again after a failed attempt at, with an
// exponential backoff (30 s, 1 min, 2 min, … up to an hour), or nil once
// the next try would be more than MaxDeliveryAge after the event.
func retryAt(d *sot.OutboundDelivery, at time.Time) *time.Time {
	delay := firstRetry
	for i := 0; i < d.Attempts && delay < maxRetry; i++ {
		delay *= 2
	}
	delay = min(delay, maxRetry)
	next := at.Add(delay)
	if next.Sub(d.CreatedAt) > sot.MaxDeliveryAge {
		return nil
	}
	return &next
}

// send makes one attempt at delivering d.
func (r *Runner) send(ctx context.Context, d *sot.OutboundDelivery) sot.DeliveryAttempt {
	now := r.now()
	a := sot.DeliveryAttempt{At: now}
	ts := now.Unix()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.URL, bytes.NewReader(d.Body))
	if err != nil {
		a.Error = "invalid request: " + err.Error()
		return a
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "sot-webhooks")
	req.Header.Set("X-Sot-Event", d.Event)
	req.Header.Set("X-Sot-Delivery", strconv.FormatInt(d.ID, 10))
	req.Header.Set("X-Sot-Timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("X-Sot-Signature", Sign(d.Secret, ts, d.Body))
	start := time.Now()
	resp, err := r.cfg.Client.Do(req)
	a.Duration = time.Since(start)
	if err != nil {
		a.Error = err.Error()
		return a
	}
	defer resp.Body.Close()
	excerpt, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	a.StatusCode = resp.StatusCode
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		a.Error = fmt.Sprintf("HTTP %d", resp.StatusCode)
		if s := strings.TrimSpace(string(excerpt)); s != "" {
			a.Error += ": " + s
		}
	}
	return a
}

// Sign returns the X-Sot-Signature of a delivery: "sha256=" and the hex
// HMAC-SHA256, keyed with the webhook secret, of "<timestamp>.<body>".
func Sign(secret string, timestamp int64, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(strconv.FormatInt(timestamp, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify reports whether signature is the valid X-Sot-Signature of body
// sent at timestamp (the X-Sot-Timestamp header), in constant time. A
// receiver should also refuse timestamps far from its own clock.
func Verify(secret, timestamp, signature string, body []byte) bool {
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return false
	}
	return hmac.Equal([]byte(Sign(secret, ts, body)), []byte(signature))
}
