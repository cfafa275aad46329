package main

// Shared helpers of the black-box tests: a real server (the same wiring as
// "sot serve") on 127.0.0.1:0 over a real database, and a small HTTP client
// that speaks its JSON.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sot-dev/sot/internal/pgtest"
)

// serverOpts configures startServer. The zero value is a fresh SQLite
// database in the test's temporary directory.
type serverOpts struct {
	// DSN is the database; "" means a new SQLite file.
	DSN               string
	AdminPassword     string
	MaxReportBytes    int64
	CheckPathTemplate string
	TrustedProxies    []netip.Prefix
	// AuthFailureLimit is the server's; 0 means no limit, so that tests
	// that send bad credentials on purpose are not throttled.
	AuthFailureLimit int
	// Clock, when set, is the server's clock (expiry tests move it).
	Clock *testClock
	// OIDCIssuers and OIDCStaticJWKS are the server's trusted OIDC
	// issuers (tokenless CI tests).
	OIDCIssuers    []string
	OIDCStaticJWKS map[string][]byte
	// GitHubKeys verify GitHub secret-scanning alerts.
	GitHubKeys map[string]*ecdsa.PublicKey
	// LifecycleInterval runs the lifecycle loop at this interval; 0 runs
	// none, and tests sweep with testServer.sweep.
	LifecycleInterval time.Duration
}

// testServer is a running server.
type testServer struct {
	// URL is the base URL, such as http://127.0.0.1:41234.
	URL string
	// AdminToken and AdminPassword are the instance admin's credentials
	// printed at the first start (kept across Restart).
	AdminToken    string
	AdminPassword string
	// DSN is the server's database.
	DSN string
	// Stdout is what the server printed on standard output at start.
	Stdout string
	// Logs holds the server's log (JSON lines).
	Logs *syncBuffer

	srv    *server
	opts   serverOpts
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
	err    error
}

// startServer starts a server with the real wiring of "sot serve" and
// stops it when the test ends.
func startServer(t testing.TB, opts serverOpts) *testServer {
	t.Helper()
	if opts.DSN == "" {
		opts.DSN = "sqlite:" + filepath.Join(t.TempDir(), "sot.db")
	}
	if opts.AdminPassword == "" {
		opts.AdminPassword = "admin-password-for-tests"
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	cfg := serveConfig{
		Addr:              ln.Addr().String(),
		DB:                opts.DSN,
		MaxReportBytes:    opts.MaxReportBytes,
		TrustedProxies:    opts.TrustedProxies,
		CheckPathTemplate: opts.CheckPathTemplate,
		AuthFailureLimit:  -1,
		AdminPassword:     opts.AdminPassword,
		GitHubKeys:        opts.GitHubKeys,
		LifecycleInterval: -1,
		Logger:            slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		ShutdownTimeout:   5 * time.Second,
	}
	if opts.AuthFailureLimit > 0 {
		cfg.AuthFailureLimit = opts.AuthFailureLimit
	}
	if opts.Clock != nil {
		cfg.Now = opts.Clock.Now
	}
	cfg.OIDCIssuers, cfg.OIDCStaticJWKS = opts.OIDCIssuers, opts.OIDCStaticJWKS
	if opts.LifecycleInterval > 0 {
		cfg.LifecycleInterval = opts.LifecycleInterval
	}
	var stdout bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := newServer(ctx, cfg, &stdout)
	if err != nil {
		cancel()
		ln.Close()
		t.Fatalf("newServer: %v", err)
	}
	s := &testServer{
		URL:           "http://" + ln.Addr().String(),
		AdminPassword: opts.AdminPassword,
		DSN:           opts.DSN,
		Stdout:        stdout.String(),
		Logs:          logs,
		srv:           srv,
		opts:          opts,
		cancel:        cancel,
		done:          make(chan error, 1),
	}
	s.AdminToken = adminTokenFrom(s.Stdout)
	go func() { s.done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("server stop: %v", err)
		}
		if m := secretRE.FindString(logs.String()); m != "" {
			t.Errorf("the server logged a secret: %s…", m[:8])
		}
	})
	return s
}

// secretRE matches a whole token secret (a hint, "sot_…a1b2", does not).
var secretRE = regexp.MustCompile(`sotu?_[0-9A-Za-z]{36}`)

