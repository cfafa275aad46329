package client_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/sot-dev/sot/client"
)

func TestRotation(t *testing.T) {
	s := startServer(t)
	admin := fixture(t, s, "web")
	ctx := context.Background()

	nt, old := orgToken(t, s, admin, client.Scope{AllProjects: true}, client.PermissionScan, client.PermissionSelfRotate)

	// With a grace period both secrets work until it ends.
	rotated, err := admin.RotateToken(ctx, "acme", nt.Token.ID, "1h")
	if err != nil {
		t.Fatal(err)
	}
	if rotated.Secret == nt.Secret || rotated.Token.ID != nt.Token.ID || rotated.Token.RotatedAt == nil || rotated.Token.PreviousSecretExpiresAt == nil {
		t.Fatalf("rotated = %+v", rotated)
	}
	current := newClient(t, s, rotated.Secret)
	for name, c := range map[string]*client.Client{"old secret in grace": old, "new secret": current} {
		if ok, err := c.Check(ctx, "acme", "web", client.PermissionScan); !ok || err != nil {
			t.Fatalf("%s: Check = %v, %v", name, ok, err)
		}
	}

	// Without one the previous secret stops at once.
	again, err := admin.RotateToken(ctx, "acme", nt.Token.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := current.Check(ctx, "acme", "web", client.PermissionScan); !client.IsUnauthenticated(err) {
		t.Fatalf("replaced secret without grace: %v, want 401", err)
	}

	// A token with self_rotate renews itself.
	self, err := newClient(t, s, again.Secret).RotateSelf(ctx, "")
	if err != nil || self.Token.ID != nt.Token.ID || self.Secret == again.Secret {
		t.Fatalf("RotateSelf = %+v, %v", self, err)
	}
	_, scanOnly := orgToken(t, s, admin, client.Scope{AllProjects: true}, client.PermissionScan)
	if _, err := scanOnly.RotateSelf(ctx, ""); !client.IsForbidden(err) {
		t.Fatalf("RotateSelf without self_rotate: %v, want 403", err)
	}
	if _, err := admin.RotateToken(ctx, "acme", 999999, ""); !client.IsNotFound(err) {
		t.Fatalf("rotating an unknown token: %v, want 404", err)
	}

	// Personal tokens rotate through their owner.
	pt, err := admin.CreatePersonalToken(ctx, client.CreatePersonalTokenRequest{Name: "laptop", Expiry: client.Expiry{In: "30d"}})
	if err != nil {
		t.Fatal(err)
	}
	prt, err := admin.RotatePersonalToken(ctx, pt.Token.ID, "")
	if err != nil || prt.Secret == pt.Secret {
		t.Fatalf("RotatePersonalToken = %+v, %v", prt, err)
	}
	if _, err := newClient(t, s, prt.Secret).Me(ctx); err != nil {
		t.Fatalf("rotated personal token: %v", err)
	}

	// Anyone holding a leaked secret can revoke it, with no other credential.
	anonymous := newClient(t, s, "")
	n, err := anonymous.RevokeSecrets(ctx, []string{self.Secret, "sot_notarealtokennotarealtokennotare000000"})
	if err != nil || n != 1 {
		t.Fatalf("RevokeSecrets = %d, %v; want 1", n, err)
	}
	if _, err := newClient(t, s, self.Secret).Me(ctx); !client.IsUnauthenticated(err) {
		t.Fatalf("revoked leaked secret: %v, want 401", err)
	}
}

func TestRotationSchedule(t *testing.T) {
	s := startServer(t)
	admin := fixture(t, s, "web")
	ctx := context.Background()

	// A schedule needs somewhere to send each new secret.
	sched := client.CreateTokenRequest{
		Name: "scheduled", Scope: client.Scope{AllProjects: true}, Permissions: []string{client.PermissionScan},
		Expiry: client.Expiry{In: "90d"}, Rotation: &client.Rotation{Every: "30d", GracePeriod: "24h"},
	}
	if _, err := admin.CreateToken(ctx, "acme", sched); !client.IsInvalid(err) {
		t.Fatalf("a schedule with no token.rotated webhook: %v, want 400", err)
	}
	if _, err := admin.CreateWebhook(ctx, "acme", client.CreateWebhookRequest{URL: "http://127.0.0.1:9/hook", Events: []string{"token.rotated"}}); err != nil {
		t.Fatal(err)
	}

	nt, err := admin.CreateToken(ctx, "acme", sched)
	if err != nil {
		t.Fatal(err)
	}
	if r := nt.Token.Rotation; r == nil || r.Every != "30d" || r.GracePeriod != "24h0m0s" && r.GracePeriod != "24h" || nt.Token.NextRotationAt == nil {
		t.Fatalf("scheduled token = %+v (rotation %+v)", nt.Token, nt.Token.Rotation)
	}
	tok, err := admin.UpdateToken(ctx, "acme", nt.Token.ID, client.TokenUpdate{Rotation: &client.Rotation{Every: ""}})
	if err != nil || tok.Rotation != nil || tok.NextRotationAt != nil {
		t.Fatalf("schedule removed: %+v, %v", tok, err)
	}
	if _, err := admin.CreateToken(ctx, "acme", client.CreateTokenRequest{
		Name: "too rare", Scope: client.Scope{AllProjects: true}, Permissions: []string{client.PermissionScan},
		Expiry: client.Expiry{In: "30d"}, Rotation: &client.Rotation{Every: "400d"},
	}); !client.IsInvalid(err) {
		t.Fatalf("rotation beyond the policy: %v, want 400", err)
	}
}

func TestWebhooks(t *testing.T) {
	s := startServer(t)
	admin := fixture(t, s)
	ctx := context.Background()
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(receiver.Close)

	w, err := admin.CreateWebhook(ctx, "acme", client.CreateWebhookRequest{
		URL: receiver.URL + "/sot", Events: []string{client.EventTokenRevoked, client.EventTokenCreated},
	})
	if err != nil {
		t.Fatal(err)
	}
	if w.Secret == "" || w.URL != receiver.URL+"/sot" || !slices.Equal(w.Events, []string{client.EventTokenCreated, client.EventTokenRevoked}) {
		t.Fatalf("created webhook = %+v", w)
	}
	got, err := admin.Webhook(ctx, "acme", w.ID)
	if err != nil || got.Secret != "" || got.ID != w.ID {
		t.Fatalf("Webhook = %+v, %v; want it without its secret", got, err)
	}
	all, err := client.Collect(admin.Webhooks(ctx, "acme"))
	if err != nil || len(all) != 1 {
		t.Fatalf("Webhooks = %+v, %v", all, err)
	}
	upd, err := admin.UpdateWebhook(ctx, "acme", w.ID, client.WebhookUpdate{Events: []string{client.EventTokenRotated}})
	if err != nil || !slices.Equal(upd.Events, []string{client.EventTokenRotated}) {
		t.Fatalf("UpdateWebhook = %+v, %v", upd, err)
	}
	if _, err := client.Collect(admin.Deliveries(ctx, "acme", w.ID)); err != nil {
		t.Fatalf("Deliveries: %v", err)
	}
	if _, err := admin.CreateWebhook(ctx, "acme", client.CreateWebhookRequest{URL: "ftp://example.com", Events: []string{"token.created"}}); !client.IsInvalid(err) {
		t.Fatalf("ftp webhook: %v, want 400", err)
	}
	if err := admin.DeleteWebhook(ctx, "acme", w.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Webhook(ctx, "acme", w.ID); !client.IsNotFound(err) {
		t.Fatalf("deleted webhook: %v, want 404", err)
	}
}
