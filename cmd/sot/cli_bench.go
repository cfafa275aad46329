package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/bits"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sot-dev/sot"
)

// benchCmd is "sot bench": a bounded load test of the token check on
// loopback. It lives in the sot binary, not in a tool of its own, because
// it must measure the server exactly as "sot serve" wires it (newServer),
// which a separate command could only copy.
type benchCmd struct {
	Projects    int           `name:"projects" default:"10000" help:"Projects of the seeded organization (1 to 100,000)."`
	Tokens      int           `name:"tokens" default:"2000" help:"Organization tokens of the seeded organization, the two checked ones included (2 to 100,000)."`
	Patterns    int           `name:"patterns" default:"50" help:"Patterns in the scope of the checked token (1 to 50)."`
	DB          string        `name:"db" placeholder:"DSN" help:"A new, empty database to seed and serve (default: SQLite in a temporary directory, removed at the end)."`
	Connections int           `name:"connections" short:"c" default:"32" help:"Concurrent keep-alive connections (1 to 1,024)."`
	Duration    time.Duration `name:"duration" short:"d" default:"10s" help:"Load time per target, split into rounds (100ms to 5m)."`
	Rounds      int           `name:"rounds" default:"5" help:"Rounds: the targets take turns, Duration/Rounds each, so that the machine's drift touches them alike (1 to 50)."`
	Warmup      time.Duration `name:"warmup" default:"1s" help:"Load per target before measuring (0 to 1m)."`
	Explicit    bool          `name:"explicit" help:"Add a target: the check of a token whose scope lists every project explicitly."`
	Wrk         bool          `name:"wrk" help:"Also measure with wrk (from PATH) after the built-in client."`
	WrkThreads  int           `name:"wrk-threads" default:"2" help:"wrk threads (1 to 64)."`
}

// benchTarget is one endpoint under load.
type benchTarget struct {
	name   string
	url    string
	status int    // the status every response must have
	req    []byte // the whole request, sent as is on every round trip
	addr   string
	secret string
}

// Run seeds an organization, starts the server and a bare reference
// server on 127.0.0.1, loads /healthz, /api/v1/check and the bare server
// in turns, prints the figures and stops.
func (c *benchCmd) Run(ctx context.Context, std *stdio) error {
	if err := c.validate(); err != nil {
		return err
	}
	dsn := c.DB
	if dsn == "" {
		dir, err := benchTempDir()
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		defer os.RemoveAll(dir)
		dsn = "sqlite:" + filepath.Join(dir, "sot.db")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	// The request log is formatted as in production and then dropped: its
	// cost counts, a terminal's does not.
	srv, err := newServer(ctx, serveConfig{
		Addr:   ln.Addr().String(),
		DB:     dsn,
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)),
	}, io.Discard)
	if err != nil {
		ln.Close()
		return err
	}
	fmt.Fprintf(std.out, "sot bench: %s, %d CPUs, GOMAXPROCS %d; %s; seeding an organization of %d projects and %d tokens…\n",
		runtime.Version(), runtime.NumCPU(), runtime.GOMAXPROCS(0), redactDSN(dsn), c.Projects, c.Tokens)
	start := time.Now()
	seeded, err := c.seed(ctx, srv)
	if err != nil {
		ln.Close()
		return errors.Join(err, srv.Close())
	}
	secret, project := seeded.secret, seeded.project
	fmt.Fprintf(std.out, "seeded in %.1fs; the checked token has %d patterns and checks project %s\n", time.Since(start).Seconds(), c.Patterns, project)

	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(sctx, ln) }()
	bare, bareAddr, err := startBare()
	if err != nil {
		stop()
		return errors.Join(err, <-served)
	}
	defer func() {
		bare.Close()
		stop()
		<-served
	}()

	// The same request line and headers go to every target, so that the
	// only difference is what the server does with them.
	query := "?org=acme&project=" + project
	targets := []*benchTarget{
		newBenchTarget("healthz", ln.Addr().String(), "/healthz"+query, secret, http.StatusOK),
		newBenchTarget("check", ln.Addr().String(), "/api/v1/check"+query, secret, http.StatusNoContent),
		newBenchTarget("bare", bareAddr, "/"+query, secret, http.StatusNoContent),
	}
	if c.Explicit {
		targets = append(targets, newBenchTarget("explicit", ln.Addr().String(), "/api/v1/check"+query, seeded.explicitSecret, http.StatusNoContent))
	}
	for _, t := range targets {
		if _, err := t.load(ctx, 1, 0); err != nil {
			return fmt.Errorf("bench: first request to %s: %w", t.name, err)
		}
	}
	// The first start hashed the admin's password with Argon2 (64 MiB):
	// give that back, so that the RSS below is the server's own.
	debug.FreeOSMemory()
	idle, _ := readRSS()
	rss := startRSSSampler()
	writes := srv.db.Writes()
	results, err := c.loadAll(ctx, targets)
	peak, havePeak := rss.stop()
	if err != nil {
		return err
	}
	writes = srv.db.Writes() - writes
	fmt.Fprintf(std.out, "\nbuilt-in client: %d connections, %d rounds of %v per target, after %v of warm-up\n",
		c.Connections, c.Rounds, c.Duration/time.Duration(c.Rounds), c.Warmup)
	printBenchTable(std.out, targets, results)
	fmt.Fprintf(std.out, "storage writes during the load: %d (none per request: last-used times batched every 5 s, lifecycle sweeps every 30 s)\n", writes)
	if havePeak {
		fmt.Fprintf(std.out, "RSS of this process (server, bare server and client): %.1f MiB before the load, peak %.1f MiB under load\n",
			float64(idle)/(1<<20), float64(peak)/(1<<20))
	}
	if !c.Wrk {
		return nil
	}
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		return fmt.Errorf("bench: --wrk: %w", err)
	}
	wres, err := c.wrkAll(ctx, wrk, targets)
	if err != nil {
		return err
	}
	fmt.Fprintf(std.out, "\nwrk: %d threads, %d connections, %d rounds of %v per target\n",
		c.WrkThreads, c.Connections, c.Rounds, c.wrkRound())
	printBenchTable(std.out, targets, wres)
	return nil
}

