package main

import (
	"cmp"
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sot-dev/sot"
	"github.com/sot-dev/sot/internal/auth"
	"github.com/sot-dev/sot/internal/httpapi"
	"github.com/sot-dev/sot/internal/lifecycle"
	"github.com/sot-dev/sot/internal/oidc"
	"github.com/sot-dev/sot/internal/password"
	"github.com/sot-dev/sot/internal/store"
	"github.com/sot-dev/sot/internal/web"
)

// serveCmd runs the server.
type serveCmd struct {
	Addr              string        `name:"addr" env:"SOT_ADDR" default:"127.0.0.1:8080" help:"Address to listen on."`
	DB                string        `name:"db" env:"SOT_DB" default:"sqlite:./sot-data/sot.db" help:"Database: sqlite:PATH, or a postgres://user@host:port/db URL."`
	MaxReportSize     string        `name:"max-report-size" env:"SOT_MAX_REPORT_SIZE" default:"64MiB" help:"Largest accepted analysis report (bytes, or with KiB/MiB/GiB/KB/MB/GB)."`
	TrustedProxies    []string      `name:"trusted-proxies" env:"SOT_TRUSTED_PROXIES" sep:"," placeholder:"CIDR" help:"Networks of reverse proxies whose X-Forwarded-For is believed (comma-separated)."`
	AuthFailureLimit  int           `name:"auth-failure-limit" env:"SOT_AUTH_FAILURE_LIMIT" default:"100" help:"Bad credentials a client address may send per minute before it gets 429 (negative: no limit)."`
	CheckPathTemplate string        `name:"check-path-template" env:"SOT_CHECK_PATH_TEMPLATE" placeholder:"TEMPLATE" help:"Let /api/v1/check read org and project from X-Forwarded-Uri with this template (such as \"/{org}/{project}/...\")."`
	GitHubScanKeys    string        `name:"github-secret-scanning-keys" env:"SOT_GITHUB_SECRET_SCANNING_KEYS" type:"path" placeholder:"FILE" help:"Public keys of GitHub secret scanning (GitHub's JSON key list, or PEM keys with a Key-Identifier header): enables POST /api/v1/secret-scanning/github."`
	LifecycleInterval time.Duration `name:"lifecycle-interval" env:"SOT_LIFECYCLE_INTERVAL" default:"30s" help:"How often scheduled rotations, expiry and idle warnings and webhook deliveries run."`
	OIDCIssuers       []string      `name:"oidc-issuers" env:"SOT_OIDC_ISSUERS" sep:"," placeholder:"URL" help:"OIDC issuers whose CI ID tokens may be exchanged for organization tokens (comma-separated URLs, or the presets github and gitlab); none by default. See docs/oidc.md."`
	OIDCStaticJWKS    []string      `name:"oidc-static-jwks" env:"SOT_OIDC_STATIC_JWKS" sep:"," placeholder:"ISSUER=FILE" help:"Trust an issuer sot cannot reach, with its keys from a JWKS file (comma-separated ISSUER=FILE pairs)."`
	AuthCacheSize     int           `name:"auth-cache-size" env:"SOT_AUTH_CACHE_SIZE" default:"100000" help:"Bound of the credential cache: one unit per cached token, plus one per 64 explicit projects in its scope."`
	TLSCert           string        `name:"tls-cert" env:"SOT_TLS_CERT" type:"path" placeholder:"FILE" help:"Serve HTTPS with this PEM certificate (chain); reloaded on SIGHUP. Needs --tls-key."`
	TLSKey            string        `name:"tls-key" env:"SOT_TLS_KEY" type:"path" placeholder:"FILE" help:"The PEM private key of --tls-cert."`
	SecureCookies     bool          `name:"secure-cookies" env:"SOT_SECURE_COOKIES" help:"Mark web session cookies Secure: set it when users reach sot over HTTPS through a proxy (on with --tls-cert)."`
	LogLevel          string        `name:"log-level" env:"SOT_LOG_LEVEL" enum:"debug,info,warn,error" default:"info" help:"Log level: debug, info, warn or error."`
}

