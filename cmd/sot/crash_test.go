//go:build unix

package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sot-dev/sot/internal/pgtest"
)

// TestCrashSafety runs "sot serve" as a child process, writes to it from 8
// concurrent clients, kills it with SIGKILL at random moments and restarts
// it on the same database, then proves that every write the server
// acknowledged survived: projects exist, reports have their SHA-256, token
// secrets authenticate, and acknowledged revocations still refuse. A write
// that got no answer may or may not have happened, and is not checked.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: not in -short")
	}
	bin := e2eBinary(t)
	dbs := []struct {
		name string
		dsn  func(t *testing.T) string
	}{
		{"sqlite", func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "sot.db") }},
		{"postgres", func(t *testing.T) string { return pgtest.DSN(t) }},
	}
	for _, db := range dbs {
		t.Run(db.name, func(t *testing.T) {
			runCrashStory(t, bin, db.dsn(t))
		})
	}
}

// crashWriters is the number of concurrent writers; crashKills the number
// of SIGKILLs.
const (
	crashWriters = 8
	crashKills   = 4
)

// crashLedger is what the server acknowledged.
type crashLedger struct {
	mu       sync.Mutex
	projects []string
	tokens   map[int64]string // id → secret, of acknowledged creations
	revoked  map[int64]bool   // acknowledged revocations
	unsure   map[int64]bool   // revocations sent but not acknowledged
	reports  map[int64]crashReport
	acked    int
}

type crashReport struct {
	project string
	sha256  string
	size    int
}

func runCrashStory(t *testing.T, bin, dsn string) {
	port := crashFreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	base := "http://" + addr
	child := startCrashChild(t, bin, addr, dsn)
	if child.adminToken == "" {
		t.Fatalf("first start printed no admin token:\n%s", child.stdout.String())
	}
	admin := child.adminToken
	hc := &http.Client{Timeout: 10 * time.Second}
	if st, body := crashDo(hc, base, admin, "POST", "/api/v1/orgs", jsonBody(t, map[string]any{"key": "crash", "name": "Crash", "plan": "team"})); st != http.StatusCreated {
		t.Fatalf("create org: %d %s", st, body)
	}
	for i := range crashWriters {
		if st, body := crashDo(hc, base, admin, "POST", "/api/v1/orgs/crash/projects", jsonBody(t, map[string]any{"key": fmt.Sprintf("up-%d", i)})); st != http.StatusCreated {
			t.Fatalf("create project: %d %s", st, body)
		}
	}

	led := &crashLedger{tokens: map[int64]string{}, revoked: map[int64]bool{}, unsure: map[int64]bool{}, reports: map[int64]crashReport{}}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range crashWriters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			crashWriter(ctx, w, base, admin, led)
		}()
	}
	for range crashKills {
		time.Sleep(time.Duration(300+mrand.IntN(1200)) * time.Millisecond)
		child.kill(t)
		child = startCrashChild(t, bin, addr, dsn)
	}
	time.Sleep(500 * time.Millisecond)
	stop()
	wg.Wait()
	// One more crash with nothing in flight, then check on a fresh start.
	child.kill(t)
	startCrashChild(t, bin, addr, dsn)

	led.mu.Lock()
	defer led.mu.Unlock()
	if len(led.projects) == 0 || len(led.tokens) == 0 || len(led.revoked) == 0 || len(led.reports) == 0 {
		t.Fatalf("a kind of write was never acknowledged: the story tested little (%d projects, %d tokens, %d revoked, %d reports)",
			len(led.projects), len(led.tokens), len(led.revoked), len(led.reports))
	}
	t.Logf("%d acknowledged writes: %d projects, %d tokens (%d revoked), %d reports", led.acked,
		len(led.projects), len(led.tokens), len(led.revoked), len(led.reports))
	for _, p := range led.projects {
		if st, body := crashDo(hc, base, admin, "GET", "/api/v1/orgs/crash/projects/"+p, nil); st != http.StatusOK {
			t.Errorf("acknowledged project %s: %d %s", p, st, body)
		}
	}
	for id, secret := range led.tokens {
		want := http.StatusNoContent
		switch {
		case led.revoked[id]:
			want = http.StatusUnauthorized
		case led.unsure[id]:
			continue
		}
		if st, body := crashDo(hc, base, secret, "GET", "/api/v1/check?org=crash&project=up-0&permission=scan", nil); st != want {
			t.Errorf("token %d (revoked %v): check %d, want %d: %s", id, led.revoked[id], st, want, body)
		}
	}
	for id, r := range led.reports {
		st, body := crashDo(hc, base, admin, "GET", "/api/v1/orgs/crash/projects/"+r.project+fmt.Sprintf("/analyses/%d/report", id), nil)
		sum := sha256.Sum256(body)
		if st != http.StatusOK || hex.EncodeToString(sum[:]) != r.sha256 || len(body) != r.size {
			t.Errorf("report %d: %d, %d bytes, sha256 %x; want 200, %d bytes, %s", id, st, len(body), sum, r.size, r.sha256)
		}
	}
}

