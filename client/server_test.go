package client_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sot-dev/sot/client"
)

// The client is tested against the real server: the sot binary, built once
// per test run from ./cmd/sot and started per test on a fresh SQLite file.
// Building it (rather than importing the server) keeps the client free of
// any dependency on the server's packages.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	buildDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// sotBinary builds ./cmd/sot once and returns its path.
func sotBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "sot-client-test-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(buildDir, "sot")
		cmd := exec.Command("go", "build", "-o", binPath, "github.com/sot-dev/sot/cmd/sot")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/sot: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// server is a running sot server.
type server struct {
	URL        string
	AdminToken string
}

var adminTokenRE = regexp.MustCompile(`(?m)^admin token: (sotu_[0-9A-Za-z]+)\s*$`)

// startServer starts sot serve on a free port of 127.0.0.1 with a new
// SQLite database, and stops it when the test ends.
func startServer(t *testing.T) *server {
	t.Helper()
	bin := sotBinary(t)
	dir := t.TempDir()
	addr := freeAddr(t)
	cmd := exec.Command(bin, "serve", "--addr", addr, "--db", "sqlite:"+filepath.Join(dir, "sot.db"))
	cmd.Env = append(os.Environ(), "SOT_ADMIN_PASSWORD=correct-horse-battery")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := os.Create(filepath.Join(dir, "stderr.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		stderr.Close()
		if t.Failed() {
			b, _ := os.ReadFile(stderr.Name())
			t.Logf("server log:\n%s", b)
		}
	})
	tokenc := make(chan string, 1)
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		sent := false
		for sc.Scan() {
			if m := adminTokenRE.FindStringSubmatch(sc.Text()); m != nil && !sent {
				tokenc <- m[1]
				sent = true
			}
		}
		cmd.Wait()
	}()
	s := &server{URL: "http://" + addr}
	select {
	case s.AdminToken = <-tokenc:
	case <-done:
		t.Fatal("sot serve exited before printing the admin token")
	case <-time.After(30 * time.Second):
		t.Fatal("sot serve printed no admin token within 30s")
	}
	waitReady(t, s.URL)
	return s
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitReady(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s/readyz not ready within 20s", url)
}

// newClient returns a client of s with token.
func newClient(t *testing.T, s *server, token string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(s.URL, token, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// fixture is an organization "acme" (team plan) with projects, made by the
// instance admin.
func fixture(t *testing.T, s *server, projects ...string) *client.Client {
	t.Helper()
	ctx := context.Background()
	admin := newClient(t, s, s.AdminToken)
	if _, err := admin.CreateOrg(ctx, client.CreateOrgRequest{Key: "acme", Name: "Acme", Plan: client.PlanTeam}); err != nil {
		t.Fatal(err)
	}
	for _, p := range projects {
		if _, err := admin.CreateProject(ctx, "acme", client.CreateProjectRequest{Key: p, Name: strings.ToUpper(p)}); err != nil {
			t.Fatal(err)
		}
	}
	return admin
}

// orgToken creates a token of acme and returns a client using it.
func orgToken(t *testing.T, s *server, admin *client.Client, scope client.Scope, perms ...string) (*client.NewToken, *client.Client) {
	t.Helper()
	nt, err := admin.CreateToken(context.Background(), "acme", client.CreateTokenRequest{
		Name: "ci", Scope: scope, Permissions: perms, Expiry: client.Expiry{In: "30d"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return nt, newClient(t, s, nt.Secret)
}