// Run runs the server until ctx is done (SIGTERM or SIGINT).
func (c *serveCmd) Run(ctx context.Context, std *stdio) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.LogLevel)); err != nil {
		return usageErrorf("--log-level: %v", err)
	}
	logger := slog.New(slog.NewJSONHandler(std.err, &slog.HandlerOptions{Level: level}))
	maxReport, err := parseByteSize(c.MaxReportSize)
	if err != nil {
		return usageErrorf("--max-report-size: %v", err)
	}
	proxies, err := parsePrefixes(c.TrustedProxies)
	if err != nil {
		return usageErrorf("--trusted-proxies: %v", err)
	}
	if c.CheckPathTemplate != "" {
		if _, err := httpapi.ParsePathTemplate(c.CheckPathTemplate); err != nil {
			return usageErrorf("--check-path-template: %v", err)
		}
	}
	var ghKeys map[string]*ecdsa.PublicKey
	if c.GitHubScanKeys != "" {
		data, err := os.ReadFile(c.GitHubScanKeys)
		if err != nil {
			return usageErrorf("--github-secret-scanning-keys: %v", err)
		}
		if ghKeys, err = httpapi.ParseGitHubKeys(data); err != nil {
			return usageErrorf("--github-secret-scanning-keys %s: %v", c.GitHubScanKeys, err)
		}
	}
	for _, s := range c.OIDCIssuers {
		if _, err := oidc.ResolveIssuer(s); err != nil {
			return usageErrorf("--oidc-issuers: %v", err)
		}
	}
	staticJWKS, err := readStaticJWKS(c.OIDCStaticJWKS)
	if err != nil {
		return usageErrorf("--oidc-static-jwks: %v", err)
	}
	if _, err := oidc.New(oidc.Config{StaticJWKS: staticJWKS}); err != nil {
		return usageErrorf("--oidc-static-jwks: %v", err)
	}
	if c.LifecycleInterval < time.Second {
		return usageErrorf("--lifecycle-interval: at least 1s")
	}
	if c.AuthCacheSize < 1 {
		return usageErrorf("--auth-cache-size: at least 1")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return usageErrorf("--tls-cert and --tls-key go together")
	}
	if c.TLSCert != "" {
		if _, err := newCertReloader(c.TLSCert, c.TLSKey); err != nil {
			return usageErrorf("--tls-cert, --tls-key: %v", err)
		}
	}
	cfg := serveConfig{
		Addr:              c.Addr,
		DB:                c.DB,
		MaxReportBytes:    maxReport,
		TrustedProxies:    proxies,
		AuthFailureLimit:  c.AuthFailureLimit,
		CheckPathTemplate: c.CheckPathTemplate,
		GitHubKeys:        ghKeys,
		LifecycleInterval: c.LifecycleInterval,
		AuthCacheSize:     c.AuthCacheSize,
		OIDCIssuers:       c.OIDCIssuers,
		OIDCStaticJWKS:    staticJWKS,
		TLSCertFile:       c.TLSCert,
		TLSKeyFile:        c.TLSKey,
		SecureCookies:     c.SecureCookies || c.TLSCert != "",
		AdminPassword:     os.Getenv("SOT_ADMIN_PASSWORD"),
		Logger:            logger,
	}
	ln, err := net.Listen("tcp", c.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", c.Addr, err)
	}
	cfg.Addr = ln.Addr().String()
	srv, err := newServer(ctx, cfg, std.out)
	if err != nil {
		ln.Close()
		return err
	}
	return srv.Serve(ctx, ln)
}

