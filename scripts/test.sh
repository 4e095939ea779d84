#!/usr/bin/env bash
# Runs every test of chatspec on a fresh machine: installs what the tests
# need (redis-server, python3-socketio and python3-aiohttp from Debian, the
# Node fixtures from the npm registry),
# then the whole Go test suite with the race detector.
#
#   bash scripts/test.sh            # everything
#   bash scripts/test.sh ./spec/... # a subset (arguments go to go test)
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs npm)
# The Python chat server (spec/testdata/pyserver) runs on Debian's
# python-socketio and aiohttp, under /usr/bin/python3.
if [ "${CHATSPEC_SKIP_PYTHON:-}" != 1 ] &&
  ! /usr/bin/python3 -c 'import socketio, aiohttp' >/dev/null 2>&1; then
  need_apt+=(python3-socketio python3-aiohttp)
fi
# Headless Chromium for the browser tests (cmd/chatspec/browser_test.go); they
# fail without it unless CHATSPEC_SKIP_BROWSER=1. chromedp speaks the DevTools
# protocol itself: no chromium-driver needed.
command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "test.sh: installing ${need_apt[*]} (Debian packages)"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  # Another apt or dpkg (unattended-upgrades, a provisioning script) may
  # hold the lock: wait for it, up to 10 minutes, instead of failing at once.
  apt_wait=(-o DPkg::Lock::Timeout=600)
  $SUDO apt-get "${apt_wait[@]}" update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get "${apt_wait[@]}" install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ "${CHATSPEC_SKIP_NODE:-}" != 1 ]; then
  node_version=$(node -p 'process.versions.node')
  case "$node_version" in
    [0-9].* | 1[0-7].* | 18.[0-2].*)
      echo "test.sh: Node $node_version is too old: the Node test fixtures need 18.3 or later (20+ recommended)." >&2
      echo "test.sh: install a newer Node (https://nodejs.org), or set CHATSPEC_SKIP_NODE=1 to skip the Node interop tests." >&2
      exit 2 ;;
  esac
  for fixture in spec/testdata/nodeserver spec/testdata/jsclient; do
    if [ -f "$fixture/package-lock.json" ]; then
      echo "test.sh: npm ci --prefix $fixture"
      npm ci --prefix "$fixture" --no-audit --no-fund --loglevel=error
    fi
  done
fi

if [ $# -eq 0 ]; then set -- ./...; fi
go test -race -count=1 -timeout 40m "$@"
