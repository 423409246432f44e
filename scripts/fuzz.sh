#!/usr/bin/env bash
# Fuzz every decoder of outside bytes with libFuzzer on the STABLE toolchain (docs/FUZZING.md).
#
#   scripts/fuzz.sh --list                  the targets, their crates and corpus sizes
#   scripts/fuzz.sh --seconds 5             a smoke run: every target 5 s (wall clock)
#   scripts/fuzz.sh --cpu-seconds 600 tx_decode render
#                                           each named target until it has had 600 s of CPU
#   options: --seconds N       libFuzzer's -max_total_time per target (default 60)
#            --cpu-seconds N   run again (from the grown corpus) until the target had N CPU-s;
#                              on a busy machine wall time is not CPU time
#            --no-merge        keep every new input instead of minimising the corpus
#            --no-build        run the binaries as last built (while another build holds the
#                              target dir, say)
#   targets: names (tx_decode) or crate/name (contracts/tx_decode); default: all.
#
# How: `cargo fuzz build --sanitizer none` needs no nightly: the coverage instrumentation
# (-Cpasses=sancov-module and -Cllvm-args=-sanitizer-coverage-*) is made of stable codegen
# options; only -Zsanitizer=address would need nightly. Without ASan we lose the detection of
# memory errors, which `#![forbid(unsafe_code)]` already rules out in our crates; panics
# (including debug assertions and integer overflow, built in with --debug-assertions), time-outs
# (-timeout) and memory blow-ups (-rss_limit_mb) are what we look for, and those are all caught.
#
# Each fuzz crate (<crate>/fuzz) is its own workspace; all of them build into ONE target dir so
# RocksDB's C++ (ledger, node) is compiled once. Builds and runs are `nice -n 19`, one fuzz
# process at a time. Corpora live in <crate>/fuzz/corpus/<target>/ and are minimised with
# -merge=1 after each run; a crash, time-out or OOM leaves its input in
# <crate>/fuzz/artifacts/<target>/ and makes the script exit 1.
# Environment: DPX_FUZZ_TARGET_DIR (default target/fuzz), DPX_FUZZ_MAX_LEN (default 65536),
# DPX_FUZZ_RSS_MB (default 1024), DPX_FUZZ_TIMEOUT_S (default 10), DPX_FUZZ_SCCACHE_PORT
# (default 4227; sccache is used when installed and RUSTC_WRAPPER is unset),
# DPX_FUZZ_ROCKSDB_LIB_DIR (a directory holding a librocksdb.a built by this workspace's
# librocksdb-sys, e.g. the test build's $CARGO_TARGET_DIR/debug/build/librocksdb-sys-*/out:
# linked instead of compiling RocksDB's C++ once more, 20 minutes on 2 cores; the fuzzers
# instrument our code, not RocksDB's). Without it, scripts/prereqs.sh's choice holds: the
# distribution's shared RocksDB when there is one (nothing of RocksDB is compiled either).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
CRATES=(consensus ledger contracts node)
CARGO_FUZZ_VERSION=0.13.2

SECONDS_PER_TARGET=60 CPU_SECONDS=0 MERGE=1 BUILD=1 LIST=0 WANT=()
while [ $# -gt 0 ]; do
  case "$1" in
    --list) LIST=1 ;;
    --seconds) SECONDS_PER_TARGET=$2; shift ;;
    --cpu-seconds) CPU_SECONDS=$2; shift ;;
    --no-merge) MERGE=0 ;;
    --no-build) BUILD=0 ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) WANT+=("$1") ;;
  esac
  shift
done

# Every [[bin]] of every fuzz crate, as crate/target.
ALL=()
for c in "${CRATES[@]}"; do
  for t in $(sed -n 's/^name = "\(.*\)"$/\1/p' "$c/fuzz/Cargo.toml" | grep -v -- '-fuzz$'); do
    ALL+=("$c/$t")
  done
done

if [ "$LIST" = 1 ]; then
  printf '%-30s %8s %10s\n' target inputs bytes
  for ct in "${ALL[@]}"; do
    dir="${ct%%/*}/fuzz/corpus/${ct#*/}"
    n=0 b=0
    if [ -d "$dir" ]; then n=$(find "$dir" -type f | wc -l) b=$(du -sb "$dir" | cut -f1); fi
    printf '%-30s %8s %10s\n' "$ct" "$n" "$b"
  done
  exit 0
