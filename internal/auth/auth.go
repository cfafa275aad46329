// Package auth is the check hot path: it turns a token secret into a
// sot.Principal. A secret is parsed first (a malformed one or a bad checksum
// is refused with no I/O), hashed, looked up in a bounded cache, and only on
// a miss loaded from storage with one indexed lookup. Cached principals are
// forgotten when the store publishes a change that concerns them, so a
// revocation takes effect on the next request. Nothing is written to storage
// per request: last-used times are batched and flushed every few seconds.
package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"

	"github.com/sot-dev/sot"
)

// Config wires a Service.
type Config struct {
	Tokens sot.TokenService
	Users  sot.UserService
	Orgs   sot.OrgService
	Audit  sot.AuditService
	Bus    sot.ChangeBus
	// Now is the clock; time.Now when nil.
	Now    func() time.Time
	Logger *slog.Logger
	// CacheSize bounds the cache, in weight units: a principal weighs 1 plus
	// 1 per 64 explicit projects in its scope. Default 100,000.
	CacheSize int
	// CacheTTL bounds how long a principal is trusted without a change
	// event, as a safety net. Default 30 s.
	CacheTTL time.Duration
	// FlushInterval is how often last-used times are written. Default 5 s.
	FlushInterval time.Duration
}

// Service authenticates secrets and users. It implements sot.Authenticator.
type Service struct {
	cfg   Config
	now   func() time.Time
	log   *slog.Logger
	cache *otter.Cache[sot.SecretHash, *entry]
	// gen counts invalidations, so that a load that raced with a change does
	// not put the stale principal it read into the cache.
	gen atomic.Uint64

	// loads are the loads in flight. Concurrent first uses of one secret
	// (every connection of a busy client when its entry expires) share one
	// load instead of each reading a scope of up to 100,000 keys.
	loadsMu sync.Mutex
	loads   map[loadKey]*loadCall

	usesMu sync.Mutex
	uses   map[int64]use

	// failures deduplicates failed-authentication audit events per
	// (reason, token or address), so a client looping on a bad secret
	// produces one event a minute, not one a request.
	failures *otter.Cache[string, struct{}]
}

// use is a pending last-used record. It keeps the address as a netip.Addr
// and formats it at flush time, off the request path.
type use struct {
	at time.Time
	ip netip.Addr
}

// loadKey names a load by secret and invalidation generation: a caller
// that arrives after a change never joins a load that started before it.
type loadKey struct {
	hash sot.SecretHash
	gen  uint64
}

// loadCall is a load in flight; done is closed when e and err are set.
type loadCall struct {
	done chan struct{}
	e    *entry
	err  error
}

type entry struct {
	p *sot.Principal
	// lastUse is the Unix second of the last recorded use, so that a busy
	// token takes the uses lock at most once a second.
	lastUse atomic.Int64
	// loaded is when the load began (Unix nanoseconds), and refreshing
	// whether a reload is under way (see refreshDue).
	loaded     int64
	refreshing atomic.Bool
}

var _ sot.Authenticator = (*Service)(nil)

// New returns a Service. Call Run to receive change events and flush
// last-used times.
func New(cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = 100_000
	}
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = 30 * time.Second
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = 5 * time.Second
	}
	return &Service{
		cfg: cfg,
		now: cfg.Now,
		log: cfg.Logger,
		cache: otter.Must(&otter.Options[sot.SecretHash, *entry]{
			MaximumWeight:    uint64(cfg.CacheSize),
			Weigher:          func(_ sot.SecretHash, e *entry) uint32 { return 1 + uint32(e.p.Token.ProjectCount/64) },
			ExpiryCalculator: otter.ExpiryWriting[sot.SecretHash, *entry](cfg.CacheTTL),
		}),
		uses:  make(map[int64]use),
		loads: make(map[loadKey]*loadCall),
		failures: otter.Must(&otter.Options[string, struct{}]{
			MaximumSize:      10_000,
			ExpiryCalculator: otter.ExpiryWriting[string, struct{}](time.Minute),
		}),
	}
}

