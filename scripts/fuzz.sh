#!/usr/bin/env bash
# Runs every native Go fuzz target of the module, one after the other, for
# a budget each: SECONDS (default 60), or a count of executions such as
# 3000x. A failing input is written under the package's
# testdata/fuzz/<FuzzName>/ by go test: commit it with the fix, and it stays
# a regression test of plain `go test`.
#
#   scripts/fuzz.sh          # a minute per target
#   scripts/fuzz.sh 3000x    # a smoke run (CI)
#
# A time budget can end in a spurious "context deadline exceeded" with no
# failing input on a loaded machine: a race in Go 1.26's fuzz coordinator
# (fixed in Go 1.27). A count budget has no deadline to race, so CI uses one.
set -euo pipefail
cd "$(dirname "$0")/.."
budget=${1:-60}
case $budget in
  *[!0-9x]* | '' | x* | *x*x* | *x?*) echo "usage: $0 [seconds | Nx]" >&2; exit 2 ;;
  *x) ;;
  *) budget=${budget}s ;;
esac

log=$(mktemp)
trap 'rm -f "$log"' EXIT
fail=0
n=0
for pkg in $(go list ./...); do
  # go test -list prints the matching names, then "ok <pkg>".
  for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    n=$((n + 1))
    echo "fuzz: $pkg $target ($budget)"
    # One worker: the machine is shared, and a longer run finds more than
    # more workers would.
    if ! go test "$pkg" -run '^$' -fuzz "^${target}\$" -fuzztime "$budget" -parallel 1 >"$log" 2>&1; then
      cat "$log"
      echo "fuzz: $target FAILED"
      fail=1
    fi
  done
done
if [ "$n" -eq 0 ]; then echo "fuzz: no targets found" >&2; exit 1; fi
echo "fuzz: $n targets, $budget each"
exit $fail
