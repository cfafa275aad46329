package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// sot bench runs end to end on a small organization and reports every
// target, the ratios, the storage writes and the RSS. Figures are not
// asserted: they depend on the machine.
func TestBenchCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	args := []string{"bench", "--projects", "60", "--tokens", "4", "--patterns", "10", "--connections", "4",
		"--duration", "400ms", "--rounds", "2", "--warmup", "0s", "--explicit"}
	if code := run(args, &stdio{in: strings.NewReader(""), out: &out, err: &errOut}); code != exitOK {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, &out, &errOut)
	}
	rows := map[string][]string{}
	for line := range strings.Lines(out.String()) {
		if f := strings.Fields(line); len(f) == 5 {
			rows[f[0]] = f
		}
	}
	for _, target := range []string{"healthz", "check", "bare", "explicit"} {
		f, ok := rows[target]
		if !ok {
			t.Fatalf("no row for %s in:\n%s", target, &out)
		}
		if n, err := strconv.Atoi(f[1]); err != nil || n == 0 {
			t.Errorf("%s: %s requests", target, f[1])
		}
	}
	for _, want := range []string{"checks project team-09-svc-00059", "ratios: check/healthz ", ", explicit/check ", "storage writes during the load: ", "RSS of this process"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, &out)
		}
	}
}

func TestBenchRefusesOutOfBounds(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no connection", []string{"--connections", "0"}, "--connections: out of range"},
		{"endless", []string{"--duration", "1h"}, "--duration: out of range"},
		{"too many patterns", []string{"--patterns", "51"}, "--patterns: out of range"},
		{"too many projects", []string{"--projects", "100001"}, "--projects: out of range"},
		{"one token", []string{"--tokens", "1"}, "--tokens: out of range"},
		{"rounds too short", []string{"--duration", "100ms", "--rounds", "50"}, "--rounds: at most one round per 10ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(append([]string{"bench"}, tc.args...), &stdio{in: strings.NewReader(""), out: &out, err: &errOut})
			if code != exitUsage || !strings.Contains(errOut.String(), tc.want) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, &errOut, exitUsage, tc.want)
			}
		})
	}
}

func TestLatencyHistogram(t *testing.T) {
	var h latencyHistogram
	for i := 1; i <= 1000; i++ {
		h.add(time.Duration(i) * time.Microsecond)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{
		{0.50, 500 * time.Microsecond},
		{0.99, 990 * time.Microsecond},
		{1, 1000 * time.Microsecond},
	} {
		got := h.quantile(tc.q)
		if diff := float64(got-tc.want) / float64(tc.want); diff < -0.03 || diff > 0.03 {
			t.Errorf("quantile(%v) = %v, want %v within 3%%", tc.q, got, tc.want)
		}
	}
	for _, ns := range []uint64{0, 1, 31, 32, 33, 1000, 1 << 40, 1<<63 + 12345} {
		if i := histBucket(ns); i < 0 || i >= len(h.n) {
			t.Fatalf("histBucket(%d) = %d, out of range", ns, i)
		}
		if ns >= 32 {
			if v := uint64(histValue(histBucket(ns))); float64(v) < float64(ns)*0.97 || float64(v) > float64(ns)*1.03 {
				t.Errorf("histValue(histBucket(%d)) = %d, more than 3%% off", ns, v)
			}
		}
	}
}

func TestParseWrk(t *testing.T) {
	const ok = `Running 2s test @ http://127.0.0.1:40000/api/v1/check?org=acme&project=web
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   480.12us  300.00us   9.10ms   90.00%
    Req/Sec    33.10k     2.00k   36.00k    70.00%
  Latency Distribution
     50%  420.00us
     75%  550.00us
     90%  700.00us
     99%    1.50ms
  131822 requests in 2.00s, 9.80MB read
Requests/sec:  65911.00
Transfer/sec:      4.90MB
`
	r, err := parseWrk(ok)
	if err != nil {
		t.Fatal(err)
	}
	if r.requests != 131822 || r.elapsed != 2*time.Second || r.p50 != 420*time.Microsecond || r.p99 != 1500*time.Microsecond {
		t.Fatalf("parsed %+v", r)
	}
	for _, tc := range []struct{ name, out, want string }{
		{"non-2xx", strings.Replace(ok, "Requests/sec", "  Non-2xx or 3xx responses: 7\nRequests/sec", 1), "7 responses other than 2xx"},
		{"socket errors", strings.Replace(ok, "Requests/sec", "  Socket errors: connect 0, read 3, write 0, timeout 0\nRequests/sec", 1), "read 3"},
		{"no count", "wrk: connection refused", "no request count"},
		{"no quantiles", strings.Replace(ok, "     99%    1.50ms\n", "", 1), "incomplete"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := parseWrk(tc.out); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("parseWrk error %v, want %q", err, tc.want)
			}
		})
	}
	clean := strings.Replace(ok, "Requests/sec", "  Socket errors: connect 0, read 0, write 0, timeout 0\nRequests/sec", 1)
	if _, err := parseWrk(clean); err != nil {
		t.Fatalf("zero socket errors refused: %v", err)
	}
}

