package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// garbageTimeout bounds every garbage request: a server that hangs on one
// fails the test instead of stalling it.
const garbageTimeout = 20 * time.Second

// rawExchange writes raw to a new connection to addr and reads one
// response. It returns the status, or 0 when the server closed the
// connection without one (what it does with some protocol-level garbage).
func rawExchange(t *testing.T, addr, raw string) int {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(garbageTimeout))
	if _, err := io.WriteString(conn, raw); err != nil {
		// The server may refuse before reading it all; its answer, if
		// any, is still readable.
		t.Logf("write: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("no answer within %v: the server hangs", garbageTimeout)
		}
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// Garbage of any shape gets a 4xx (or, below HTTP, a closed connection),
// never a 5xx, and never a hang.
func TestAPIGarbage(t *testing.T) {
	forEachDB(t, serverOpts{MaxReportBytes: 1 << 20}, testGarbage)
}

func testGarbage(t *testing.T, s *testServer) {
	s.createOrg(t, "acme", "team")
	s.createProjects(t, "acme", "web")
	tok := s.createOrgToken(t, "acme", map[string]any{"scope": map[string]any{"all_projects": true}, "permissions": []string{"scan", "browse"}})
	addr := strings.TrimPrefix(s.URL, "http://")
	auth := "Authorization: Bearer " + s.AdminToken + "\r\n"
	req := func(method, path, headers, body string) string {
		return fmt.Sprintf("%s %s HTTP/1.1\r\nHost: x\r\n%sContent-Length: %d\r\nConnection: close\r\n\r\n%s", method, path, headers, len(body), body)
	}
	deep := strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000)
	deepObj := strings.Repeat(`{"a":`, 20_000) + "1" + strings.Repeat("}", 20_000)
	cases := []struct {
		name string
		raw  string
	}{
		{"unknown method", req("BREW", "/api/v1/orgs", auth, "")},
		{"method not allowed", req("PUT", "/api/v1/me", auth, "")},
		{"lower-case method", req("get", "/api/v1/me", auth, "")},
		{"huge header", req("GET", "/api/v1/me", auth+"X-Junk: "+strings.Repeat("a", 200<<10)+"\r\n", "")},
		{"many headers", req("GET", "/api/v1/me", auth+strings.Repeat("X-A: b\r\n", 20_000), "")},
		{"huge bearer", req("GET", "/api/v1/me", "Authorization: Bearer "+strings.Repeat("x", 60<<10)+"\r\n", "")},
		{"bearer with NUL", req("GET", "/api/v1/me", "Authorization: Bearer sot_\x00abc\r\n", "")},
		{"basic not base64", req("GET", "/api/v1/me", "Authorization: Basic !!!\r\n", "")},
		{"basic with password", req("GET", "/api/v1/me", "Authorization: Basic "+base64.StdEncoding.EncodeToString([]byte(tok.Secret+":pw"))+"\r\n", "")},
		{"invalid UTF-8 in JSON", req("POST", "/api/v1/orgs", auth+"Content-Type: application/json\r\n", "{\"key\":\"a\xff\xfe\",\"plan\":\"team\"}")},
		{"invalid UTF-8 in path", req("GET", "/api/v1/orgs/a%ff%fe", auth, "")},
		{"invalid UTF-8 in query", req("GET", "/api/v1/orgs/acme/projects?q=%ff%fe", auth, "")},
		{"NUL in path", req("GET", "/api/v1/orgs/a%00b", auth, "")},
		{"NUL in query", req("GET", "/api/v1/orgs/acme/projects?q=a%00b", auth, "")},
		{"NUL in JSON name", req("POST", "/api/v1/orgs/acme/projects", auth+"Content-Type: application/json\r\n", `{"key":"nul","name":"a\u0000b"}`)},
		{"NUL in JSON org name", req("POST", "/api/v1/orgs", auth+"Content-Type: application/json\r\n", `{"key":"nul","name":"a\u0000b","plan":"team"}`)},
		{"NUL in token description", req("POST", "/api/v1/orgs/acme/tokens", auth+"Content-Type: application/json\r\n", `{"name":"n\u0000","description":"a\u0000b","expires_in":"30d","permissions":["scan"],"scope":{"all_projects":true}}`)},
		{"NUL in user name", req("POST", "/api/v1/users", auth+"Content-Type: application/json\r\n", `{"login":"nul","name":"a\u0000b","password":"long-enough-password"}`)},
		{"NUL in webhook URL", req("POST", "/api/v1/orgs/acme/webhooks", auth+"Content-Type: application/json\r\n", `{"url":"http://a/\u0000","events":["token.created"]}`)},
		{"NUL in trust policy", req("POST", "/api/v1/orgs/acme/trust-policies", auth+"Content-Type: application/json\r\n", `{"name":"a\u0000","issuer":"https://token.actions.githubusercontent.com","conditions":{"repository":"a\u0000"},"permissions":["scan"],"scope":{"all_projects":true}}`)},
		{"NUL in report branch", req("POST", "/api/v1/orgs/acme/projects/web/analyses?branch=a%00b", auth, "r")},
		{"bad percent encoding", req("GET", "/api/v1/orgs/acme/projects?q=%zz", auth, "")},
		{"deep JSON array", req("POST", "/api/v1/orgs", auth+"Content-Type: application/json\r\n", deep)},
		{"deep JSON object", req("POST", "/api/v1/orgs/acme/tokens", auth+"Content-Type: application/json\r\n", deepObj)},
		{"wrong types", req("POST", "/api/v1/orgs/acme/tokens", auth+"Content-Type: application/json\r\n", `{"name":1,"scope":"all","permissions":{"a":1},"expires_in":[]}`)},
		{"JSON null", req("POST", "/api/v1/orgs/acme/tokens", auth+"Content-Type: application/json\r\n", `null`)},
		{"JSON number", req("PATCH", "/api/v1/orgs/acme", auth+"Content-Type: application/json\r\n", `1e999999`)},
		{"XML body", req("POST", "/api/v1/orgs", auth+"Content-Type: application/xml\r\n", `<org/>`)},
		{"negative page size", req("GET", "/api/v1/orgs/acme/projects?page_size=-1", auth, "")},
		{"huge page size", req("GET", "/api/v1/orgs/acme/projects?page_size=99999999999999999999", auth, "")},
		{"page size not a number", req("GET", "/api/v1/orgs/acme/tokens?page_size=ten", auth, "")},
		{"bogus page token", req("GET", "/api/v1/orgs/acme/tokens?page_token=eyJ4Ijp9", auth, "")},
		{"bogus audit page token", req("GET", "/api/v1/orgs/acme/audit?page_token="+strings.Repeat("A", 1000), auth, "")},
		{"bogus sonar paging", req("GET", "/api/organizations/search?p=-5&ps=100000", auth, "")},
		{"huge id", req("GET", "/api/v1/orgs/acme/tokens/99999999999999999999999", auth, "")},
		{"negative id", req("GET", "/api/v1/orgs/acme/tokens/-1", auth, "")},
		{"dot-dot key", req("GET", "/api/v1/orgs/acme/projects/..%2F..%2Fetc%2Fpasswd", auth, "")},
		{"dot-dot project create", req("POST", "/api/v1/orgs/acme/projects", auth+"Content-Type: application/json\r\n", `{"key":"../../x"}`)},
		{"check without params", req("GET", "/api/v1/check", "Authorization: Bearer "+tok.Secret+"\r\n", "")},
		{"check with garbage permission", req("GET", "/api/v1/check?org=acme&project=web&permission=%ff", "Authorization: Bearer "+tok.Secret+"\r\n", "")},
		{"check with NUL org", req("GET", "/api/v1/check?org=a%00&project=b%00&permission=scan", "Authorization: Bearer "+tok.Secret+"\r\n", "")},
		{"check with NUL in X-Forwarded-Uri", req("GET", "/api/v1/check", "Authorization: Bearer "+tok.Secret+"\r\nX-Forwarded-Uri: /a%00/b\r\n", "")},
		{"check with huge org", req("GET", "/api/v1/check?org="+strings.Repeat("a", 30<<10)+"&project=web&permission=scan", "Authorization: Bearer "+tok.Secret+"\r\n", "")},
		{"huge scope pattern", req("POST", "/api/v1/orgs/acme/scope-preview", auth+"Content-Type: application/json\r\n", `{"scope":{"patterns":["`+strings.Repeat("(a*)*", 20_000)+`"]}}`)},
		{"many scope patterns", req("POST", "/api/v1/orgs/acme/scope-preview", auth+"Content-Type: application/json\r\n", `{"scope":{"patterns":[`+strings.TrimSuffix(strings.Repeat(`"a.*",`, 50_000), ",")+`]}}`)},
		{"many revoke secrets", req("POST", "/api/v1/tokens/revoke", "Content-Type: application/json\r\n", `{"secrets":[`+strings.TrimSuffix(strings.Repeat(`"sot_x",`, 10_000), ",")+`]}`)},
		{"body larger than Content-Length", "POST /api/v1/orgs HTTP/1.1\r\nHost: x\r\n" + auth + "Content-Length: 5\r\nConnection: close\r\n\r\n{\"key\":\"a\"}"},
		{"chunked oversize JSON", "POST /api/v1/orgs HTTP/1.1\r\nHost: x\r\n" + auth + "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + chunked(strings.Repeat(" ", 9<<20)+"{}")},
		{"bad chunking in a report", "POST /api/v1/orgs/acme/projects/web/analyses HTTP/1.1\r\nHost: x\r\n" + auth + "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nabcde\r\nzz\r\nabc\r\n0\r\n\r\n"},
		{"bad chunking", "POST /api/v1/orgs HTTP/1.1\r\nHost: x\r\n" + auth + "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"},
		{"both lengths", "POST /api/v1/orgs HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n"},
		{"not HTTP", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage\r\n\r\n"},
		{"HTTP/0.9", "GET /api/v1/me\r\n\r\n"},
		{"HTTP/2 preface over HTTP/1", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"},
		{"no Host", "GET /api/v1/me HTTP/1.1\r\nConnection: close\r\n\r\n"},
		{"two Hosts", "GET /api/v1/me HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n"},
		{"space in header name", "GET /api/v1/me HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\nConnection: close\r\n\r\n"},
		{"oversize report", req("POST", "/api/v1/orgs/acme/projects/web/analyses", auth, strings.Repeat("r", 2<<20))},
		{"metrics with a body", req("POST", "/metrics", "", "x")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if st := rawExchange(t, addr, tc.raw); st >= 500 || (st != 0 && st < 400) {
				t.Fatalf("status %d, want a 4xx or a closed connection", st)
			}
		})
	}

	// Random bodies, headers and query strings on every body-taking route.
	t.Run("random", func(t *testing.T) {
		rng := mrand.New(mrand.NewPCG(1, uint64(time.Now().UnixNano())))
		paths := []string{"/api/v1/orgs", "/api/v1/orgs/acme", "/api/v1/orgs/acme/tokens", "/api/v1/orgs/acme/projects",
			"/api/v1/orgs/acme/scope-preview", "/api/v1/users", "/api/v1/tokens/revoke", "/api/v1/oidc/exchange",
			"/api/v1/orgs/acme/webhooks", "/api/v1/orgs/acme/trust-policies", "/api/v1/secret-scanning/github", "/api/v1/check"}
		methods := []string{"GET", "POST", "PATCH", "PUT", "DELETE", "HEAD", "OPTIONS"}
		for i := range 200 {
			body := make([]byte, rng.IntN(2048))
			rand.Read(body)
			q := url.Values{"page_size": {fmt.Sprint(rng.Int64() - rng.Int64())}, "page_token": {string(body[:min(len(body), 64)])}}
			raw := req(methods[rng.IntN(len(methods))], paths[rng.IntN(len(paths))]+"?"+q.Encode(),
				auth+"Content-Type: application/json\r\n", string(body))
			// 2xx and 3xx are possible here (a GET that ignores its body),
			// 5xx is not.
			if st := rawExchange(t, addr, raw); st >= 500 {
				t.Fatalf("request %d: status %d", i, st)
			}
		}
	})

	// After all that, the server still answers.
	s.admin(t).do("GET", "/api/v1/me", nil).want(t, http.StatusOK)
}

// Slow loris: headers that never end are cut off by ReadHeaderTimeout.
func TestServerSlowLoris(t *testing.T) {
	t.Parallel()
	s := startServer(t, serverOpts{})
	addr := strings.TrimPrefix(s.URL, "http://")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	io.WriteString(conn, "GET /api/v1/me HTTP/1.1\r\nHost: x\r\n")
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		buf := make([]byte, 1)
		conn.SetReadDeadline(time.Now().Add(garbageTimeout))
		for {
			if _, err := conn.Read(buf); err != nil {
				return
			}
		}
	}()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-closed:
			if d := time.Since(start); d > readHeaderTimeout+5*time.Second {
				t.Fatalf("connection closed after %v, want about %v", d, readHeaderTimeout)
			}
			return
		case <-tick.C:
			io.WriteString(conn, "X-Slow: 1\r\n")
		}
	}
}

