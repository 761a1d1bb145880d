#!/usr/bin/env bash
# Real-browser end-to-end tests of web-widget/ against the gateway binary.
#
#   bash tests/browser/run.sh            # uses ../../target/debug/gateway (and fake-midtrans)
#   GATEWAY_BIN=/path/to/gateway FAKE_MIDTRANS_BIN=/path/to/fake-midtrans bash tests/browser/run.sh
#
# Needs PostgreSQL on 127.0.0.1:5432 (user postgres) and Redis on 127.0.0.1:6379. Installs Debian's
# Chromium and the npm dependencies when they are missing; never downloads a browser build of its own.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# A relative GATEWAY_BIN is taken from the caller's directory; the default is relative to this script.
GATEWAY_BIN="${GATEWAY_BIN:-$HERE/../../target/debug/gateway}"
case "$GATEWAY_BIN" in
  /*) ;;
  *) GATEWAY_BIN="$PWD/$GATEWAY_BIN" ;;
esac
export GATEWAY_BIN
# The fake Midtrans, for payment.test.js (built with the workspace: tests/fake-midtrans).
FAKE_MIDTRANS_BIN="${FAKE_MIDTRANS_BIN:-$HERE/../../target/debug/fake-midtrans}"
case "$FAKE_MIDTRANS_BIN" in
  /*) ;;
  *) FAKE_MIDTRANS_BIN="$PWD/$FAKE_MIDTRANS_BIN" ;;
esac
export FAKE_MIDTRANS_BIN
cd "$HERE"
if [ ! -x "$GATEWAY_BIN" ]; then
  echo "run.sh: no gateway binary at $GATEWAY_BIN (build it first, or set GATEWAY_BIN)" >&2
  exit 1
fi
if [ ! -x "$FAKE_MIDTRANS_BIN" ]; then
  echo "run.sh: no fake-midtrans binary at $FAKE_MIDTRANS_BIN: payment.test.js will fail (build it, or set FAKE_MIDTRANS_BIN)" >&2
fi

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=0
apt_install() {
  if [ "$apt_updated" -eq 0 ]; then
    as_root apt-get update -qq
    apt_updated=1
  fi
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

export CHROMIUM_BIN="${CHROMIUM_BIN:-/usr/bin/chromium}"
if [ ! -x "$CHROMIUM_BIN" ]; then
  echo "run.sh: installing Debian's chromium" >&2
  apt_install chromium fonts-dejavu-core
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "run.sh: installing node and npm" >&2
  apt_install nodejs npm
fi
if ! command -v psql >/dev/null 2>&1; then
  echo "run.sh: installing the PostgreSQL client (the harness drops its databases with psql)" >&2
  apt_install postgresql-client
fi

node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 20 ]; then
  echo "run.sh: Node.js 20 or newer is needed (found $(node --version))" >&2
  exit 1
fi

if [ ! -f node_modules/playwright-core/package.json ]; then
  echo "run.sh: installing npm dependencies" >&2
  # The browser is Debian's; playwright-core never downloads one, and this makes sure of it.
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
fi

if ! psql postgres://postgres@127.0.0.1:5432/postgres -qAtc 'select 1' >/dev/null 2>&1; then
  echo "run.sh: PostgreSQL is not reachable at postgres://postgres@127.0.0.1:5432" >&2
  exit 1
fi

mkdir -p "${SHOTS_DIR:-/tmp/browser-shots}"
exec node --test --test-reporter=spec "$HERE"/*.test.js
