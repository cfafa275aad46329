package sot_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencyRules checks the layout rules of DESIGN.md with go list:
// the domain imports only the standard library; only internal/store
// imports database drivers; only internal/httpapi imports huma; chromedp
// is for tests only; internal packages do not import one another, apart
// from leaf libraries named in leaves; main wires everything.
func TestDependencyRules(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("no go command on PATH: %v", err)
	}
	const module = "github.com/sot-dev/sot"
	out, err := exec.Command(goBin, "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	leaves := map[string]bool{module + "/internal/password": true}
	only := []struct{ prefix, owner string }{
		{"modernc.org/sqlite", module + "/internal/store"},
		{"github.com/jackc/pgx", module + "/internal/store"},
		{"github.com/jackc/pgxlisten", module + "/internal/store"},
		{"github.com/pressly/goose", module + "/internal/store"},
		{"github.com/danielgtaylor/huma", module + "/internal/httpapi"},
		{"github.com/chromedp", "(tests only)"},
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg, imports := fields[0], fields[1:]
		for _, imp := range imports {
			for _, o := range only {
				if strings.HasPrefix(imp, o.prefix) && pkg != o.owner {
					t.Errorf("%s imports %s: only %s may", pkg, imp, o.owner)
				}
			}
			switch {
			case pkg == module || pkg == module+"/client":
				if strings.Contains(strings.SplitN(imp, "/", 2)[0], ".") {
					t.Errorf("%s imports %s: it must use the standard library only", pkg, imp)
				}
			case strings.HasPrefix(pkg, module+"/internal/"):
				if strings.HasPrefix(imp, module+"/internal/") && !leaves[imp] && !strings.HasPrefix(imp, pkg+"/") {
					t.Errorf("%s imports %s: internal packages are wired together in cmd/sot, not by each other", pkg, imp)
				}
			}
		}
	}
}