// benchTempDir creates the directory of the default database: in a memory
// file system when there is one, because seeding commits every project
// durably while the check itself never touches the disk.
func benchTempDir() (string, error) {
	if dir, err := os.MkdirTemp("/dev/shm", "sot-bench-"); err == nil {
		return dir, nil
	}
	return os.MkdirTemp("", "sot-bench-")
}

func (c *benchCmd) validate() error {
	for _, b := range []struct {
		flag      string
		v, lo, hi int64
	}{
		{"--projects", int64(c.Projects), 1, sot.MaxScopeProjects},
		{"--tokens", int64(c.Tokens), 2, 100_000},
		{"--patterns", int64(c.Patterns), 1, sot.MaxScopePatterns},
		{"--connections", int64(c.Connections), 1, 1024},
		{"--duration", int64(c.Duration), int64(100 * time.Millisecond), int64(5 * time.Minute)},
		{"--rounds", int64(c.Rounds), 1, 50},
		{"--warmup", int64(c.Warmup), 0, int64(time.Minute)},
		{"--wrk-threads", int64(c.WrkThreads), 1, 64},
	} {
		if b.v < b.lo || b.v > b.hi {
			return usageErrorf("%s: out of range", b.flag)
		}
	}
	if c.Duration/time.Duration(c.Rounds) < 10*time.Millisecond {
		return usageErrorf("--rounds: at most one round per 10ms of --duration")
	}
	return nil
}

