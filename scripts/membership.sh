#!/usr/bin/env bash
# Membership across hosts: four validators in their own containers on a private bridge network,
# under a steady transaction load throughout. A fifth agency prepares its node from the genesis
# file alone (`dpx init`, in its own container, as docs/OPERATOR.md tells an operator), the node
# syncs as a full node, the agencies admit the agency and vote its node into the validator set
# (`dpx governance`), and it signs blocks (its key in later certificates). Then one original
# validator is voted out: from its effective height its signatures stop appearing and its node
# stops signing (it follows the chain as a full node through the peers that name it), and the
# chain goes on with the four. Then node2 rotates its validator key in place under load (a new
# key staged beside the old, a governed change, one restart): the old key signs up to the
# change, the new one from it, never both. At the end: every acknowledged transaction is
# committed exactly once at its height on every node, all nodes agree on every block id and
# state root (the removed node's shorter chain is a prefix), and `dpx audit replay` of the final
# chain from a stopped validator's home passes (the validator-set history is replayed with it).
#
#   scripts/membership.sh            the long form (more blocks under each set, ~6 minutes)
#   scripts/membership.sh --short    the CI form (under 5 minutes with the binaries built)
#   options: --keep                  leave the network running afterwards
#
# Needs root (chown of node homes to the image's user) and a Docker engine; without them the
# short form is skipped loudly (exit 0) and the long form fails. The image is built offline from
# the local binary (docker/build-image.sh). Environment: CARGO_TARGET_DIR,
# DPX_MEMBERSHIP_DIR (work dir, default $CARGO_TARGET_DIR/membership), DPX_MEMBERSHIP_SUBNET
# (default 172.30.88), DPX_MEMBERSHIP_NO_BUILD=1 (use the built binaries as they are).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SHORT=0 KEEP=0
while [ $# -gt 0 ]; do
  case "$1" in
    --short) SHORT=1 ;;
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

if [ "$(id -u)" != 0 ] || ! docker info >/dev/null 2>&1; then
  echo "membership.sh: SKIPPED: it needs root and a running Docker engine" >&2
  [ "$SHORT" = 1 ] && exit 0
  exit 1
fi
for tool in docker python3 curl; do
  command -v "$tool" >/dev/null || { echo "membership.sh needs $tool" >&2; exit 1; }
done

TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
WORK=${DPX_MEMBERSHIP_DIR:-$TARGET/membership}
SUBNET=${DPX_MEMBERSHIP_SUBNET:-172.30.88}
PREFIX=dpxmember
IMAGE=dpx:membership
DPX=$TARGET/debug/dpx
FAULTS=$TARGET/debug/faults
MEMBER=$TARGET/debug/membership
# Room for the approvals: nodes under load can be a dozen blocks apart, and each approval
# waits for its commit.
if [ "$SHORT" = 1 ]; then IN_BLOCKS=60 AFTER_BLOCKS=10; else IN_BLOCKS=90 AFTER_BLOCKS=60; fi
WAIT_S=120

NO_BUILD=${DPX_MEMBERSHIP_NO_BUILD:-0}
source scripts/lib/containers.sh
fail() { note "FAIL: $*"; FAILED=1; }
json() { python3 -c "import json,sys; v=json.load(sys.stdin); print(eval(sys.argv[1]))" "$1"; }
FAILED=0

dc() { (cd "$WORK/net" && "${DC[@]}" -p "$PREFIX" -f docker-compose.yml -f join.yml "$@"); }

build_binaries faults membership
build_image

LOAD_PID=
cleanup() {
  set +e
  stop_load "$LOAD_PID"
  if [ -f "$WORK/net/join.yml" ]; then
    keep_logs 0 1 2 3 4
    if [ "$KEEP" = 0 ]; then dc down -t 5 >/dev/null 2>&1; fi
  fi
}
trap cleanup EXIT

say "Four founding validators on $SUBNET.0/24 (docker/gen-network.sh)"
if [ -f "$WORK/net/join.yml" ]; then dc down -t 2 >/dev/null 2>&1 || true; fi
new_network 4 0 dpx-membership
node_key() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["nodes"][int(sys.argv[2])]["key"])' "$WORK/net/network.json" "$1"; }

