package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/sot-dev/sot"
	"github.com/sot-dev/sot/internal/auth"
	"github.com/sot-dev/sot/internal/httpapi"
	"github.com/sot-dev/sot/internal/oidc"
	"github.com/sot-dev/sot/internal/password"
	"github.com/sot-dev/sot/internal/store"
	"github.com/sot-dev/sot/internal/web"
)

// uiEnv is a real server (API and UI on one listener, SQLite file) with
// seeded users, organizations and projects.
type uiEnv struct {
	url  string
	db   *store.DB
	auth *auth.Service
}

const (
	uiAdmin    = "alice"
	uiMember   = "bob"
	uiPassword = "correct horse battery staple"
	uiOrg      = "acme"
	uiFreeOrg  = "hobby"
	uiBulk     = 2000 // projects "svc-0000" … "svc-1999"
)

func startUI(t *testing.T, bulk int) *uiEnv {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	db, err := store.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "sot.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	a := auth.New(auth.Config{Tokens: db, Users: db, Orgs: db, Audit: db, Bus: db, FlushInterval: 200 * time.Millisecond})
	done := make(chan struct{})
	go func() { a.Run(ctx); close(done) }()
	api, err := httpapi.New(httpapi.Config{Users: db, Orgs: db, Projects: db, Tokens: db, Audit: db, Analyses: db,
		Lifecycle: db, Auth: a, HashPassword: password.Hash, Ping: db.Ping, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := oidc.New(oidc.Config{Issuers: []string{"github", "gitlab"}})
	if err != nil {
		t.Fatal(err)
	}
	ui, err := web.New(web.Config{Users: db, Orgs: db, Projects: db, Tokens: db, Audit: db, Auth: a, Lifecycle: db,
		TrustPolicies: db, Webhooks: db, OIDC: verifier, Version: "test", SessionKey: []byte(strings.Repeat("k", 32))})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/api/", api)
	mux.Handle("/", ui)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() {
		srv.Close()
		cancel()
		<-done
		db.Close()
	})
	env := &uiEnv{url: "http://" + ln.Addr().String(), db: db, auth: a}
	env.seed(t, bulk)
	return env
}

// seed makes users, two organizations, a few projects and bulk projects
// "svc-0000", "svc-0001", ….
func (e *uiEnv) seed(t *testing.T, bulk int) {
	t.Helper()
	ctx := context.Background()
	start := time.Now()
	defer func() { t.Logf("seeded in %v", time.Since(start).Round(time.Millisecond)) }()
	hash, err := password.Hash(uiPassword)
	if err != nil {
		t.Fatal(err)
	}
	users := map[string]*sot.User{}
	for _, login := range []string{uiAdmin, uiMember, "carol"} {
		u := &sot.User{Login: login, Name: strings.ToUpper(login[:1]) + login[1:]}
		if err := e.db.CreateUser(ctx, u, hash); err != nil {
			t.Fatal(err)
		}
		users[login] = u
	}
	if err := e.db.CreateOrg(ctx, &sot.Org{Key: uiOrg, Name: "Acme Corp", Plan: sot.PlanTeam}, users[uiAdmin].ID); err != nil {
		t.Fatal(err)
	}
	if err := e.db.CreateOrg(ctx, &sot.Org{Key: uiFreeOrg, Name: "Hobby", Plan: sot.PlanFree}, users[uiAdmin].ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.db.SetMember(ctx, uiOrg, uiMember, sot.RoleMember); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"team-a-web", "team-a-api", "team-b-web", "website"} {
		if err := e.db.CreateProject(ctx, &sot.Project{Org: uiOrg, Key: p, Name: p}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range bulk {
		key := fmt.Sprintf("svc-%04d", i)
		if err := e.db.CreateProject(ctx, &sot.Project{Org: uiOrg, Key: key, Name: "Service " + strconv.Itoa(i)}); err != nil {
			t.Fatal(err)
		}
	}
}

// newBrowser starts a headless Chromium for the test, or skips the test
// when there is none (failing instead with SOT_TEST_REQUIRE_BROWSER=1).
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path := os.Getenv("SOT_CHROMIUM")
	if path == "" {
		for _, p := range []string{"chromium", "chromium-browser", "google-chrome"} {
			if found, err := exec.LookPath(p); err == nil {
				path = found
				break
			}
		}
	}
	if path == "" {
		if os.Getenv("SOT_TEST_REQUIRE_BROWSER") == "1" {
			t.Fatal("no Chromium found and SOT_TEST_REQUIRE_BROWSER=1")
		}
		t.Skip("no Chromium found (install chromium, or set SOT_CHROMIUM); SOT_TEST_REQUIRE_BROWSER=1 makes this a failure")
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 900),
	)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// The first action starts the browser, which lives as long as the
	// context of that action: it cannot run under a timeout, so it is
	// bounded from outside.
	start := time.Now()
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx, chromedp.Navigate("about:blank")) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("start Chromium: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("Chromium did not start within 60 s")
	}
	t.Logf("Chromium started in %v", time.Since(start).Round(time.Millisecond))
	return ctx
}

// pageProblems collects what a clean UI never causes in the browser:
// requests to any other host, Content-Security-Policy refusals and
// uncaught script errors.
type pageProblems struct {
	mu     sync.Mutex
	hosts  map[string]bool
	errors []string
}

