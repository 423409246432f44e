#!/usr/bin/env bash
# Network-fault suite: a 4-validator + 1 auditor dpx network in Docker containers on a private
# bridge network, under a steady transaction load, put through partitions, crashes, restarts,
# latency/loss and clock skew. After every scenario it checks that all five nodes have the same
# block id and state root at every height, that every transaction acknowledged as committed is
# committed on every node, and that no node holds double-signing evidence.
#
#   scripts/faults.sh            the full suite (~10 minutes)
#   scripts/faults.sh --short    the CI version (same scenarios, short faults; under 3 minutes)
#   options: --only s1,s2,...    run only these scenarios (names as in the table)
#            --keep              leave the network running afterwards
#
# Needs: root (nsenter/iptables into container network namespaces, chown of node homes), Docker
# Engine + docker-compose (or the compose plugin), python3, gcc (clock skew; skipped without it).
# Faults are injected from the host, inside each container's network namespace: iptables DROP
# rules for partitions, `-m statistic` for loss and an NFQUEUE delayer (tests/faults/netem.py)
# for latency, because this kernel has no netem qdisc. The image needs no tools and no
# NET_ADMIN. Environment: CARGO_TARGET_DIR, DPX_FAULTS_DIR (work dir, default
# $CARGO_TARGET_DIR/faults), DPX_FAULTS_SUBNET (default 172.30.77), DPX_FAULTS_NO_BUILD=1.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SHORT=0 KEEP=0 ONLY=
while [ $# -gt 0 ]; do
  case "$1" in
    --short) SHORT=1 ;;
    --keep) KEEP=1 ;;
    --only) ONLY=$2; shift ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
WORK=${DPX_FAULTS_DIR:-$TARGET/faults}
SUBNET=${DPX_FAULTS_SUBNET:-172.30.77}
PREFIX=dpxfaults
IMAGE=dpx:faults
DPX=$TARGET/debug/dpx
FAULTS=$TARGET/debug/faults
NODES=(0 1 2 3 4)      # 0-3 validators, 4 the auditor's full node
VALIDATORS=(0 1 2 3)
if [ "$SHORT" = 1 ]; then
  PART_S=8 MINOR_S=8 PROP_S=6 KILL_TOTAL_S=30 NETEM_S=15 BASE_S=6 SKEW_S=12 RESTART_PAUSE_S=0
else
  PART_S=30 MINOR_S=30 PROP_S=20 KILL_TOTAL_S=120 NETEM_S=60 BASE_S=20 SKEW_S=60 RESTART_PAUSE_S=3
fi
KILL_EVERY_S=10
HEAL_LIMIT_S=30        # the issue: after healing a 2/2 split the chain resumes within 30 s
CATCHUP_LIMIT_S=90

NO_BUILD=${DPX_FAULTS_NO_BUILD:-0}
source scripts/lib/containers.sh
RPCS=$(for i in "${NODES[@]}"; do printf '%s,' "$(rpc_of "$i")"; done)
RPCS=${RPCS%,}
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

dc() { (cd "$WORK/net" && "${DC[@]}" -p "$PREFIX" "$@"); }

for tool in docker nsenter iptables python3; do
  command -v "$tool" >/dev/null || { echo "faults.sh needs $tool" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "faults.sh needs root (nsenter and iptables into the containers)" >&2; exit 1; }

# ------------------------------------------------------------------ setup

build_binaries faults
build_image

LOAD_PID= NETEM_PIDS=()
cleanup() {
  set +e
  for p in "${NETEM_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
  stop_load "$LOAD_PID"
  if [ -d "$WORK/net" ]; then
    keep_logs "${NODES[@]}"
    if [ "$KEEP" = 0 ]; then dc down -t 5 >/dev/null 2>&1; fi
  fi
}
trap cleanup EXIT

say "Creating the network in $WORK (subnet $SUBNET.0/24)"
new_network 4 1 dpx-faults
SKEW_OK=0
if command -v gcc >/dev/null && gcc -shared -fPIC -O2 -o "$WORK/skew.so" tests/faults/skew.c -ldl 2>/dev/null; then
  SKEW_OK=1
  chmod 0755 "$WORK/skew.so"
