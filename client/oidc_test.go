package client_test

import (
	"context"
	"testing"

	"github.com/sot-dev/sot/client"
)

func TestTrustPolicies(t *testing.T) {
	t.Setenv("SOT_OIDC_ISSUERS", "github")
	s := startServer(t)
	admin := fixture(t, s, "web")
	ctx := context.Background()
	const github = "https://token.actions.githubusercontent.com"
	p, err := admin.CreateTrustPolicy(ctx, "acme", client.CreateTrustPolicyRequest{
		Name: "deploy", Issuer: github,
		Conditions:  map[string]string{"repository_id": "1001", "ref": "refs/heads/main"},
		Scope:       client.Scope{Projects: []string{"web"}},
		Permissions: []string{client.PermissionScan},
	})
	if err != nil {
		t.Fatal(err)
	}
	if p.ID == 0 || p.Audience != "sot" || p.TTL != "15m" || p.Org != "acme" {
		t.Fatalf("created %+v", p)
	}
	_, err = admin.CreateTrustPolicy(ctx, "acme", client.CreateTrustPolicyRequest{
		Name: "elsewhere", Issuer: "https://gitlab.com", Conditions: map[string]string{"project_id": "1"},
		Scope: client.Scope{AllProjects: true}, Permissions: []string{client.PermissionScan},
	})
	if !client.IsInvalid(err) {
		t.Errorf("an issuer the operator does not trust: %v, want 400", err)
	}
	ttl := "5m"
	upd, err := admin.UpdateTrustPolicy(ctx, "acme", p.ID, client.TrustPolicyUpdate{TTL: &ttl})
	if err != nil || upd.TTL != "5m" {
		t.Fatalf("update: %+v, %v", upd, err)
	}
	got, err := admin.TrustPolicy(ctx, "acme", p.ID)
	if err != nil || got.Conditions["ref"] != "refs/heads/main" {
		t.Fatalf("get: %+v, %v", got, err)
	}
	all, err := client.Collect(admin.TrustPolicies(ctx, "acme"))
	if err != nil || len(all) != 1 {
		t.Fatalf("list: %d, %v", len(all), err)
	}
	anon := newClient(t, s, "")
	if _, err := anon.ExchangeIDToken(ctx, "acme", "not-a-jwt"); !client.IsUnauthenticated(err) {
		t.Errorf("exchange of garbage: %v, want 401", err)
	}
	if err := admin.DeleteTrustPolicy(ctx, "acme", p.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.TrustPolicy(ctx, "acme", p.ID); !client.IsNotFound(err) {
		t.Errorf("deleted policy: %v, want 404", err)
	}
}
