package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/sot-dev/sot/client"
)

// tokenRotateSelfCmd is what a pipeline runs to renew its own credential.
type tokenRotateSelfCmd struct {
	Grace string `placeholder:"24h" help:"Keep the current secret working this long (default: it stops now)."`
}

func (c *tokenRotateSelfCmd) Run(ctx context.Context, g *globals, std *stdio) error {
	if err := checkGrace(c.Grace); err != nil {
		return err
	}
	api, err := g.client()
	if err != nil {
		return err
	}
	nt, err := api.RotateSelf(ctx, c.Grace)
	if err != nil {
		return err
	}
	return printSecret(std, g, nt, "rotated")
}

// webhookCmd groups the webhook commands.
type webhookCmd struct {
	Create     webhookCreateCmd     `cmd:"" help:"Create a webhook; prints its signing secret once."`
	List       webhookListCmd       `cmd:"" help:"List an organization's webhooks."`
	Get        webhookGetCmd        `cmd:"" help:"Show a webhook."`
	Update     webhookUpdateCmd     `cmd:"" help:"Change a webhook's URL, events or secret."`
	Delete     webhookDeleteCmd     `cmd:"" help:"Delete a webhook and its deliveries."`
	Deliveries webhookDeliveriesCmd `cmd:"" help:"List a webhook's deliveries, newest first, with their attempts."`
}

// webhookEventsHelp lists the events, for the help of --event.
const webhookEventsHelp = "token.created, token.revoked, token.rotated, token.expiring, token.expired, token.idle or token.leaked"

type webhookCreateCmd struct {
	Org    string   `arg:"" help:"Organization key."`
	URL    string   `arg:"" name:"url" help:"Where deliveries are POSTed (http or https)."`
	Event  []string `required:"" placeholder:"EVENT" help:"Event to send (repeatable): ${webhook_events}."`
	Secret string   `placeholder:"SECRET" help:"Signing secret (default: generated and printed once)."`
}

func (c *webhookCreateCmd) Run(ctx context.Context, g *globals, std *stdio) error {
	api, err := g.client()
	if err != nil {
		return err
	}
	w, err := api.CreateWebhook(ctx, c.Org, client.CreateWebhookRequest{URL: c.URL, Events: c.Event, Secret: c.Secret})
	if err != nil {
		return err
	}
	if g.json() {
		return writeJSON(std.out, w)
	}
	fmt.Fprintf(std.err, "created webhook %d of %s: %s for %s\n", w.ID, w.Org, w.URL, strings.Join(w.Events, ","))
	if c.Secret == "" {
		fmt.Fprintln(std.err, "The signing secret is shown only this once; give it to the receiver:")
		fmt.Fprintln(std.out, w.Secret)
	}
	return nil
}

type webhookListCmd struct {
	Org string `arg:"" help:"Organization key."`
}

func (c *webhookListCmd) Run(ctx context.Context, g *globals, std *stdio) error {
	api, err := g.client()
	if err != nil {
		return err
	}
	seq := api.Webhooks(ctx, c.Org)
	if g.json() {
		ws, err := client.Collect(seq)
		if err != nil {
			return err
		}
		return writeJSON(std.out, nonNil(ws))
	}
	t := newTable(std.out, "ID", "URL", "EVENTS", "CREATED")
	for w, err := range seq {
		if err != nil {
			t.flush()
			return err
		}
		t.row(fmt.Sprint(w.ID), w.URL, strings.Join(w.Events, ","), timeOr(&w.CreatedAt, "-"))
	}
	return t.flush()
}

type webhookGetCmd struct {
	Org string `arg:"" help:"Organization key."`
	ID  int64  `arg:"" help:"Webhook ID."`
}

