// Package pgtest gives tests a real PostgreSQL: one throwaway server per
// test binary, started on first use with initdb into a temporary
// directory, listening on 127.0.0.1 and a Unix socket there, and stopped
// when the binary ends. Each DSN call creates a fresh, empty database.
//
// A test binary that uses it calls Main from TestMain:
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
//
// Without PostgreSQL binaries, DSN skips the test, or fails it when the
// environment sets SOT_TEST_REQUIRE_POSTGRES=1 (as CI does).
//
// The package runs the PostgreSQL tools (initdb, postgres, createdb,
// dropdb) rather than a database driver: only internal/store imports one.
package pgtest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// RequireEnv names the environment variable that turns a missing
// PostgreSQL into a test failure instead of a skip.
const RequireEnv = "SOT_TEST_REQUIRE_POSTGRES"

// superuser is the role initdb creates and the tests connect as.
const superuser = "postgres"

// current is the server of this test binary, set by Main for its
// duration. It is package state because DSN is called from tests that
// only receive a testing.TB.
var current atomic.Pointer[server]

// Main runs the tests of m and then stops the server that DSN may have
// started, and exits with the tests' status.
func Main(m *testing.M) {
	s := &server{}
	current.Store(s)
	code := m.Run()
	s.stop()
	current.Store(nil)
	os.Exit(code)
}

// DSN returns the URL of a new, empty database on the test server,
// starting the server on first use. The database is dropped when t ends.
func DSN(t testing.TB) string {
	t.Helper()
	s := current.Load()
	if s == nil {
		t.Fatal("pgtest: call pgtest.Main(m) from TestMain to use pgtest.DSN")
	}
	s.once.Do(s.start)
	return s.dsn(t)
}

// Server is a PostgreSQL server of one test, for tests that stop and
// start it: the shared server of DSN stays up for the other tests.
type Server struct{ s *server }

// Start starts a server for t alone and removes it when t ends. Like DSN
// it skips t when PostgreSQL is not available.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &server{}
	s.once.Do(s.start)
	t.Cleanup(s.stop)
	s.check(t)
	return &Server{s: s}
}

// DSN returns the URL of a new, empty database on the server, dropped
// when t ends.
func (p *Server) DSN(t testing.TB) string {
	t.Helper()
	return p.s.dsn(t)
}

// Stop shuts the server down as an operator's restart does (fast
// shutdown: every session is ended), keeping its data.
func (p *Server) Stop(t testing.TB) {
	t.Helper()
	p.s.halt()
}

// Start starts the stopped server again on the same port and data, so
// that DSNs stay valid.
func (p *Server) Start(t testing.TB) {
	t.Helper()
	if err := p.s.run(filepath.Join(p.s.dir, "data"), p.s.port); err != nil {
		t.Fatalf("pgtest: restart: %v", err)
	}
}

// check skips t when this machine cannot run PostgreSQL (unless the
// environment requires it) and fails t when the server did not start.
func (s *server) check(t testing.TB) {
	t.Helper()
	if s.err != nil {
		var u *unavailableError
		if errors.As(s.err, &u) && os.Getenv(RequireEnv) != "1" {
			t.Skipf("pgtest: %v (set %s=1 to fail instead)", s.err, RequireEnv)
		}
		t.Fatalf("pgtest: %v", s.err)
	}
}

// dsn creates a database for t on the started server s.
func (s *server) dsn(t testing.TB) string {
	t.Helper()
	s.check(t)
	name := fmt.Sprintf("test_%d_%d", os.Getpid(), s.seq.Add(1))
	if err := s.tool("createdb", name); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		if s.cmd == nil {
			return // the test stopped the server; stop removes the data
		}
		if err := s.tool("dropdb", "--force", name); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", superuser, s.port, name)
}

// unavailableError says that this machine cannot run PostgreSQL, as
// opposed to a server that failed to start.
type unavailableError struct{ reason string }

func (e *unavailableError) Error() string { return "PostgreSQL is not available: " + e.reason }

type server struct {
	once sync.Once
	err  error
	seq  atomic.Int64

	bin  string // directory of the PostgreSQL binaries
	dir  string // temporary directory: data, socket, log
	port int
	cred *syscall.Credential // when running as root: the postgres user
	cmd  *exec.Cmd
	done chan struct{}
}

func (s *server) start() {
	s.err = s.startServer()
	if s.err != nil {
		s.stop()
	}
}