// crashWriter writes until ctx is done, recording what was acknowledged.
// Errors are expected (the server dies under it): it waits a moment and
// goes on.
func crashWriter(ctx context.Context, w int, base, admin string, led *crashLedger) {
	hc := &http.Client{Timeout: 5 * time.Second}
	rng := mrand.New(mrand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
	for n := 0; ctx.Err() == nil; n++ {
		switch op := rng.IntN(4); op {
		case 0:
			key := fmt.Sprintf("w%d-p%d", w, n)
			if st, _ := crashDo(hc, base, admin, "POST", "/api/v1/orgs/crash/projects", mustJSON(map[string]any{"key": key})); st == http.StatusCreated {
				led.mu.Lock()
				led.projects = append(led.projects, key)
				led.acked++
				led.mu.Unlock()
				continue
			}
		case 1:
			st, body := crashDo(hc, base, admin, "POST", "/api/v1/orgs/crash/tokens", mustJSON(map[string]any{
				"name": fmt.Sprintf("w%d-t%d", w, n), "scope": map[string]any{"all_projects": true},
				"permissions": []string{"scan"}, "expires_in": "30d"}))
			var out createdTokenBody
			if st == http.StatusCreated && json.Unmarshal(body, &out) == nil && out.Secret != "" {
				led.mu.Lock()
				led.tokens[out.Token.ID] = out.Secret
				led.acked++
				led.mu.Unlock()
				continue
			}
		case 2:
			led.mu.Lock()
			var id int64
			for k := range led.tokens {
				if !led.revoked[k] && !led.unsure[k] {
					id = k
					break
				}
			}
			if id != 0 {
				led.unsure[id] = true
			}
			led.mu.Unlock()
			if id == 0 {
				continue
			}
			st, _ := crashDo(hc, base, admin, "DELETE", fmt.Sprintf("/api/v1/orgs/crash/tokens/%d", id), nil)
			if st == http.StatusNoContent {
				led.mu.Lock()
				delete(led.unsure, id)
				led.revoked[id] = true
				led.acked++
				led.mu.Unlock()
				continue
			}
		case 3:
			data := make([]byte, 1+rng.IntN(256<<10))
			rand.Read(data)
			sum := sha256.Sum256(data)
			project := fmt.Sprintf("up-%d", w)
			st, body := crashDo(hc, base, admin, "POST", "/api/v1/orgs/crash/projects/"+project+"/analyses?branch=main", data)
			var out struct {
				ID     int64  `json:"id"`
				SHA256 string `json:"sha256"`
			}
			if st == http.StatusCreated && json.Unmarshal(body, &out) == nil && out.ID != 0 {
				led.mu.Lock()
				led.reports[out.ID] = crashReport{project: project, sha256: hex.EncodeToString(sum[:]), size: len(data)}
				led.acked++
				led.mu.Unlock()
				continue
			}
		}
		// No acknowledgement: the server is probably down.
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// crashDo sends a request and returns the status and body; status 0 when
// no complete response arrived.
func crashDo(hc *http.Client, base, token, method, path string, body []byte) (int, []byte) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, base+path, rd)
	if err != nil {
		return 0, nil
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil && !strings.Contains(path, "/analyses") {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil
	}
	return resp.StatusCode, b
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func jsonBody(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// crashChild is a running "sot serve".
type crashChild struct {
	cmd        *exec.Cmd
	stdout     *bytes.Buffer
	stderr     *syncBuffer
	adminToken string
	done       chan struct{}
}

// startCrashChild starts sot serve on addr and waits until it is ready.
func startCrashChild(t *testing.T, bin, addr, dsn string) *crashChild {
	t.Helper()
	c := &crashChild{stdout: &bytes.Buffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	c.cmd = exec.Command(bin, "serve", "--addr", addr, "--db", dsn,
		"--lifecycle-interval=1h", "--auth-failure-limit=-1")
	c.cmd.Env = append(os.Environ(), "SOT_ADMIN_PASSWORD=admin-password-for-tests")
	c.cmd.Stdout, c.cmd.Stderr = c.stdout, c.stderr
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { c.cmd.Wait(); close(c.done) }()
	t.Cleanup(func() { c.kill(t) })
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-c.done:
			t.Fatalf("sot serve exited: %v\n%s", c.cmd.ProcessState, c.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("sot serve not ready within 30 s\n%s", c.stderr.String())
		}
	}
	// Stdout is complete once the server listens: the admin lines are
	// written before.
	sc := bufio.NewScanner(bytes.NewReader(c.stdout.Bytes()))
	for sc.Scan() {
		if tok, ok := strings.CutPrefix(sc.Text(), "admin token: "); ok {
			c.adminToken = tok
		}
	}
	return c
}

// kill sends SIGKILL and waits for the process to be gone. Idempotent.
func (c *crashChild) kill(t *testing.T) {
	select {
	case <-c.done:
		return
	default:
	}
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Logf("kill: %v", err)
	}
	<-c.done
}

// crashFreePort returns a port free on 127.0.0.1 now; each restart of the
// child listens on it again.
func crashFreePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