// seed creates organization acme with its projects and tokens through the
// store. Project keys are team-TT-svc-NNNNN over 50 teams; the checked
// token's patterns each cover a team, and it checks a project of the last
// team it covers.
func (c *benchCmd) seed(ctx context.Context, srv *server) (*benchSeed, error) {
	db := srv.db
	admin, err := db.FindUserByLogin(ctx, "admin")
	if err != nil {
		return nil, fmt.Errorf("bench: find the admin: %w", err)
	}
	org := &sot.Org{Key: "acme", Name: "Acme", Plan: sot.PlanTeam}
	if err := db.CreateOrg(ctx, org, admin.ID); err != nil {
		return nil, fmt.Errorf("bench: create organization (is --db a new, empty database?): %w", err)
	}
	out := &benchSeed{}
	keys := make([]string, c.Projects)
	for i := range keys {
		keys[i] = fmt.Sprintf("team-%02d-svc-%05d", i%50, i)
		if err := db.CreateProject(ctx, &sot.Project{Org: "acme", Key: keys[i], Name: keys[i]}); err != nil {
			return nil, fmt.Errorf("bench: create project: %w", err)
		}
	}
	for i := len(keys) - 1; i >= 0; i-- {
		if i%50 < c.Patterns {
			out.project = keys[i]
			break
		}
	}
	creator := sot.UserRef{ID: admin.ID, Login: admin.Login}
	scan := sot.NewPermissionSet(sot.PermissionScan)
	create := func(name string, scope sot.Scope) (string, error) {
		// 90 days: outside the expiry warnings, which would have the
		// lifecycle sweeps write during the load.
		req := sot.TokenRequest{Name: name, Scope: scope, Permissions: scan, Expiry: sot.Expiry{In: "90d"}}
		t, secret, err := sot.PrepareOrgToken(org, creator, req, time.Now())
		if err != nil {
			return "", err
		}
		return secret, db.CreateToken(ctx, t, sot.HashSecret(secret))
	}
	patterns := make([]string, c.Patterns)
	for i := range patterns {
		patterns[i] = fmt.Sprintf("team-%02d-svc-[0-9]+", i)
	}
	if out.secret, err = create("checked", sot.Scope{Patterns: patterns}); err != nil {
		return nil, fmt.Errorf("bench: create the checked token: %w", err)
	}
	if out.explicitSecret, err = create("explicit", sot.Scope{Projects: keys}); err != nil {
		return nil, fmt.Errorf("bench: create the explicit token: %w", err)
	}
	// The other tokens mix the three scope modes.
	for i := 2; i < c.Tokens; i++ {
		scope := sot.Scope{AllProjects: true}
		switch i % 3 {
		case 1:
			scope = sot.Scope{Projects: []string{keys[i%len(keys)]}}
		case 2:
			scope = sot.Scope{Patterns: []string{fmt.Sprintf("team-%02d-.*", i%50), "svc-.*"}}
		}
		if _, err := create(fmt.Sprintf("ci-%d", i), scope); err != nil {
			return nil, fmt.Errorf("bench: create token: %w", err)
		}
	}
	return out, nil
}

// benchSeed is what seed created: the secrets of the checked tokens and
// the project they check.
type benchSeed struct {
	secret         string // scoped by --patterns patterns
	explicitSecret string // scoped by every project, listed
	project        string
}

// startBare starts the reference: a net/http server, configured as sot's,
// that answers 204 to everything.
func startBare() (*http.Server, string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", fmt.Errorf("bench: %w", err)
	}
	hs := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
	}
	go hs.Serve(ln)
	return hs, ln.Addr().String(), nil
}

func newBenchTarget(name, addr, uri, secret string, status int) *benchTarget {
	req := "GET " + uri + " HTTP/1.1\r\nHost: " + addr + "\r\nUser-Agent: sot-bench\r\nAuthorization: Bearer " + secret + "\r\n\r\n"
	return &benchTarget{name: name, url: "http://" + addr + uri, status: status, req: []byte(req), addr: addr, secret: secret}
}

// benchResult is the outcome of loading one target, possibly over several
// rounds.
type benchResult struct {
	requests int64
	elapsed  time.Duration
	hist     latencyHistogram
	// p50 and p99 override the histogram's quantiles when the figures come
	// from wrk, which reports quantiles only.
	p50, p99 time.Duration
	// cpu is the CPU time this process used while wrk, a process of its
	// own, loaded the target: what the servers spent on the requests.
	cpu time.Duration
}

func (r *benchResult) add(o *benchResult) {
	r.requests += o.requests
	r.elapsed += o.elapsed
	r.hist.merge(&o.hist)
}

func (r *benchResult) rate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.requests) / r.elapsed.Seconds()
}

func (r *benchResult) quantiles() (p50, p99 time.Duration) {
	if r.p50 > 0 {
		return r.p50, r.p99
	}
	return r.hist.quantile(0.50), r.hist.quantile(0.99)
}