// serveConfig is the configuration of a server, from flags or from a test.
type serveConfig struct {
	Addr           string // the listening address, for the first-start instructions
	DB             string
	MaxReportBytes int64
	TrustedProxies []netip.Prefix
	// AuthFailureLimit bounds bad credentials per client address per
	// minute (0: the default; negative: no limit).
	AuthFailureLimit  int
	CheckPathTemplate string
	// GitHubKeys verify GitHub secret-scanning alerts.
	GitHubKeys map[string]*ecdsa.PublicKey
	// LifecycleInterval is the time between lifecycle sweeps (0: the
	// default); a negative one runs no loop, for tests that sweep by hand.
	LifecycleInterval time.Duration
	// AuthCacheSize bounds the credential cache (0: auth's default).
	AuthCacheSize int
	// OIDCIssuers are the trusted OIDC issuers (URLs or preset names);
	// OIDCStaticJWKS adds issuers with keys given by the operator.
	OIDCIssuers    []string
	OIDCStaticJWKS map[string][]byte
	// TLSCertFile and TLSKeyFile, when set, serve HTTPS with that key
	// pair, reloaded on SIGHUP.
	TLSCertFile, TLSKeyFile string
	// SecureCookies marks web session cookies Secure.
	SecureCookies bool
	// AdminPassword is the first start's admin password; generated when "".
	AdminPassword string
	Logger        *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// ShutdownTimeout bounds how long in-flight requests may finish at
	// shutdown; 10 s when 0.
	ShutdownTimeout time.Duration
	// ReadTimeout bounds reading a request that does not extend its own
	// deadline (report uploads do); readTimeout when 0.
	ReadTimeout time.Duration
}

// server is sot serve, wired: storage, authentication, the API.
type server struct {
	cfg      serveConfig
	log      *slog.Logger
	db       *store.DB
	auth     *auth.Service
	api      *httpapi.API
	web      *web.Handler
	stopAuth context.CancelFunc
	authDone chan error
	// lifecycle runs scheduled rotations, warnings and webhook deliveries.
	lifecycle     *lifecycle.Runner
	lifecycleDone chan struct{}
	// certs is the TLS key pair; nil without TLS.
	certs *certReloader
}

// newServer opens the database (creating the instance admin on a first
// start, announced on stdout) and wires the server. The caller must Serve
// or Close it.
func newServer(ctx context.Context, cfg serveConfig, stdout io.Writer) (*server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 10 * time.Second
	}
	log := cfg.Logger
	log.Info("sot starting",
		"version", version,
		"addr", cfg.Addr,
		"db", redactDSN(cfg.DB),
		"max_report_bytes", cfg.MaxReportBytes,
		"trusted_proxies", prefixStrings(cfg.TrustedProxies),
		"auth_failure_limit", cfg.AuthFailureLimit,
		"check_path_template", cfg.CheckPathTemplate,
		"github_secret_scanning_keys", len(cfg.GitHubKeys),
		"lifecycle_interval", cfg.LifecycleInterval,
		"auth_cache_size", cfg.AuthCacheSize,
		"secure_cookies", cfg.SecureCookies)

	verifier, err := oidc.New(oidc.Config{Issuers: cfg.OIDCIssuers, StaticJWKS: cfg.OIDCStaticJWKS,
		Now: cfg.Now, Logger: log.With("component", "oidc")})
	if err != nil {
		return nil, err
	}
	log.Info("OIDC issuers trusted", "issuers", verifier.Issuers())
	var certs *certReloader
	if cfg.TLSCertFile != "" {
		if certs, err = newCertReloader(cfg.TLSCertFile, cfg.TLSKeyFile); err != nil {
			return nil, err
		}
	}
	db, err := store.Open(ctx, cfg.DB, log)
	if err != nil {
		return nil, err
	}
	s := &server{cfg: cfg, log: log, db: db, certs: certs}
	s.auth = auth.New(auth.Config{
		Tokens: db, Users: db, Orgs: db, Audit: db, Bus: db,
		Now:       cfg.Now,
		Logger:    log.With("component", "auth"),
		CacheSize: cfg.AuthCacheSize,
	})
	s.api, err = httpapi.New(httpapi.Config{
		Users: db, Orgs: db, Projects: db, Tokens: db, Audit: db, Analyses: db,
		Auth:              s.auth,
		HashPassword:      hashPassword,
		Ping:              db.Ping,
		Now:               cfg.Now,
		Logger:            log.With("component", "http"),
		Version:           version,
		MaxReportBytes:    cfg.MaxReportBytes,
		TrustedProxies:    cfg.TrustedProxies,
		AuthFailureLimit:  cfg.AuthFailureLimit,
		CheckPathTemplate: cfg.CheckPathTemplate,
		Lifecycle:         db,
		Webhooks:          db,
		GitHubKeys:        cfg.GitHubKeys,
		TrustPolicies:     db,
		OIDC:              verifier,
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	// The session key lives in the database, so every replica signs and
	// accepts the same sessions with nothing to configure.
	sessionKey, err := db.InstanceKey(ctx, "web_session_key", 32)
	if err != nil {
		db.Close()
		return nil, err
	}
	s.web, err = web.New(web.Config{
		Users: db, Orgs: db, Projects: db, Tokens: db, Audit: db,
		Auth:           s.auth,
		Lifecycle:      db,
		TrustPolicies:  db,
		Webhooks:       db,
		OIDC:           verifier,
		Now:            cfg.Now,
		Logger:         log.With("component", "web"),
		SecureCookies:  cfg.SecureCookies,
		Version:        version,
		SessionKey:     sessionKey,
		TrustedProxies: cfg.TrustedProxies,
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	// Last, so that nothing can fail after the admin's secrets are printed.
	if err := s.bootstrap(ctx, stdout); err != nil {
		db.Close()
		return nil, err
	}
	actx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.stopAuth = cancel
	s.authDone = make(chan error, 1)
	go func() { s.authDone <- s.auth.Run(actx) }()
	s.lifecycle = lifecycle.New(lifecycle.Config{
		Store: db, Webhooks: db, Now: cfg.Now, Interval: cfg.LifecycleInterval,
		Logger: log.With("component", "lifecycle"),
	})
	s.lifecycleDone = make(chan struct{})
	if cfg.LifecycleInterval >= 0 {
		go func() { defer close(s.lifecycleDone); s.lifecycle.Run(actx) }()
	} else {
		close(s.lifecycleDone)
	}
	return s, nil
}

// hashPassword applies the password rules before hashing.
func hashPassword(pw string) (string, error) {
	if len(pw) < password.MinLength {
		return "", sot.Invalid("password too short", sot.FieldError{Field: "password", Message: fmt.Sprintf("at least %d characters", password.MinLength)})
	}
	h, err := password.Hash(pw)
	if err != nil {
		return "", sot.Invalid("invalid password", sot.FieldError{Field: "password", Message: err.Error()})
	}
	return h, nil
}

// Handler returns the server's HTTP handler: the API for the paths it
// owns (dispatched without a second ServeMux, to keep the check path
// cheap), everything else to the web UI.
func (s *server) Handler() http.Handler {
	return securityHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if httpapi.Owns(r.URL.Path) {
			s.api.ServeHTTP(w, r)
			return
		}
		s.web.ServeHTTP(w, r)
	}), s.certs != nil)
}

