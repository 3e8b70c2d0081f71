#!/usr/bin/env bash
# Installs, when missing, everything the tests run against, in three parallel lanes so a cold machine
# waits for the slowest lane, not the sum:
#   build  MinIO and mc from source                    scripts/s3-server.sh install  (CPU)
#   npm    DuckDB's Node.js client, then Azurite       scripts/duckdb.sh, azurite.sh (network)
#   apt    PostgreSQL, then Chromium                   scripts/pg-server.sh, chromium.sh (one at a
#          time: apt-get takes a lock)
# Each lane's output is printed when it ends; any lane failing fails the whole.
set -euo pipefail
cd "$(dirname "$0")/.."
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

lane() { # lane NAME CMD...: run CMD in the background, output to the lane's log
  local name=$1
  shift
  (
    start=$SECONDS
    "$@"
    echo "install-test-servers: $name done in $((SECONDS - start)) s"
  ) >"$logs/$name" 2>&1 &
  pids[$name]=$!
}

declare -A pids=()
lane build scripts/s3-server.sh install
lane npm bash -c 'scripts/duckdb.sh install && scripts/azurite.sh install'
lane apt bash -c 'scripts/pg-server.sh install && scripts/chromium.sh install'

failed=
for name in "${!pids[@]}"; do
  wait "${pids[$name]}" || failed+=" $name"
  cat "$logs/$name"
done
[ -z "$failed" ] || { echo "install-test-servers: failed:$failed" >&2; exit 1; }
