#!/usr/bin/env bash
# Runs every test of chatspec on a fresh machine: installs what the tests
# need (redis-server from Debian, the Node fixtures from the npm registry),
# then the whole Go test suite with the race detector.
#
#   bash scripts/test.sh            # everything
#   bash scripts/test.sh ./spec/... # a subset (arguments go to go test)
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs npm)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "test.sh: installing ${need_apt[*]} (Debian packages)"
  if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

for fixture in spec/testdata/nodeserver spec/testdata/jsclient; do
  if [ -f "$fixture/package-lock.json" ]; then
    echo "test.sh: npm ci --prefix $fixture"
    npm ci --prefix "$fixture" --no-audit --no-fund --loglevel=error
  fi
done

if [ $# -eq 0 ]; then set -- ./...; fi
go test -race -count=1 -timeout 40m "$@"