func (c *webhookGetCmd) Run(ctx context.Context, g *globals, std *stdio) error {
	api, err := g.client()
	if err != nil {
		return err
	}
	w, err := api.Webhook(ctx, c.Org, c.ID)
	if err != nil {
		return err
	}
	if g.json() {
		return writeJSON(std.out, w)
	}
	return fields(std.out,
		"id", fmt.Sprint(w.ID),
		"org", w.Org,
		"url", w.URL,
		"events", strings.Join(w.Events, ","),
		"created", timeOr(&w.CreatedAt, "-")+" by "+w.CreatedBy.Login,
		"updated", timeOr(&w.UpdatedAt, "-"),
	)
}

type webhookUpdateCmd struct {
	Org    string   `arg:"" help:"Organization key."`
	ID     int64    `arg:"" help:"Webhook ID."`
	URL    string   `name:"endpoint" placeholder:"URL" help:"New URL deliveries are POSTed to."`
	Event  []string `placeholder:"EVENT" help:"Replace the events (repeatable): ${webhook_events}."`
	Secret string   `placeholder:"SECRET" help:"New signing secret."`
}

func (c *webhookUpdateCmd) Run(ctx context.Context, g *globals, std *stdio) error {
	var upd client.WebhookUpdate
	if c.URL != "" {
		upd.URL = &c.URL
	}
	if c.Secret != "" {
		upd.Secret = &c.Secret
	}
	upd.Events = c.Event
	if upd.URL == nil && upd.Secret == nil && upd.Events == nil {
		return usageErrorf("nothing to change: give --endpoint, --event or --secret")
	}
	api, err := g.client()
	if err != nil {
		return err
	}
	w, err := api.UpdateWebhook(ctx, c.Org, c.ID, upd)
	if err != nil {
		return err
	}
	if g.json() {
		return writeJSON(std.out, w)
	}
	fmt.Fprintf(std.out, "updated webhook %d of %s: %s for %s\n", w.ID, w.Org, w.URL, strings.Join(w.Events, ","))
	return nil
}

type webhookDeleteCmd struct {
	Org string `arg:"" help:"Organization key."`
	ID  int64  `arg:"" help:"Webhook ID."`
}

func (c *webhookDeleteCmd) Run(ctx context.Context, g *globals, std *stdio) error {
	api, err := g.client()
	if err != nil {
		return err
	}
	if err := api.DeleteWebhook(ctx, c.Org, c.ID); err != nil {
		return err
	}
	if !g.json() {
		fmt.Fprintf(std.out, "deleted webhook %d of %s\n", c.ID, c.Org)
	}
	return nil
}

type webhookDeliveriesCmd struct {
	Org string `arg:"" help:"Organization key."`
	ID  int64  `arg:"" help:"Webhook ID."`
}

func (c *webhookDeliveriesCmd) Run(ctx context.Context, g *globals, std *stdio) error {
	api, err := g.client()
	if err != nil {
		return err
	}
	seq := api.Deliveries(ctx, c.Org, c.ID)
	if g.json() {
		ds, err := client.Collect(seq)
		if err != nil {
			return err
		}
		return writeJSON(std.out, nonNil(ds))
	}
	t := newTable(std.out, "ID", "EVENT", "STATE", "CREATED", "ATTEMPTS", "LAST OUTCOME", "NEXT ATTEMPT")
	for d, err := range seq {
		if err != nil {
			t.flush()
			return err
		}
		last := "-"
		if n := len(d.Attempts); n > 0 {
			a := d.Attempts[n-1]
			last = fmt.Sprintf("HTTP %d", a.StatusCode)
			if a.Error != "" {
				last = a.Error
			}
		}
		t.row(fmt.Sprint(d.ID), d.Event, d.State, timeOr(&d.CreatedAt, "-"), fmt.Sprint(len(d.Attempts)), last, timeOr(d.NextAttemptAt, "-"))
	}
	return t.flush()
}

// checkGrace refuses a --grace that is not a duration.
func checkGrace(grace string) error {
	if grace == "" {
		return nil
	}
	if _, err := time.ParseDuration(grace); err != nil {
		return usageErrorf("--grace %q: want a duration such as 24h or 30m", grace)
	}
	return nil
}
