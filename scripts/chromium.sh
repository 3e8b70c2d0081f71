#!/usr/bin/env bash
# Chromium from Debian's packages, for the browser tests (internal/browsertest drives it with chromedp).
#
#   scripts/chromium.sh install    apt-get install chromium when missing (needs root); print its path
#   scripts/chromium.sh path       print its path, or fail when it is not installed
#
# Without recommends: they would bring avahi-daemon and the like, which a headless test browser does not
# need. fonts-liberation gives pages the metric-compatible Arial/Times/Courier they ask for, so
# screenshots look as they do for people.
#
# Tests start it themselves, never this script, with --headless --no-sandbox --disable-gpu
# --disable-quic --no-first-run --disable-background-networking --disable-component-update
# --disable-sync and a fresh --user-data-dir: without the background-networking flags Chromium keeps
# calling Google's hosts, which this machine's closed network refuses.
set -euo pipefail

find_chromium() {
  local bin
  for bin in chromium chromium-browser; do
    if command -v "$bin" >/dev/null; then
      command -v "$bin"
      return 0
    fi
  done
  return 1
}

case "${1:-}" in
install)
  if ! find_chromium >/dev/null; then
    echo "chromium.sh: installing Debian's chromium (once)" >&2
    # Lock::Timeout: wait for another apt-get (e.g. scripts/pg-server.sh install) instead of failing.
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 update -qq >&2
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends chromium fonts-liberation >&2
  fi
  find_chromium
  ;;
path)
  find_chromium || { echo "chromium.sh: Chromium is not installed (scripts/chromium.sh install)" >&2; exit 1; }
  ;;
*)
  echo "usage: $0 install | path" >&2
  exit 2
  ;;
esac