// Server timeouts. ReadTimeout and WriteTimeout bound ordinary requests;
// report uploads and downloads extend their own deadlines (httpapi), so
// that large reports still pass.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = time.Minute
	writeTimeout      = 2 * time.Minute
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 64 << 10
)

// Serve serves HTTP on ln until ctx is done, then shuts down: it stops
// accepting, lets in-flight requests finish (bounded by ShutdownTimeout),
// stops authentication (its final flush of last-used times) and closes the
// database.
func (s *server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       cmp.Or(s.cfg.ReadTimeout, readTimeout),
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	if s.certs != nil {
		hs.TLSConfig = s.certs.tlsConfig()
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		go s.reloadOnHUP(ctx, hup)
		go func() { errc <- hs.ServeTLS(ln, "", "") }()
	} else {
		go func() { errc <- hs.Serve(ln) }()
	}
	s.log.Info("sot listening", "addr", ln.Addr().String(), "tls", s.certs != nil)

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
	defer cancel()
	shutErr := hs.Shutdown(sctx)
	if serveErr == nil {
		if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
			serveErr = err
		}
	}
	closeErr := s.Close()
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	if err := errors.Join(serveErr, shutErr, closeErr); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	s.log.Info("sot stopped")
	return nil
}

// reloadOnHUP reloads the TLS key pair at each signal until ctx is done.
func (s *server) reloadOnHUP(ctx context.Context, hup <-chan os.Signal) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			if err := s.certs.reload(); err != nil {
				s.log.Error("TLS reload failed; the previous certificate stays in use", "error", err)
				continue
			}
			s.log.Info("TLS certificate reloaded", "cert", s.cfg.TLSCertFile)
		}
	}
}