// loadAll warms each target up, then loads them in turns for c.Rounds
// rounds, starting each round with the next target.
func (c *benchCmd) loadAll(ctx context.Context, targets []*benchTarget) ([]*benchResult, error) {
	if c.Warmup > 0 {
		for _, t := range targets {
			_, err := t.load(ctx, c.Connections, c.Warmup)
			if ctx.Err() != nil {
				return nil, fmt.Errorf("bench: interrupted: %w", ctx.Err())
			}
			if err != nil {
				return nil, fmt.Errorf("bench: warm-up of %s: %w", t.name, err)
			}
		}
	}
	results := make([]*benchResult, len(targets))
	for i := range results {
		results[i] = &benchResult{}
	}
	slice := c.Duration / time.Duration(c.Rounds)
	for round := range c.Rounds {
		for j := range targets {
			i := (round + j) % len(targets)
			r, err := targets[i].load(ctx, c.Connections, slice)
			if ctx.Err() != nil {
				return nil, fmt.Errorf("bench: interrupted: %w", ctx.Err())
			}
			if err != nil {
				return nil, fmt.Errorf("bench: %s: %w", targets[i].name, err)
			}
			results[i].add(r)
		}
	}
	return results, nil
}

// load runs a closed loop of conns keep-alive connections against t for d
// (or a single request when d is 0) and returns what they measured.
func (t *benchTarget) load(ctx context.Context, conns int, d time.Duration) (*benchResult, error) {
	ctx, cancel := context.WithTimeout(ctx, d+10*time.Second)
	defer cancel()
	results := make([]benchResult, conns)
	errs := make([]error, conns)
	begin := time.Now()
	deadline := begin.Add(d)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Go(func() { errs[i] = t.conn(ctx, deadline, &results[i]) })
	}
	wg.Wait()
	total := &benchResult{elapsed: time.Since(begin)}
	for i := range results {
		total.requests += results[i].requests
		total.hist.merge(&results[i].hist)
	}
	if err := firstError(errs); err != nil {
		return nil, err
	}
	return total, nil
}

// firstError returns the first error of errs, saying how many connections
// failed: one message, not one per connection.
func firstError(errs []error) error {
	var first error
	n := 0
	for _, err := range errs {
		if err != nil {
			if first == nil {
				first = err
			}
			n++
		}
	}
	if n > 1 {
		return fmt.Errorf("%w (and %d more connections)", first, n-1)
	}
	return first
}

// conn sends t's request over one connection until deadline, at least
// once. It speaks just enough HTTP/1.1 to read a response with no body or
// a Content-Length one, so that the client costs as little as possible of
// the CPU it shares with the servers.
func (t *benchTarget) conn(ctx context.Context, deadline time.Time, r *benchResult) error {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return err
	}
	defer nc.Close()
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
	}
	// An interrupted bench stops at once, not at the end of its round.
	defer context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })()
	br := bufio.NewReaderSize(nc, 4096)
	for {
		start := time.Now()
		if r.requests > 0 && !start.Before(deadline) {
			return nil
		}
		if _, err := nc.Write(t.req); err != nil {
			return err
		}
		status, err := readResponse(br)
		if err != nil {
			return err
		}
		if status != t.status {
			return fmt.Errorf("status %d, want %d", status, t.status)
		}
		r.hist.add(time.Since(start))
		r.requests++
	}
}

// readResponse reads one response and returns its status. It refuses what
// a keep-alive loop cannot go on after: a chunked body or a closing
// connection.
func readResponse(br *bufio.Reader) (int, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, fmt.Errorf("malformed status line %q", line)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, fmt.Errorf("malformed status line %q", line)
	}
	length := 0
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		h := bytes.TrimRight(line, "\r\n")
		if len(h) == 0 {
			break
		}
		name, value, _ := bytes.Cut(h, []byte(":"))
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(value)); err != nil {
				return 0, fmt.Errorf("malformed Content-Length %q", value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			return 0, errors.New("unexpected Transfer-Encoding")
		case bytes.EqualFold(name, []byte("Connection")) && bytes.EqualFold(value, []byte("close")):
			return 0, errors.New("the server closes the connection")
		}
	}
	if _, err := br.Discard(length); err != nil {
		return 0, err
	}
	return status, nil
}

