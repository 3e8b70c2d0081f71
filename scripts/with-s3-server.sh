#!/usr/bin/env bash
# Runs a command with a fresh MinIO on loopback, its AUDITEXPORT_TEST_* variables exported,
# and stops the server afterwards whatever the command's outcome.
#   scripts/with-s3-server.sh go test -race ./...
set -euo pipefail
cd "$(dirname "$0")/.."
state=$(mktemp -d "${TMPDIR:-/tmp}/auditexport-s3.XXXXXX")
trap 'scripts/s3-server.sh stop "$state"; rm -rf "$state"' EXIT
scripts/s3-server.sh start "$state"
set -a
# shellcheck source=/dev/null
. "$state/env"
set +a
"$@"