// Close stops authentication, flushing what it batched, and closes the
// database.
func (s *server) Close() error {
	s.stopAuth()
	<-s.lifecycleDone
	authErr := <-s.authDone
	return errors.Join(authErr, s.db.Close())
}

// bootstrap creates the instance admin and a personal token for it on the
// first start (no users yet), and prints both once.
func (s *server) bootstrap(ctx context.Context, stdout io.Writer) error {
	n, err := s.db.CountUsers(ctx)
	if err != nil {
		return fmt.Errorf("count users: %w", err)
	}
	if n > 0 {
		return nil
	}
	pw, generated := s.cfg.AdminPassword, false
	if pw == "" {
		pw, generated = password.Generate(), true
	}
	hash, err := hashPassword(pw)
	if err != nil {
		return fmt.Errorf("SOT_ADMIN_PASSWORD: %s", sot.ErrorMessage(err))
	}
	admin := &sot.User{Login: "admin", Name: "Administrator", Admin: true}
	if err := s.db.CreateUser(ctx, admin, hash); err != nil {
		if errors.Is(err, sot.ErrConflict) {
			return nil // another replica bootstrapped at the same moment
		}
		return fmt.Errorf("create admin: %w", err)
	}
	ref := sot.UserRef{ID: admin.ID, Login: admin.Login}
	t, secret, err := sot.PreparePersonalToken(admin, ref,
		sot.TokenRequest{Name: "bootstrap", Expiry: sot.Expiry{In: "1y"}}, sot.PersonalTokenPolicy(), s.cfg.Now())
	if err != nil {
		return fmt.Errorf("admin token: %w", err)
	}
	if err := s.db.CreateToken(ctx, t, sot.HashSecret(secret)); err != nil {
		return fmt.Errorf("admin token: %w", err)
	}
	scheme := "http://"
	if s.certs != nil {
		scheme = "https://"
	}
	base := scheme + s.cfg.Addr
	if host, port, err := net.SplitHostPort(s.cfg.Addr); err == nil && (host == "" || host == "0.0.0.0" || host == "::") {
		base = scheme + "127.0.0.1:" + port
	}
	pwLine := "admin password: " + pw
	if !generated {
		pwLine = "admin password: the value of SOT_ADMIN_PASSWORD"
	}
	_, err = fmt.Fprintf(stdout, `sot: first start: created the instance administrator "admin".
%s
admin token: %s
Save both now: they are not shown again. The token expires in one year.
Next steps:
  web UI:  %s/ (sign in as admin)
  API:     curl -H "Authorization: Bearer %s" %s/api/v1/me
  CLI:     SOT_URL=%s SOT_TOKEN=%s sot org create acme --name "Acme" --plan team
`, pwLine, secret, base, secret, base, base, secret)
	return err
}

// parseByteSize parses "64MiB", "10MB", "512KiB" or a plain number of bytes.
func parseByteSize(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	num, mult := strings.TrimSpace(s), int64(1)
	for _, u := range units {
		if strings.HasSuffix(num, u.suffix) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(num, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("invalid size %q: want a positive number of bytes, such as 64MiB", s)
	}
	return n * mult, nil
}

func parsePrefixes(in []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range in {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return nil, fmt.Errorf("invalid CIDR %q", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

func prefixStrings(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

// redactDSN hides the password of a PostgreSQL URL.
func redactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		return u.Redacted()
	}
	return dsn
}

// readStaticJWKS reads ISSUER=FILE pairs into the JWKS document of each
// issuer.
func readStaticJWKS(pairs []string) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, pair := range pairs {
		if pair = strings.TrimSpace(pair); pair == "" {
			continue
		}
		// An issuer URL has no query, so its first "=" ends it.
		issuer, file, ok := strings.Cut(pair, "=")
		if !ok || issuer == "" || file == "" {
			return nil, fmt.Errorf("%q: want ISSUER=FILE", pair)
		}
		iss, err := oidc.ResolveIssuer(issuer)
		if err != nil {
			return nil, err
		}
		doc, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		out[iss] = doc
	}
	return out, nil
}
