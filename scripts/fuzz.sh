#!/usr/bin/env bash
# Runs every native Go fuzz target of the module, one after the other, for
# SECONDS each (default 60). A failing input is written under the package's
# testdata/fuzz/<FuzzName>/ by go test: commit it with the fix, and it stays
# a regression test of plain `go test`.
#
#   scripts/fuzz.sh        # a minute per target
#   scripts/fuzz.sh 5      # a smoke run (CI)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
case $secs in ''|*[!0-9]*) echo "usage: $0 [seconds]" >&2; exit 2;; esac

log=$(mktemp)
trap 'rm -f "$log"' EXIT
fail=0
n=0
for pkg in $(go list ./...); do
  # go test -list prints the matching names, then "ok <pkg>".
  for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    n=$((n + 1))
    echo "fuzz: $pkg $target (${secs}s)"
    # One worker: the machine is shared, and a longer run finds more than
    # more workers would.
    if ! go test "$pkg" -run '^$' -fuzz "^${target}\$" -fuzztime "${secs}s" -parallel 1 >"$log" 2>&1; then
      cat "$log"
      echo "fuzz: $target FAILED"
      fail=1
    fi
  done
done
if [ "$n" -eq 0 ]; then echo "fuzz: no targets found" >&2; exit 1; fi
echo "fuzz: $n targets, ${secs}s each"
exit $fail