fi
dc up -d >/dev/null 2>&1 || { dc up -d; exit 1; }

tips() { "$FAULTS" tips --rpc "$RPCS"; }
maxtip() { tips | tr ' ' '\n' | sort -n | tail -1; }
tip_of() { tips | cut -d' ' -f$(($1 + 1)); }
# Wait until every node is past height $1; prints the seconds it took, fails after $2 s.
wait_all_past() {
  local h=$1 limit=$2 t0 t
  t0=$(now)
  while :; do
    t=$(tips)
    if awk -v h="$h" '{ for (i = 1; i <= NF; i++) if ($i <= h) exit 1 }' <<<"$t"; then
      secs "$t0" "$(now)"; return 0
    fi
    if awk -v a="$t0" -v b="$(now)" -v l="$limit" 'BEGIN { exit !(b - a > l) }'; then
      note "not all nodes passed height $h within ${limit}s: tips $t" >&2
      echo "-"; return 1
    fi
    sleep 0.25
  done
}

note "waiting for the first blocks"
wait_all_past 2 60 >/dev/null || { echo "the network did not start" >&2; exit 1; }
note "tips $(tips)"

say "Starting the load (4 agencies, admit transactions, wait=commit)"
KEYS=$(for i in "${VALIDATORS[@]}"; do printf '%s,' "$WORK/net/keys/agency-$i.json"; done)
"$FAULTS" load --rpc "$RPCS" --key "${KEYS%,}" --acked "$WORK/acked" --stop "$WORK/stop" \
  2>"$WORK/load.log" &
LOAD_PID=$!
sleep 3
note "acknowledged so far: $(wc -l <"$WORK/acked")"

# ------------------------------------------------------------------ fault primitives

pid_of() { docker inspect -f '{{.State.Pid}}' "$(ctr "$1")"; }
ns() { local i=$1; shift; nsenter -t "$(pid_of "$i")" -n "$@"; }
# block NODE IP...: in NODE's namespace, drop every packet from and to these addresses. One
# nsenter per node; a restart makes a new namespace, so the DPXFAULT chain is (re)created here.
block() {
  local i=$1 ip script
  shift
  script="iptables -N DPXFAULT 2>/dev/null;
    iptables -C INPUT -j DPXFAULT 2>/dev/null || iptables -I INPUT -j DPXFAULT;
    iptables -C OUTPUT -j DPXFAULT 2>/dev/null || iptables -I OUTPUT -j DPXFAULT;"
  for ip in "$@"; do script="$script iptables -A DPXFAULT -s $ip -j DROP; iptables -A DPXFAULT -d $ip -j DROP;"; done
  nsenter -t "$(pid_of "$i")" -n sh -c "$script"
}
# partition "0 1 4" "2 3": the two sides cannot reach each other. All nodes at once, in parallel.
partition() {
  local a=$1 b=$2 i j ips pids=()
  for i in $a; do
    ips=$(for j in $b; do ip_of "$j"; done)
    # shellcheck disable=SC2086
    block "$i" $ips & pids+=($!)
  done
  for j in $b; do
    ips=$(for i in $a; do ip_of "$i"; done)
    # shellcheck disable=SC2086
    block "$j" $ips & pids+=($!)
  done
  wait "${pids[@]}"
}
heal() {
  local i pids=()
  for i in "${NODES[@]}"; do (ns "$i" iptables -F DPXFAULT 2>/dev/null || true) & pids+=($!); done
  wait "${pids[@]}"
}
netem_on() {
  local i
  for i in "${NODES[@]}"; do
    ns "$i" iptables -N DPXNETEM 2>/dev/null || true
    ns "$i" iptables -C OUTPUT -j DPXNETEM 2>/dev/null || ns "$i" iptables -I OUTPUT -j DPXNETEM
    # Only peer-to-peer traffic: the host's RPC requests (load and checks) are not the network
    # under test. 1% loss on each node's egress, then 100 ms +- 20 ms delay.
    ns "$i" iptables -A DPXNETEM -p tcp -m multiport --ports 26656 -m statistic --mode random --probability 0.01 -j DROP
    ns "$i" iptables -A DPXNETEM -p tcp -m multiport --ports 26656 -j NFQUEUE --queue-num 0 --queue-bypass
    nsenter -t "$(pid_of "$i")" -n python3 tests/faults/netem.py --queue 0 --delay-ms 100 --jitter-ms 20 \
      >"$WORK/netem-node$i.log" 2>&1 &
    NETEM_PIDS+=($!)
  done
}
netem_off() {
  local i p
  for i in "${NODES[@]}"; do ns "$i" iptables -F DPXNETEM 2>/dev/null || true; done
  for p in "${NETEM_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${NETEM_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  NETEM_PIDS=()
}
# Commit throughput and latency of acknowledgements stamped in [from, to) (unix seconds).
ack_stats() {
  awk -v a="$1" -v b="$2" '$1 >= a * 1000 && $1 < b * 1000 { n++; print $4 }' "$WORK/acked" | sort -n \
    | awk -v d="$(secs "$1" "$2")" '{ v[NR] = $1 } END {
        if (NR == 0) { printf "0 tx/s"; exit }
        printf "%.1f tx/s, commit latency p50 %d ms p95 %d ms", NR / d, v[int(NR * 0.5) + (NR * 0.5 > int(NR * 0.5))], v[int(NR * 0.95) + (NR * 0.95 > int(NR * 0.95))] }'
}
run_check() {
  local out
  if out=$("$FAULTS" check --rpc "$RPCS" --acked "$WORK/acked" --state "$WORK/check" --wait-s "$CATCHUP_LIMIT_S" 2>&1); then
    note "$out"; return 0
  fi
  note "$out"; return 1
}

