#!/usr/bin/env bash
# Runs every Go fuzz target in the module for $FUZZTIME each (default 5s).
#
# Each package with fuzz targets is compiled once, with the fuzzing instrumentation, and its test
# binary then runs the targets one after another: `go test -fuzz` per target would link the
# binary again for each one, and listing the targets with `go test -list` compiled every test
# package of the module a second time.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-5s}
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
cache=$(go env GOCACHE)/fuzz # where `go test -fuzz` keeps what it finds, per package
found=0
for dir in $(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do
  pkg=$(go list "$dir")
  test=$bin/$(echo "$pkg" | tr / _).test
  echo "compile $pkg with fuzzing instrumentation"
  go test -c -fuzz=. -o "$test" "$dir"
  for target in $(cd "$dir" && "$test" -test.list '^Fuzz'); do
    found=$((found + 1))
    echo "fuzz $pkg $target ($fuzztime)"
    # In the package's directory, as go test runs it: the seed corpus is testdata/fuzz/<target>.
    set +e
    (cd "$dir" && "$test" -test.run='^$' -test.fuzz="^${target}\$" -test.fuzztime="$fuzztime" \
      -test.fuzzcachedir="$cache/$pkg" -test.paniconexit0) 2>&1 | tee "$bin/log"
    status=${PIPESTATUS[0]}
    set -e
    if [ "$status" -ne 0 ]; then
      # Go 1.26's coordinator can report its own -fuzztime deadline as a failure when the machine
      # is busy (go.dev/issue/75804, fixed in Go 1.27): no input failed, none was written.
      if grep -q 'Failing input written' "$bin/log" || ! grep -qx '    context deadline exceeded' "$bin/log"; then
        exit "$status"
      fi
      echo "fuzz: $target ended on Go's fuzztime deadline race (go.dev/issue/75804), no failing input: not a finding" >&2
    fi
  done
done
if [ "$found" -eq 0 ]; then
  echo "no fuzz targets found" >&2
  exit 1
fi
echo "fuzzed $found targets"
