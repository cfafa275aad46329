package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sot-dev/sot"
	"github.com/sot-dev/sot/internal/store"
)

// countingTokens wraps the real store and counts secret lookups, to prove
// which requests reach storage.
type countingTokens struct {
	*store.DB
	lookups atomic.Int64
	// gate, when set, holds every lookup until it is closed.
	gate chan struct{}
}

func (c *countingTokens) TokenBySecretHash(ctx context.Context, h sot.SecretHash) (*sot.Token, error) {
	c.lookups.Add(1)
	if c.gate != nil {
		<-c.gate
	}
	return c.DB.TokenBySecretHash(ctx, h)
}

// clock is a settable test clock.
type clock struct{ t atomic.Pointer[time.Time] }

func (c *clock) Now() time.Time      { return *c.t.Load() }
func (c *clock) Set(t time.Time)     { c.t.Store(&t) }
func (c *clock) Add(d time.Duration) { c.Set(c.Now().Add(d)) }

type fixture struct {
	db     *store.DB
	tokens *countingTokens
	clock  *clock
	auth   *Service
	admin  *sot.User
	org    *sot.Org
}

var clientIP = netip.MustParseAddr("192.0.2.10")

func newFixture(t testing.TB) *fixture {
	t.Helper()
	return newFixtureOn(t, "sqlite:"+filepath.Join(t.TempDir(), "sot.db"))
}