// Refusals. Their messages are part of the API contract ("token expired").
var (
	errUnknown = &sot.Error{Code: sot.EUNAUTHENTICATED, Message: "unknown token"}
	errExpired = &sot.Error{Code: sot.EUNAUTHENTICATED, Message: "token expired"}
	errRevoked = &sot.Error{Code: sot.EUNAUTHENTICATED, Message: "token revoked"}
	errRotated = &sot.Error{Code: sot.EUNAUTHENTICATED, Message: "token rotated"}
	errNoUser  = &sot.Error{Code: sot.EUNAUTHENTICATED, Message: "the token's user no longer exists"}
)

// AuthenticateSecret implements sot.Authenticator.
func (s *Service) AuthenticateSecret(ctx context.Context, secret string, ip netip.Addr) (*sot.Principal, error) {
	if _, err := sot.ParseSecret(secret); err != nil {
		s.fail(ctx, "malformed", nil, ip, err)
		return nil, err
	}
	hash := sot.HashSecret(secret)
	e, ok := s.cache.GetIfPresent(hash)
	if !ok {
		var err error
		if e, err = s.loadShared(ctx, hash); err != nil {
			if sot.ErrorCode(err) == sot.EUNAUTHENTICATED {
				s.fail(ctx, "unknown", nil, ip, err)
			}
			return nil, err
		}
	}
	p := e.p
	now := s.now()
	if ok && now.UnixNano()-e.loaded > int64(s.cfg.CacheTTL)*3/4 && e.refreshing.CompareAndSwap(false, true) {
		// Reload a used entry before it expires, in the background: a busy
		// token then never waits for a load (of up to 100,000 keys) on its
		// requests. This request goes on with the entry it has.
		go s.refresh(hash)
	}
	switch p.Token.State(now) {
	case sot.TokenStateRevoked:
		s.fail(ctx, "revoked", p.Token, ip, errRevoked)
		return nil, errRevoked
	case sot.TokenStateExpired:
		s.fail(ctx, "expired", p.Token, ip, errExpired)
		return nil, errExpired
	}
	// A secret replaced by a rotation works until its grace period ends,
	// by this clock (not the database's), then is told apart from an
	// unknown one.
	if exp := p.Token.SecretExpiresAt; exp != nil && !now.Before(*exp) {
		s.fail(ctx, "rotated", p.Token, ip, errRotated)
		return nil, errRotated
	}
	if p.Kind == sot.PrincipalOrgToken && !p.OrgPlan.AllowsOrgTokens() {
		return nil, sot.ErrPlanRequired
	}
	if err := p.CheckIP(ip); err != nil {
		s.fail(ctx, "ip_not_allowed", p.Token, ip, err)
		return nil, err
	}
	s.recordUse(e, now, ip)
	return p, nil
}

// loadShared loads the principal of hash, or waits for the load of it
// already in flight in the current generation.
func (s *Service) loadShared(ctx context.Context, hash sot.SecretHash) (*entry, error) {
	k := loadKey{hash: hash, gen: s.gen.Load()}
	s.loadsMu.Lock()
	c, ok := s.loads[k]
	if !ok {
		c = &loadCall{done: make(chan struct{})}
		s.loads[k] = c
	}
	s.loadsMu.Unlock()
	if ok {
		select {
		case <-c.done:
			return c.e, c.err
		case <-ctx.Done():
			return nil, fmt.Errorf("auth: wait for the load of a token: %w", ctx.Err())
		}
	}
	c.err = errLoadAborted // what waiters see if load panics
	defer func() {
		s.loadsMu.Lock()
		delete(s.loads, k)
		s.loadsMu.Unlock()
		close(c.done)
	}()
	// The load serves every waiter: the caller that started it going away
	// must not fail the others.
	c.e, c.err = s.load(context.WithoutCancel(ctx), hash, k.gen)
	return c.e, c.err
}