ROWS=() FAILED=0
# row NAME PASS|FAIL BLOCKS FAULT_S RECOVER_S NOTES
row() {
  ROWS+=("$(printf '%-22s %-5s %8s %8s %9s  %s' "$1" "$2" "$3" "$4" "$5" "$6")")
  [ "$2" = PASS ] || [ "$2" = SKIP ] || FAILED=1
  note "result: $2 ($6)"
}
wanted() { [ -z "$ONLY" ] || [[ ",$ONLY," == *",$1,"* ]]; }
# Finish a scenario: wait for every node to pass the height at the end of the fault, then check.
# finish NAME OK(0/1) H_START H_END FAULT_S NOTES
finish() {
  local name=$1 ok=$2 h0=$3 h1=$4 fault_s=$5 notes=$6 rec
  if ! rec=$(wait_all_past "$h1" "$7"); then ok=0; notes="$notes; no recovery within $7 s"; fi
  if ! run_check; then ok=0; notes="$notes; consistency check FAILED"; fi
  row "$name" "$([ "$ok" = 1 ] && echo PASS || echo FAIL)" "$((h1 - h0))" "$fault_s" "$rec" "$notes"
}

# ------------------------------------------------------------------ scenarios

if wanted partition-2-2; then
  say "1. Partition 2/2 ({node0, node1, auditor} | {node2, node3}) for ${PART_S}s"
  t0=$(now)
  partition "0 1 4" "2 3"
  h0=$(maxtip)
  sleep 2; hs=$(maxtip)   # a height whose votes were already in flight may still complete
  sleep $((PART_S - 2))
  h1=$(maxtip); note "tips before heal: $(tips)"
  heal; fault_s=$(secs "$t0" "$(now)")
  ok=1 notes="cut at $h0, stalled at $hs"
  [ "$h1" = "$hs" ] || { ok=0; notes="$notes; a side committed $((h1 - hs)) blocks while split"; }
  finish partition-2-2 "$ok" "$h0" "$h1" "$fault_s" "$notes" "$HEAL_LIMIT_S"
fi