func watchPages(t *testing.T, ctx context.Context) *pageProblems {
	t.Helper()
	p := &pageProblems{hosts: map[string]bool{}}
	// The listener runs in the tab's read loop: it only records.
	err := chromedp.Listen(ctx, func(ev any) {
		p.mu.Lock()
		defer p.mu.Unlock()
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			if u, err := url.Parse(e.Request.URL); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
				p.hosts[u.Host] = true
			}
		case *cdplog.EventEntryAdded:
			if e.Entry.Source == cdplog.EntrySourceSecurity || e.Entry.Source == cdplog.EntrySourceJavascript ||
				strings.Contains(e.Entry.Text, "Content Security Policy") {
				p.errors = append(p.errors, e.Entry.Text)
			}
		case *runtime.EventExceptionThrown:
			msg := e.ExceptionDetails.Text
			if e.ExceptionDetails.Exception != nil {
				msg += " " + e.ExceptionDetails.Exception.Description
			}
			p.errors = append(p.errors, msg)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// check fails the test for a request to a host other than host, or for a
// recorded page error.
func (p *pageProblems) check(t *testing.T, host string) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for h := range p.hosts {
		if h != host {
			t.Errorf("the browser made a request to %s", h)
		}
	}
	if !p.hosts[host] {
		t.Error("no request recorded at all: the watch does not work")
	}
	for _, e := range p.errors {
		t.Errorf("page error: %s", e)
	}
}

// step runs actions with a bound, so a broken page fails fast instead of
// hanging the test.
func step(t *testing.T, bctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(bctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// inBrowser runs one action with a bound and returns its value.
func inBrowser[T any](t *testing.T, bctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(bctx, 15*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// submit clicks sel and returns the status of the page it leads to.
func submit(t *testing.T, bctx context.Context, what string, sel chromedp.CSS) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(bctx, 15*time.Second)
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(sel))
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return resp.Status
}

func visit(t *testing.T, bctx context.Context, u string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(bctx, 15*time.Second)
	defer cancel()
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(u))
	if err != nil {
		t.Fatalf("visit %s: %v", u, err)
	}
	return resp.Status
}

func text(t *testing.T, bctx context.Context, sel chromedp.CSS) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(bctx, 15*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(sel))
	if err != nil {
		pctx, pcancel := context.WithTimeout(bctx, 5*time.Second)
		defer pcancel()
		page, _ := chromedp.Run(pctx, chromedp.Evaluate[string]("location.href + '\\n' + document.body.innerText"))
		t.Fatalf("text of %s: %v; page: %s", sel, err, page)
	}
	return strings.TrimSpace(s)
}

func html(t *testing.T, bctx context.Context) string {
	t.Helper()
	return inBrowser(t, bctx, "page HTML", chromedp.Evaluate[string]("document.documentElement.outerHTML"))
}

func location(t *testing.T, bctx context.Context) *url.URL {
	t.Helper()
	u, err := url.Parse(inBrowser(t, bctx, "location", chromedp.Location()))
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// waitFor evaluates a JavaScript predicate until it is true. It retries
// through errors, since a navigation in progress makes evaluation fail.
func waitFor(t *testing.T, bctx context.Context, what, js string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(bctx, 2*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// screenshot saves the page to docs/screenshots when SOT_UPDATE_SCREENSHOTS=1,
// so that ordinary test runs leave the tree clean.
func screenshot(t *testing.T, bctx context.Context, name string) {
	t.Helper()
	if os.Getenv("SOT_UPDATE_SCREENSHOTS") != "1" {
		return
	}
	png := inBrowser(t, bctx, "screenshot "+name, chromedp.FullScreenshot(100))
	dir := filepath.Join("..", "..", "docs", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

func login(t *testing.T, ctx context.Context, env *uiEnv, user string) {
	t.Helper()
	visit(t, ctx, env.url+"/login")
	step(t, ctx, "fill login form",
		chromedp.SendKeys(chromedp.ID("login"), user),
		chromedp.SendKeys(chromedp.ID("password"), uiPassword))
	if st := submit(t, ctx, "sign in", "form[action='/login'] button"); st != http.StatusOK {
		t.Fatalf("sign in as %s: status %d", user, st)
	}
}

func logout(t *testing.T, ctx context.Context) {
	t.Helper()
	if st := submit(t, ctx, "sign out", "form[action='/logout'] button"); st != http.StatusOK {
		t.Fatalf("sign out: status %d", st)
	}
}

var createdPath = regexp.MustCompile(`^/orgs/` + uiOrg + `/tokens/(\d+)/created$`)

// createToken submits the form of button (creating or rotating a token)
// and returns the token's ID and the secret shown once.
func createToken(t *testing.T, ctx context.Context, button chromedp.CSS) (int64, string) {
	t.Helper()
	if st := submit(t, ctx, "submit "+string(button), button); st != http.StatusOK {
		t.Fatalf("create token: status %d: %s", st, text(t, ctx, "main"))
	}
	m := createdPath.FindStringSubmatch(location(t, ctx).Path)
	if m == nil {
		t.Fatalf("after creation the browser is at %s, want the created page; page: %s", location(t, ctx), text(t, ctx, "main"))
	}
	id, _ := strconv.ParseInt(m[1], 10, 64)
	secret := text(t, ctx, "#secret")
	if _, err := sot.ParseSecret(secret); err != nil || !strings.HasPrefix(secret, sot.OrgTokenPrefix) {
		t.Fatalf("shown secret %q is not an organization token secret: %v", secret, err)
	}
	return id, secret
}

// upload submits an analysis with secret over real HTTP and returns the status.
func (e *uiEnv) upload(t *testing.T, secret, project string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.url+"/api/v1/orgs/"+uiOrg+"/projects/"+project+"/analyses?branch=main&commit=abc123",
		strings.NewReader(`{"issues": []}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func TestUI(t *testing.T) {
	ctx := newBrowser(t)
	env := startUI(t, uiBulk)
	problems := watchPages(t, ctx)
	step(t, ctx, "viewport", chromedp.EmulateViewport(1280, 900))

	t.Run("login", func(t *testing.T) {
		visit(t, ctx, env.url+"/orgs/"+uiOrg+"/tokens")
		if p := location(t, ctx); p.Path != "/login" || p.Query().Get("next") != "/orgs/"+uiOrg+"/tokens" {
			t.Fatalf("anonymous visit went to %s, want the login page with next", p)
		}
		screenshot(t, ctx, "login")
		step(t, ctx, "wrong password",
			chromedp.SendKeys(chromedp.ID("login"), uiAdmin),
			chromedp.SendKeys(chromedp.ID("password"), "wrong"))
		if st := submit(t, ctx, "sign in", "form[action='/login'] button"); st != http.StatusUnauthorized {
			t.Fatalf("wrong password: status %d, want 401", st)
		}
		if got := text(t, ctx, ".alert"); got != "Wrong login or password." {
			t.Fatalf("wrong password says %q", got)
		}
		step(t, ctx, "right password", chromedp.SendKeys(chromedp.ID("password"), uiPassword))
		if st := submit(t, ctx, "sign in", "form[action='/login'] button"); st != http.StatusOK {
			t.Fatalf("sign in: status %d", st)
		}
		if p := location(t, ctx).Path; p != "/orgs/"+uiOrg+"/tokens" {
			t.Fatalf("after sign in at %s, want the page asked for first", p)
		}
	})

	var allSecret, patternSecret, bulkSecret string
	var allID, patternID, bulkID int64
	t.Run("create token for all projects", func(t *testing.T) {
		visit(t, ctx, env.url+"/orgs/"+uiOrg+"/tokens/new")
		step(t, ctx, "fill form",
			chromedp.SendKeys(chromedp.ID("name"), "ci-everything"),
			chromedp.SendKeys(chromedp.ID("description"), "Nightly scans of every repository"),
			chromedp.Click(chromedp.ID("scope-all")),
			chromedp.Click(chromedp.ID("perm-browse")))
		allID, allSecret = createToken(t, ctx, "#create-token")
		screenshot(t, ctx, "secret-shown")
		step(t, ctx, "copy the secret", chromedp.Click(chromedp.ID("copy-secret")))
		waitFor(t, ctx, "the copy confirmation", `document.getElementById("copy-secret").textContent === "Copied"`)
		if !strings.Contains(text(t, ctx, "#code-github"), "secrets.SOT_TOKEN") {
			t.Fatal("no GitHub Actions snippet")
		}
		for _, id := range []string{"#snippet-gitlab", "#snippet-azure", "#snippet-jenkins"} {
			step(t, ctx, "snippet "+id, chromedp.WaitReady(chromedp.CSS(id)))
		}
		if strings.Contains(text(t, ctx, ".snippet"), allSecret) {
			t.Fatal("a CI snippet holds the secret itself")
		}

		step(t, ctx, "reload", chromedp.Reload())
		step(t, ctx, "secret gone", chromedp.WaitVisible(chromedp.ID("secret-gone")))
		if strings.Contains(html(t, ctx), allSecret) {
			t.Fatal("the secret is shown again after a reload")
		}
		if st := env.upload(t, allSecret, "website"); st != http.StatusCreated {
			t.Fatalf("upload with the all-projects token: status %d, want 201", st)
		}
	})

	t.Run("pattern preview and token", func(t *testing.T) {
		visit(t, ctx, env.url+"/orgs/"+uiOrg+"/tokens/new")
		step(t, ctx, "fill form",
			chromedp.SendKeys(chromedp.ID("name"), "ci-team-a"),
			chromedp.Click(chromedp.ID("scope-patterns")),
			chromedp.SendKeys(chromedp.ID("patterns"), "team-a-.*"),
			chromedp.Click(chromedp.ID("expiry-30d")))
		waitFor(t, ctx, "the live preview", `document.getElementById("pattern-count")?.textContent === "2"`)
		if got := text(t, ctx, "#pattern-preview"); !strings.Contains(got, "team-a-api") || !strings.Contains(got, "team-a-web") {
			t.Fatalf("preview %q does not list the matching projects", got)
		}
		screenshot(t, ctx, "create-token")
		patternID, patternSecret = createToken(t, ctx, "#create-token")
		tok, err := env.db.FindToken(context.Background(), sot.TokenOwner{Org: uiOrg}, patternID)
		if err != nil {
			t.Fatal(err)
		}
		if len(tok.Scope.Patterns) != 1 || tok.Scope.Patterns[0] != "team-a-.*" || tok.Scope.AllProjects {
			t.Fatalf("scope = %+v, want the pattern", tok.Scope)
		}
		if st := env.upload(t, patternSecret, "team-a-web"); st != http.StatusCreated {
			t.Fatalf("upload in scope: status %d, want 201", st)
		}
		if st := env.upload(t, patternSecret, "website"); st != http.StatusForbidden {
			t.Fatalf("upload outside the scope: status %d, want 403", st)
		}
	})

	t.Run("invalid pattern shown inline", func(t *testing.T) {
		visit(t, ctx, env.url+"/orgs/"+uiOrg+"/tokens/new")
		step(t, ctx, "fill form",
			chromedp.SendKeys(chromedp.ID("name"), "broken"),
			chromedp.Click(chromedp.ID("scope-patterns")),
			chromedp.SendKeys(chromedp.ID("patterns"), "team-a-.*\nsvc-("))
		waitFor(t, ctx, "the inline error", `document.querySelector("#pattern-errors li") !== null`)
		const want = "Line 2: invalid regular expression: missing closing )"
		if got := text(t, ctx, "#pattern-errors"); got != want {
			t.Fatalf("live error %q, want %q", got, want)
		}
		// Submitted anyway, the server says the same next to the field.
		if st := submit(t, ctx, "create", "#create-token"); st != http.StatusBadRequest {
			t.Fatalf("create with an invalid pattern: status %d, want 400", st)
		}
		if got := text(t, ctx, "#pattern-errors"); !strings.Contains(got, want) {
			t.Fatalf("server-side error %q, want %q", got, want)
		}
		if got := inBrowser(t, ctx, "name field", chromedp.Value(chromedp.ID("name"))); got != "broken" {
			t.Fatalf("the form lost its name: %q", got)
		}
	})

	t.Run("select all matching over 2,000 projects", func(t *testing.T) {
		visit(t, ctx, env.url+"/orgs/"+uiOrg+"/tokens/new")
		step(t, ctx, "fill form",
			chromedp.SendKeys(chromedp.ID("name"), "ci-services"),
			chromedp.Click(chromedp.ID("scope-projects")),
			chromedp.SendKeys(chromedp.ID("project-q"), "svc-"))
		waitFor(t, ctx, "the match count", `document.getElementById("match-count").textContent === "2,000"`)
		step(t, ctx, "select all", chromedp.Click(chromedp.ID("select-all")))
		screenshot(t, ctx, "create-token-projects")
		bulkID, bulkSecret = createToken(t, ctx, "#create-token")
		tok, err := env.db.FindToken(context.Background(), sot.TokenOwner{Org: uiOrg}, bulkID)
		if err != nil {
			t.Fatal(err)
		}
		if tok.ProjectCount != uiBulk || len(tok.Scope.Projects) != uiBulk {
			t.Fatalf("ProjectCount = %d, %d keys; want %d", tok.ProjectCount, len(tok.Scope.Projects), uiBulk)
		}
		if st := env.upload(t, bulkSecret, "svc-1999"); st != http.StatusCreated {
			t.Fatalf("upload to a selected project: status %d, want 201", st)
		}
		if st := env.upload(t, bulkSecret, "team-a-web"); st != http.StatusForbidden {
			t.Fatalf("upload to an unselected project: status %d, want 403", st)
		}
	})

	t.Run("tokens list and overview", func(t *testing.T) {
		if err := env.auth.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
		visit(t, ctx, env.url+"/orgs/"+uiOrg+"/tokens")
		row := text(t, ctx, chromedp.CSS(fmt.Sprintf("tr[data-token='%d']", bulkID)))
		for _, want := range []string{"ci-services", "2,000 projects", "scan", "expires in 90 days", "just now", "127.0.0.1", uiAdmin} {
			if !strings.Contains(row, want) {
				t.Errorf("token row %q lacks %q", row, want)
			}
		}
		if row := text(t, ctx, chromedp.CSS(fmt.Sprintf("tr[data-token='%d']", allID))); !strings.Contains(row, "All projects") {
			t.Errorf("token row %q lacks the scope summary", row)
		}
		screenshot(t, ctx, "tokens")
		visit(t, ctx, env.url+"/orgs/"+uiOrg+"/tokens?state=expiring")
		if got := text(t, ctx, "#tokens tbody"); !strings.Contains(got, "ci-team-a") || strings.Contains(got, "ci-services") {
			t.Errorf("expiring tokens %q, want the 30-day token only", got)
		}

		visit(t, ctx, env.url+"/orgs/"+uiOrg)
		if got := text(t, ctx, "#count-projects"); got != "2,004" {
			t.Errorf("project count %q, want 2,004", got)
		}
		if got := text(t, ctx, "#count-tokens"); got != "3" {
			t.Errorf("token count %q, want 3", got)
		}
		if got := text(t, ctx, "#count-members"); got != "2" {
			t.Errorf("member count %q, want 2", got)
		}
		if got := text(t, ctx, "#expiring"); !strings.Contains(got, "ci-team-a") || strings.Contains(got, "ci-services") {
			t.Errorf("expiring tokens %q, want the 30-day token only", got)
		}
		screenshot(t, ctx, "overview")
	})

	t.Run("token detail", func(t *testing.T) {
		visit(t, ctx, env.url+"/orgs/"+uiOrg+"/tokens/"+strconv.FormatInt(allID, 10))
		if got := text(t, ctx, "#covered-count"); got != "2,004" {
			t.Errorf("covered projects %q, want 2,004", got)
		}
		if got := text(t, ctx, "#events"); !strings.Contains(got, "token.created") {
			t.Errorf("audit trail %q lacks token.created", got)
		}
		// Narrow the scope to a pattern: it takes effect at once.
		step(t, ctx, "edit scope",
			chromedp.Click(chromedp.ID("scope-patterns")),
			chromedp.SendKeys(chromedp.ID("patterns"), "website"))
		if st := submit(t, ctx, "save scope", "#save-scope"); st != http.StatusOK {
			t.Fatalf("save scope: status %d: %s", st, text(t, ctx, "main"))
		}
		if got := text(t, ctx, ".notice"); got != "Token updated." {
			t.Fatalf("notice %q", got)
		}
		if got := text(t, ctx, "#scope-summary"); got != "1 pattern" {
			t.Fatalf("scope summary %q, want 1 pattern", got)
		}
		if st := env.upload(t, allSecret, "svc-0001"); st != http.StatusForbidden {
			t.Fatalf("upload outside the narrowed scope: status %d, want 403", st)
		}
		screenshot(t, ctx, "token-detail")
	})

	t.Run("rotate", func(t *testing.T) {
		visit(t, ctx, env.url+"/orgs/"+uiOrg+"/tokens/"+strconv.FormatInt(patternID, 10))
		if st := submit(t, ctx, "rotate", "#rotate"); st != http.StatusOK {
			t.Fatalf("rotate link: status %d", st)
		}
		id, secret := createToken(t, ctx, "#confirm")
		if id != patternID || secret == patternSecret {
			t.Fatalf("rotation showed token %d, secret changed %v", id, secret != patternSecret)
		}
		if got := text(t, ctx, "h1"); !strings.HasSuffix(got, "rotated") {
			t.Fatalf("heading %q", got)
		}
		if st := env.upload(t, secret, "team-a-web"); st != http.StatusCreated {
			t.Fatalf("upload with the new secret: status %d, want 201", st)
		}
		if st := env.upload(t, patternSecret, "team-a-web"); st != http.StatusUnauthorized {
			t.Fatalf("upload with the old secret, no grace period: status %d, want 401", st)
		}
		patternSecret = secret
	})

	t.Run("revoke", func(t *testing.T) {
		visit(t, ctx, env.url+"/orgs/"+uiOrg+"/tokens/"+strconv.FormatInt(bulkID, 10))
		if st := submit(t, ctx, "revoke", "#revoke"); st != http.StatusOK {
			t.Fatalf("revoke link: status %d", st)
		}
		if st := submit(t, ctx, "confirm", "#confirm"); st != http.StatusOK {
			t.Fatalf("confirm revoke: status %d", st)
		}
		if got := text(t, ctx, "#token-state"); got != "revoked" {
			t.Fatalf("state %q after revoking", got)
		}
		if st := env.upload(t, bulkSecret, "svc-1999"); st != http.StatusUnauthorized {
			t.Fatalf("upload with the revoked token: status %d, want 401", st)
		}
		visit(t, ctx, env.url+"/orgs/"+uiOrg+"/tokens?state=revoked")
		if row := text(t, ctx, chromedp.CSS(fmt.Sprintf("tr[data-token='%d']", bulkID))); !strings.Contains(row, "revoked") {
			t.Fatalf("revoked list row %q", row)
		}
	})

	t.Run("projects", func(t *testing.T) {
		visit(t, ctx, env.url+"/orgs/"+uiOrg+"/projects")
		if got := text(t, ctx, "h1 .count"); got != "2,004" {
			t.Fatalf("project count %q", got)
		}
		// Keyset paging: 50 a page, "Next" carries the page token.
		first := text(t, ctx, "#projects tbody tr:first-child code")
		if st := submit(t, ctx, "next page", "#next"); st != http.StatusOK {
			t.Fatalf("next page: status %d", st)
		}
		if second := text(t, ctx, "#projects tbody tr:first-child code"); second == first || location(t, ctx).Query().Get("page_token") == "" {
			t.Fatalf("next page starts with %q again", second)
		}
		visit(t, ctx, env.url+"/orgs/"+uiOrg+"/projects?q=team-a")
		if got := text(t, ctx, "h1 .count"); got != "2" {
			t.Fatalf("search count %q, want 2", got)
		}
		screenshot(t, ctx, "projects")
		step(t, ctx, "open the create form", chromedp.Click(chromedp.CSS("details summary")))
		step(t, ctx, "fill", chromedp.SendKeys(chromedp.ID("project-key"), "team-a-mobile"))
		if st := submit(t, ctx, "create project", "details form button"); st != http.StatusOK {
			t.Fatalf("create project: status %d", st)
		}
		if got := text(t, ctx, ".notice"); got != "Project created." {
			t.Fatalf("notice %q", got)
		}
		// The pattern token covers the new project at once.
		if st := env.upload(t, patternSecret, "team-a-mobile"); st != http.StatusCreated {
			t.Fatalf("upload to a project created after the pattern token: status %d, want 201", st)
		}
		visit(t, ctx, env.url+"/orgs/"+uiOrg+"/projects/team-a-mobile/delete")
		if st := submit(t, ctx, "confirm delete", "#confirm"); st != http.StatusOK {
			t.Fatalf("delete project: status %d", st)
		}
		if _, err := env.db.FindProject(context.Background(), uiOrg, "team-a-mobile"); !errors.Is(err, sot.ErrNotFound) {
			t.Fatalf("after deletion: %v", err)
		}
	})

	t.Run("members", func(t *testing.T) {
		visit(t, ctx, env.url+"/orgs/"+uiOrg+"/members")
		step(t, ctx, "add carol", chromedp.SendKeys(chromedp.ID("member-login"), "carol"))
		if st := submit(t, ctx, "add", "form[action$='/members'] button.primary"); st != http.StatusOK {
			t.Fatalf("add member: status %d", st)
		}
		if got := text(t, ctx, "#members"); !strings.Contains(got, "carol") {
			t.Fatalf("members %q lack carol", got)
		}
		// Changing the role saves at once: the select submits its form on
		// "change", which SetValue dispatches.
		ctxT, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		if _, err := chromedp.RunResponse(ctxT, chromedp.SetValue(chromedp.CSS("select[aria-label='Role of carol']"), "admin")); err != nil {
			t.Fatal(err)
		}
		waitFor(t, ctx, "the saved role", `location.search === "?done=member-saved" && document.readyState === "complete"`)
		ms, err := env.db.UserMemberships(context.Background(), memberID(t, env, "carol"))
		if err != nil || len(ms) != 1 || ms[0].Role != sot.RoleAdmin {
			t.Fatalf("carol's memberships %+v, %v; want admin of %s", ms, err, uiOrg)
		}
		screenshot(t, ctx, "members")
		visit(t, ctx, env.url+"/orgs/"+uiOrg+"/audit?action=member.role_changed")
		if got := text(t, ctx, "#events"); !strings.Contains(got, "member:carol") {
			t.Fatalf("audit %q lacks the role change", got)
		}
		screenshot(t, ctx, "audit")
	})

	t.Run("phone", func(t *testing.T) {
		step(t, ctx, "phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
		visit(t, ctx, env.url+"/orgs/"+uiOrg+"/tokens")
		if width := inBrowser(t, ctx, "page width", chromedp.Evaluate[int]("document.documentElement.scrollWidth")); width > 390 {
			t.Errorf("the tokens page is %d px wide on a 390 px phone", width)
		}
		screenshot(t, ctx, "tokens-phone")
		step(t, ctx, "desktop viewport", chromedp.EmulateViewport(1280, 900))
	})

	t.Run("member cannot reach token pages", func(t *testing.T) {
		logout(t, ctx)
		login(t, ctx, env, uiMember)
		for _, p := range []string{"/tokens", "/tokens/new", "/tokens/" + strconv.FormatInt(allID, 10), "/members", "/settings", "/audit"} {
			if st := visit(t, ctx, env.url+"/orgs/"+uiOrg+p); st != http.StatusForbidden {
				t.Errorf("member visiting %s: status %d, want 403", p, st)
			}
		}
		if st := visit(t, ctx, env.url+"/orgs/"+uiOrg+"/projects"); st != http.StatusOK {
			t.Fatalf("member visiting projects: status %d", st)
		}
		page := html(t, ctx)
		if strings.Contains(page, `/tokens"`) || strings.Contains(page, "New project") || strings.Contains(page, "Delete") {
			t.Error("a member sees admin links on the projects page")
		}
		if st := visit(t, ctx, env.url+"/orgs/"+uiFreeOrg); st != http.StatusNotFound {
			t.Errorf("member visiting an organization they are not in: status %d, want 404", st)
		}
		logout(t, ctx)
	})

	t.Run("no other origin, no CSP refusal, no script error", func(t *testing.T) {
		problems.check(t, strings.TrimPrefix(env.url, "http://"))
	})
}

// httpSession is a cookie-carrying plain HTTP client, logged in as user.
func httpSession(t *testing.T, env *uiEnv, user string) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Jar: jar}
	resp, err := c.PostForm(env.url+"/login", url.Values{"login": {user}, "password": {uiPassword}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path == "/login" {
		t.Fatalf("log in as %s: status %d at %s", user, resp.StatusCode, resp.Request.URL)
	}
	return c
}

// otherFirst returns s with its first character changed, always to a
// different one (a fixed replacement of the end would sometimes equal it).
func otherFirst(s string) string {
	if s[0] == 'A' {
		return "B" + s[1:]
	}
	return "A" + s[1:]
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func get(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestUIForms checks, over plain HTTP, what a browser does not show:
// CSRF refusals, throttling, security headers and the free plan.
func TestUIForms(t *testing.T) {
	env := startUI(t, 100)
	c := httpSession(t, env, uiAdmin)
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	st, page := get(t, c, env.url+"/orgs/"+uiOrg+"/projects")
	if st != http.StatusOK {
		t.Fatalf("projects page: %d", st)
	}
	m := csrfField.FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no CSRF token in the projects page")
	}
	csrf := m[1]

	t.Run("CSRF", func(t *testing.T) {
		tests := []struct {
			name    string
			form    url.Values
			headers map[string]string
			want    int
		}{
			{"no token", url.Values{"key": {"p-no-token"}}, nil, http.StatusForbidden},
			{"wrong token", url.Values{"key": {"p-wrong"}, "csrf": {otherFirst(csrf)}}, nil, http.StatusForbidden},
			{"cross-site with token", url.Values{"key": {"p-cross"}, "csrf": {csrf}},
				map[string]string{"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
			{"same site with token", url.Values{"key": {"p-ok"}, "csrf": {csrf}},
				map[string]string{"Sec-Fetch-Site": "same-origin"}, http.StatusSeeOther},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				req, err := http.NewRequest(http.MethodPost, env.url+"/orgs/"+uiOrg+"/projects", strings.NewReader(tt.form.Encode()))
				if err != nil {
					t.Fatal(err)
				}
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				for k, v := range tt.headers {
					req.Header.Set(k, v)
				}
				resp, err := c.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != tt.want {
					t.Fatalf("status %d, want %d", resp.StatusCode, tt.want)
				}
				_, err = env.db.FindProject(context.Background(), uiOrg, tt.form.Get("key"))
				if created := err == nil; created != (tt.want == http.StatusSeeOther) {
					t.Fatalf("project created = %v (%v)", created, err)
				}
			})
		}
	})

	t.Run("bad input is 4xx", func(t *testing.T) {
		post := func(path string, form url.Values) int {
			form.Set("csrf", csrf)
			resp, err := c.PostForm(env.url+path, form)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		tests := []struct {
			name string
			path string
			form url.Values
			want int
		}{
			{"bad project key", "/orgs/" + uiOrg + "/projects", url.Values{"key": {"-bad key"}}, http.StatusBadRequest},
			{"duplicate project", "/orgs/" + uiOrg + "/projects", url.Values{"key": {"website"}}, http.StatusConflict},
			{"unknown member", "/orgs/" + uiOrg + "/members", url.Values{"login": {"nobody"}, "role": {"member"}}, http.StatusNotFound},
			{"bad role", "/orgs/" + uiOrg + "/members", url.Values{"login": {uiMember}, "role": {"owner"}}, http.StatusBadRequest},
			{"remove the last admin", "/orgs/" + uiOrg + "/members/" + uiAdmin + "/remove", url.Values{}, http.StatusBadRequest},
			{"policy out of range", "/orgs/" + uiOrg + "/settings", url.Values{"max_lifetime_days": {"0"}}, http.StatusBadRequest},
			{"policy not a number", "/orgs/" + uiOrg + "/settings", url.Values{"max_lifetime_days": {"lots"}}, http.StatusBadRequest},
			{"idle warning out of range", "/orgs/" + uiOrg + "/settings", url.Values{"max_lifetime_days": {"30"}, "idle_warning_days": {"-3"}}, http.StatusBadRequest},
			{"token without scope", "/orgs/" + uiOrg + "/tokens", url.Values{"name": {"x"}, "permission": {"scan"}, "expiry": {"30d"}}, http.StatusBadRequest},
			{"token beyond policy", "/orgs/" + uiOrg + "/tokens", url.Values{"name": {"x"}, "scope_mode": {"all"}, "permission": {"scan"}, "expiry": {"never"}}, http.StatusBadRequest},
			{"token with unknown permission", "/orgs/" + uiOrg + "/tokens", url.Values{"name": {"x"}, "scope_mode": {"all"}, "permission": {"org_admin"}, "expiry": {"30d"}}, http.StatusBadRequest},
			{"token with bad CIDR", "/orgs/" + uiOrg + "/tokens", url.Values{"name": {"x"}, "scope_mode": {"all"}, "permission": {"scan"}, "expiry": {"30d"}, "allowed_cidrs": {"10.0.0.0/99"}}, http.StatusBadRequest},
			{"token with unknown project", "/orgs/" + uiOrg + "/tokens", url.Values{"name": {"x"}, "scope_mode": {"projects"}, "project": {"nope"}, "permission": {"scan"}, "expiry": {"30d"}}, http.StatusBadRequest},
			{"free plan", "/orgs/" + uiFreeOrg + "/tokens", url.Values{"name": {"x"}, "scope_mode": {"all"}, "permission": {"scan"}, "expiry": {"30d"}}, http.StatusForbidden},
			{"unknown token", "/orgs/" + uiOrg + "/tokens/999999/revoke", url.Values{}, http.StatusNotFound},
			{"token id not a number", "/orgs/" + uiOrg + "/tokens/abc/revoke", url.Values{}, http.StatusNotFound},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if got := post(tt.path, tt.form); got != tt.want {
					t.Fatalf("status %d, want %d", got, tt.want)
				}
			})
		}
		if got := post("/orgs/"+uiOrg+"/projects", url.Values{"key": {strings.Repeat("a", 2<<20)}}); got != http.StatusRequestEntityTooLarge {
			t.Errorf("a 2 MiB form: status %d, want 413", got)
		}
		for _, q := range []string{"/orgs/" + uiOrg + "/tokens?state=bogus", "/orgs/" + uiOrg + "/audit?action=bogus"} {
			if st, _ := get(t, c, env.url+q); st != http.StatusBadRequest {
				t.Errorf("GET %s: status %d, want 400", q, st)
			}
		}
	})

	t.Run("free plan explains instead of the form", func(t *testing.T) {
		st, page := get(t, c, env.url+"/orgs/"+uiFreeOrg+"/tokens/new")
		if st != http.StatusOK || !strings.Contains(page, `id="plan-required"`) || strings.Contains(page, `id="token-form"`) {
			t.Fatalf("free-plan create page: status %d, plan message %v, form %v", st,
				strings.Contains(page, `id="plan-required"`), strings.Contains(page, `id="token-form"`))
		}
	})

	t.Run("policy forbids no expiry", func(t *testing.T) {
		_, page := get(t, c, env.url+"/orgs/"+uiOrg+"/tokens/new")
		if !regexp.MustCompile(`id="expiry-never"[^>]* disabled`).MatchString(page) ||
			!strings.Contains(page, "the organization&#39;s token policy requires an expiry") {
			t.Fatal("the no-expiry choice is not disabled with its reason")
		}
	})

	t.Run("mixed scope is explained", func(t *testing.T) {
		// The API can make a token with patterns and explicit projects; the
		// UI's chooser has one mode at a time and says so.
		org, err := env.db.FindOrg(context.Background(), uiOrg)
		if err != nil {
			t.Fatal(err)
		}
		tok, secret, err := sot.PrepareOrgToken(org, sot.UserRef{ID: memberID(t, env, uiAdmin), Login: uiAdmin}, sot.TokenRequest{
			Name: "mixed", Scope: sot.Scope{Patterns: []string{"team-.*"}, Projects: []string{"svc-0001", "svc-0002"}},
			Permissions: sot.NewPermissionSet(sot.PermissionScan), Expiry: sot.Expiry{In: "7d"},
		}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		tok.Rotation = &sot.TokenRotation{Every: 5 * sot.Day, GracePeriod: time.Hour}
		if err := env.db.CreateToken(context.Background(), tok, sot.HashSecret(secret)); err != nil {
			t.Fatal(err)
		}
		st, page := get(t, c, env.url+"/orgs/"+uiOrg+"/tokens/"+strconv.FormatInt(tok.ID, 10))
		if st != http.StatusOK || !strings.Contains(page, "both patterns and 2 explicit projects") {
			t.Fatalf("detail of a mixed token: status %d, no explanation", st)
		}
		if !strings.Contains(page, "Rotates every 5 days, the old secret working 1 hour longer") {
			t.Error("the rotation schedule is not shown")
		}
		if !strings.Contains(page, `id="covered-count">5<`) {
			t.Fatal("covered projects of the mixed token are not 3 team-* and 2 explicit")
		}
	})

	t.Run("security headers", func(t *testing.T) {
		resp, err := c.Get(env.url + "/orgs/" + uiOrg)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("CSP %q", csp)
		}
		if got := resp.Header.Get("Cache-Control"); got != "no-store" {
			t.Errorf("Cache-Control %q, want no-store", got)
		}

		noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err = noFollow.PostForm(env.url+"/login", url.Values{"login": {uiMember}, "password": {uiPassword}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		var session *http.Cookie
		for _, ck := range resp.Cookies() {
			if ck.Name == "sot_session" {
				session = ck
			}
		}
		if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteLaxMode || session.MaxAge <= 0 {
			t.Fatalf("session cookie %+v, want HttpOnly, SameSite=Lax, expiring", session)
		}
	})

	t.Run("organization switcher and member removal", func(t *testing.T) {
		resp, err := c.Get(env.url + "/switch?org=" + uiFreeOrg)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/orgs/"+uiFreeOrg {
			t.Fatalf("switch: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		if st, _ := get(t, c, env.url+"/login"); st != http.StatusSeeOther {
			t.Fatalf("login page while signed in: %d, want a redirect", st)
		}
		if st, _ := get(t, c, env.url+"/switch?org=nope"); st != http.StatusNotFound {
			t.Fatalf("switch to an unknown organization: %d, want 404", st)
		}
		resp, err = c.PostForm(env.url+"/orgs/"+uiOrg+"/members/"+uiMember+"/remove", url.Values{"csrf": {csrf}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("remove member: status %d", resp.StatusCode)
		}
		if ms, err := env.db.UserMemberships(context.Background(), memberID(t, env, uiMember)); err != nil || len(ms) != 0 {
			t.Fatalf("bob's memberships after removal: %+v, %v", ms, err)
		}
	})

	t.Run("a session works on another replica", func(t *testing.T) {
		// A second UI over the same database with the same key accepts the
		// session cookie and its CSRF token: no session state in memory.
		other, err := web.New(web.Config{Users: env.db, Orgs: env.db, Projects: env.db, Tokens: env.db, Audit: env.db,
			Auth: env.auth, SessionKey: []byte(strings.Repeat("k", 32))})
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: other, ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(ln)
		defer srv.Close()
		u, _ := url.Parse(env.url)
		req, err := http.NewRequest(http.MethodPost, "http://"+ln.Addr().String()+"/orgs/"+uiOrg+"/projects",
			strings.NewReader(url.Values{"key": {"from-replica-2"}, "csrf": {csrf}}.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for _, ck := range c.Jar.Cookies(u) {
			req.AddCookie(ck)
		}
		resp, err := (&http.Client{CheckRedirect: c.CheckRedirect}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("create on the other replica: status %d, want 303", resp.StatusCode)
		}
		if _, err := env.db.FindProject(context.Background(), uiOrg, "from-replica-2"); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("login throttling", func(t *testing.T) {
		try := func(pw string) int {
			resp, err := http.PostForm(env.url+"/login", url.Values{"login": {"carol"}, "password": {pw}})
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		for i := range 5 {
			if st := try("wrong"); st != http.StatusUnauthorized {
				t.Fatalf("attempt %d: status %d, want 401", i+1, st)
			}
		}
		if st := try(uiPassword); st != http.StatusTooManyRequests {
			t.Fatalf("after 5 failures, the right password: status %d, want 429", st)
		}
		events, _, err := env.db.ListEvents(context.Background(), "", sot.AuditFilter{Action: sot.ActionAuthFailed}, sot.Page{})
		if err != nil {
			t.Fatal(err)
		}
		if len(events) < 5 {
			t.Fatalf("%d auth.failed events, want 5", len(events))
		}
	})

	t.Run("secret verified by the authenticator", func(t *testing.T) {
		// A token made through the form authenticates with the secret the
		// created page showed, and only once is it shown.
		jarClient := httpSession(t, env, uiAdmin)
		_, page := get(t, jarClient, env.url+"/orgs/"+uiOrg+"/tokens/new")
		token := csrfField.FindStringSubmatch(page)[1]
		resp, err := jarClient.PostForm(env.url+"/orgs/"+uiOrg+"/tokens", url.Values{"csrf": {token}, "name": {"api"},
			"scope_mode": {"patterns"}, "patterns": {"svc-00.*"}, "permission": {"scan", "browse"}, "expiry": {"custom"},
			"expires_at": {time.Now().Add(20 * sot.Day).Format(time.DateOnly)}, "allowed_cidrs": {"127.0.0.1"}})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		m := regexp.MustCompile(`<code id="secret">(sot_[A-Za-z0-9]+)</code>`).FindSubmatch(b)
		if resp.StatusCode != http.StatusOK || m == nil {
			t.Fatalf("create: status %d, no secret shown", resp.StatusCode)
		}
		p, err := env.auth.AuthenticateSecret(context.Background(), string(m[1]), netip.MustParseAddr("127.0.0.1"))
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Authorize(sot.PermissionScan, uiOrg, "svc-0042"); err != nil {
			t.Fatalf("in scope: %v", err)
		}
		if err := p.Authorize(sot.PermissionScan, uiOrg, "svc-1042"); err == nil {
			t.Fatal("out of scope allowed")
		}
		if _, err := env.auth.AuthenticateSecret(context.Background(), string(m[1]), netip.MustParseAddr("10.1.2.3")); !errors.Is(err, sot.ErrForbidden) {
			t.Fatalf("from outside the allowed network: %v, want forbidden", err)
		}
		_, again := get(t, jarClient, resp.Request.URL.String())
		if strings.Contains(again, string(m[1])) {
			t.Fatal("the secret is shown a second time")
		}

		tokenURL := strings.TrimSuffix(resp.Request.URL.String(), "/created")
		post := func(u string, form url.Values) int {
			form.Set("csrf", token)
			r, err := jarClient.PostForm(u, form)
			if err != nil {
				t.Fatal(err)
			}
			r.Body.Close()
			return r.StatusCode
		}
		if st := post(tokenURL+"/revoke", url.Values{}); st != http.StatusOK {
			t.Fatalf("revoke: status %d", st)
		}
		if _, err := env.auth.AuthenticateSecret(context.Background(), string(m[1]), netip.MustParseAddr("127.0.0.1")); sot.ErrorCode(err) != sot.EUNAUTHENTICATED {
			t.Fatalf("revoked secret: %v, want unauthenticated", err)
		}
		if st := post(tokenURL, url.Values{"name": {"renamed"}, "permission": {"scan"}}); st != http.StatusBadRequest {
			t.Fatalf("editing a revoked token: status %d, want 400", st)
		}
	})

	t.Run("policy settings", func(t *testing.T) {
		resp, err := c.PostForm(env.url+"/orgs/"+uiOrg+"/settings", url.Values{"csrf": {csrf},
			"max_lifetime_days": {"60"}, "allow_non_expiring": {"on"}, "idle_warning_days": {"14"}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("save policy: status %d", resp.StatusCode)
		}
		org, err := env.db.FindOrg(context.Background(), uiOrg)
		if err != nil {
			t.Fatal(err)
		}
		if want := (sot.TokenPolicy{MaxLifetimeDays: 60, AllowNonExpiring: true, IdleWarningDays: 14}); org.TokenPolicy != want {
			t.Fatalf("policy %+v, want %+v", org.TokenPolicy, want)
		}
		_, page := get(t, c, env.url+"/orgs/"+uiOrg+"/tokens/new")
		for _, disabled := range []string{"90d", "1y"} {
			if !regexp.MustCompile(`id="expiry-` + disabled + `"[^>]* disabled`).MatchString(page) {
				t.Errorf("%s is not disabled under a 60-day policy", disabled)
			}
		}
		if regexp.MustCompile(`id="expiry-never"[^>]* disabled`).MatchString(page) {
			t.Error("no expiry is disabled although the policy allows it")
		}
		if !regexp.MustCompile(`id="expiry-30d"[^>]* checked`).MatchString(page) {
			t.Error("30 days is not the default under a 60-day policy")
		}
	})
}

func memberID(t *testing.T, env *uiEnv, login string) int64 {
	t.Helper()
	u, err := env.db.FindUserByLogin(context.Background(), login)
	if err != nil {
		t.Fatal(err)
	}
	return u.ID
}
