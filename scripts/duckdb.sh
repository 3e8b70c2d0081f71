#!/usr/bin/env bash
# Installs DuckDB's Node.js client, pinned (the DuckDB engine ships inside its npm packages), into
# $(go env GOPATH)/bin/duckdb-node-<version> once, and prints that directory. The tests read the
# exported Parquet files with it, as customers do (internal/duckdbtest).
#
#   scripts/duckdb.sh install    install when missing; print the directory
set -euo pipefail
version=1.5.6-r.1
dir="$(go env GOPATH)/bin/duckdb-node-$version"

case "${1:-}" in
install)
  if [ ! -f "$dir/node_modules/@duckdb/node-api/package.json" ]; then
    command -v npm >/dev/null || { echo "duckdb.sh: npm is missing (apt-get install nodejs npm)" >&2; exit 1; }
    mkdir -p "$(dirname "$dir")"
    tmp=$(mktemp -d "$dir.XXXXXX") # beside the target, so the final mv is atomic
    trap 'rm -rf "$tmp"' EXIT
    npm install --prefix "$tmp" --no-audit --no-fund --loglevel=error "@duckdb/node-api@$version" >&2
    rm -rf "$dir"
    mv "$tmp" "$dir"
    trap - EXIT
  fi
  echo "$dir"
  ;;
*)
  echo "usage: $0 install" >&2
  exit 2
  ;;
esac