if wanted partition-3-1; then
  say "2. Partition 3/1 (node3 cut off) for ${MINOR_S}s"
  t0=$(now)
  partition "0 1 2 4" "3"
  h0=$(maxtip)
  sleep 2; lone0=$(tip_of 3)   # it may still finish a height whose votes it already had
  sleep $((MINOR_S - 2))
  h1=$(maxtip); lone1=$(tip_of 3); note "tips before heal: $(tips)"
  heal; fault_s=$(secs "$t0" "$(now)")
  ok=1 notes="majority +$((h1 - h0)), node3 +$((lone1 - lone0))"
  [ "$((h1 - h0))" -ge 2 ] || { ok=0; notes="$notes; the three did not keep committing"; }
  [ "$lone1" = "$lone0" ] || { ok=0; notes="$notes; the lone node committed alone"; }
  finish partition-3-1 "$ok" "$h0" "$h1" "$fault_s" "$notes" "$CATCHUP_LIMIT_S"
fi

if wanted proposer-cut; then
  say "3. The current proposer cut off mid-round for ${PROP_S}s"
  read -r victim height < <("$FAULTS" next-proposer --rpc "$RPCS")
  others=$(for i in "${NODES[@]}"; do [ "$i" = "$victim" ] || printf '%s ' "$i"; done)
  t0=$(now)
  partition "$others" "$victim"
  h0=$(maxtip)
  note "cut off node$victim while it proposes height $height"
  sleep "$PROP_S"
  h1=$(maxtip); note "tips before heal: $(tips)"
  heal; fault_s=$(secs "$t0" "$(now)")
  ok=1 notes="node$victim proposing h$height; others +$((h1 - h0))"
  [ "$((h1 - h0))" -ge 2 ] || { ok=0; notes="$notes; the others did not keep committing"; }
  finish proposer-cut "$ok" "$h0" "$h1" "$fault_s" "$notes" "$CATCHUP_LIMIT_S"
fi

if wanted kill-9; then
  say "4. SIGKILL one validator every ${KILL_EVERY_S}s for ${KILL_TOTAL_S}s, restart each time"
  h0=$(maxtip); t0=$(now); k=0
  while awk -v a="$t0" -v b="$(now)" -v l="$KILL_TOTAL_S" 'BEGIN { exit !(b - a < l) }'; do
    v=${VALIDATORS[$((k % 4))]}
    docker kill -s KILL "$(ctr "$v")" >/dev/null
    sleep 1
    docker start "$(ctr "$v")" >/dev/null
    note "killed and restarted node$v (tips $(tips))"
    k=$((k + 1))
    next=$(awk -v a="$t0" -v k="$k" -v e="$KILL_EVERY_S" 'BEGIN { printf "%.3f", a + k * e }')
    while awk -v n="$next" -v b="$(now)" 'BEGIN { exit !(b < n) }'; do sleep 0.2; done
  done
  h1=$(maxtip); fault_s=$(secs "$t0" "$(now)")
  ok=1 notes="$k kills"
  [ "$((h1 - h0))" -ge 2 ] || { ok=0; notes="$notes; the chain stopped"; }
  finish kill-9 "$ok" "$h0" "$h1" "$fault_s" "$notes" "$CATCHUP_LIMIT_S"
fi

if wanted rolling-restart; then
  say "5. Rolling restart of the four validators (SIGTERM), one at a time"
  h0=$(maxtip); t0=$(now); ok=1 notes=
  for v in "${VALIDATORS[@]}"; do
    ts=$(now)
    docker restart -t 30 "$(ctr "$v")" >/dev/null
    target=$(maxtip)
    if c=$(wait_all_past "$target" "$CATCHUP_LIMIT_S"); then
      notes="$notes node$v $(secs "$ts" "$(now)")s"
    else
      ok=0; notes="$notes node$v stuck"
    fi
    sleep "$RESTART_PAUSE_S"
  done
  h1=$(maxtip); fault_s=$(secs "$t0" "$(now)")
  [ "$((h1 - h0))" -ge 2 ] || { ok=0; notes="$notes; the chain stopped"; }
  finish rolling-restart "$ok" "$h0" "$h1" "$fault_s" "restart-to-caught-up:$notes" "$CATCHUP_LIMIT_S"
fi