// latencyHistogram counts durations in buckets of 1/32 of a power of two
// of nanoseconds (a relative error under 3%), exact below 32 ns.
type latencyHistogram struct {
	n [64 << histSubBits]uint32
}

const histSubBits = 5

func histBucket(ns uint64) int {
	if ns < 1<<histSubBits {
		return int(ns)
	}
	shift := bits.Len64(ns) - histSubBits - 1
	return (shift+1)<<histSubBits | int(ns>>shift)&(1<<histSubBits-1)
}

// histValue is the middle of bucket i.
func histValue(i int) time.Duration {
	if i < 1<<histSubBits {
		return time.Duration(i)
	}
	shift := i>>histSubBits - 1
	low := uint64(i&(1<<histSubBits-1)|1<<histSubBits) << shift
	return time.Duration(low + (uint64(1)<<shift)/2)
}

func (h *latencyHistogram) add(d time.Duration) { h.n[histBucket(uint64(max(d, 0)))]++ }

func (h *latencyHistogram) merge(o *latencyHistogram) {
	for i, v := range o.n {
		h.n[i] += v
	}
}

// quantile returns the duration under which a fraction q of the samples
// fall.
func (h *latencyHistogram) quantile(q float64) time.Duration {
	var total uint64
	for _, v := range h.n {
		total += uint64(v)
	}
	if total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(total)))
	var seen uint64
	for i, v := range h.n {
		if seen += uint64(v); seen >= rank {
			return histValue(i)
		}
	}
	return histValue(len(h.n) - 1)
}

func printBenchTable(w io.Writer, targets []*benchTarget, results []*benchResult) {
	withCPU := results[0].cpu > 0
	fmt.Fprintf(w, "%-9s %10s %10s %10s %10s", "target", "requests", "req/s", "p50", "p99")
	if withCPU {
		fmt.Fprintf(w, " %12s", "CPU/request")
	}
	fmt.Fprintln(w)
	rates := map[string]float64{}
	cpus := map[string]float64{}
	for i, t := range targets {
		r := results[i]
		p50, p99 := r.quantiles()
		rates[t.name] = r.rate()
		fmt.Fprintf(w, "%-9s %10d %10.0f %10s %10s", t.name, r.requests, r.rate(), fmtLatency(p50), fmtLatency(p99))
		if withCPU && r.requests > 0 {
			cpus[t.name] = float64(r.cpu) / float64(r.requests)
			fmt.Fprintf(w, " %12s", fmtLatency(time.Duration(cpus[t.name])))
		}
		fmt.Fprintln(w)
	}
	ratio := func(m map[string]float64, a, b string) string {
		if m[b] == 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.2f", m[a]/m[b])
	}
	fmt.Fprintf(w, "ratios: check/healthz %s, check/bare %s", ratio(rates, "check", "healthz"), ratio(rates, "check", "bare"))
	if _, ok := rates["explicit"]; ok {
		fmt.Fprintf(w, ", explicit/check %s", ratio(rates, "explicit", "check"))
	}
	fmt.Fprintln(w)
	if withCPU {
		fmt.Fprintf(w, "server CPU per request: check %s of bare's, %s of healthz's\n", ratio(cpus, "check", "bare"), ratio(cpus, "check", "healthz"))
	}
}

func fmtLatency(d time.Duration) string {
	if d < 100*time.Microsecond {
		return fmt.Sprintf("%.1fµs", float64(d)/float64(time.Microsecond))
	}
	return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
}

// rssSampler records the peak resident set size of this process while a
// load runs. It reads /proc, so it reports nothing where there is none.
type rssSampler struct {
	done chan struct{}
	peak chan int64
}

func startRSSSampler() *rssSampler {
	s := &rssSampler{done: make(chan struct{}), peak: make(chan int64, 1)}
	go func() {
		var peak int64
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			if v, ok := readRSS(); ok {
				peak = max(peak, v)
			}
			select {
			case <-s.done:
				s.peak <- peak
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

// stop ends the sampling and returns the peak in bytes, if known.
func (s *rssSampler) stop() (int64, bool) {
	close(s.done)
	peak := <-s.peak
	return peak, peak > 0
}

// readRSS returns the resident set size of this process in bytes.
func readRSS() (int64, bool) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err == nil
		}
	}
	return 0, false
}