// chunked encodes s as one chunk and the last chunk.
func chunked(s string) string { return fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(s), s) }

// A client that disconnects in the middle of an upload leaves nothing
// behind: the request ends (its context and body with the connection) as
// the client's failure, a 4xx in the log, and no analysis is stored.
func TestAPIUploadDisconnect(t *testing.T) {
	s := startServer(t, serverOpts{})
	s.createOrg(t, "acme", "team")
	s.createProjects(t, "acme", "web")
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "POST /api/v1/orgs/acme/projects/web/analyses HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n", s.AdminToken, 1<<20)
	conn.Write(make([]byte, 64<<10))
	time.Sleep(100 * time.Millisecond)
	conn.Close()

	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(s.Logs.String(), `"route":"POST /api/v1/orgs/{org}/projects/{project}/analyses"`) {
		if time.Now().After(deadline) {
			t.Fatalf("the interrupted upload was not logged within 10 s:\n%s", s.Logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, line := range strings.Split(s.Logs.String(), "\n") {
		if strings.Contains(line, `projects/{project}/analyses"`) && !strings.Contains(line, `"status":400`) {
			t.Errorf("interrupted upload logged as %s, want status 400", line)
		}
	}
	var list listBody[json.RawMessage]
	s.admin(t).do("GET", "/api/v1/orgs/acme/projects/web/analyses", nil).want(t, http.StatusOK).decode(t, &list)
	if len(list.Items) != 0 {
		t.Fatalf("an interrupted upload left %d analyses", len(list.Items))
	}
}

// A report upload, which extends its own read deadline, may take longer
// than the server's ReadTimeout; a JSON body must arrive within huma's
// body read timeout (5 s).
func TestServeReadTimeoutSparesUploads(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var stdout strings.Builder
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := newServer(ctx, serveConfig{Addr: ln.Addr().String(), DB: "sqlite:" + filepath.Join(dir, "sot.db"),
		AdminPassword: "admin-password-for-tests", LifecycleInterval: -1, ReadTimeout: 500 * time.Millisecond}, &stdout)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	admin := adminTokenFrom(stdout.String())
	addr := ln.Addr().String()
	for _, path := range []string{"/api/v1/orgs", "/api/v1/orgs/acme/projects"} {
		body := map[string]string{"/api/v1/orgs": `{"key":"acme","plan":"team"}`, "/api/v1/orgs/acme/projects": `{"key":"web"}`}[path]
		if st := rawExchange(t, addr, fmt.Sprintf("POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", path, admin, len(body), body)); st != http.StatusCreated {
			t.Fatalf("POST %s: %d", path, st)
		}
	}
	// slowly sends the head, then the body in 10 pieces, one each pause.
	slowly := func(pause time.Duration, head, body string) int {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		io.WriteString(conn, head)
		for i := range 10 {
			time.Sleep(pause)
			if _, err := io.WriteString(conn, body[i*len(body)/10:(i+1)*len(body)/10]); err != nil {
				return 0
			}
		}
		conn.SetReadDeadline(time.Now().Add(garbageTimeout))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	report := strings.Repeat("r", 10_000)
	if st := slowly(150*time.Millisecond, fmt.Sprintf("POST /api/v1/orgs/acme/projects/web/analyses HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n", admin, len(report)), report); st != http.StatusCreated {
		t.Errorf("slow upload: %d, want 201", st)
	}
	project := `{"key":"slow","name":"` + strings.Repeat("n", 100) + `"}`
	if st := slowly(600*time.Millisecond, fmt.Sprintf("POST /api/v1/orgs/acme/projects HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", admin, len(project)), project); st != 0 && st < 400 {
		t.Errorf("slow JSON request: %d, want it cut off (no answer, or a 4xx)", st)
	}
}