if wanted netem; then
  say "6. 100 ms ± 20 ms latency and 1% loss between all nodes for ${NETEM_S}s"
  b0=$(now); hb0=$(maxtip); sleep "$BASE_S"; b1=$(now); hb1=$(maxtip)
  base="$(ack_stats "$b0" "$b1"), $(awk -v h="$((hb1 - hb0))" -v d="$(secs "$b0" "$b1")" 'BEGIN { printf "%.1f blocks/s", h / d }')"
  note "baseline: $base"
  h0=$(maxtip); t0=$(now)
  netem_on
  sleep "$NETEM_S"
  h1=$(maxtip); t1=$(now)
  netem_off; fault_s=$(secs "$t0" "$t1")
  # The first seconds carry transactions submitted before the fault: measure from +2 s.
  during="$(ack_stats "$(awk -v a="$t0" 'BEGIN { printf "%.3f", a + 2 }')" "$t1"), $(awk -v h="$((h1 - h0))" -v d="$fault_s" 'BEGIN { printf "%.1f blocks/s", h / d }')"
  note "under netem: $during"
  ok=1
  [ "$((h1 - h0))" -ge 2 ] || ok=0
  finish netem "$ok" "$h0" "$h1" "$fault_s" "netem: $during | baseline: $base" "$CATCHUP_LIMIT_S"
fi

skew_run() {
  local name=$1 ms=$2 key h0 t0 h1 fault_s ok notes proposed since
  say "7. node3's clock skewed by $ms ms for ${SKEW_S}s"
  if [ "$SKEW_OK" != 1 ]; then row "$name" SKIP - - - "no gcc to build the LD_PRELOAD clock shim"; return; fi
  cat >"$WORK/net/skew.yml" <<EOF
version: "2.4"
services:
  node3:
    environment: { LD_PRELOAD: /usr/local/lib/dpx-skew.so, DPX_CLOCK_SKEW_MS: "$ms" }
    volumes: ["$WORK/skew.so:/usr/local/lib/dpx-skew.so:ro"]
EOF
  key=$(curl -s --noproxy '*' "$(rpc_of 3)/v1/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["node_key"])')
  dc -f docker-compose.yml -f skew.yml up -d --no-deps node3 >/dev/null 2>&1
  h0=$(maxtip); t0=$(now); since=$(date +%s)
  sleep "$SKEW_S"
  h1=$(maxtip)
  proposed=$(for h in $(seq $((h0 + 1)) "$h1"); do curl -s --noproxy '*' "$(rpc_of 0)/v1/blocks/$h"; echo; done \
    | python3 -c 'import json,sys
k=sys.argv[1]; print(sum(1 for l in sys.stdin if l.strip() and json.loads(l)["header"]["proposer"] == k))' "$key")
  local refused=0 i n
  for i in "${NODES[@]}"; do
    n=$(docker logs --since "$since" "$(ctr "$i")" 2>&1 | grep -c "ahead of our clock" || true)
    refused=$((refused + n))
  done
  dc -f docker-compose.yml up -d --no-deps node3 >/dev/null 2>&1
  fault_s=$(secs "$t0" "$(now)")
  ok=1 notes="blocks proposed by node3 while skewed: $proposed; proposals refused as 'ahead of our clock' (all nodes' logs): $refused"
  [ "$((h1 - h0))" -ge 2 ] || { ok=0; notes="$notes; the chain stopped"; }
  finish "$name" "$ok" "$h0" "$h1" "$fault_s" "$notes" "$CATCHUP_LIMIT_S"
}
if wanted clock-skew+20s; then skew_run clock-skew+20s 20000; fi
if wanted clock-skew-20s && [ "$SHORT" = 0 ]; then skew_run clock-skew-20s -20000; fi

# ------------------------------------------------------------------ report

touch "$WORK/stop"
wait "$LOAD_PID" 2>/dev/null || true
LOAD_PID=
say "Result ($([ "$SHORT" = 1 ] && echo short || echo full) run, $(wc -l <"$WORK/acked") transactions acknowledged, final tips $(tips))"
printf '%-22s %-5s %8s %8s %9s  %s\n' scenario result blocks fault_s recover_s notes
for r in "${ROWS[@]}"; do echo "$r"; done
note "work dir: $WORK (load log, acknowledgements, check state; node logs in logs/ after teardown)"
exit "$FAILED"
