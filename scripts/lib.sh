# shellcheck shell=bash
# Shared by the scripts that start test servers (s3-server.sh, azurite.sh, pg-server.sh); sourced.

# free_port prints a 127.0.0.1 port nothing listens on now. Another process may take it before the
# server binds it, so callers retry a start that fails.
free_port() {
  local port
  for _ in $(seq 1 50); do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  echo "no free port found" >&2
  return 1
}

# wait_until PID CMD... runs CMD every 0.1 s until it succeeds (0), PID exits (1) or 30 s pass (1).
wait_until() {
  local pid=$1
  shift
  for _ in $(seq 1 300); do
    "$@" >/dev/null 2>&1 && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# http_answers URL succeeds when anything answers HTTP at URL, whatever the status.
http_answers() {
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$1")" != 000 ]
}

# start_on_free_port NAME LOG PIDFILE LAUNCH READY starts a server on a free port and prints the
# port. LAUNCH PORT runs in the background and must exec the server (its pid goes to PIDFILE), with
# its output in LOG; READY PORT succeeds once the server serves. Three tries, each on a new port:
# another process may take the port between free_port and the server's bind.
start_on_free_port() {
  local name=$1 logfile=$2 pidfile=$3 launch=$4 ready=$5 port attempt
  for attempt in 1 2 3; do
    port=$(free_port)
    "$launch" "$port" </dev/null >/dev/null 2>&1 &
    echo $! >"$pidfile"
    if wait_until "$(cat "$pidfile")" "$ready" "$port"; then
      echo "$port"
      return 0
    fi
    echo "$name did not come up on port $port (attempt $attempt):" >&2
    tail -5 "$logfile" >&2 || true
    stop_pid "$pidfile"
  done
  return 1
}

# stop_pid PIDFILE stops the process whose id PIDFILE holds (TERM, then KILL after 5 s) and removes
# the file; nothing to do without the file.
stop_pid() {
  local file=$1 pid
  [ -f "$file" ] || return 0
  pid=$(cat "$file")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$file"
}