// newFixtureOn is newFixture on the database dsn.
func newFixtureOn(t testing.TB, dsn string) *fixture {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, dsn, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f := &fixture{db: db, tokens: &countingTokens{DB: db}, clock: &clock{}}
	f.clock.Set(time.Now().UTC().Truncate(time.Second))
	f.auth = New(Config{Tokens: f.tokens, Users: db, Orgs: db, Audit: db, Bus: db, Now: f.clock.Now})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- f.auth.Run(runCtx) }()
	t.Cleanup(func() { cancel(); <-done })
	f.admin = &sot.User{Login: "alice", Name: "Alice"}
	if err := db.CreateUser(ctx, f.admin, ""); err != nil {
		t.Fatal(err)
	}
	f.org = &sot.Org{Key: "acme", Name: "Acme", Plan: sot.PlanTeam}
	if err := db.CreateOrg(ctx, f.org, f.admin.ID); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"web", "api", "team-a-web"} {
		if err := db.CreateProject(ctx, &sot.Project{Org: "acme", Key: k, Name: k}); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func (f *fixture) orgToken(t testing.TB, scope sot.Scope, req sot.TokenRequest) (*sot.Token, string) {
	t.Helper()
	req.Scope = scope
	if req.Name == "" {
		req.Name = "ci"
	}
	if req.Permissions == 0 {
		req.Permissions = sot.NewPermissionSet(sot.PermissionScan)
	}
	if req.Expiry == (sot.Expiry{}) {
		req.Expiry = sot.Expiry{In: "30d"}
	}
	tok, secret, err := sot.PrepareOrgToken(f.org, sot.UserRef{ID: f.admin.ID, Login: f.admin.Login}, req, f.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := f.db.CreateToken(context.Background(), tok, sot.HashSecret(secret)); err != nil {
		t.Fatal(err)
	}
	return tok, secret
}

// eventually polls cond for up to two seconds: change events arrive
// asynchronously on the bus.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("%s did not happen within 2s", what)
}

func TestMalformedSecretsNeverReachStorage(t *testing.T) {
	f := newFixture(t)
	_, good := f.orgToken(t, sot.Scope{AllProjects: true}, sot.TokenRequest{})
	bad := []string{"", "Bearer", "sot_", good[:len(good)-1], good[:20] + "X" + good[21:], "sotu_" + good[4:], "ghp_abcdef"}
	for _, s := range bad {
		_, err := f.auth.AuthenticateSecret(t.Context(), s, clientIP)
		if sot.ErrorCode(err) != sot.EUNAUTHENTICATED {
			t.Errorf("AuthenticateSecret(%q) = %v, want EUNAUTHENTICATED", s, err)
		}
	}
	if n := f.tokens.lookups.Load(); n != 0 {
		t.Fatalf("%d storage lookups for malformed secrets, want 0", n)
	}
}

func TestCacheHitAvoidsStorage(t *testing.T) {
	f := newFixture(t)
	_, secret := f.orgToken(t, sot.Scope{Patterns: []string{"team-a-.*"}}, sot.TokenRequest{})
	for range 100 {
		p, err := f.auth.AuthenticateSecret(t.Context(), secret, clientIP)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Authorize(sot.PermissionScan, "acme", "team-a-web"); err != nil {
			t.Fatal(err)
		}
		if err := p.Authorize(sot.PermissionScan, "acme", "web"); sot.ErrorCode(err) != sot.EFORBIDDEN {
			t.Fatalf("out-of-scope project: %v", err)
		}
	}
	if n := f.tokens.lookups.Load(); n != 1 {
		t.Fatalf("%d storage lookups for 100 uses, want 1", n)
	}
}

// Concurrent first uses of one secret share one load: a busy client's
// connections do not each read the token (and a scope of up to 100,000
// keys) when its entry expires.
func TestConcurrentMissesShareOneLoad(t *testing.T) {
	f := newFixture(t)
	_, secret := f.orgToken(t, sot.Scope{Projects: []string{"web", "api"}}, sot.TokenRequest{})
	f.tokens.gate = make(chan struct{})
	const n = 16
	errs := make(chan error, n)
	for range n {
		go func() {
			p, err := f.auth.AuthenticateSecret(t.Context(), secret, clientIP)
			if err == nil {
				err = p.Authorize(sot.PermissionScan, "acme", "web")
			}
			errs <- err
		}()
	}
	eventually(t, "the first lookup", func() bool { return f.tokens.lookups.Load() == 1 })
	// Give the other callers time to arrive: without sharing, each would
	// now be held in a lookup of its own.
	time.Sleep(100 * time.Millisecond)
	close(f.tokens.gate)
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := f.tokens.lookups.Load(); got != 1 {
		t.Fatalf("%d storage lookups for %d concurrent first uses, want 1", got, n)
	}
}

// A used entry is reloaded in the background before it expires: the
// request that notices does not wait, and the next ones hit the new entry.
func TestUsedEntriesAreRefreshedAhead(t *testing.T) {
	f := newFixture(t)
	_, secret := f.orgToken(t, sot.Scope{AllProjects: true}, sot.TokenRequest{})
	use := func() {
		t.Helper()
		if _, err := f.auth.AuthenticateSecret(t.Context(), secret, clientIP); err != nil {
			t.Fatal(err)
		}
	}
	use()
	f.clock.Add(20 * time.Second) // before three quarters of the 30 s TTL
	use()
	if n := f.tokens.lookups.Load(); n != 1 {
		t.Fatalf("%d lookups before the refresh is due, want 1", n)
	}
	f.clock.Add(5 * time.Second)
	f.tokens.gate = make(chan struct{}) // hold the refresh: the request must not wait for it
	use()
	eventually(t, "the background refresh", func() bool { return f.tokens.lookups.Load() == 2 })
	close(f.tokens.gate)
	use()
	use()
	if n := f.tokens.lookups.Load(); n != 2 {
		t.Fatalf("%d lookups after one refresh, want 2", n)
	}
}

func TestChangesTakeEffectOnTheNextRequest(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		change  func(f *fixture, tok *sot.Token)
		wantErr string // error message after the change; "" means still allowed
		check   func(p *sot.Principal) error
	}{
		{
			name: "revoke",
			change: func(f *fixture, tok *sot.Token) {
				f.db.RevokeToken(ctx, sot.TokenOwner{Org: "acme"}, tok.ID, f.clock.Now())
			},
			wantErr: "token revoked",
		},
		{
			name: "downgrade to free",
			change: func(f *fixture, _ *sot.Token) {
				free := sot.PlanFree
				f.db.UpdateOrg(ctx, "acme", sot.OrgUpdate{Plan: &free})
			},
			wantErr: sot.ErrPlanRequired.Message,
		},
		{
			name: "scope narrowed",
			change: func(f *fixture, tok *sot.Token) {
				f.db.UpdateToken(ctx, sot.TokenOwner{Org: "acme"}, tok.ID, sot.TokenUpdate{Scope: &sot.Scope{Projects: []string{"api"}}})
			},
			check: func(p *sot.Principal) error { return p.Authorize(sot.PermissionScan, "acme", "web") },
			// The token still authenticates, but web is now out of scope.
			wantErr: "the project is outside the token's scope",
		},
		{
			name: "permission removed",
			change: func(f *fixture, tok *sot.Token) {
				b := sot.NewPermissionSet(sot.PermissionBrowse)
				f.db.UpdateToken(ctx, sot.TokenOwner{Org: "acme"}, tok.ID, sot.TokenUpdate{Permissions: &b})
			},
			check:   func(p *sot.Principal) error { return p.Authorize(sot.PermissionScan, "acme", "web") },
			wantErr: "the token lacks the scan permission",
		},
		{
			name: "explicit project deleted",
			change: func(f *fixture, _ *sot.Token) {
				f.db.DeleteProject(ctx, "acme", "web")
				f.db.CreateProject(ctx, &sot.Project{Org: "acme", Key: "web", Name: "web again"})
			},
			check:   func(p *sot.Principal) error { return p.Authorize(sot.PermissionScan, "acme", "web") },
			wantErr: "the project is outside the token's scope",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			tok, secret := f.orgToken(t, sot.Scope{Projects: []string{"web", "api"}}, sot.TokenRequest{})
			use := func() error {
				p, err := f.auth.AuthenticateSecret(ctx, secret, clientIP)
				if err != nil || tt.check == nil {
					return err
				}
				return tt.check(p)
			}
			if err := use(); err != nil {
				t.Fatalf("before the change: %v", err)
			}
			tt.change(f, tok)
			eventually(t, "refusal after "+tt.name, func() bool { return sot.ErrorMessage(use()) == tt.wantErr })
		})
	}
}