# The fifth agency's machine: node4. Its operator has the genesis file and the founders' peer
# entries (KEY@ADDRESS), nothing else; it makes its keys on its own machine (docs/OPERATOR.md).
cat >"$WORK/net/join.yml" <<EOF
version: "2.4"
services:
  node4:
    image: $IMAGE
    container_name: $PREFIX-node4
    hostname: node4
    restart: "no"
    stop_grace_period: 30s
    volumes: ["./node4:/home/dpx"]
    networks:
      net: { ipv4_address: $(ip_of 4) }
EOF
PEERS=()
for i in 0 1 2 3; do PEERS+=(--peer "$(node_key "$i")@/ip4/$(ip_of "$i")/tcp/26656"); done
mkdir -p "$WORK/net/node4" && chown 10001:10001 "$WORK/net/node4"
cp "$WORK/net/genesis.json" "$WORK/genesis-published.json"
docker run --rm -v "$WORK/genesis-published.json:/tmp/genesis.json:ro" -v "$WORK/net/node4:/home/dpx" \
  "$IMAGE" init --genesis /tmp/genesis.json --moniker agency-e \
  --p2p-listen /ip4/0.0.0.0/tcp/26656 --p2p-advertise "/ip4/$(ip_of 4)/tcp/26656" \
  --rpc-listen 0.0.0.0:26657 "${PEERS[@]}" | sed 's/^/  /'
lift_rate_limits "$WORK/net/node4/config.toml"
NEW_KEY=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["public_key"])' "$WORK/net/node4/node_key.json")
"$DPX" keygen --out "$WORK/agency-e.json" >/dev/null
AGENCY_E=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["public_key"])' "$WORK/agency-e.json")
GONE_KEY=$(node_key 3)
note "node4 key $NEW_KEY, agency E $AGENCY_E; to be voted out: node3 $GONE_KEY"

dc up -d node0 node1 node2 node3 >/dev/null 2>&1 || { dc up -d node0 node1 node2 node3; exit 1; }
tip() { curl -s --max-time 3 "$(rpc_of "$1")/v1/status" | json 'v["height"]' 2>/dev/null || echo 0; }
tips() { for i in "$@"; do printf '%s ' "$(tip "$i")"; done; }
maxtip() { tips 0 1 2 3 4 | tr ' ' '\n' | sort -n | tail -1; }
# wait_past H NODE...: until each named node is past height H (fails after WAIT_S).
wait_past() {
  local h=$1 t0=$SECONDS i ok
  shift
  while :; do
    ok=1
    for i in "$@"; do [ "$(tip "$i")" -gt "$h" ] || ok=0; done
    [ "$ok" = 1 ] && return 0
    if [ $((SECONDS - t0)) -gt "$WAIT_S" ]; then note "not past $h within ${WAIT_S}s: tips $(tips "$@")"; return 1; fi
    sleep 0.5
  done
}
wait_past 2 0 1 2 3 || { echo "the network did not start" >&2; exit 1; }

say "Load: 4 accounts admit participants throughout (wait=commit), through node0-node2"
# The agencies that vote below keep their own nonces: the load runs on Agency 3's key and on
# three operators it admits first.
KEYS="$WORK/net/keys/agency-3.json,"
for i in 0 1 2; do
  "$DPX" keygen --out "$WORK/load-$i.json" >/dev/null
  pub=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["public_key"])' "$WORK/load-$i.json")
  "$DPX" tx admit --key "$WORK/net/keys/agency-3.json" --rpc "$(rpc_of 1)" \
    --json "{\"key\": \"$pub\", \"name\": \"load-$i\", \"roles\": [\"operator\"]}" >/dev/null
  KEYS="$KEYS$WORK/load-$i.json,"
done
RPCS_LOAD="$(rpc_of 0),$(rpc_of 1),$(rpc_of 2)"
"$FAULTS" load --rpc "$RPCS_LOAD" --key "${KEYS%,}" --acked "$WORK/acked" --stop "$WORK/stop" \
  2>"$WORK/load.log" &
LOAD_PID=$!