// The check writes nothing to storage, allowed or refused: 2,000 checks
// over HTTP leave the store's count of committed writes where it was. The
// clock is frozen, so the batched last-used time has nothing new to write
// until the test moves it; then exactly one write follows, which shows the
// counter sees the check's only, batched, write.
func TestCheckWritesNothing(t *testing.T) {
	ctx := context.Background()
	f := startFrozenServer(t)
	secret, project := f.seeded.secret, f.seeded.project
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	base := f.url + "/api/v1/check?org="
	check := func(query string, want int) {
		t.Helper()
		req, _ := http.NewRequest("GET", base+query, nil)
		req.Header.Set("Authorization", "Bearer "+secret)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("check %s: status %d, want %d", query, resp.StatusCode, want)
		}
	}
	check("acme&project="+project, http.StatusNoContent)
	// The first use is pending; write it now, so that only the checks below
	// could add writes.
	if err := f.srv.auth.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	rows := []struct {
		query string
		want  int
	}{
		{"acme&project=" + project, http.StatusNoContent},
		{"acme&project=team-10-svc-00010", http.StatusForbidden},                 // out of scope
		{"acme&project=" + project + "&permission=browse", http.StatusForbidden}, // missing permission
		{"other&project=web", http.StatusForbidden},                              // another organization
	}
	before := f.srv.db.Writes()
	for i := range 2000 {
		r := rows[i%len(rows)]
		check(r.query, r.want)
	}
	if err := f.srv.auth.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := f.srv.db.Writes() - before; n != 0 {
		t.Fatalf("2,000 checks made %d storage writes, want 0", n)
	}
	f.advance(time.Second)
	check("acme&project="+project, http.StatusNoContent)
	if err := f.srv.auth.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := f.srv.db.Writes() - before; n != 1 {
		t.Fatalf("a check a second later then a flush made %d writes, want 1 (the batched last-used time)", n)
	}
}

// frozenServer is a server with the wiring of "sot serve", a clock that
// moves only when told, no lifecycle sweeps (they write by design) and the
// organization of sot bench.
type frozenServer struct {
	srv    *server
	url    string
	seeded *benchSeed
	now    atomic.Pointer[time.Time]
}

func startFrozenServer(t *testing.T) *frozenServer {
	t.Helper()
	ctx := context.Background()
	f := &frozenServer{}
	t0 := time.Now().Truncate(time.Second)
	f.now.Store(&t0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.url = "http://" + ln.Addr().String()
	f.srv, err = newServer(ctx, serveConfig{
		Addr:              ln.Addr().String(),
		DB:                "sqlite:" + filepath.Join(t.TempDir(), "sot.db"),
		AdminPassword:     "admin-password-for-tests",
		Now:               func() time.Time { return *f.now.Load() },
		LifecycleInterval: -1,
	}, io.Discard)
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- f.srv.Serve(sctx, ln) }()
	t.Cleanup(func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	b := &benchCmd{Projects: 60, Tokens: 3, Patterns: 10}
	if f.seeded, err = b.seed(ctx, f.srv); err != nil {
		t.Fatal(err)
	}
	return f
}

// advance moves the server's clock forward by d.
func (f *frozenServer) advance(d time.Duration) {
	t := f.now.Load().Add(d)
	f.now.Store(&t)
}

// An allowed check allocates nothing in sot's code, from the server's
// handler down to Authorize, for each kind of scope. (net/http's own
// allocations per request are the same for any handler.) The header map
// is cleared between runs, as a fresh response's would be empty.
func TestCheckDoesNotAllocate(t *testing.T) {
	f := startFrozenServer(t)
	h := f.srv.Handler()
	for _, tc := range []struct {
		name, secret string
	}{
		{"patterns", f.seeded.secret},
		{"explicit", f.seeded.explicitSecret},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/api/v1/check?org=acme&project="+f.seeded.project, nil)
			req.Header.Set("Authorization", "Bearer "+tc.secret)
			w := &discardWriter{h: http.Header{}}
			serve := func() {
				clear(w.h)
				h.ServeHTTP(w, req)
			}
			serve() // loads the principal
			if w.status != http.StatusNoContent {
				t.Fatalf("status %d", w.status)
			}
			if err := f.srv.auth.Flush(t.Context()); err != nil {
				t.Fatal(err)
			}
			if n := testing.AllocsPerRun(1000, serve); n != 0 {
				t.Fatalf("%v allocations per allowed check, want 0", n)
			}
		})
	}
}