// adminTokenFrom returns the token of the "admin token: " line, or "".
func adminTokenFrom(stdout string) string {
	sc := bufio.NewScanner(strings.NewReader(stdout))
	for sc.Scan() {
		if tok, ok := strings.CutPrefix(sc.Text(), "admin token: "); ok {
			return tok
		}
	}
	return ""
}

// Stop shuts the server down as SIGTERM does and returns Serve's error.
// It is idempotent.
func (s *testServer) Stop() error {
	s.once.Do(func() {
		s.cancel()
		select {
		case s.err = <-s.done:
		case <-time.After(30 * time.Second):
			s.err = fmt.Errorf("server did not stop within 30 s")
		}
	})
	return s.err
}

// Restart stops the server and starts another on the same database,
// keeping the admin credentials.
func (s *testServer) Restart(t testing.TB) *testServer {
	t.Helper()
	if err := s.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	opts := s.opts
	opts.DSN = s.DSN
	n := startServer(t, opts)
	if n.AdminToken != "" {
		t.Fatalf("second start printed an admin token again:\n%s", n.Stdout)
	}
	n.AdminToken = s.AdminToken
	return n
}

// as returns a client that sends token ("" for none).
func (s *testServer) as(t testing.TB, token string) *apiClient {
	return &apiClient{t: t, base: s.URL, token: token}
}

// admin returns a client with the instance admin's token.
func (s *testServer) admin(t testing.TB) *apiClient { return s.as(t, s.AdminToken) }

// apiClient sends requests to a test server.
type apiClient struct {
	t     testing.TB
	base  string
	token string
	// basic sends the token as HTTP Basic user name instead of Bearer.
	basic  bool
	header http.Header
}

// apiResponse is a response, read whole.
type apiResponse struct {
	Status int
	Header http.Header
	Body   []byte
	req    string
}

// do sends a request. body is nil, a string or []byte (sent as is), or any
// other value (sent as JSON).
func (c *apiClient) do(method, path string, body any) *apiResponse {
	c.t.Helper()
	var r io.Reader
	ct := ""
	switch b := body.(type) {
	case nil:
	case string:
		r, ct = strings.NewReader(b), "application/json"
	case []byte:
		r, ct = bytes.NewReader(b), "application/octet-stream"
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		r, ct = bytes.NewReader(buf), "application/json"
	}
	req, err := http.NewRequest(method, c.base+path, r)
	if err != nil {
		c.t.Fatal(err)
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	if c.token != "" {
		if c.basic {
			req.SetBasicAuth(c.token, "")
		} else {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
	}
	for k, vs := range c.header {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return &apiResponse{Status: resp.StatusCode, Header: resp.Header, Body: data, req: method + " " + path}
}

// want fails the test unless the response has status.
func (r *apiResponse) want(t testing.TB, status int) *apiResponse {
	t.Helper()
	if r.Status != status {
		t.Fatalf("%s: status %d, want %d; body: %s", r.req, r.Status, status, r.Body)
	}
	return r
}

// decode decodes the JSON body into v.
func (r *apiResponse) decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("%s: decode %s: %v", r.req, r.Body, err)
	}
}

// problem decodes a problem+json body, checking its content type.
func (r *apiResponse) problem(t testing.TB) problemBody {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("%s: Content-Type %q, want application/problem+json; body: %s", r.req, ct, r.Body)
	}
	var p problemBody
	r.decode(t, &p)
	return p
}

