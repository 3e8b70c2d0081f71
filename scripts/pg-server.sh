#!/usr/bin/env bash
# A real PostgreSQL (Debian's packages) on loopback for the tests.
#
#   scripts/pg-server.sh install           install Debian's postgresql when missing (needs root); print its bin dir
#   scripts/pg-server.sh start DIR         initdb and start a server on a free 127.0.0.1 port with data under
#                                          DIR, create the role and database the tests use, write DIR/env
#   scripts/pg-server.sh start-standby PRIMARY_DIR STANDBY_DIR
#                                          clone the running server in PRIMARY_DIR with pg_basebackup -R into
#                                          a streaming-replication hot standby in STANDBY_DIR, start it, and
#                                          make it the primary's synchronous standby; write STANDBY_DIR/env
#   scripts/pg-server.sh stop DIR          stop the server in DIR (a primary or a standby), and first
#                                          those in DIR/private/*, where internal/pgtest starts its own
#
# DIR/env holds the AUDITEXPORT_TEST_PG_* variables the tests read (see internal/pgtest):
#   AUDITEXPORT_TEST_PG_URL       postgres:// URL of the database as the role (password inside)
#   AUDITEXPORT_TEST_PG_SUPERUSER_URL  the superuser "postgres" over the server's Unix socket (trust;
#                                 the socket's directory is 0700, so only this user and root reach it)
#   AUDITEXPORT_TEST_PG_BIN       the bin dir: pg_ctl, initdb, postgres, pg_basebackup, psql
#   AUDITEXPORT_TEST_PG_DATA, _LOG, _PORT, _DIR, _OS_USER: what pg_ctl needs to stop, start, crash
#                                 (-m immediate) or promote the server, run as _OS_USER when that is set
#   AUDITEXPORT_TEST_PG_SCRIPT    this script, for tests that start servers or standbys of their own
#
# The server is durable as production is: fsync, synchronous_commit and full_page_writes on; wal_level
# replica, so a standby can be cloned at any time. PostgreSQL refuses to run as root: as root the
# server runs as the system user auditexport-pg (created when missing), so DIR must be reachable by it
# (anywhere under /tmp is; the script makes DIR itself 0755, the data directory 0700).
#
# Synchronous standby: after start-standby the primary's synchronous_standby_names is '*', so each
# commit on the primary returns only once the standby has flushed it: a test may stop the primary
# with -m immediate, `pg_ctl promote` the standby, and find every acknowledged commit there. The flip
# side: while the standby is down, commits on the primary wait. The standby's own copy of the
# setting is removed, so once promoted it commits alone.
set -euo pipefail

PG_OS_USER=auditexport-pg
SELF=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")

log() { echo "pg-server: $*" >&2; }
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