func TestPersonalTokenFollowsMemberships(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	bob := &sot.User{Login: "bob", Name: "Bob"}
	if err := f.db.CreateUser(ctx, bob, ""); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.db.SetMember(ctx, "acme", "bob", sot.RoleMember); err != nil {
		t.Fatal(err)
	}
	tok, secret, err := sot.PreparePersonalToken(bob, sot.UserRef{ID: bob.ID, Login: "bob"}, sot.TokenRequest{Name: "laptop", Expiry: sot.Expiry{In: "7d"}}, sot.PersonalTokenPolicy(), f.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := f.db.CreateToken(ctx, tok, sot.HashSecret(secret)); err != nil {
		t.Fatal(err)
	}
	p, err := f.auth.AuthenticateSecret(ctx, secret, clientIP)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Authorize(sot.PermissionScan, "acme", "web"); err != nil {
		t.Fatalf("member: %v", err)
	}
	if err := f.db.RemoveMember(ctx, "acme", "bob"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "loss of the organization", func() bool {
		p, err := f.auth.AuthenticateSecret(ctx, secret, clientIP)
		return err == nil && errors.Is(p.Authorize(sot.PermissionScan, "acme", "web"), sot.ErrNotFound)
	})
}

func TestExpiryUsesTheClockAndIsAudited(t *testing.T) {
	f := newFixture(t)
	_, secret := f.orgToken(t, sot.Scope{AllProjects: true}, sot.TokenRequest{Expiry: sot.Expiry{In: "7d"}})
	if _, err := f.auth.AuthenticateSecret(t.Context(), secret, clientIP); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(7*sot.Day - time.Second)
	if _, err := f.auth.AuthenticateSecret(t.Context(), secret, clientIP); err != nil {
		t.Fatalf("a second before expiry: %v", err)
	}
	f.clock.Add(time.Second)
	_, err := f.auth.AuthenticateSecret(t.Context(), secret, clientIP)
	if sot.ErrorMessage(err) != "token expired" {
		t.Fatalf("at expiry: %v, want token expired", err)
	}
	eventually(t, "token.expired_use audit event", func() bool {
		evs, _, err := f.db.ListEvents(t.Context(), "acme", sot.AuditFilter{Action: sot.ActionTokenExpiredUse}, sot.Page{})
		return err == nil && len(evs) == 1
	})
}

func TestFailedAuthenticationAuditedOncePerMinute(t *testing.T) {
	f := newFixture(t)
	unknown := sot.NewSecret(sot.TokenKindOrg) // well-formed, never stored
	for range 20 {
		if _, err := f.auth.AuthenticateSecret(t.Context(), unknown, clientIP); sot.ErrorMessage(err) != "unknown token" {
			t.Fatalf("unknown secret: %v", err)
		}
	}
	eventually(t, "auth.failed event", func() bool {
		evs, _, _ := f.db.ListEvents(t.Context(), "", sot.AuditFilter{Action: sot.ActionAuthFailed}, sot.Page{})
		return len(evs) == 1
	})
	time.Sleep(50 * time.Millisecond) // let any stray extra write land before counting again
	evs, _, _ := f.db.ListEvents(t.Context(), "", sot.AuditFilter{Action: sot.ActionAuthFailed}, sot.Page{})
	if len(evs) != 1 {
		t.Fatalf("%d auth.failed events for 20 failures within a minute, want 1", len(evs))
	}
	if fmt.Sprint(evs[0].Details) == "" || evs[0].Actor.IP != "192.0.2.10" {
		t.Fatalf("event = %+v", evs[0])
	}
}

func TestAllowedCIDRs(t *testing.T) {
	f := newFixture(t)
	cidrs, _ := sot.ParseCIDRs("allowed_cidrs", []string{"192.0.2.0/24", "2001:db8::/32"})
	_, secret := f.orgToken(t, sot.Scope{AllProjects: true}, sot.TokenRequest{AllowedCIDRs: cidrs})
	for ip, want := range map[string]string{"192.0.2.99": "", "2001:db8::5": "", "198.51.100.1": sot.EFORBIDDEN, "2001:db9::1": sot.EFORBIDDEN} {
		_, err := f.auth.AuthenticateSecret(t.Context(), secret, netip.MustParseAddr(ip))
		if got := sot.ErrorCode(err); got != want {
			t.Errorf("from %s: %v, want code %q", ip, err, want)
		}
	}
}

func TestLastUsedIsBatched(t *testing.T) {
	f := newFixture(t)
	tok, secret := f.orgToken(t, sot.Scope{AllProjects: true}, sot.TokenRequest{})
	for range 50 {
		if _, err := f.auth.AuthenticateSecret(t.Context(), secret, clientIP); err != nil {
			t.Fatal(err)
		}
	}
	got, err := f.db.FindToken(t.Context(), sot.TokenOwner{Org: "acme"}, tok.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.LastUsedAt != nil {
		t.Fatal("last use written before a flush: the check path wrote to storage")
	}
	if err := f.auth.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	got, _ = f.db.FindToken(t.Context(), sot.TokenOwner{Org: "acme"}, tok.ID)
	if got.LastUsedAt == nil || !got.LastUsedAt.Equal(f.clock.Now()) || got.LastUsedIP != "192.0.2.10" {
		t.Fatalf("after flush: last used %v from %q", got.LastUsedAt, got.LastUsedIP)
	}
}

// BenchmarkAuthenticateAndAuthorize measures the whole check on a cache
// hit: parse, checksum, hash, cache, state, plan, IP, authorize.
func BenchmarkAuthenticateAndAuthorize(b *testing.B) {
	patterns := make([]string, 50)
	for i := range patterns {
		patterns[i] = fmt.Sprintf("team-%d-.*", i)
	}
	f := newFixture(b)
	cases := []struct {
		name    string
		scope   sot.Scope
		project string
	}{
		{"all", sot.Scope{AllProjects: true}, "web"},
		{"patterns-50", sot.Scope{Patterns: patterns}, "team-49-web"},
		{"explicit", sot.Scope{Projects: []string{"web", "api"}}, "web"},
	}
	for _, c := range cases {
		_, secret := f.orgToken(b, c.scope, sot.TokenRequest{})
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			ctx := context.Background()
			for b.Loop() {
				p, err := f.auth.AuthenticateSecret(ctx, secret, clientIP)
				if err != nil {
					b.Fatal(err)
				}
				if err := p.Authorize(sot.PermissionScan, "acme", c.project); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// After a rotation both secrets work until the grace period ends by the
// service's clock (not the database's); then the old one is refused as
// "token rotated", told apart from an unknown secret, and audited.
func TestRotationGraceUsesTheClock(t *testing.T) {
	for _, tc := range []struct {
		name  string
		grace time.Duration
	}{
		{"no grace", 0},
		{"one day", 24 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			tok, oldSecret := f.orgToken(t, sot.Scope{AllProjects: true}, sot.TokenRequest{})
			if _, err := f.auth.AuthenticateSecret(t.Context(), oldSecret, clientIP); err != nil {
				t.Fatal(err)
			}
			newSecret := sot.NewSecret(sot.TokenKindOrg)
			if _, err := f.db.RotateToken(t.Context(), sot.TokenOwner{Org: "acme"}, tok.ID, sot.RotateRequest{
				Now: f.clock.Now(), Grace: tc.grace, Hash: sot.HashSecret(newSecret), Hint: sot.SecretHint(newSecret),
			}); err != nil {
				t.Fatal(err)
			}
			if _, err := f.auth.AuthenticateSecret(t.Context(), newSecret, clientIP); err != nil {
				t.Fatalf("new secret: %v", err)
			}
			if tc.grace > 0 {
				f.clock.Add(tc.grace - time.Second)
				if _, err := f.auth.AuthenticateSecret(t.Context(), oldSecret, clientIP); err != nil {
					t.Fatalf("old secret a second before the grace period ends: %v", err)
				}
				f.clock.Add(time.Second)
			}
			if _, err := f.auth.AuthenticateSecret(t.Context(), oldSecret, clientIP); sot.ErrorMessage(err) != "token rotated" {
				t.Fatalf("old secret after the grace period: %v, want token rotated", err)
			}
			if _, err := f.auth.AuthenticateSecret(t.Context(), newSecret, clientIP); err != nil {
				t.Fatalf("new secret after the grace period: %v", err)
			}
			eventually(t, "auth.failed event for the rotated secret", func() bool {
				evs, _, err := f.db.ListEvents(t.Context(), "acme", sot.AuditFilter{Action: sot.ActionAuthFailed}, sot.Page{})
				return err == nil && len(evs) == 1 && evs[0].Details["reason"] == "rotated"
			})
		})
	}
}

// A refusal for the client address is audited with the address.
func TestAllowedCIDRsRefusalAudited(t *testing.T) {
	f := newFixture(t)
	cidrs, _ := sot.ParseCIDRs("allowed_cidrs", []string{"2001:db8::/32"})
	_, secret := f.orgToken(t, sot.Scope{AllProjects: true}, sot.TokenRequest{AllowedCIDRs: cidrs})
	if _, err := f.auth.AuthenticateSecret(t.Context(), secret, netip.MustParseAddr("2001:db9::7")); sot.ErrorCode(err) != sot.EFORBIDDEN {
		t.Fatalf("from outside: %v", err)
	}
	eventually(t, "ip_not_allowed audit event", func() bool {
		evs, _, err := f.db.ListEvents(t.Context(), "acme", sot.AuditFilter{Action: sot.ActionAuthFailed}, sot.Page{})
		return err == nil && len(evs) == 1 && evs[0].Details["reason"] == "ip_not_allowed" && evs[0].Actor.IP == "2001:db9::7"
	})
}

func TestFlushKeepsUsesWhenStorageFails(t *testing.T) {
	f := newFixture(t)
	tok, secret := f.orgToken(t, sot.Scope{AllProjects: true}, sot.TokenRequest{})
	if _, err := f.auth.AuthenticateSecret(t.Context(), secret, clientIP); err != nil {
		t.Fatal(err)
	}
	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	if err := f.auth.Flush(canceled); err == nil {
		t.Fatal("Flush with a canceled context succeeded")
	}
	if err := f.auth.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	got, err := f.db.FindToken(t.Context(), sot.TokenOwner{Org: "acme"}, tok.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.LastUsedAt == nil {
		t.Fatal("the use recorded before a failed flush was lost")
	}
}