var errLoadAborted = errors.New("auth: the shared load of a token failed")

// refresh reloads the principal of hash into the cache. A token gone from
// storage stays cached until it expires, as without a refresh.
func (s *Service) refresh(hash sot.SecretHash) {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.CacheTTL)
	defer cancel()
	if _, err := s.loadShared(ctx, hash); err != nil && sot.ErrorCode(err) != sot.EUNAUTHENTICATED {
		s.log.Warn("refresh a cached token", "err", err)
	}
}

// load builds the principal of hash from storage and caches it, unless
// the generation moved from gen while it read.
func (s *Service) load(ctx context.Context, hash sot.SecretHash, gen uint64) (*entry, error) {
	loaded := s.now().UnixNano()
	t, err := s.cfg.Tokens.TokenBySecretHash(ctx, hash)
	if err != nil {
		if errors.Is(err, sot.ErrNotFound) {
			return nil, errUnknown
		}
		return nil, fmt.Errorf("auth: look up token: %w", err)
	}
	p := &sot.Principal{Token: t}
	switch t.Kind {
	case sot.TokenKindOrg:
		p.Kind = sot.PrincipalOrgToken
		org, err := s.cfg.Orgs.FindOrg(ctx, t.Org)
		if err != nil {
			return nil, fmt.Errorf("auth: load organization of token %d: %w", t.ID, err)
		}
		p.OrgPlan = org.Plan
		if t.ProjectCount > 0 {
			if t.Scope.Projects, err = s.cfg.Tokens.TokenProjectKeys(ctx, t.ID); err != nil {
				return nil, fmt.Errorf("auth: load scope of token %d: %w", t.ID, err)
			}
		}
		if p.Scope, err = t.Scope.Compile(); err != nil {
			return nil, fmt.Errorf("auth: compile scope of token %d: %w", t.ID, err)
		}
		// The matcher holds the keys; the token need not keep a second copy.
		t.Scope.Projects = nil
	case sot.TokenKindPersonal:
		p.Kind = sot.PrincipalPersonalToken
		if err := s.loadUser(ctx, p, t.UserID); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("auth: token %d has unknown kind %q", t.ID, t.Kind)
	}
	e := &entry{p: p, loaded: loaded}
	if s.gen.Load() == gen {
		s.cache.Set(hash, e)
	}
	return e, nil
}

func (s *Service) loadUser(ctx context.Context, p *sot.Principal, userID int64) error {
	u, err := s.cfg.Users.FindUserByID(ctx, userID)
	if err != nil {
		if errors.Is(err, sot.ErrNotFound) {
			return errNoUser
		}
		return fmt.Errorf("auth: load user %d: %w", userID, err)
	}
	ms, err := s.cfg.Orgs.UserMemberships(ctx, userID)
	if err != nil {
		return fmt.Errorf("auth: load memberships of user %d: %w", userID, err)
	}
	p.User = u
	p.Memberships = make(map[string]sot.Role, len(ms))
	for _, m := range ms {
		p.Memberships[m.Org] = m.Role
	}
	return nil
}

// UserPrincipal implements sot.Authenticator. Web sessions are not the hot
// path, so it reads storage every time and is never stale.
func (s *Service) UserPrincipal(ctx context.Context, userID int64) (*sot.Principal, error) {
	p := &sot.Principal{Kind: sot.PrincipalUser}
	if err := s.loadUser(ctx, p, userID); err != nil {
		return nil, err
	}
	return p, nil
}

// recordUse notes a use for the next flush, at most once a second per token.
func (s *Service) recordUse(e *entry, now time.Time, ip netip.Addr) {
	sec := now.Unix()
	if e.lastUse.Load() == sec {
		return
	}
	e.lastUse.Store(sec)
	s.usesMu.Lock()
	s.uses[e.p.Token.ID] = use{at: now, ip: ip}
	s.usesMu.Unlock()
}