say "1. Agency E's node joins as a full node and syncs"
# Before any vote only the nodes that allow its key let it in: its sponsor (Agency 0) adds it
# to p2p.allow and restarts (docs/OPERATOR.md, "Joining"). The others let it in once
# governance has scheduled its key.
sed -i "s/^allow = \[\]/allow = [\"$NEW_KEY\"]/" "$WORK/net/node0/config.toml"
grep -q "$NEW_KEY" "$WORK/net/node0/config.toml" || { echo "could not allow node4 on node0" >&2; exit 1; }
docker restart -t 30 "$(ctr 0)" >/dev/null
dc up -d --no-deps node4 >/dev/null 2>&1 || { dc up -d --no-deps node4; exit 1; }
target=$(tip 1)
wait_past "$target" 4 || fail "node4 did not sync past $target"
note "synced: tips $(tips 0 1 2 3 4)"
set_now=$("$DPX" validator set --rpc "$(rpc_of 1)")
sed 's/^/  /' <<<"$set_now"
grep -q "$NEW_KEY" <<<"$set_now" && fail "node4 is in the set before any vote"
[ "$(curl -s "$(rpc_of 4)/v1/status" | json 'v["validator"]')" = False ] || fail "node4 claims to sign before its height"

say "2. The agencies admit Agency E (> 2/3 of 4: three approvals)"
gov() { "$DPX" governance "$@"; }
govj() { "$DPX" --output json governance "$@"; }
# executed PID: the proposal's status on node1 becomes executed (node1 may be a block or more
# behind the node that committed the last approval).
executed() {
  local st t0=$SECONDS
  while [ $((SECONDS - t0)) -lt 30 ]; do
    st=$(govj show "$1" --rpc "$(rpc_of 1)" 2>/dev/null | json 'v["proposal"]["status"]') || st=
    [ "$st" = executed ] && return 0
    sleep 0.5
  done
  note "proposal $1 is '$st' on node1"; return 1
}
out=$(govj admit-agency --key "$WORK/net/keys/agency-0.json" --agency "$AGENCY_E" --name "Agency E" --rpc "$(rpc_of 1)")
PID=$(json 'v["proposal"]["id"]' <<<"$out")
gov show "$PID" --rpc "$(rpc_of 1)" | sed 's/^/  /'
for a in 1 2; do gov approve "$PID" --key "$WORK/net/keys/agency-$a.json" --rpc "$(rpc_of "$a")" | sed 's/^/  /' || fail "approval by agency $a"; done
executed "$PID" || fail "Agency E was not admitted"

say "3. Vote node4 into the validator set (> 2/3 of 5 agencies: four approvals)"
out=$(govj propose-validator --key "$WORK/net/keys/agency-0.json" --add "$NEW_KEY" --name "Agency E node" \
  --power 10 --effective-height $(($(maxtip) + IN_BLOCKS)) --rpc "$(rpc_of 1)")
PID=$(json 'v["proposal"]["id"]' <<<"$out")
JOIN_H=$(json 'v["proposal"]["action"]["update_validators"]["effective_height"]' <<<"$out")
gov show "$PID" --rpc "$(rpc_of 1)" | sed 's/^/  /'
for a in 1 2; do gov approve "$PID" --key "$WORK/net/keys/agency-$a.json" --rpc "$(rpc_of "$a")" | sed 's/^/  /' || fail "approval by agency $a"; done
gov approve "$PID" --key "$WORK/agency-e.json" --rpc "$(rpc_of 4)" | sed 's/^/  /' || fail "approval by agency E"
executed "$PID" || fail "the validator update was not executed"
"$DPX" validator pending --rpc "$(rpc_of 4)" | sed 's/^/  /'
END1=$((JOIN_H + AFTER_BLOCKS))
wait_past "$END1" 0 1 2 3 4 || fail "the chain did not pass $END1 with node4 in the set"
set_now=$("$DPX" validator set --rpc "$(rpc_of 4)")
sed 's/^/  /' <<<"$set_now"
grep -q "$NEW_KEY" <<<"$set_now" || fail "node4 is not in the set after height $JOIN_H"
[ "$(curl -s "$(rpc_of 4)/v1/status" | json 'v["validator"]')" = True ] || fail "node4 does not say it signs"
read -r _ n first last < <("$MEMBER" signers --rpc "$(rpc_of 0)" --from 1 --to "$END1" --key "$NEW_KEY")
note "node4 signed the certificates of $n heights in 1..$END1 (first $first, last $last; in the set from $JOIN_H)"
[ "$n" -gt 0 ] || fail "node4's key appears in no certificate"
[ "$first" = - ] || [ "$first" -ge "$JOIN_H" ] || fail "node4 signed height $first, before its height $JOIN_H"

