#!/usr/bin/env bash
# The independent Python client (clients/python): its tests against spec/vectors/ and, when a
# dpx binary is at hand, the live test against a 4-validator devnet on loopback ports 27100+.
#
#   scripts/client-test.sh                 # vectors; live test if target/debug/dpx exists
#   scripts/client-test.sh path/to/dpx     # vectors and live test with this binary
#   DPX_BIN=... DPX_CLIENT_BASE_PORT=27200 scripts/client-test.sh
#
# Set-up on a fresh machine: python3 with venv (installed with apt as root when missing), then a
# virtualenv in clients/python/.venv (git-ignored) with the package and pytest from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PKG=$ROOT/clients/python
VENV=$PKG/.venv

need_apt() {
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "==> installing $* (apt-get)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    echo "error: missing $*; install them (sudo apt-get install -y $*) and run again" >&2
    exit 1
  fi
}
command -v python3 >/dev/null || need_apt python3 python3-venv python3-pip
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV" 2>/dev/null || { rm -rf "$VENV"; need_apt python3-venv python3-pip; python3 -m venv "$VENV"; }
fi
# Reinstall only when the package's metadata changed.
STAMP=$VENV/.installed
WANT=$(cat "$PKG/pyproject.toml" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
  echo "==> installing dpx-client and its test dependencies into $VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
  "$VENV/bin/python" -m pip install -q -e "$PKG[test]"
  echo "$WANT" >"$STAMP"
fi

BIN=${1:-${DPX_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/dpx}}
case "$BIN" in /*) ;; *) BIN=$ROOT/$BIN ;; esac
if [ $# -gt 0 ] && [ ! -x "$BIN" ]; then
  echo "error: no dpx binary at $BIN (asked for the live test)" >&2
  exit 1
fi
if [ -x "$BIN" ]; then
  export DPX_BIN=$BIN
  echo "==> Python client: vectors, tamper tests and the live devnet test (dpx: $BIN)"
else
  unset DPX_BIN
  echo "==> Python client: vectors and tamper tests (no dpx binary at $BIN: the live test is SKIPPED)"
fi
cd "$PKG"
exec "$VENV/bin/python" -m pytest -q -rs tests
