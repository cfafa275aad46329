package pgtest

import (
	"os/exec"
	"strings"
	"testing"
)

func TestMain(m *testing.M) { Main(m) }

// psql runs one statement on dsn with the psql of server s and returns
// its unaligned output.
func psql(t *testing.T, s *server, dsn, stmt string) string {
	t.Helper()
	out, err := s.command("psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-c", stmt).CombinedOutput()
	if err != nil {
		t.Fatalf("psql %q: %v: %s", stmt, err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestDSNGivesFreshDatabases(t *testing.T) {
	a, b := DSN(t), DSN(t)
	if a == b {
		t.Fatalf("two calls returned the same DSN %s", a)
	}
	if !strings.HasPrefix(a, "postgres://postgres@127.0.0.1:") {
		t.Fatalf("DSN %s is not on 127.0.0.1", a)
	}
	psql(t, current.Load(), a, "CREATE TABLE t (x int)")
	if got := psql(t, current.Load(), b, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"); got != "0" {
		t.Fatalf("second database has %s tables, want 0", got)
	}
	if got := psql(t, current.Load(), a, "SELECT current_setting('fsync')"); got != "off" {
		t.Fatalf("fsync = %s", got)
	}
}

func TestFindBinaries(t *testing.T) {
	dir, err := findBinaries()
	if err != nil {
		if _, lookErr := exec.LookPath("psql"); lookErr == nil {
			t.Fatalf("psql is installed but findBinaries failed: %v", err)
		}
		t.Skip(err)
	}
	if !executable(dir + "/pg_isready") {
		t.Fatalf("%s has no pg_isready", dir)
	}
}

func TestServerRestartKeepsData(t *testing.T) {
	p := Start(t)
	dsn := p.DSN(t)
	psql(t, p.s, dsn, "CREATE TABLE t (x int); INSERT INTO t VALUES (42)")
	p.Stop(t)
	if out, err := p.s.command("psql", "-X", "-At", "-d", dsn, "-c", "SELECT 1").CombinedOutput(); err == nil {
		t.Fatalf("psql succeeded on a stopped server: %s", out)
	}
	p.Start(t)
	if got := psql(t, p.s, dsn, "SELECT x FROM t"); got != "42" {
		t.Fatalf("after restart: %q, want 42", got)
	}
}