say "4. Vote node3 out (Agency 3 does not approve; four of five do)"
out=$(govj propose-validator --key "$WORK/net/keys/agency-0.json" --remove "$GONE_KEY" \
  --effective-height $(($(maxtip) + IN_BLOCKS)) --rpc "$(rpc_of 1)")
PID=$(json 'v["proposal"]["id"]' <<<"$out")
LEAVE_H=$(json 'v["proposal"]["action"]["update_validators"]["effective_height"]' <<<"$out")
for a in 1 2; do gov approve "$PID" --key "$WORK/net/keys/agency-$a.json" --rpc "$(rpc_of "$a")" | sed 's/^/  /' || fail "approval by agency $a"; done
gov approve "$PID" --key "$WORK/agency-e.json" --rpc "$(rpc_of 4)" | sed 's/^/  /' || fail "approval by agency E"
"$DPX" validator pending --rpc "$(rpc_of 0)" | sed 's/^/  /'
END2=$((LEAVE_H + AFTER_BLOCKS))
wait_past "$END2" 0 1 2 4 || fail "the chain did not pass $END2 without node3"
"$DPX" validator set --rpc "$(rpc_of 0)" | sed 's/^/  /'
read -r _ n3 first3 last3 < <("$MEMBER" signers --rpc "$(rpc_of 0)" --from "$JOIN_H" --to "$END2" --key "$GONE_KEY")
note "node3 signed $n3 heights in $JOIN_H..$END2 (last $last3; out from $LEAVE_H)"
[ "$last3" = - ] || [ "$last3" -lt "$LEAVE_H" ] || fail "node3's signature appears at $last3, after its removal at $LEAVE_H"
read -r _ n4 _ last4 < <("$MEMBER" signers --rpc "$(rpc_of 1)" --from "$LEAVE_H" --to "$END2" --key "$NEW_KEY")
note "node4 signed $n4 heights in $LEAVE_H..$END2 (last $last4)"
note "tips $(tips 0 1 2 3 4)"
[ "$(curl -s "$(rpc_of 3)/v1/status" | json 'v["validator"]')" = False ] || fail "node3 still says it signs"

say "5. node2 rotates its validator key in place, under load (docs/OPERATOR.md)"
OLD2=$(node_key 2)
"$DPX" keygen --out "$WORK/net/node2/node_key.next.json" >/dev/null
chown 10001:10001 "$WORK/net/node2/node_key.next.json" && chmod 0600 "$WORK/net/node2/node_key.next.json"
NEW2=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["public_key"])' "$WORK/net/node2/node_key.next.json")
out=$(govj propose-validator --key "$WORK/net/keys/agency-0.json" --remove "$OLD2" --add "$NEW2" \
  --name "Agency 2 node (new key)" --power 10 --effective-height $(($(maxtip) + IN_BLOCKS)) --rpc "$(rpc_of 1)")
PID=$(json 'v["proposal"]["id"]' <<<"$out")
ROT_H=$(json 'v["proposal"]["action"]["update_validators"]["effective_height"]' <<<"$out")
for a in 1 2; do gov approve "$PID" --key "$WORK/net/keys/agency-$a.json" --rpc "$(rpc_of "$a")" | sed 's/^/  /' || fail "approval by agency $a"; done
gov approve "$PID" --key "$WORK/agency-e.json" --rpc "$(rpc_of 4)" | sed 's/^/  /' || fail "approval by agency E"
executed "$PID" || fail "the rotation was not scheduled"
docker restart -t 30 "$(ctr 2)" >/dev/null
wait_past "$(tip 1)" 2 || fail "node2 did not come back after its restart"
st2=$(curl -s "$(rpc_of 2)/v1/status")
[ "$(json 'v["node_key"]' <<<"$st2")" = "$NEW2" ] || fail "node2 is not known by its new key on the network"
[ "$(json 'v["signing_key"]' <<<"$st2")" = "$OLD2" ] || fail "node2 does not sign with its old key before $ROT_H"
END3=$((ROT_H + AFTER_BLOCKS))
wait_past "$END3" 0 1 2 4 || fail "the chain did not pass $END3 after the rotation"
[ "$(curl -s "$(rpc_of 2)/v1/status" | json 'v["signing_key"]')" = "$NEW2" ] || fail "node2 does not sign with its new key"
read -r _ no firsto lasto < <("$MEMBER" signers --rpc "$(rpc_of 0)" --from "$LEAVE_H" --to "$END3" --key "$OLD2")
read -r _ nn firstn lastn < <("$MEMBER" signers --rpc "$(rpc_of 0)" --from "$LEAVE_H" --to "$END3" --key "$NEW2")
note "node2's old key signed $no heights in $LEAVE_H..$END3 (last $lasto), its new key $nn (first $firstn); rotation at $ROT_H"
[ "$lasto" = - ] || [ "$lasto" -lt "$ROT_H" ] || fail "the old key signed height $lasto, at or after $ROT_H"
[ "$nn" -gt 0 ] || fail "the new key signed no certificate"
[ "$firstn" -ge "$ROT_H" ] || fail "the new key signed height $firstn, before $ROT_H"