// problemBody is the problem+json shape of the contract.
type problemBody struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	Errors []struct {
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"errors"`
}

// Wire shapes the tests read.

type tokenBody struct {
	ID    int64   `json:"id"`
	Org   *string `json:"org"`
	Name  string  `json:"name"`
	Kind  string  `json:"kind"`
	Scope *struct {
		AllProjects bool     `json:"all_projects"`
		Projects    []string `json:"projects"`
		Patterns    []string `json:"patterns"`
	} `json:"scope"`
	ProjectCount int        `json:"project_count"`
	Permissions  []string   `json:"permissions"`
	Hint         string     `json:"hint"`
	ExpiresAt    *time.Time `json:"expires_at"`
	LastUsedAt   *time.Time `json:"last_used_at"`
	LastUsedIP   *string    `json:"last_used_ip"`
	RevokedAt    *time.Time `json:"revoked_at"`
	CreatedBy    struct {
		Login string `json:"login"`
	} `json:"created_by"`
}

type createdTokenBody struct {
	Token  tokenBody `json:"token"`
	Secret string    `json:"secret"`
}

type listBody[T any] struct {
	Items         []T    `json:"items"`
	NextPageToken string `json:"next_page_token"`
}

type projectBody struct {
	Org  string `json:"org"`
	Key  string `json:"key"`
	Name string `json:"name"`
}

type orgBody struct {
	Key  string `json:"key"`
	Name string `json:"name"`
	Plan string `json:"plan"`
}

// Fixtures, made through the API as the admin.

// createOrg creates an organization with the given plan; the admin is its admin.
func (s *testServer) createOrg(t testing.TB, key, plan string) {
	t.Helper()
	s.admin(t).do("POST", "/api/v1/orgs", map[string]any{"key": key, "name": key + " Inc.", "plan": plan}).want(t, http.StatusCreated)
}

// createProjects creates projects in org.
func (s *testServer) createProjects(t testing.TB, org string, keys ...string) {
	t.Helper()
	c := s.admin(t)
	for _, k := range keys {
		c.do("POST", "/api/v1/orgs/"+org+"/projects", map[string]any{"key": k}).want(t, http.StatusCreated)
	}
}

// createOrgToken creates an organization token as the admin from a
// request body and returns it with its secret.
func (s *testServer) createOrgToken(t testing.TB, org string, body map[string]any) createdTokenBody {
	t.Helper()
	return createOrgTokenAs(t, s.admin(t), org, body)
}

func createOrgTokenAs(t testing.TB, c *apiClient, org string, body map[string]any) createdTokenBody {
	t.Helper()
	if _, ok := body["name"]; !ok {
		body["name"] = "ci"
	}
	if _, ok := body["expires_in"]; !ok {
		body["expires_in"] = "30d"
	}
	var out createdTokenBody
	c.do("POST", "/api/v1/orgs/"+org+"/tokens", body).want(t, http.StatusCreated).decode(t, &out)
	if !strings.HasPrefix(out.Secret, "sot_") {
		t.Fatalf("secret %q lacks the sot_ prefix", out.Secret)
	}
	return out
}

// createUser creates a user and a personal token for them, as the admin,
// and returns the token's secret.
func (s *testServer) createUser(t testing.TB, login string) string {
	t.Helper()
	c := s.admin(t)
	c.do("POST", "/api/v1/users", map[string]any{"login": login, "name": login, "password": "password-of-" + login}).want(t, http.StatusCreated)
	var out createdTokenBody
	c.do("POST", "/api/v1/users/"+login+"/tokens", map[string]any{"name": "cli", "expires_in": "30d"}).want(t, http.StatusCreated).decode(t, &out)
	if !strings.HasPrefix(out.Secret, "sotu_") {
		t.Fatalf("personal secret %q lacks the sotu_ prefix", out.Secret)
	}
	return out.Secret
}

// TestMain runs the tests with a throwaway PostgreSQL server, started on
// first use by pgtest.DSN.
func TestMain(m *testing.M) { pgtest.Main(m) }

// testDBs lists the databases every story runs on: a new SQLite file, and
// a new database on the test PostgreSQL server (skipped without
// PostgreSQL binaries, unless CI requires them).
var testDBs = []struct {
	name string
	dsn  func(t *testing.T) string
}{
	{"sqlite", func(*testing.T) string { return "" }},
	{"postgres", func(t *testing.T) string { return pgtest.DSN(t) }},
}

// forEachDB runs fn as a subtest on each database, with a fresh server.
func forEachDB(t *testing.T, opts serverOpts, fn func(t *testing.T, s *testServer)) {
	for _, db := range testDBs {
		t.Run(db.name, func(t *testing.T) {
			o := opts
			o.DSN = db.dsn(t)
			fn(t, startServer(t, o))
		})
	}
}

// testClock is a clock that tests move forward.
type testClock struct {
	mu  sync.Mutex
	off time.Duration
}

// Now returns the real time plus the offset.
func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

// Advance moves the clock forward by d.
func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.off += d
}

// syncBuffer is a bytes.Buffer safe for concurrent writes (the server's log).
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
