package main

// Stateless replicas: several servers with the real wiring of "sot serve"
// on one PostgreSQL database, as behind a load balancer.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sot-dev/sot/internal/pgtest"
)

// propagationLimit is how soon a change made on one replica must be
// enforced by the others.
const propagationLimit = time.Second

// startReplicas starts two servers on the database dsn; the first one
// bootstraps the instance admin, whose token both accept.
func startReplicas(t *testing.T, dsn string) (a, b *testServer) {
	t.Helper()
	a = startServer(t, serverOpts{DSN: dsn})
	b = startServer(t, serverOpts{DSN: dsn})
	if a.AdminToken == "" || b.AdminToken != "" {
		t.Fatalf("bootstrap: first replica printed admin token %q, second %q", a.AdminToken, b.AdminToken)
	}
	b.AdminToken = a.AdminToken
	return a, b
}

// checkPath is the check request of a project of acme.
func checkPath(project, permission string) string {
	return "/api/v1/check?org=acme&project=" + project + "&permission=" + permission
}

// waitStatus sends GET path to c every 2 ms until it answers want, and
// returns how long that took. It fails the test after limit.
func waitStatus(t *testing.T, c *apiClient, path string, want int, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		r := c.do("GET", path, nil)
		if r.Status == want {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("GET %s still answers %d after %v, want %d; body %s", path, r.Status, limit, want, r.Body)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// A token made on replica A works on B, and a change made on A is
// enforced by B within a second, although B had the token in its cache:
// the change reaches B through PostgreSQL NOTIFY.
func TestReplicasPropagateChanges(t *testing.T) {
	a, b := startReplicas(t, pgtest.DSN(t))
	a.createOrg(t, "acme", "team")
	a.createProjects(t, "acme", "web", "api")
	bob := a.createUser(t, "bob")
	a.admin(t).do("PUT", "/api/v1/orgs/acme/members/bob", map[string]any{"role": "member"}).want(t, http.StatusCreated)

	orgToken := func(t *testing.T) (secret string, id int64) {
		tok := a.createOrgToken(t, "acme", map[string]any{
			"scope": map[string]any{"projects": []string{"web", "api"}}, "permissions": []string{"scan", "browse"}})
		return tok.Secret, tok.Token.ID
	}
	patchToken := func(body map[string]any) func(t *testing.T, id int64) {
		return func(t *testing.T, id int64) {
			a.admin(t).do("PATCH", fmt.Sprintf("/api/v1/orgs/acme/tokens/%d", id), body).want(t, http.StatusOK)
		}
	}
	tests := []struct {
		name string
		// credential returns a secret (and its token's ID) that the probe
		// accepts before the change.
		credential func(t *testing.T) (string, int64)
		change     func(t *testing.T, id int64)
		probe      string
		want       int
		undo       func(t *testing.T)
	}{
		{name: "scope narrowed", credential: orgToken, change: patchToken(map[string]any{"scope": map[string]any{"projects": []string{"web"}}}),
			probe: checkPath("api", "scan"), want: http.StatusForbidden},
		{name: "permission removed", credential: orgToken, change: patchToken(map[string]any{"permissions": []string{"browse"}}),
			probe: checkPath("web", "scan"), want: http.StatusForbidden},
		{name: "revoked", credential: orgToken, change: func(t *testing.T, id int64) {
			a.admin(t).do("DELETE", fmt.Sprintf("/api/v1/orgs/acme/tokens/%d", id), nil).want(t, http.StatusNoContent)
		}, probe: checkPath("web", "scan"), want: http.StatusUnauthorized},
		{name: "org moved to the free plan", credential: orgToken, change: func(t *testing.T, _ int64) {
			a.admin(t).do("PATCH", "/api/v1/orgs/acme", map[string]any{"plan": "free"}).want(t, http.StatusOK)
		}, probe: checkPath("web", "scan"), want: http.StatusForbidden, undo: func(t *testing.T) {
			a.admin(t).do("PATCH", "/api/v1/orgs/acme", map[string]any{"plan": "team"}).want(t, http.StatusOK)
		}},
		{name: "member removed", credential: func(*testing.T) (string, int64) { return bob, 0 }, change: func(t *testing.T, _ int64) {
			a.admin(t).do("DELETE", "/api/v1/orgs/acme/members/bob", nil).want(t, http.StatusNoContent)
		}, probe: checkPath("web", "scan"), want: http.StatusForbidden},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			secret, id := tc.credential(t)
			// B authenticates the secret made on A, and caches it.
			b.as(t, secret).do("GET", tc.probe, nil).want(t, http.StatusNoContent)
			b.as(t, secret).do("GET", tc.probe, nil).want(t, http.StatusNoContent)
			tc.change(t, id)
			took := waitStatus(t, b.as(t, secret), tc.probe, tc.want, 5*time.Second)
			t.Logf("%s on A enforced by B after %v", tc.name, took)
			if took > propagationLimit {
				t.Errorf("%s took %v to reach B, want at most %v", tc.name, took, propagationLimit)
			}
			if tc.undo != nil {
				tc.undo(t)
			}
		})
	}
}

