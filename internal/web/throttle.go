package web

import (
	"strings"
	"sync"
	"time"
)

// throttle limits failed logins per client address and login. It lives in
// memory: with several replicas an attacker gets a few more attempts per
// replica, which the password hash's cost already makes useless.
type throttle struct {
	max     int           // failures allowed within window
	window  time.Duration // how long failures are remembered
	entries int           // bound on remembered keys

	mu    sync.Mutex
	fails map[string]*failures
}

type failures struct {
	n     int
	first time.Time
}

func newThrottle(max int, window time.Duration, entries int) *throttle {
	return &throttle{max: max, window: window, entries: entries, fails: make(map[string]*failures)}
}

func throttleKey(ip, login string) string { return ip + "\x00" + strings.ToLower(login) }

// wait returns how long the key must wait before its next attempt, or 0.
func (t *throttle) wait(key string, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	f, ok := t.fails[key]
	if !ok {
		return 0
	}
	end := f.first.Add(t.window)
	if !now.Before(end) {
		delete(t.fails, key)
		return 0
	}
	if f.n < t.max {
		return 0
	}
	return end.Sub(now)
}

// fail records a failed attempt of key.
func (t *throttle) fail(key string, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if f, ok := t.fails[key]; ok && now.Before(f.first.Add(t.window)) {
		f.n++
		return
	}
	if len(t.fails) >= t.entries {
		t.evict(now)
	}
	t.fails[key] = &failures{n: 1, first: now}
}

// evict makes room: it drops forgotten entries, and when none is, the
// oldest one, so a flood of keys cannot grow memory without bound.
func (t *throttle) evict(now time.Time) {
	var oldest string
	var oldestAt time.Time
	for k, f := range t.fails {
		if !now.Before(f.first.Add(t.window)) {
			delete(t.fails, k)
			continue
		}
		if oldest == "" || f.first.Before(oldestAt) {
			oldest, oldestAt = k, f.first
		}
	}
	if len(t.fails) >= t.entries && oldest != "" {
		delete(t.fails, oldest)
	}
}

// reset forgets key after a successful login.
func (t *throttle) reset(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.fails, key)
}
