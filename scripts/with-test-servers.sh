#!/usr/bin/env bash
# Runs a command with fresh test servers on loopback, each in its own temporary state directory, their
# AUDITEXPORT_TEST_* variables exported, and stops them afterwards whatever the command's outcome:
#
#   s3        MinIO                  scripts/s3-server.sh   (internal/s3test)
#   pg        PostgreSQL             scripts/pg-server.sh   (internal/pgtest)
#   azurite   Azurite's blob service scripts/azurite.sh     (internal/azuritetest)
#   chromium  no server: AUDITEXPORT_TEST_CHROMIUM, the browser's path (internal/browsertest)
#
#   scripts/with-test-servers.sh go test -race ./...
#   AUDITEXPORT_TEST_SERVERS="s3 pg" scripts/with-test-servers.sh go test ./pkg/   only these
#
# Each start installs what it needs when missing (a cold MinIO build takes minutes; see the README);
# the servers start in parallel. A server that fails to start fails the run before the command.
set -euo pipefail
cd "$(dirname "$0")/.."
servers=${AUDITEXPORT_TEST_SERVERS:-s3 pg azurite chromium}

declare -A script=([s3]=scripts/s3-server.sh [pg]=scripts/pg-server.sh [azurite]=scripts/azurite.sh)
for s in $servers; do
  [ -n "${script[$s]:-}" ] || [ "$s" = chromium ] ||
    { echo "with-test-servers: unknown server '$s' (s3, pg, azurite, chromium)" >&2; exit 2; }
done

state=$(mktemp -d "${TMPDIR:-/tmp}/auditexport-test.XXXXXX")
chmod 755 "$state" # PostgreSQL runs as its own user and must reach $state/pg
cleanup() {
  local s
  wait # for starts still under way (on ^C), so that none comes up after its stop
  for s in "${!script[@]}"; do # in parallel too: MinIO and Azurite take a second or two each
    if [ -d "$state/$s" ]; then "${script[$s]}" stop "$state/$s" & fi
  done
  wait
  rm -rf "$state"
}
trap cleanup EXIT
trap 'exit 130' INT # so that cleanup runs on ^C and kill too
trap 'exit 143' TERM

# Chromium first and alone: it may apt-get install, which must not race pg-server.sh's apt-get.
if [[ " $servers " == *" chromium "* ]]; then
  AUDITEXPORT_TEST_CHROMIUM=$(scripts/chromium.sh install)
  export AUDITEXPORT_TEST_CHROMIUM
fi

declare -A pids=()
for s in $servers; do
  [ "$s" = chromium ] && continue
  "${script[$s]}" start "$state/$s" >"$state/$s.log" 2>&1 &
  pids[$s]=$!
done
failed=
for s in "${!pids[@]}"; do
  if ! wait "${pids[$s]}"; then
    failed+=" $s"
  fi
  cat "$state/$s.log" >&2
done
[ -z "$failed" ] || { echo "with-test-servers: could not start:$failed" >&2; exit 1; }

set -a
for s in "${!pids[@]}"; do
  # shellcheck source=/dev/null
  . "$state/$s/env"
done
set +a
"$@"
