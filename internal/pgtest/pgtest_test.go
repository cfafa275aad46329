package pgtest

import (
	"os/exec"
	"strings"
	"testing"
)

func TestMain(m *testing.M) { Main(m) }

// psql runs one statement on dsn with the server's psql and returns its
// unaligned output.
func psql(t *testing.T, dsn, stmt string) string {
	t.Helper()
	s := current.Load()
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
	psql(t, a, "CREATE TABLE t (x int)")
	if got := psql(t, b, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"); got != "0" {
		t.Fatalf("second database has %s tables, want 0", got)
	}
	if got := psql(t, a, "SELECT current_setting('fsync')"); got != "off" {
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
