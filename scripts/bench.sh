#!/usr/bin/env bash
# Throughput and latency sweep of a local 4-validator network (issue 9), with dpx-bench.
#
#   scripts/bench.sh [--mode full|consensus-only|both] [--rates "500 1000 ..."] [--duration S]
#                    [--set KEY=VALUE ...] [--skip-verify] [--smoke] [--out DIR]
#
# 1. builds release `dpx` and `dpx-bench` (skipped when DPX_BIN and DPX_BENCH_BIN are set);
# 2. measures this machine's ed25519 batch-verification rate and the verification limit
#    (sig/s ÷ 4 validators: every validator on this machine verifies every transaction);
# 3. per mode, creates a fresh 4-validator testnet (`dpx testnet init`, consensus-only mode
#    with `--consensus-only`), starts the nodes (logs in DIR/net-<mode>/node<i>/node.log), and
#    runs `dpx-bench load` at each rate on the same running network, stopping early at
#    saturation (committed < 90 % of offered twice);
# 4. writes results.jsonl, results.csv, bench.png and table.txt into the out dir (default
#    target/bench/<timestamp>/) and prints the table and the saturation throughput as a
#    fraction of the verification limit.
#
# --set KEY=VALUE: change one setting in every node's config.toml before it starts (KEY is the
# setting's name within its section and must occur once in the file, e.g.
# --set speculative_execution=false); for A/B runs of one build. --skip-verify: skip step 2.
# --smoke: a few seconds per mode at tiny rates (both modes when the node supports
# consensus-only), with debug binaries unless DPX_PROFILE says otherwise; for CI.
#
# Environment: DPX_PROFILE (release|debug), DPX_BIN, DPX_BENCH_BIN, DPX_BENCH_BASE_PORT
# (default 27100; the consensus-only network uses +100), CARGO_TARGET_DIR.
# Node configs are used as `dpx testnet init` writes them (no edits).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

MODE=both
RATES=""
DURATION=""
SMOKE=0
OUT=""
SETS=()
SKIP_VERIFY=0
usage() { sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --mode) MODE=$2; shift 2 ;;
    --rates) RATES=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --smoke) SMOKE=1; shift ;;
    --set)
      case "$2" in *=*) SETS+=("$2") ;; *) echo "--set wants KEY=VALUE" >&2; exit 2 ;; esac
      shift 2 ;;
    --skip-verify) SKIP_VERIFY=1; shift ;;
    --out) OUT=$2; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done
case "$MODE" in full|consensus-only|both) ;; *) echo "--mode must be full, consensus-only or both" >&2; exit 2 ;; esac

if [ "$SMOKE" = 1 ]; then
  PROFILE=${DPX_PROFILE:-debug}
  RATES=${RATES:-"20 40"}
  DURATION=${DURATION:-3}
  VERIFY_SECONDS=0.5
  DRAIN=60
else
  PROFILE=${DPX_PROFILE:-release}
  RATES=${RATES:-"250 500 1000 2000 4000 8000"}
  DURATION=${DURATION:-20}
  VERIFY_SECONDS=3
  DRAIN=30
