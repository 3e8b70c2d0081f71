#!/usr/bin/env bash
# Runs a command with a fresh MinIO on loopback alone (see with-test-servers.sh, which starts every
# test server), its AUDITEXPORT_TEST_* variables exported, and stops it afterwards.
#   scripts/with-s3-server.sh go test -race ./...
AUDITEXPORT_TEST_SERVERS=s3 exec "$(dirname "$0")/with-test-servers.sh" "$@"