func (s *server) startServer() error {
	bin, err := findBinaries()
	if err != nil {
		return err
	}
	s.bin = bin
	removeStale()
	if s.dir, err = os.MkdirTemp("", "pgtest-"); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(s.dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return err
	}
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root.
		u, err := user.Lookup("postgres")
		if err != nil {
			return &unavailableError{reason: "running as root and there is no postgres user to run the server as"}
		}
		uid, _ := strconv.ParseUint(u.Uid, 10, 32)
		gid, _ := strconv.ParseUint(u.Gid, 10, 32)
		s.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(s.dir, int(uid), int(gid)); err != nil {
			return err
		}
	}
	data := filepath.Join(s.dir, "data")
	if out, err := s.command("initdb", "-D", data, "-U", superuser, "-A", "trust", "-E", "UTF8", "--no-locale", "--no-sync").CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %w: %s", err, lastLines(out))
	}
	// A free port can be taken between choosing and binding it: retry.
	for attempt := 0; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return err
		}
		err = s.run(data, port)
		if err == nil || attempt == 2 {
			return err
		}
	}
}

// run starts postgres as a child process on port and waits until it
// accepts connections. The child gets SIGQUIT (immediate shutdown) if
// this process dies without calling stop, so no server outlives its tests.
func (s *server) run(data string, port int) error {
	s.port = port
	logPath := filepath.Join(s.dir, "postgres.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := s.command("postgres", "-D", data, "-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="+s.dir,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=300", "-c", "shared_buffers=32MB")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	dieWithParent(cmd.SysProcAttr)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	s.cmd = cmd
	s.done = make(chan struct{})
	go func() {
		cmd.Wait()
		close(s.done)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			s.cmd = nil
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("postgres exited while starting: %s", lastLines(log))
		case <-time.After(50 * time.Millisecond):
		}
		if s.command("pg_isready", "-q", "-h", s.dir, "-p", strconv.Itoa(port)).Run() == nil {
			return nil
		}
	}
	return errors.New("postgres did not accept connections within 30s")
}

// ownerFile holds the PID of the test binary that owns a server directory.
const ownerFile = "owner.pid"

// removeStale deletes the directories of servers whose test binary died
// without running stop (a test timeout panics past TestMain); their
// servers are already gone, killed with their parent.
func removeStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "pgtest-*"))
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, ownerFile))
		if err != nil {
			continue // being created, or not ours
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 {
			continue
		}
		if syscall.Kill(pid, 0) == syscall.ESRCH {
			os.RemoveAll(d)
		}
	}
}

// stop shuts the server down and removes its files.
func (s *server) stop() {
	s.halt()
	if s.dir != "" {
		os.RemoveAll(s.dir)
		s.dir = ""
	}
}

// halt shuts the server down, keeping its files.
func (s *server) halt() {
	if s.cmd != nil {
		s.cmd.Process.Signal(syscall.SIGINT) // fast shutdown: ends sessions, no wait for clients
		select {
		case <-s.done:
		case <-time.After(20 * time.Second):
			s.cmd.Process.Kill()
			<-s.done
		}
		s.cmd = nil
	}
}

// tool runs a client program (createdb, dropdb) against the server.
func (s *server) tool(name string, args ...string) error {
	args = append([]string{"-h", s.dir, "-p", strconv.Itoa(s.port), "-U", superuser}, args...)
	if out, err := s.command(name, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %w: %s", name, err, lastLines(out))
	}
	return nil
}

// command returns a PostgreSQL program run as the server's user, in the
// server's directory (the test's own may be unreadable to that user).
func (s *server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(s.bin, name), args...)
	cmd.Dir = s.dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	return cmd
}

// findBinaries returns the directory of initdb and postgres: from PATH,
// pg_config --bindir, or the newest /usr/lib/postgresql/*/bin.
func findBinaries() (string, error) {
	var dirs []string
	if p, err := exec.LookPath("initdb"); err == nil {
		dirs = append(dirs, filepath.Dir(p))
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		dirs = append(dirs, strings.TrimSpace(string(out)))
	}
	found, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(found, func(a, b string) int { return versionOf(b) - versionOf(a) })
	dirs = append(dirs, found...)
	for _, d := range dirs {
		if executable(filepath.Join(d, "initdb")) && executable(filepath.Join(d, "postgres")) && executable(filepath.Join(d, "createdb")) {
			return d, nil
		}
	}
	return "", &unavailableError{reason: "no initdb and postgres on PATH, from pg_config --bindir, or in /usr/lib/postgresql/*/bin (install postgresql)"}
}

func versionOf(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

func executable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// lastLines returns the end of a tool's output, on one line.
func lastLines(out []byte) string {
	lines := bytes.Split(bytes.TrimSpace(out), []byte("\n"))
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return string(bytes.Join(lines, []byte(" | ")))
}