fi
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BASE=${DPX_BENCH_BASE_PORT:-27100}
OUT=${OUT:-$ROOT/target/bench/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
RESULTS=$OUT/results.jsonl

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

source scripts/prereqs.sh
# The chart draws its text with a TrueType font read at run time.
if ! find /usr/share/fonts \( -name DejaVuSans.ttf -o -name LiberationSans-Regular.ttf \) \
  2>/dev/null | grep -q .; then
  apt_install fonts-dejavu-core || echo "note: no font installed; the chart will be skipped"
fi

if [ -z "${DPX_BIN:-}" ] || [ -z "${DPX_BENCH_BIN:-}" ]; then
  say "Building dpx and dpx-bench ($PROFILE)"
  if [ "$PROFILE" = release ]; then
    cargo build --release --locked -p dpx-node -p dpx-bench --bins
  else
    cargo build --locked -p dpx-node -p dpx-bench --bins
  fi
fi
DPX=${DPX_BIN:-$TARGET/$PROFILE/dpx}
BENCH=${DPX_BENCH_BIN:-$TARGET/$PROFILE/dpx-bench}

NODE_PIDS=()
stop_net() {
  local pid
  for pid in "${NODE_PIDS[@]:-}"; do
    [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${NODE_PIDS[@]:-}"; do
    [ -n "$pid" ] || continue
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  NODE_PIDS=()
}
trap stop_net EXIT
trap 'stop_net; exit 130' INT TERM

rpc_url() { echo "http://127.0.0.1:$(($1 + 10 * $2 + 7))"; }

height() {
  { "$DPX" status --rpc "$1" 2>/dev/null || true; } | sed -n 's/.*height \([0-9][0-9]*\).*/\1/p'
}

# set_config FILE: apply every --set to one node's config (the key must occur exactly once).
set_config() {
  local kv key value n
  for kv in "${SETS[@]:-}"; do
    [ -n "$kv" ] || continue
    key=${kv%%=*} value=${kv#*=}
    n=$(grep -c "^$key = " "$1" || true)
    if [ "$n" != 1 ]; then
      echo "--set $kv: '$key' occurs $n times in $1 (must be once)" >&2
      exit 2
    fi
    sed -i "s|^$key = .*|$key = $value|" "$1"
  done
}

# start_net MODE BASE: a fresh 4-validator network in $OUT/net-MODE, running.
start_net() {
  local mode=$1 base=$2 dir="$OUT/net-$1" flags=() i h
  [ "$mode" = consensus-only ] && flags=(--consensus-only)
  rm -rf "$dir"
  "$DPX" testnet init --validators 4 --out "$dir" --base-port "$base" --chain-id dpx-bench \
    "${flags[@]}" >"$OUT/init-$mode.txt"
  for i in 0 1 2 3; do
    set_config "$dir/node$i/config.toml"
  done
  for i in 0 1 2 3; do
    "$DPX" node start --home "$dir/node$i" >"$dir/node$i/node.log" 2>&1 &
    NODE_PIDS+=($!)
  done
  for i in 0 1 2 3; do
    for _ in $(seq 1 600); do
      h=$(height "$(rpc_url "$base" "$i")")
      [ "${h:-0}" -ge 1 ] && break
      sleep 0.2
    done
    if [ "${h:-0}" -lt 1 ]; then
      echo "node$i of the $mode network made no block within 2 minutes; its log ends:" >&2
      tail -n 30 "$dir/node$i/node.log" >&2
      exit 1
    fi
  done
  echo "  $mode network up in $dir (pids ${NODE_PIDS[*]})"
}

# sweep MODE BASE: every rate on one network, until saturation.
sweep() {
  local mode=$1 base=$2 dir="$OUT/net-$1" rate below=0 ratio rpcs=() pids i
  say "$mode: starting a fresh 4-validator network"
  start_net "$mode" "$base"
  for i in 0 1 2 3; do rpcs+=(--rpc "$(rpc_url "$base" "$i")"); done
  pids=$(IFS=,; echo "${NODE_PIDS[*]}")
  local extra=()
  if [ "$mode" = full ]; then
    extra=(--agency-key "$dir/keys/agency-0.json")
    for k in "$dir"/keys/agency-*.json; do
      [ "$k" = "$dir/keys/agency-0.json" ] || extra+=(--approver-key "$k")
    done
  fi
  # Opaque payloads have no receipts worth reading: follow commits with one event per block
  # (tx_hashes=true) rather than one per transaction, so observing costs the nodes little.
  [ "$mode" = consensus-only ] && extra=(--observe block-hashes)
  for rate in $RATES; do
    say "$mode: $rate tx/s offered for $DURATION s"
    if ! "$BENCH" load --mode "$mode" --rate "$rate" --duration "$DURATION" --drain "$DRAIN" \
      "${rpcs[@]}" "${extra[@]}" --pids "$pids" --out "$RESULTS" --label "$mode@$rate"; then
      echo "the $mode run at $rate tx/s failed; see above and $dir/node*/node.log" >&2
      stop_net
      return 1
    fi
    ratio=$("$BENCH" report --in "$RESULTS" --mode "$mode" --last-ratio)
    if awk -v r="$ratio" 'BEGIN { exit !(r < 0.9) }'; then
      below=$((below + 1))
      echo "  committed $ratio of offered (below 90 %: $below of 2)"
      [ "$below" -ge 2 ] && { echo "  saturated; ending the $mode sweep"; break; }
    fi
  done
  stop_net
}

if [ "$SKIP_VERIFY" = 0 ]; then
  say "Verification limit of this machine"
  "$BENCH" verify-limit --validators 4 --seconds "$VERIFY_SECONDS" --out "$RESULTS" --label verify
fi

MODES=()
case "$MODE" in
  both) MODES=(full consensus-only) ;;
  *) MODES=("$MODE") ;;
esac
status=0
for m in "${MODES[@]}"; do
  if [ "$m" = consensus-only ] && ! "$DPX" testnet init --help | grep -q -- --consensus-only; then
    if [ "$MODE" = both ]; then
      echo "note: this dpx has no 'testnet init --consensus-only'; skipping that mode"
      continue
    fi
    echo "this dpx has no 'testnet init --consensus-only'" >&2
    exit 1
  fi
  offset=0
  [ "$m" = consensus-only ] && offset=100
  sweep "$m" $((BASE + offset)) || status=1
done

say "Results ($OUT)"
if [ -s "$RESULTS" ] && grep -q '"kind":"load"' "$RESULTS"; then
  "$BENCH" report --in "$RESULTS" | tee "$OUT/table.txt"
  "$BENCH" chart --in "$RESULTS" --png "$OUT/bench.png" --csv "$OUT/results.csv" \
    || echo "note: no chart drawn (see above); the CSV and JSON are complete"
else
  echo "no load run completed" >&2
  status=1
fi
echo "results: $RESULTS"
exit "$status"
