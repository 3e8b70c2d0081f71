#!/usr/bin/env bash
# A real S3 server (MinIO) on loopback for the tests.
#
#   scripts/s3-server.sh install        build pinned minio and mc once, cached in $(go env GOPATH)/bin
#   scripts/s3-server.sh start DIR      start MinIO on a free 127.0.0.1 port with data under DIR,
#                                       create a bucket and a PutObject-only user, write DIR/env
#   scripts/s3-server.sh stop DIR       stop it
#
# DIR/env holds the AUDITEXPORT_TEST_* variables the tests read (see internal/s3test).
set -euo pipefail

MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c # MinIO's last source release
MC_VERSION=v0.0.0-20250313080218-cf909e1063a9
BIN_DIR=$(go env GOPATH)/bin
MINIO_BIN=$BIN_DIR/minio-$MINIO_VERSION
MC_BIN=$BIN_DIR/mc-$MC_VERSION

log() { echo "s3-server: $*" >&2; }
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

install_one() { # install_one MODULE VERSION TARGET NAME
  local module=$1 version=$2 target=$3 name=$4
  [ -x "$target" ] && return 0
  log "building $module@$version (once; cached as $target)"
  local tmp
  tmp=$(mktemp -d)
  GOBIN=$tmp GOFLAGS=-mod=mod go install "$module@$version"
  mkdir -p "$BIN_DIR"
  mv "$tmp/$name" "$target"
  rm -rf "$tmp"
}

install() {
  install_one github.com/minio/minio "$MINIO_VERSION" "$MINIO_BIN" minio
  install_one github.com/minio/mc "$MC_VERSION" "$MC_BIN" mc
}

start() {
  local dir=${1:?usage: s3-server.sh start DIR}
  install
  stop "$dir" 2>/dev/null || true
  rm -rf "$dir"
  mkdir -p "$dir/data" "$dir/mc"
  dir=$(cd "$dir" && pwd)
  local user=auditexport-root password
  password=$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 24)
  # MinIO's built-in single-key KMS, so SSE-S3 and SSE-KMS (with this key id) work as on AWS.
  local kms_key=auditexport-test-key kms_secret
  kms_secret=$(head -c 32 /dev/urandom | base64)
  local port
  launch() {
    MINIO_ROOT_USER=$user MINIO_ROOT_PASSWORD=$password MINIO_BROWSER=off MINIO_UPDATE=off \
      MINIO_KMS_SECRET_KEY="$kms_key:$kms_secret" exec nohup "$MINIO_BIN" server --quiet \
      --address "127.0.0.1:$1" --console-address "127.0.0.1:$(free_port)" "$dir/data" >"$dir/minio.log" 2>&1
  }
  ready() { curl -fsS "http://127.0.0.1:$1/minio/health/live"; }
  port=$(start_on_free_port MinIO "$dir/minio.log" "$dir/pid" launch ready)

  local mc=("$MC_BIN" --config-dir "$dir/mc" --quiet --no-color)
  "${mc[@]}" alias set auditexport "http://127.0.0.1:$port" "$user" "$password" >/dev/null
  "${mc[@]}" mb auditexport/auditexport-test >/dev/null
  local putonly_key=putonly-user putonly_secret
  putonly_secret=$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 24)
  cat >"$dir/putonly-policy.json" <<POLICY
{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:PutObject"],"Resource":["arn:aws:s3:::auditexport-test/*"]}]}
POLICY
  "${mc[@]}" admin policy create auditexport putonly-auditexport-test "$dir/putonly-policy.json" >/dev/null
  "${mc[@]}" admin user add auditexport "$putonly_key" "$putonly_secret" >/dev/null
  "${mc[@]}" admin policy attach auditexport putonly-auditexport-test --user "$putonly_key" >/dev/null

  cat >"$dir/env" <<ENV
AUDITEXPORT_TEST_S3_ENDPOINT=http://127.0.0.1:$port
AUDITEXPORT_TEST_S3_ROOT_USER=$user
AUDITEXPORT_TEST_S3_ROOT_PASSWORD=$password
AUDITEXPORT_TEST_S3_BUCKET=auditexport-test
AUDITEXPORT_TEST_S3_PUTONLY_ACCESS_KEY=$putonly_key
AUDITEXPORT_TEST_S3_PUTONLY_SECRET_KEY=$putonly_secret
AUDITEXPORT_TEST_S3_KMS_KEY=$kms_key
AUDITEXPORT_TEST_MINIO=$MINIO_BIN
AUDITEXPORT_TEST_MC=$MC_BIN
AUDITEXPORT_TEST_MC_CONFIG_DIR=$dir/mc
AUDITEXPORT_TEST_MC_ALIAS=auditexport
ENV
  log "MinIO listening on 127.0.0.1:$port (pid $(cat "$dir/pid")); environment in $dir/env"
}

stop() {
  stop_pid "${1:?usage: s3-server.sh stop DIR}/pid"
}

case "${1:-}" in
  install) install ;;
  start) start "${2:-}" ;;
  stop) stop "${2:-}" ;;
  *) echo "usage: $0 install | start DIR | stop DIR" >&2; exit 2 ;;
esac
