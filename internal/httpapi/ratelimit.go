package httpapi

import (
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sot-dev/sot"
)

// Defaults of the failed-authentication limit.
const (
	DefaultAuthFailureLimit = 100 // failures per client address per window
	authFailureWindow       = time.Minute
	authFailureEntries      = 100_000 // bound on remembered addresses
)

// failureLimiter refuses (429) a client address that sent too many bad
// credentials within a window. Secrets are too long to guess; what this
// protects is storage, from floods of well-formed unknown secrets that each
// cost a lookup. It lives in memory, per replica.
type failureLimiter struct {
	max int
	// n mirrors len(fails), so that the common case (no recent failures
	// at all) costs one atomic load and no lock on the hot path.
	n atomic.Int64

	mu    sync.Mutex
	fails map[netip.Addr]*failureCount
}

type failureCount struct {
	n     int
	first time.Time
}

func newFailureLimiter(max int) *failureLimiter {
	return &failureLimiter{max: max, fails: make(map[netip.Addr]*failureCount)}
}

// idle reports whether no address has failures on record, the common case:
// then no address has to wait.
func (l *failureLimiter) idle() bool { return l.n.Load() == 0 }

// wait returns how long ip must wait before its next attempt, or 0.
func (l *failureLimiter) wait(ip netip.Addr, now time.Time) time.Duration {
	if l.idle() {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	f, ok := l.fails[ip]
	if !ok {
		return 0
	}
	end := f.first.Add(authFailureWindow)
	if !now.Before(end) {
		l.delete(ip)
		return 0
	}
	if f.n < l.max {
		return 0
	}
	return end.Sub(now)
}

// fail records a bad credential from ip.
func (l *failureLimiter) fail(ip netip.Addr, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if f, ok := l.fails[ip]; ok && now.Before(f.first.Add(authFailureWindow)) {
		f.n++
		return
	}
	if len(l.fails) >= authFailureEntries {
		for k, f := range l.fails {
			if !now.Before(f.first.Add(authFailureWindow)) {
				l.delete(k)
			}
		}
		if len(l.fails) >= authFailureEntries {
			// Still full: forget everyone rather than grow without bound
			// or refuse clients that did nothing wrong.
			clear(l.fails)
			l.n.Store(0)
		}
	}
	if _, ok := l.fails[ip]; !ok {
		l.n.Add(1)
	}
	l.fails[ip] = &failureCount{n: 1, first: now}
}

func (l *failureLimiter) delete(ip netip.Addr) {
	delete(l.fails, ip)
	l.n.Add(-1)
}

// rateLimited returns the 429 problem for a client that must wait d.
func rateLimited(d time.Duration) *problem {
	p := problemFor(sot.Errorf(sot.ERATELIMITED, "too many failed authentications from this address; retry later"))
	p.retryAfter = strconv.Itoa(int(d.Round(time.Second)/time.Second) + 1)
	return p
}