// wrkRound is the length of one wrk run: wrk counts in whole seconds.
func (c *benchCmd) wrkRound() time.Duration {
	return max(time.Second, (c.Duration / time.Duration(c.Rounds)).Round(time.Second))
}

// wrkAll runs wrk against each target in turns, as loadAll does, and
// measures the CPU time the servers spent meanwhile. The secret is on wrk's
// command line, visible to local users for the few seconds of the run,
// which is acceptable for a throwaway benchmark token.
func (c *benchCmd) wrkAll(ctx context.Context, wrk string, targets []*benchTarget) ([]*benchResult, error) {
	results := make([]*benchResult, len(targets))
	p50s := make([][]time.Duration, len(targets))
	p99s := make([][]time.Duration, len(targets))
	for i := range results {
		results[i] = &benchResult{}
	}
	round := c.wrkRound()
	for r := range c.Rounds {
		for j := range targets {
			i := (r + j) % len(targets)
			t := targets[i]
			rctx, cancel := context.WithTimeout(ctx, round+30*time.Second)
			cpu0, _ := processCPU()
			out, err := exec.CommandContext(rctx, wrk, "--latency",
				"-t", strconv.Itoa(c.WrkThreads), "-c", strconv.Itoa(c.Connections),
				"-d", strconv.Itoa(int(round/time.Second))+"s",
				"-H", "Authorization: Bearer "+t.secret, t.url).CombinedOutput()
			cpu1, _ := processCPU()
			cancel()
			if err != nil {
				return nil, fmt.Errorf("bench: wrk %s: %w\n%s", t.name, err, out)
			}
			w, err := parseWrk(string(out))
			if err != nil {
				return nil, fmt.Errorf("bench: wrk %s: %w", t.name, err)
			}
			results[i].requests += w.requests
			results[i].elapsed += w.elapsed
			results[i].cpu += cpu1 - cpu0
			p50s[i] = append(p50s[i], w.p50)
			p99s[i] = append(p99s[i], w.p99)
		}
	}
	// wrk reports quantiles, which do not add up: the median round's.
	for i, r := range results {
		r.p50, r.p99 = median(p50s[i]), median(p99s[i])
	}
	return results, nil
}

var (
	wrkTotalRE   = regexp.MustCompile(`(\d+) requests in ([0-9.]+)(us|ms|s|m)`)
	wrkQuantRE   = regexp.MustCompile(`(?m)^\s+(50|99)%\s+([0-9.]+)(us|ms|s)\s*$`)
	wrkNon2xxRE  = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	wrkSocketErr = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

// parseWrk reads the summary of "wrk --latency".
func parseWrk(out string) (*benchResult, error) {
	m := wrkTotalRE.FindStringSubmatch(out)
	if m == nil {
		return nil, fmt.Errorf("no request count in wrk's output:\n%s", out)
	}
	if e := wrkNon2xxRE.FindStringSubmatch(out); e != nil {
		return nil, fmt.Errorf("%s responses other than 2xx", e[1])
	}
	if e := wrkSocketErr.FindStringSubmatch(out); e != nil && strings.Trim(strings.Join(e[1:], ""), "0") != "" {
		return nil, fmt.Errorf("wrk: %s", e[0])
	}
	r := &benchResult{}
	r.requests, _ = strconv.ParseInt(m[1], 10, 64)
	r.elapsed = wrkDuration(m[2], m[3])
	for _, q := range wrkQuantRE.FindAllStringSubmatch(out, -1) {
		if q[1] == "50" {
			r.p50 = wrkDuration(q[2], q[3])
		} else {
			r.p99 = wrkDuration(q[2], q[3])
		}
	}
	if r.elapsed <= 0 || r.p50 <= 0 || r.p99 <= 0 {
		return nil, fmt.Errorf("incomplete wrk output:\n%s", out)
	}
	return r, nil
}

func wrkDuration(num, unit string) time.Duration {
	v, _ := strconv.ParseFloat(num, 64)
	scale := map[string]time.Duration{"us": time.Microsecond, "ms": time.Millisecond, "s": time.Second, "m": time.Minute}[unit]
	return time.Duration(v * float64(scale))
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
