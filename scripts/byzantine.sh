#!/usr/bin/env bash
# The adversary (issue 14): a byzantine libp2p peer with a permitted key and hostile RPC
# clients against a live 4-validator cluster of release `dpx` processes on loopback, under an
# honest transaction load. Scenario by scenario it floods junk proposal blocks, lies about its
# tip and answers sync with empty/garbled/oversized blocks, runs a stopped validator's key as an
# equivocator, sends frames at and over the frame limit, floods bad-signature batches, holds
# idle/malformed/stalled event streams and idle HTTP connections, and submits torsion-crafted
# signatures and padded transactions. After each it checks that the honest validators kept
# committing, agree on every block id and state root, committed every acknowledged
# transaction exactly once, stayed under the RSS bound, and counted what they refused.
#
#   scripts/byzantine.sh                  the full set (~6 minutes once built)
#   scripts/byzantine.sh --short          shorter attacks (the CI set is a cargo test:
#                                         cargo test -p dpx-tests --test byzantine)
#   options: --only s1,s2,...             run only these scenarios (names as in the table)
#            --list                       list the scenarios
#            --rss-max-mib N              memory bound per validator (default 512)
#            --live-s N --catchup-s N     liveness and catch-up limits (defaults 10, 30)
#            --debug                      use the dev profile instead of release
#
# Needs nothing but cargo: everything runs on 127.0.0.1 (attacker) and 127.0.0.2 (honest
# clients). Environment: CARGO_TARGET_DIR, DPX_BYZANTINE_NO_BUILD=1 (use the built binaries).
# Exit status: 0 when every scenario passed, 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PROFILE=release
ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --debug) PROFILE=debug ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) ARGS+=("$1") ;;
  esac
  shift
done
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
if [ "${DPX_BYZANTINE_NO_BUILD:-0}" != 1 ]; then
  if [ "$PROFILE" = release ]; then FLAG=(--release); else FLAG=(); fi
  echo "== Building dpx and the byzantine runner ($PROFILE)"
  source scripts/prereqs.sh
  cargo build --locked "${FLAG[@]}" -p dpx-node --bin dpx -p dpx-tests --bin byzantine 2>&1 | tail -1
fi
export DPX_BIN=$TARGET/$PROFILE/dpx
exec "$TARGET/$PROFILE/byzantine" "${ARGS[@]}"