// Flush writes the pending last-used times in one transaction. When the
// write fails (storage restarting, say) the uses are kept for the next
// flush, unless a newer use of the same token arrived meanwhile.
func (s *Service) Flush(ctx context.Context) error {
	s.usesMu.Lock()
	pending := s.uses
	if len(pending) == 0 {
		s.usesMu.Unlock()
		return nil
	}
	s.uses = make(map[int64]use, len(pending))
	s.usesMu.Unlock()
	batch := make([]sot.TokenUse, 0, len(pending))
	for id, u := range pending {
		batch = append(batch, sot.TokenUse{TokenID: id, At: u.at.UTC().Truncate(time.Second), IP: u.ip.Unmap().String()})
	}
	if err := s.cfg.Tokens.RecordTokenUses(ctx, batch); err != nil {
		s.usesMu.Lock()
		for id, u := range pending {
			if cur, ok := s.uses[id]; !ok || cur.at.Before(u.at) {
				s.uses[id] = u
			}
		}
		s.usesMu.Unlock()
		return fmt.Errorf("auth: record %d token uses: %w", len(batch), err)
	}
	return nil
}

// Run subscribes to changes and flushes last-used times every
// FlushInterval until ctx is done, then flushes once more (with a fresh,
// bounded context) and returns.
func (s *Service) Run(ctx context.Context) error {
	if s.cfg.Bus != nil {
		s.cfg.Bus.Subscribe(ctx, s.Invalidate)
	}
	tick := time.NewTicker(s.cfg.FlushInterval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			if err := s.Flush(ctx); err != nil {
				s.log.Error("flush last-used times", "err", err)
			}
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			return s.Flush(fctx)
		}
	}
}

// Invalidate forgets every cached principal that c may concern. Changes are
// rare next to checks, so a scan of the cache is cheaper than keeping
// reverse indexes up to date on the hot path.
func (s *Service) Invalidate(c sot.Change) {
	s.gen.Add(1)
	if c.Kind == sot.ChangeAll {
		s.cache.InvalidateAll()
		return
	}
	for h, e := range s.cache.All() {
		if concerns(e.p, c) {
			s.cache.Invalidate(h)
		}
	}
}

func concerns(p *sot.Principal, c sot.Change) bool {
	switch c.Kind {
	case sot.ChangeToken:
		return p.Token.ID == c.TokenID
	case sot.ChangeMember, sot.ChangeUser:
		return p.User != nil && p.User.ID == c.UserID
	case sot.ChangeOrg, sot.ChangeProject:
		return p.Kind == sot.PrincipalOrgToken && p.Token.Org == c.Org
	}
	return true
}

// fail audits a failed authentication, once a minute per reason and token
// (or client address, for secrets that match no token). The event never
// holds the secret.
func (s *Service) fail(ctx context.Context, reason string, t *sot.Token, ip netip.Addr, cause error) {
	key := reason + "|" + ip.String()
	if t != nil {
		key = fmt.Sprintf("%s|token:%d", reason, t.ID)
	}
	if _, inserted := s.failures.SetIfAbsent(key, struct{}{}); !inserted {
		return
	}
	ev := &sot.AuditEvent{
		At:      s.now().UTC(),
		Actor:   sot.Actor{Type: sot.ActorAnonymous, IP: ip.Unmap().String()},
		Action:  sot.ActionAuthFailed,
		Details: map[string]any{"reason": reason, "message": sot.ErrorMessage(cause)},
	}
	if t != nil {
		ev.Org = t.Org
		ev.Target = fmt.Sprintf("token:%d", t.ID)
		ev.Details["token_name"] = t.Name
		ev.Details["hint"] = t.Hint
		if reason == "expired" {
			ev.Action = sot.ActionTokenExpiredUse
		}
	}
	// The request must not wait on, or fail because of, the audit write.
	go func() {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := s.cfg.Audit.RecordEvent(actx, ev); err != nil {
			s.log.Error("audit failed authentication", "reason", reason, "err", err)
		}
	}()
}