// Replicas started at the same moment on a new database take turns at
// the migrations (under the advisory lock), and exactly one of them
// creates the instance admin, whose token every replica then accepts.
func TestReplicasStartTogether(t *testing.T) {
	dsn := pgtest.DSN(t)
	type replica struct {
		srv *server
		out bytes.Buffer
		err error
	}
	replicas := make([]*replica, 3)
	var wg sync.WaitGroup
	for i := range replicas {
		r := &replica{}
		replicas[i] = r
		wg.Go(func() {
			r.srv, r.err = newServer(t.Context(), serveConfig{Addr: "127.0.0.1:0", DB: dsn, AdminPassword: "admin-password-for-tests"}, &r.out)
		})
	}
	wg.Wait()
	var tokens []string
	var urls []string
	for i, r := range replicas {
		if r.err != nil {
			t.Fatalf("replica %d: %v", i, r.err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- r.srv.Serve(ctx, ln) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("replica %d: %v", i, err)
			}
		})
		urls = append(urls, "http://"+ln.Addr().String())
		if tok := adminTokenFrom(r.out.String()); tok != "" {
			tokens = append(tokens, tok)
		}
	}
	if len(tokens) != 1 {
		t.Fatalf("%d replicas printed an admin token, want exactly 1", len(tokens))
	}
	for _, u := range urls {
		c := &apiClient{t: t, base: u, token: tokens[0]}
		c.do("GET", "/api/v1/me", nil).want(t, http.StatusOK)
	}
}

// outcome is the answer to one request of a concurrent client.
type outcome struct {
	kind, key string // "project" and its key, "token" and its ID, "org" and its key
	status    int
	body      string
	// secret is a created token's, and other the replica that did not
	// create it.
	secret string
	other  *testServer
}

