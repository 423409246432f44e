#!/usr/bin/env bash
# Runs the console's in-browser proof verifier (node/src/console/verify.js) against spec/vectors/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v node >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "node not found: installing nodejs with apt-get" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs >/dev/null
  else
    echo "error: node (Node.js >= 20, for WebCrypto Ed25519) is required; install nodejs and retry" >&2
    exit 1
  fi
fi

exec node node/src/console/verify_test.mjs
