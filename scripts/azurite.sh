#!/usr/bin/env bash
# Azurite, Microsoft's Azure Storage emulator (the npm package), on loopback for the ADLS tests: its
# blob service, which ADLS Gen2 accounts serve beside the dfs one.
#
#   scripts/azurite.sh install     install the pinned azurite once into $(go env GOPATH)/bin/azurite-<version>;
#                                  print that directory
#   scripts/azurite.sh start DIR   start the blob service on a free 127.0.0.1 port with data under DIR; write DIR/env
#   scripts/azurite.sh stop DIR    stop it
#
# DIR/env holds the AUDITEXPORT_TEST_AZURITE_* variables the tests read (see internal/azuritetest): the
# blob endpoint (http://127.0.0.1:PORT/devstoreaccount1, path-style as Azurite serves accounts) and the
# well-known development account devstoreaccount1 and its key, which Microsoft publishes for emulators.
#
# Version: 3.35.0 is the newest Azurite that runs on the machine's Node.js 20 (3.36 needs 21, 3.37 22).
# Flags: --skipApiVersionCheck, so the newest azblob SDK's x-ms-version is accepted; no --loose, so a
# header or parameter Azurite does not support fails the test instead of being silently ignored (a
# test that needs it must say so); --disableTelemetry, since the machine has no internet.
set -euo pipefail

AZURITE_VERSION=3.35.0
ROOT=$(go env GOPATH)/bin/azurite-$AZURITE_VERSION
AZURITE_BIN=$ROOT/node_modules/.bin/azurite-blob
ACCOUNT=devstoreaccount1
ACCOUNT_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='

log() { echo "azurite: $*" >&2; }
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

install() {
  if [ ! -x "$AZURITE_BIN" ]; then
    command -v npm >/dev/null || { log "npm is missing (apt-get install nodejs npm)"; return 1; }
    log "installing azurite@$AZURITE_VERSION (once; cached in $ROOT)"
    mkdir -p "$(dirname "$ROOT")"
    local tmp
    tmp=$(mktemp -d "$ROOT.XXXXXX") # beside the target, so the final mv is atomic
    if ! npm install --prefix "$tmp" --no-audit --no-fund --loglevel=error "azurite@$AZURITE_VERSION" >&2; then
      rm -rf "$tmp"
      return 1
    fi
    rm -rf "$ROOT"
    mv "$tmp" "$ROOT"
  fi
  echo "$ROOT"
}

start() {
  local dir=${1:?usage: azurite.sh start DIR}
  install >/dev/null
  stop "$dir" 2>/dev/null || true
  rm -rf "$dir"
  mkdir -p "$dir/data"
  dir=$(cd "$dir" && pwd)
  local port
  launch() {
    # Without AZURITE_ACCOUNTS, which would replace the well-known account.
    exec env -u AZURITE_ACCOUNTS nohup "$AZURITE_BIN" --blobHost 127.0.0.1 --blobPort "$1" --location "$dir/data" \
      --skipApiVersionCheck --disableTelemetry --silent >"$dir/azurite.log" 2>&1
  }
  ready() { http_answers "http://127.0.0.1:$1/$ACCOUNT?comp=list"; }
  port=$(start_on_free_port Azurite "$dir/azurite.log" "$dir/pid" launch ready)
  cat >"$dir/env" <<ENV
AUDITEXPORT_TEST_AZURITE_BLOB_ENDPOINT=http://127.0.0.1:$port/$ACCOUNT
AUDITEXPORT_TEST_AZURITE_ACCOUNT=$ACCOUNT
AUDITEXPORT_TEST_AZURITE_KEY=$ACCOUNT_KEY
ENV
  log "Azurite blob service listening on 127.0.0.1:$port (pid $(cat "$dir/pid")); environment in $dir/env"
}

stop() {
  stop_pid "${1:?usage: azurite.sh stop DIR}/pid"
}

case "${1:-}" in
  install) install ;;
  start) start "${2:-}" ;;
  stop) stop "${2:-}" ;;
  *) echo "usage: $0 install | start DIR | stop DIR" >&2; exit 2 ;;
esac