// post sends a JSON POST from a client goroutine, where t.Fatal is not
// allowed: transport errors come back as status 0.
func post(hc *http.Client, base, token, path string, body any) (int, []byte) {
	buf, _ := json.Marshal(body)
	req, err := http.NewRequest("POST", base+path, bytes.NewReader(buf))
	if err != nil {
		return 0, []byte(err.Error())
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data
}

// listKeys returns the sorted keys (or IDs) of every item of a list,
// following its pages.
func listKeys(t *testing.T, c *apiClient, path, field string) []string {
	t.Helper()
	var keys []string
	next := ""
	for {
		var l listBody[map[string]any]
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		c.do("GET", path+sep+"page_size=1000&page_token="+url.QueryEscape(next), nil).want(t, http.StatusOK).decode(t, &l)
		for _, it := range l.Items {
			keys = append(keys, fmt.Sprint(it[field]))
		}
		if next = l.NextPageToken; next == "" {
			slices.Sort(keys)
			return keys
		}
	}
}

// Two replicas with 16 concurrent clients each create projects,
// organizations and tokens whose keys collide across clients and
// replicas. Every answer is 201 or 409, never a 5xx; every key is created
// exactly once; and everything acknowledged is there afterwards, seen
// through either replica.
func TestReplicasConcurrentWrites(t *testing.T) {
	const (
		clientsPerReplica = 16
		rounds            = 8
		projectKeys       = 24 // shared by every client: most creations collide
		orgKeys           = 6
	)
	a, b := startReplicas(t, pgtest.DSN(t))
	a.createOrg(t, "acme", "team")
	a.createProjects(t, "acme", "seed-0", "seed-1")

	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clientsPerReplica}, Timeout: 30 * time.Second}
	defer hc.CloseIdleConnections()
	var (
		mu       sync.Mutex
		outcomes []outcome
		wg       sync.WaitGroup
	)
	replicas := []*testServer{a, b}
	for r, srv := range replicas {
		other := replicas[1-r]
		for c := range clientsPerReplica {
			wg.Go(func() {
				var mine []outcome
				for i := range rounds {
					n := r*clientsPerReplica*rounds + c*rounds + i // distinct per request
					key := fmt.Sprintf("p-%02d", (n*7)%projectKeys)
					st, body := post(hc, srv.URL, a.AdminToken, "/api/v1/orgs/acme/projects", map[string]any{"key": key})
					mine = append(mine, outcome{kind: "project", key: key, status: st, body: string(body)})

					org := fmt.Sprintf("org-%d", n%orgKeys)
					st, body = post(hc, srv.URL, a.AdminToken, "/api/v1/orgs", map[string]any{"key": org, "name": org, "plan": "team"})
					mine = append(mine, outcome{kind: "org", key: org, status: st, body: string(body)})

					st, body = post(hc, srv.URL, a.AdminToken, "/api/v1/orgs/acme/tokens", map[string]any{
						"name": "ci", "expires_in": "30d", "permissions": []string{"scan"},
						"scope": map[string]any{"projects": []string{"seed-0", "seed-1"}, "patterns": []string{"p-.*"}}})
					o := outcome{kind: "token", status: st, body: string(body), other: other}
					var created createdTokenBody
					if st == http.StatusCreated && json.Unmarshal(body, &created) == nil {
						o.key, o.secret = fmt.Sprint(created.Token.ID), created.Secret
					}
					mine = append(mine, o)
				}
				mu.Lock()
				outcomes = append(outcomes, mine...)
				mu.Unlock()
			})
		}
	}
	wg.Wait()

	created := map[string][]string{}
	wins := map[string]int{}
	statuses := map[int]int{}
	for _, o := range outcomes {
		statuses[o.status]++
		switch o.status {
		case http.StatusCreated:
			created[o.kind] = append(created[o.kind], o.key)
			wins[o.kind+" "+o.key]++
		case http.StatusConflict:
			if o.kind == "token" {
				t.Errorf("token creation answered 409: %s", o.body)
			}
		default:
			t.Errorf("%s %s: status %d, want 201 or 409; body %s", o.kind, o.key, o.status, o.body)
		}
	}
	t.Logf("%d requests, statuses %v", len(outcomes), statuses)
	for k, n := range wins {
		if n != 1 {
			t.Errorf("%s was created %d times", k, n)
		}
	}
	if len(created["project"]) != projectKeys || len(created["org"]) != orgKeys || len(created["token"]) != 2*clientsPerReplica*rounds {
		t.Errorf("created %d projects, %d orgs, %d tokens; want %d, %d, %d", len(created["project"]), len(created["org"]),
			len(created["token"]), projectKeys, orgKeys, 2*clientsPerReplica*rounds)
	}

	wantProjects := slices.Sorted(slices.Values(append(created["project"], "seed-0", "seed-1")))
	wantOrgs := slices.Sorted(slices.Values(append(created["org"], "acme")))
	wantTokens := slices.Sorted(slices.Values(created["token"]))
	for _, o := range outcomes {
		if o.secret != "" {
			// The other replica never saw this secret: it reads it from the database.
			o.other.as(t, o.secret).do("GET", checkPath("seed-0", "scan"), nil).want(t, http.StatusNoContent)
		}
	}
	for _, srv := range replicas {
		c := srv.admin(t)
		if got := listKeys(t, c, "/api/v1/orgs/acme/projects", "key"); !slices.Equal(got, wantProjects) {
			t.Errorf("%s lists projects %v, want %v", srv.URL, got, wantProjects)
		}
		if got := listKeys(t, c, "/api/v1/orgs", "key"); !slices.Equal(got, wantOrgs) {
			t.Errorf("%s lists orgs %v, want %v", srv.URL, got, wantOrgs)
		}
		if got := listKeys(t, c, "/api/v1/orgs/acme/tokens?state=all", "id"); !slices.Equal(got, wantTokens) {
			t.Errorf("%s lists %d tokens, want the %d acknowledged", srv.URL, len(got), len(wantTokens))
		}
	}
}

