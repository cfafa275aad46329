package httpapi

import (
	"net/netip"
	"testing"
	"time"
)

func TestFailureLimiter(t *testing.T) {
	t0 := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("2001:db8::1")
	l := newFailureLimiter(2)
	steps := []struct {
		name string
		fail netip.Addr // recorded before asking, if valid
		at   time.Duration
		ask  netip.Addr
		want time.Duration
	}{
		{"clean", netip.Addr{}, 0, a, 0},
		{"one failure is fine", a, 0, a, 0},
		{"at the limit", a, 10 * time.Second, a, 50 * time.Second},
		{"another address is not affected", netip.Addr{}, 10 * time.Second, b, 0},
		{"still waiting", netip.Addr{}, 59 * time.Second, a, time.Second},
		{"window over", netip.Addr{}, 60 * time.Second, a, 0},
		{"a new window starts", a, 61 * time.Second, a, 0},
	}
	for _, st := range steps {
		now := t0.Add(st.at)
		if st.fail.IsValid() {
			l.fail(st.fail, now)
		}
		if got := l.wait(st.ask, now); got != st.want {
			t.Fatalf("%s: wait = %v, want %v", st.name, got, st.want)
		}
	}
	if n := l.n.Load(); n != int64(len(l.fails)) || n != 1 {
		t.Fatalf("count %d, map %d; want 1", n, len(l.fails))
	}
}