fi

SELECTED=()
if [ ${#WANT[@]} -eq 0 ]; then
  SELECTED=("${ALL[@]}")
else
  for w in "${WANT[@]}"; do
    found=
    for ct in "${ALL[@]}"; do
      if [ "$ct" = "$w" ] || [ "${ct#*/}" = "$w" ]; then found=$ct; fi
    done
    [ -n "$found" ] || { echo "unknown target $w (see --list)" >&2; exit 2; }
    SELECTED+=("$found")
  done
fi

# Tools: cargo-fuzz from crates.io (the stable toolchain is enough for it and for the targets).
if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
  echo "==> cargo install cargo-fuzz $CARGO_FUZZ_VERSION"
  nice -n 19 cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
fi
USER_WRAPPER=${RUSTC_WRAPPER:-}
if [ -f scripts/prereqs.sh ]; then
  # libclang and a C++ compiler for RocksDB's bindings (ledger and node fuzz crates).
  source scripts/prereqs.sh
fi
export CARGO_TARGET_DIR="${DPX_FUZZ_TARGET_DIR:-$ROOT/target/fuzz}"
export CARGO_TERM_COLOR=never
if [ -z "$USER_WRAPPER" ] && command -v sccache >/dev/null; then
  # The same CC/CXX on every run: a change re-runs RocksDB's build script (cc-rs watches them).
  export RUSTC_WRAPPER=sccache CC="sccache cc" CXX="sccache c++"
  # A server of our own, started by the niced build below, so the compiles it runs are niced too
  # (a server already running for other builds keeps the priority it was started with).
  export SCCACHE_SERVER_PORT=${DPX_FUZZ_SCCACHE_PORT:-4227}
fi
if [ -n "${DPX_FUZZ_ROCKSDB_LIB_DIR:-}" ]; then
  [ -f "$DPX_FUZZ_ROCKSDB_LIB_DIR/librocksdb.a" ] || {
    echo "DPX_FUZZ_ROCKSDB_LIB_DIR: no librocksdb.a in $DPX_FUZZ_ROCKSDB_LIB_DIR" >&2; exit 2; }
  export ROCKSDB_LIB_DIR=$DPX_FUZZ_ROCKSDB_LIB_DIR ROCKSDB_STATIC=1
  echo "==> linking the RocksDB built in $ROCKSDB_LIB_DIR"
fi
HOST=$(rustc -vV | sed -n 's/^host: //p')
BIN_DIR="$CARGO_TARGET_DIR/$HOST/release"
MAX_LEN=${DPX_FUZZ_MAX_LEN:-65536}
RSS_MB=${DPX_FUZZ_RSS_MB:-1024}
TIMEOUT_S=${DPX_FUZZ_TIMEOUT_S:-10}
LIBFUZZER_OPTS=(-rss_limit_mb="$RSS_MB" -timeout="$TIMEOUT_S" -max_len="$MAX_LEN")

# Build each needed crate once, all its targets in one cargo run.
built=" "
for ct in "${SELECTED[@]}"; do
  c=${ct%%/*}
  case "$built" in *" $c "*) continue ;; esac
  [ "$BUILD" = 1 ] || break
  # Start from the workspace's lock file, so the fuzz crates build the same dependency versions
  # (and share one RocksDB build); cargo adds libfuzzer-sys and drops what is not used.
  if [ ! -f "$c/fuzz/Cargo.lock" ] || [ Cargo.lock -nt "$c/fuzz/Cargo.lock" ]; then
    cp Cargo.lock "$c/fuzz/Cargo.lock"
  fi
  echo "==> building $c/fuzz (stable, --sanitizer none, debug assertions on)"
  (cd "$c" && nice -n 19 cargo fuzz build --sanitizer none --debug-assertions)
  built="$built$c "
done

LOGS="$CARGO_TARGET_DIR/fuzz-logs"
mkdir -p "$LOGS"
TABLE=() FAILED=0
for ct in "${SELECTED[@]}"; do
  c=${ct%%/*} t=${ct#*/}
  corpus="$c/fuzz/corpus/$t" artifacts="$c/fuzz/artifacts/$t"
  mkdir -p "$corpus" "$artifacts"
  cpu=0 execs=0 cov=- ft=- pcs=- result=ok round=0 share=1
  while :; do
    round=$((round + 1))
    budget=$SECONDS_PER_TARGET
    if [ "$CPU_SECONDS" -gt 0 ]; then
      # libFuzzer counts wall time: ask for the remaining CPU time divided by the share of a core
      # the last run got (other work on the machine takes the rest).
      budget=$(awk -v r=$((CPU_SECONDS - cpu)) -v s="$share" 'BEGIN { b = r / s; printf "%d", (b < 10 ? 10 : b) }')
    fi
    log="$LOGS/$t.$round.log"
    echo "==> $ct: run $round, ${budget}s (log: $log)"
    TIMEFORMAT='%R %U %S'
    set +e
    { time nice -n 19 "$BIN_DIR/$t" "${LIBFUZZER_OPTS[@]}" -max_total_time="$budget" \
        -print_final_stats=1 -artifact_prefix="$artifacts/" "$corpus" >"$log" 2>&1; } 2>"$log.time"
    code=$?
    set -e
    read -r wall user sys <"$log.time"
    share=$(awk -v w="$wall" -v u="$user" -v s="$sys" 'BEGIN { x = (w > 0 ? (u + s) / w : 1); printf "%.3f", (x < 0.05 ? 0.05 : (x > 1 ? 1 : x)) }')
    cpu=$(awk -v a="$cpu" -v u="$user" -v s="$sys" 'BEGIN { printf "%d", a + u + s }')
    n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    execs=$((execs + ${n:-0}))
    # Instrumented edges in the binary, to read `cov` against.
    pcs=$(sed -n 's/^INFO: Loaded 1 modules *(\([0-9]*\) inline.*/\1/p' "$log" | head -1)
    last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1 || true)
    if [ -n "$last" ]; then
      cov=$(sed -E 's/.*cov: ([0-9]+).*/\1/' <<<"$last")
      ft=$(sed -E 's/.*ft: ([0-9]+).*/\1/' <<<"$last")
    fi
    if [ "$code" -ne 0 ]; then
      what=$(grep -oE 'ERROR: libFuzzer: [a-z -]+|panicked at [^:]+:[0-9]+' "$log" | head -2 | tr '\n' ' ')
      unit=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
      result="FAILED ($what) input: ${unit:-see $log}"
      FAILED=1
      break
    fi
    # Stop when the CPU budget is spent (or nearly: restarts cost a corpus reload each).
    if [ "$CPU_SECONDS" -le 0 ] || [ $((CPU_SECONDS - cpu)) -lt 10 ] || [ "$round" -ge 8 ]; then
      break
    fi
  done
  if [ "$MERGE" = 1 ] && [ "$result" = ok ]; then
    # Keep only the inputs that add coverage; the corpus is replaced only by a successful merge.
    merged=$(mktemp -d)
    if nice -n 19 "$BIN_DIR/$t" "${LIBFUZZER_OPTS[@]}" -merge=1 "$merged" "$corpus" \
        >"$LOGS/$t.merge.log" 2>&1 && [ -n "$(ls -A "$merged")" ]; then
      rm -rf "$corpus" && mkdir -p "$corpus" && cp "$merged"/* "$corpus"/
    else
      echo "warning: merge of $ct failed (see $LOGS/$t.merge.log); corpus kept as is" >&2
    fi
    rm -rf "$merged"
  fi
  inputs=$(find "$corpus" -type f | wc -l)
  kib=$(( $(du -sb "$corpus" | cut -f1) / 1024 ))
  rate=$(awk -v e="$execs" -v c="$cpu" 'BEGIN { printf "%d", (c > 0 ? e / c : 0) }')
  cpu_min=$(awk -v c="$cpu" 'BEGIN { printf "%.1f", c / 60 }')
  TABLE+=("| $ct | $execs | $rate | $cpu_min | $cov of ${pcs:--} | $ft | $inputs ($kib KiB) | $result |")
done

echo
echo "| target | executions | exec/CPU-s | CPU-min | cov (of edges) | ft | corpus | result |"
echo "|---|---:|---:|---:|---:|---:|---:|---|"
printf '%s\n' "${TABLE[@]}"
exit "$FAILED"