// A replica keeps working across a restart of the PostgreSQL server: its
// pool reconnects, its listener reconnects and, since it may have missed
// notifications meanwhile, drops its whole cache. A token that B had
// cached and that A revoked while B was not listening is refused by B.
func TestReplicasSurviveDatabaseRestart(t *testing.T) {
	pg := pgtest.Start(t)
	dsn := pg.DSN(t)
	a := startServer(t, serverOpts{DSN: dsn})
	// B's sessions carry a name, so that the test can see whether B's
	// listener is connected.
	b := startServer(t, serverOpts{DSN: dsn + "&application_name=sot-replica-b"})
	b.AdminToken = a.AdminToken
	a.createOrg(t, "acme", "team")
	a.createProjects(t, "acme", "web")
	if n := listeners(t, dsn, "sot-replica-b"); n != 1 {
		t.Fatalf("%d listening sessions of B before the restart, want 1", n)
	}

	// The restart races with B's listener reconnecting (a second after it
	// lost its connection): a revoke that B could have heard proves
	// nothing, so such an attempt is repeated.
	for attempt := 1; ; attempt++ {
		tok := a.createOrgToken(t, "acme", map[string]any{"scope": map[string]any{"all_projects": true}, "permissions": []string{"scan"}})
		b.as(t, tok.Secret).do("GET", checkPath("web", "scan"), nil).want(t, http.StatusNoContent)

		pg.Stop(t)
		b.do200(t, "/healthz")
		if r := b.as(t, "").do("GET", "/readyz", nil); r.Status != http.StatusServiceUnavailable {
			t.Errorf("/readyz with the database down: %d, want 503, which takes the replica out of the load balancer", r.Status)
		}
		pg.Start(t)
		b.do200(t, "/readyz")

		a.admin(t).do("DELETE", fmt.Sprintf("/api/v1/orgs/acme/tokens/%d", tok.Token.ID), nil).want(t, http.StatusNoContent)
		missed := listeners(t, dsn, "sot-replica-b") == 0 // once back, a listener stays
		took := waitStatus(t, b.as(t, tok.Secret), checkPath("web", "scan"), http.StatusUnauthorized, 10*time.Second)
		if missed {
			t.Logf("attempt %d: B was not listening when A revoked the token; B refused it %v later, after reconnecting", attempt, took)
			break
		}
		t.Logf("attempt %d: B's listener was back before the revoke (refused after %v); again", attempt, took)
		if attempt == 3 {
			t.Fatal("B's listener was back before the revoke in every attempt: the restart is too slow to test a missed notification")
		}
	}

	// Both replicas write and hear each other again.
	b.admin(t).do("POST", "/api/v1/orgs/acme/projects", map[string]any{"key": "after"}).want(t, http.StatusCreated)
	tok := createOrgTokenAs(t, b.admin(t), "acme", map[string]any{"scope": map[string]any{"all_projects": true}, "permissions": []string{"scan"}})
	a.as(t, tok.Secret).do("GET", checkPath("after", "scan"), nil).want(t, http.StatusNoContent)
	b.admin(t).do("DELETE", fmt.Sprintf("/api/v1/orgs/acme/tokens/%d", tok.Token.ID), nil).want(t, http.StatusNoContent)
	if took := waitStatus(t, a.as(t, tok.Secret), checkPath("after", "scan"), http.StatusUnauthorized, 5*time.Second); took > propagationLimit {
		t.Errorf("after the restart a revoke on B took %v to reach A", took)
	}
}

// listeners returns how many sessions named app are listening for
// changes on the database of dsn.
func listeners(t *testing.T, dsn, app string) int {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	var n int
	err = conn.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND application_name = $1 AND query ILIKE 'listen %'`, app).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// do200 fails the test unless GET path answers 200.
func (s *testServer) do200(t *testing.T, path string) {
	t.Helper()
	s.as(t, "").do("GET", path, nil).want(t, http.StatusOK)
}