bin_dir() {
  local d
  # Debian keeps each major version's programs in /usr/lib/postgresql/N/bin; take the newest.
  for d in $(printf '%s\n' /usr/lib/postgresql/*/bin | sort -t/ -k5 -n -r); do
    [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && { echo "$d"; return 0; }
  done
  command -v initdb >/dev/null && { dirname "$(readlink -f "$(command -v initdb)")"; return 0; }
  return 1
}

install() {
  if ! bin_dir >/dev/null; then
    is_root || { log "PostgreSQL is missing: install Debian's postgresql (apt-get install postgresql)"; return 1; }
    log "installing Debian's postgresql (once)"
    # No cluster of the package's own: the tests start theirs, and a server on 5432 would stay behind.
    mkdir -p /etc/postgresql-common/createcluster.d
    echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.d/auditexport-no-main.conf
    export DEBIAN_FRONTEND=noninteractive
    # Lock::Timeout: wait for another apt-get (e.g. scripts/chromium.sh install) instead of failing.
    apt-get -o DPkg::Lock::Timeout=600 update -qq >&2
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends postgresql >&2
  fi
  bin_dir
}

is_root() { [ "$(id -u)" = 0 ]; }

# os_user prints the user the server runs as when it is not this script's own.
os_user() {
  if is_root; then echo "$PG_OS_USER"; fi
}

# give PATH... hands the paths to the server's user, when that is another user.
give() {
  if is_root; then chown "$PG_OS_USER:" "$@"; fi
}

# as_pg CMD... runs CMD as the server's user, from / (the caller's directory may be closed to it).
as_pg() {
  if is_root; then
    (cd / && runuser -u "$PG_OS_USER" -- "$@")
  else
    (cd / && "$@")
  fi
}

# prepare DIR: an empty DIR (0755) with data/ and sock/ (0700) owned by the server's user.
prepare() {
  local dir=$1
  if is_root && ! id "$PG_OS_USER" >/dev/null 2>&1; then
    useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$PG_OS_USER"
  fi
  stop "$dir" 2>/dev/null || true
  rm -rf "$dir"
  mkdir -p "$dir/data" "$dir/sock" "$dir/log"
  chmod 755 "$dir"
  chmod 700 "$dir/data" "$dir/sock" "$dir/log"
  give "$dir/data" "$dir/sock" "$dir/log"
  if ! as_pg test -w "$dir/data"; then
    log "$dir is not reachable by the user $(os_user): put it where every parent directory is searchable (under /tmp)"
    return 1
  fi
}

# write_conf DIR PORT writes the settings this script owns; postgresql.conf includes the file.
write_conf() {
  local dir=$1 port=$2
  cat >"$dir/data/auditexport.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir/sock'
unix_socket_permissions = 0700
fsync = on
synchronous_commit = on
full_page_writes = on
# Recovery (after a crash, or a standby's first start) flushes the data directory with one syncfs
# rather than an fsync per file: as durable on Linux, seconds faster.
recovery_init_sync_method = syncfs
wal_level = replica
max_wal_senders = 4
hot_standby = on
max_connections = 200
shared_buffers = 32MB
password_encryption = scram-sha-256
log_line_prefix = '%m [%p] %q%u@%d '
CONF
  give "$dir/data/auditexport.conf"
  grep -q "^include 'auditexport.conf'" "$dir/data/postgresql.conf" ||
    echo "include 'auditexport.conf'" >>"$dir/data/postgresql.conf"
}

# run_server DIR BIN: start the server on a free port (three tries: another process may take the
# port first); prints the port.
run_server() {
  local dir=$1 bin=$2 port attempt
  for attempt in 1 2 3; do
    port=$(free_port)
    write_conf "$dir" "$port"
    if as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/log/postgres.log" -w -t 60 start >/dev/null; then
      echo "$port"
      return 0
    fi
    log "PostgreSQL did not come up on port $port (attempt $attempt):"
    tail -5 "$dir/log/postgres.log" >&2 || true
  done
  return 1
}

psql_super() { # psql_super DIR PORT BIN: psql as the superuser over the socket, SQL on stdin
  "$3/psql" -X -q -v ON_ERROR_STOP=1 -h "$1/sock" -p "$2" -U postgres -d postgres -At
}

write_env() { # write_env DIR PORT BIN PASSWORD
  local dir=$1 port=$2 bin=$3 password=$4
  (
    umask 077 # the file holds the role's password
    cat >"$dir/env" <<ENV
AUDITEXPORT_TEST_PG_URL=postgres://auditexport:$password@127.0.0.1:$port/auditexport?sslmode=disable
AUDITEXPORT_TEST_PG_SUPERUSER_URL=postgres://postgres@/postgres?host=$dir/sock&port=$port&sslmode=disable
AUDITEXPORT_TEST_PG_BIN=$bin
AUDITEXPORT_TEST_PG_DIR=$dir
AUDITEXPORT_TEST_PG_DATA=$dir/data
AUDITEXPORT_TEST_PG_LOG=$dir/log/postgres.log
AUDITEXPORT_TEST_PG_PORT=$port
AUDITEXPORT_TEST_PG_OS_USER=$(os_user)
AUDITEXPORT_TEST_PG_SCRIPT=$SELF
ENV
  )
}

env_value() { # env_value DIR KEY
  sed -n "s/^$2=//p" "$1/env"
}

start() {
  local dir=${1:?usage: pg-server.sh start DIR} bin port password
  bin=$(install)
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  prepare "$dir"
  password=$(head -c 18 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 24)
  # --no-sync: initdb's own final flush only; the running server has fsync on.
  as_pg "$bin/initdb" -D "$dir/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
    --encoding=UTF8 --locale=C --no-sync --no-instructions >"$dir/initdb.log" 2>&1 ||
    { cat "$dir/initdb.log" >&2; return 1; }
  port=$(run_server "$dir" "$bin")
  # On stdin, so the password is in no process's arguments.
  psql_super "$dir" "$port" "$bin" <<SQL
CREATE ROLE auditexport LOGIN CREATEDB PASSWORD '$password';
CREATE DATABASE auditexport OWNER auditexport;
-- A test's database is dropped WITH (FORCE) when the test ends, which must also end an autovacuum
-- worker busy in it (a superuser's process).
GRANT pg_signal_backend TO auditexport;
SQL
  write_env "$dir" "$port" "$bin" "$password"
  log "PostgreSQL listening on 127.0.0.1:$port (data in $dir/data); environment in $dir/env"
}

start_standby() {
  local primary=${1:?usage: pg-server.sh start-standby PRIMARY_DIR STANDBY_DIR}
  local dir=${2:?usage: pg-server.sh start-standby PRIMARY_DIR STANDBY_DIR}
  primary=$(cd "$primary" && pwd)
  [ -f "$primary/env" ] || { log "no server in $primary (start it first)"; return 1; }
  local bin primary_port password port state
  bin=$(env_value "$primary" AUDITEXPORT_TEST_PG_BIN)
  primary_port=$(env_value "$primary" AUDITEXPORT_TEST_PG_PORT)
  password=$(env_value "$primary" AUDITEXPORT_TEST_PG_URL | sed 's|^postgres://auditexport:\([^@]*\)@.*|\1|')
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  prepare "$dir"
  # -R writes primary_conninfo (over the primary's socket) and standby.signal.
  as_pg "$bin/pg_basebackup" -D "$dir/data" -R -X stream -c fast --no-sync \
    -d "host=$primary/sock port=$primary_port user=postgres" >"$dir/basebackup.log" 2>&1 ||
    { cat "$dir/basebackup.log" >&2; return 1; }
  # The standby must not inherit the primary's synchronous_standby_names (from an earlier standby),
  # or once promoted it would wait for a standby of its own forever.
  sed -i '/^synchronous_standby_names/d' "$dir/data/postgresql.auto.conf"
  port=$(run_server "$dir" "$bin")
  psql_super "$primary" "$primary_port" "$bin" >/dev/null <<SQL
ALTER SYSTEM SET synchronous_standby_names = '*';
SELECT pg_reload_conf();
SQL
  for _ in $(seq 1 300); do
    state=$(echo "SELECT sync_state FROM pg_stat_replication WHERE state = 'streaming' LIMIT 1" |
      psql_super "$primary" "$primary_port" "$bin")
    [ "$state" = sync ] && break
    sleep 0.1
  done
  [ "$state" = sync ] || { log "the standby did not become synchronous (state '$state'); see $dir/log/postgres.log"; return 1; }
  write_env "$dir" "$port" "$bin" "$password"
  log "synchronous standby of 127.0.0.1:$primary_port listening on 127.0.0.1:$port; environment in $dir/env"
}

stop() {
  local dir=${1:?usage: pg-server.sh stop DIR} bin pid private
  # First the servers tests started under DIR/private (internal/pgtest): a test binary killed by its
  # timeout runs no cleanup, and they would outlive the run.
  for private in "$dir"/private/*/; do
    if [ -d "$private" ]; then stop "$private"; fi
  done
  [ -f "$dir/data/postmaster.pid" ] || return 0
  bin=$(bin_dir)
  if ! as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1; then
    pid=$(head -1 "$dir/data/postmaster.pid" 2>/dev/null || true)
    if [ -n "$pid" ]; then kill -9 "$pid" 2>/dev/null || true; fi
  fi
}

case "${1:-}" in
  install) install ;;
  start) start "${2:-}" ;;
  start-standby) start_standby "${2:-}" "${3:-}" ;;
  stop) stop "${2:-}" ;;
  *) echo "usage: $0 install | start DIR | start-standby PRIMARY_DIR STANDBY_DIR | stop DIR" >&2; exit 2 ;;
esac