say "Consistency: exactly-once commitment, agreement, and audit replay"
touch "$WORK/stop"
wait "$LOAD_PID" 2>/dev/null || true
LOAD_PID=
acked=$(wc -l <"$WORK/acked")
RPCS_ALL="$(rpc_of 0),$(rpc_of 1),$(rpc_of 2),$(rpc_of 4)"
if out=$("$FAULTS" check --rpc "$RPCS_ALL" --acked "$WORK/acked" --state "$WORK/check" --wait-s 60 2>&1); then
  note "$out"
else
  note "$out"; fail "consistency check"
fi
dups=$(awk '{ print $2 }' "$WORK/acked" | sort | uniq -d | wc -l)
[ "$dups" = 0 ] || fail "$dups transactions acknowledged twice"
"$MEMBER" prefix --rpc "$(rpc_of 0),$(rpc_of 1),$(rpc_of 2),$(rpc_of 3),$(rpc_of 4)" | sed 's/^/  /' \
  || fail "a node's chain diverges"
# A fact proved after the three changes verifies against the published genesis file alone:
# the bundle carries the validator-set history, each change certified by the set it replaced
# (SPEC.md §11.3).
AGENCY1=$(json 'v["public_key"]' <"$WORK/net/keys/agency-1.json")
if "$DPX" audit prove participants "$AGENCY1" --rpc "$(rpc_of 0)" >"$WORK/proof.json" 2>"$WORK/prove.err" \
  && "$DPX" audit verify "$WORK/proof.json" --genesis "$WORK/genesis-published.json" >"$WORK/verify.out" 2>&1; then
  HIST=$(json 'len(v["bundle"]["validator_history"])' <"$WORK/proof.json")
  note "agency 1's record, proved by node0, verifies against the genesis file; the bundle carries $HIST validator-set changes"
  [ "$HIST" -ge 3 ] || fail "the bundle carries $HIST validator-set changes, expected at least 3"
else
  cat "$WORK/prove.err" "$WORK/verify.out" 2>/dev/null | tail -5 | sed 's/^/  /'
  fail "a proof made after the validator-set changes does not verify against the genesis file"
fi
# A stopped validator's home, replayed from genesis (docs/OPERATOR.md, "Audit").
docker stop -t 30 "$(ctr 1)" >/dev/null
if "$DPX" audit replay --genesis "$WORK/genesis-published.json" --from-home "$WORK/net/node1" --quiet \
  >"$WORK/replay.out" 2>&1; then
  note "audit replay of node1's chain:"
  sed -n '1,12p' "$WORK/replay.out" | sed 's/^/    /'
  # The replayed validator-set history names both: node4 from its height, node3 up to its last.
  grep -q "${NEW_KEY:0:16} power 10: " "$WORK/replay.out" \
    || fail "the replay's validator history lacks node4"
  grep -q "${GONE_KEY:0:16} power 10: .* of $((LEAVE_H - 1)) heights" "$WORK/replay.out" \
    || fail "the replay does not show node3 validating heights 1..$((LEAVE_H - 1)) only"
else
  tail -5 "$WORK/replay.out" | sed 's/^/  /'; fail "audit replay"
fi

say "Result ($([ "$SHORT" = 1 ] && echo short || echo long) form): $acked transactions acknowledged"
note "node4 joined at $JOIN_H and signed $n certificates up to $END1; node3 left at $LEAVE_H (last signed ${last3}); node2 rotated its key at $ROT_H (old key last ${lasto}, new key first ${firstn}); work dir $WORK"
[ "$FAILED" = 0 ] && echo "PASS" || echo "FAIL"
exit "$FAILED"
