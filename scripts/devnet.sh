#!/usr/bin/env bash
# The one-command devnet: build dpx in release, start a 4-validator network on this machine and
# run a narrated demo of the brief's honest-resume flow ("one use, one authorization").
#
#   scripts/devnet.sh          build, start, run the demo, leave the network running
#   scripts/devnet.sh stop     stop the network
#   scripts/devnet.sh status   show each node's height
#
# Environment: DPX_DEVNET_DIR (default ./devnet), DPX_BASE_PORT (default 26650: node i serves
# RPC on 26657 + 10 i), DPX_PROFILE (release, or debug for a quicker build).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DIR=${DPX_DEVNET_DIR:-$ROOT/devnet}
BASE=${DPX_BASE_PORT:-26650}
PROFILE=${DPX_PROFILE:-release}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
# DPX_BIN: use an already built binary and skip the build (the test suite does this).
DPX=${DPX_BIN:-$TARGET/$PROFILE/dpx}
RPC="http://127.0.0.1:$((BASE + 7))"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
step() { printf '  -> %s\n' "$*"; }

stop() {
  if [ -d "$DIR" ]; then
    for f in "$DIR"/node*/pid; do
      [ -f "$f" ] || continue
      pid=$(cat "$f")
      if kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid"; fi
      rm -f "$f"
    done
  fi
  echo "devnet stopped"
}

status() {
  for i in 0 1 2 3; do
    printf 'node%s: ' "$i"
    "$DPX" status --rpc "http://127.0.0.1:$((BASE + 10 * i + 7))" 2>/dev/null || echo "not running"
  done
}

case "${1:-up}" in
  stop) stop; exit 0 ;;
  status) status; exit 0 ;;
  up) ;;
  *) echo "usage: $0 [up|stop|status]" >&2; exit 2 ;;
esac

source scripts/prereqs.sh
command -v python3 >/dev/null || apt_install python3

if [ -z "${DPX_BIN:-}" ]; then
  say "Building dpx ($PROFILE; the first build compiles RocksDB and takes a while)"
  if [ "$PROFILE" = release ]; then
    cargo build --release --locked -p dpx-node --bin dpx
  else
    cargo build --locked -p dpx-node --bin dpx
  fi
fi

say "Creating a 4-validator network in $DIR"
if [ -d "$DIR" ]; then stop >/dev/null; rm -rf "$DIR"; fi
"$DPX" testnet init --validators 4 --out "$DIR" --base-port "$BASE" --chain-id dpx-devnet

say "Starting the validators"
for i in 0 1 2 3; do
  nohup "$DPX" node start --home "$DIR/node$i" >"$DIR/node$i/node.log" 2>&1 &
  echo $! >"$DIR/node$i/pid"
  step "node$i pid $(cat "$DIR/node$i/pid"), RPC http://127.0.0.1:$((BASE + 10 * i + 7)), log $DIR/node$i/node.log"
done

# JSON field extraction for the demo (python3 is everywhere dpx builds).
jget() { python3 -c 'import json,sys; v=json.load(sys.stdin)
for p in sys.argv[1].split("."):
    v = v[int(p)] if p.isdigit() else v[p]
print(v if not isinstance(v,(dict,list)) else json.dumps(v))' "$1"; }
# The value of an event attribute in a committed transaction's receipt.
attr() { python3 -c 'import json,sys; v=json.load(sys.stdin)
for e in v["receipt"]["events"]:
    for a in e["attrs"]:
        if a["key"] == sys.argv[1]:
            print(a["value"]); sys.exit(0)
sys.exit("no attribute " + sys.argv[1])' "$1"; }

for _ in $(seq 1 240); do
  h=$("$DPX" status --rpc "$RPC" --output json 2>/dev/null | jget height 2>/dev/null || echo 0)
  [ "${h:-0}" -ge 1 ] && break
  sleep 0.5
done
if [ "${h:-0}" -lt 1 ]; then
  echo "the network did not produce a block within 2 minutes; the end of node0's log:" >&2
  tail -n 30 "$DIR/node0/node.log" >&2
  exit 1
fi
step "the chain is live at height $h"

K="$DIR/demo-keys"
mkdir -p "$K"
for who in employer provider applicant regulator rater shady auditor registrar thief bank enclave; do
  "$DPX" keygen --out "$K/$who.json" >/dev/null
done
pub() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["public_key"])' "$K/$1.json"; }
AG="$DIR/keys/agency-0.json"
tx() { "$DPX" tx "$@" --rpc "$RPC" --output json; }

say "Agency 0 admits the marketplace's participants"
for who in employer:consumer provider:provider regulator:regulator rater:rating_body shady:consumer auditor:auditor; do
  name=${who%%:*}; role=${who##*:}
  tx admit --key "$AG" --json "{\"key\": \"$(pub "$name")\", \"name\": \"$name\", \"roles\": [\"$role\"]}" >/dev/null
  step "admitted $name as $role"
done

say "The agencies admit an identity service as registrar (governance: more than 2/3 of them)"
PROPOSAL=$(tx propose --key "$AG" --json "{\"action\": {\"admit_registrar\": {\"key\": \"$(pub registrar)\", \"name\": \"Identity Service\"}}}" | attr proposal)
step "agency 0 proposed $PROPOSAL"
for i in 1 2; do
  tx approve --key "$DIR/keys/agency-$i.json" --proposal "$PROPOSAL" >/dev/null
  step "agency $i approved"
done

say "The registrar enrols the applicant: a keyed commitment of the ID number, bound to the phone's key"
python3 -c 'import secrets; print(secrets.token_hex(32))' >"$K/registrar.secret"
SUBJECT=$("$DPX" hash --keyed --key-file "$K/registrar.secret" "110101199003071234")
"$DPX" subject enrol --key "$K/registrar.json" --subject-id "$SUBJECT" --subject-key "$(pub applicant)" --rpc "$RPC" >/dev/null
step "subject $SUBJECT enrolled (the ledger never sees the ID number)"

say "The rating body certifies the provider (rating 4), the regulator negative-lists 'shady'"
tx set-rating --key "$K/rater.json" --participant "$(pub provider)" --rating 4 >/dev/null
step "provider rated 4"
tx set-list-status --key "$K/regulator.json" --participant "$(pub shady)" --status negative_listed >/dev/null
step "shady is on the negative list"

say "The provider lists a grade-3 CV-verification product"
TERMS=$(printf 'CV verification terms v1' | "$DPX" hash)
PRODUCT=$(tx list-product --key "$K/provider.json" --json "{\"spec\": {\"name\": \"Honest resume check\", \"category\": \"data_service\", \"domain\": \"employment\", \"grade\": 3, \"price\": 500, \"terms_hash\": \"$TERMS\"}}" | attr product)
step "product $PRODUCT"

say "The applicant signs a one-use grant on their phone, valid for 24 hours"
# --rpc: the phone first reads its own subject record (a request signed with its key) for the
# current grant epoch and chain id; without it a grant is signed offline from the flags alone.
GRANT=$("$DPX" grant sign --key "$K/applicant.json" --subject "$SUBJECT" --consumer "$(pub employer)" \
  --product "$PRODUCT" --purpose hiring-check --valid-for 24h --rpc "$RPC")
step "grant (QR-sized, ${#GRANT} characters): ${GRANT:0:48}..."
step "valid until $("$DPX" grant inspect "$GRANT" --output json | jget expires_at)"

say "The employer uses the grant once"
"$DPX" grant use "$GRANT" --key "$K/employer.json" --rpc "$RPC"

say "The employer tries to use it a second time"
if "$DPX" grant use "$GRANT" --key "$K/employer.json" --rpc "$RPC"; then
  echo "UNEXPECTED: a second use was accepted" >&2; exit 1
fi
step "refused, as it must be"

say "A grant for the applicant signed by someone else's key is refused"
if "$DPX" grant sign --key "$K/thief.json" --subject "$SUBJECT" --consumer "$(pub employer)" \
  --product "$PRODUCT" --purpose hiring-check --valid-for 1h --rpc "$RPC" 2>"$K/thief.err" >/dev/null; then
  echo "UNEXPECTED: the CLI signed for a subject with a key the ledger does not know" >&2; exit 1
fi
step "the CLI will not sign it online: $(grep -o "is not the subject's current key" "$K/thief.err" || cat "$K/thief.err")"
FORGED=$("$DPX" grant sign --key "$K/thief.json" --subject "$SUBJECT" --consumer "$(pub employer)" \
  --product "$PRODUCT" --purpose hiring-check --valid-for 1h --chain-id dpx-devnet)
if "$DPX" grant use "$FORGED" --key "$K/employer.json" --rpc "$RPC" --output json >"$K/forged.out"; then
  echo "UNEXPECTED: a grant signed by a non-subject key was accepted" >&2; exit 1
fi
step "refused: $(jget receipt.reason <"$K/forged.out")"

say "A negative-listed company tries to order the product"
if tx place-order --key "$K/shady.json" --product "$PRODUCT" --purpose "screening" >"$K/shady.out"; then
  echo "UNEXPECTED: a negative-listed party was allowed" >&2; exit 1
fi
step "denied: $(jget receipt.reason <"$K/shady.out")"

say "A paid trade: the price is held in escrow, then released to the provider minus the platform fee"
gov() { "$DPX" --output json governance "$@" --rpc "$RPC"; }
# adopt PROPOSAL_JSON: agencies 1 and 2 approve (3 of 4, more than 2/3), the last approval executes it.
adopt() {
  local id
  id=$(jget proposal.id <<<"$1")
  for i in 1 2; do gov approve "$id" --key "$DIR/keys/agency-$i.json" >/dev/null; done
  [ "$(gov show "$id" | jget proposal.status)" = executed ] || { echo "proposal $id was not executed" >&2; exit 1; }
}
adopt "$(gov admit-settlement-bank --key "$AG" --bank "$(pub bank)" --name "Bank of Devnet")"
step "the agencies admitted a settlement bank"
adopt "$(gov set-platform-fee --key "$AG" --basis-points 250)"
step "the agencies set the platform fee to 250 basis points (2.5%)"
tx deposit --key "$K/bank.json" --account "$(pub employer)" --amount 100000 --reference "DEVNET-WIRE-0001" >/dev/null
step "the bank recorded a deposit of 1000.00 CNY (100000 fen) for the employer"
if tx deposit --key "$K/bank.json" --account "$(pub employer)" --amount 100000 --reference "DEVNET-WIRE-0001" >"$K/replay.out"; then
  echo "UNEXPECTED: a bank reference was accepted twice" >&2; exit 1
fi
step "the same bank reference again is refused: $(jget receipt.reason <"$K/replay.out")"
REPORT=$(tx list-product --key "$K/provider.json" --json "{\"spec\": {\"name\": \"Regional salary report\", \"category\": \"report\", \"domain\": \"employment\", \"grade\": 1, \"price\": 20000, \"terms_hash\": \"$TERMS\"}}" | attr product)
ORDER=$(tx place-order --key "$K/employer.json" --product "$REPORT" --purpose "salary benchmarking" | attr order)
step "the employer ordered the report (200.00 CNY): order $ORDER"
tx accept-order --key "$K/provider.json" --order "$ORDER" >/dev/null
step "the provider accepted: 20000 fen moved into escrow"
tx deliver-order --key "$K/provider.json" --order "$ORDER" --delivery-hash "$(printf 'report.pdf' | "$DPX" hash)" >/dev/null
SETTLED=$(tx confirm-order --key "$K/employer.json" --order "$ORDER")
step "the employer confirmed delivery: $(attr provider_amount <<<"$SETTLED") fen to the provider, $(attr fee <<<"$SETTLED") fen fee to the treasury"
balance() { "$DPX" --output json query balances "$(pub "$1")" --rpc "$RPC" --key "$K/$1.json" | jget value.balance; }
step "balances: employer $(balance employer) fen, provider $(balance provider) fen"

say "A computation over the report: the data stays with a compute node, the employer receives only the result"
adopt "$(gov admit-compute-node --key "$AG" --node "$(pub enclave)" --name "Secure Enclave Co.")"
step "the agencies admitted a compute node"
CODE=$(printf 'salary-percentiles v1' | "$DPX" hash)
JOB=$(tx request-job --key "$K/employer.json" --json "{\"products\": [\"$REPORT\"], \"authorizations\": [{\"order\": \"$ORDER\"}], \"compute_node\": \"$(pub enclave)\", \"purpose\": \"salary benchmarking\", \"code_hash\": \"$CODE\"}" | attr job)
step "the employer requested job $JOB on the report, authorised by its settled order"
RESULT=$(printf 'p50=18200 p90=31000' | "$DPX" hash)
tx attest-job --key "$K/enclave.json" --job "$JOB" --code-hash "$CODE" --input-commitments "[\"$(printf 'report.pdf' | "$DPX" hash)\"]" --result-hash "$RESULT" --inputs-destroyed true >/dev/null
step "the compute node attested the code it ran, the input it used, the result, and that the input is destroyed"
tx confirm-job --key "$K/employer.json" --job "$JOB" --result-hash "$RESULT" >/dev/null
step "the employer confirmed receiving the result (and only the result): job $("$DPX" --output json query jobs "$JOB" --rpc "$RPC" --key "$K/employer.json" | jget value.status)"

say "An auditor fetches the grant's consumption with a proof and verifies it offline"
GID=$("$DPX" grant inspect "$GRANT" --output json | jget id)
sleep 1.5 # the proof is against the next block's header
"$DPX" audit prove grants "$GID" --rpc "$RPC" --key "$K/auditor.json" >"$DIR/grant-proof.json"
"$DPX" audit verify "$DIR/grant-proof.json" --genesis "$DIR/genesis.json"

say "A curious outsider asks for the applicant's grant over RPC; the regulator asks too"
if "$DPX" query grants "$GID" --rpc "$RPC" >/dev/null 2>&1; then
  echo "UNEXPECTED: an anonymous caller read the grant" >&2; exit 1
fi
step "the outsider is refused (403 forbidden, whether or not the grant exists)"
"$DPX" query grants "$GID" --rpc "$RPC" --key "$K/regulator.json" >/dev/null
step "the regulator, signing its request, reads it"

say "Summary"
status
cat <<EOF

The devnet keeps running.
  RPC:        $RPC   (also node1..3 on $((BASE + 17)), $((BASE + 27)), $((BASE + 37)))
  status:     $DPX status --rpc $RPC
  events:     curl -N $RPC/v1/events?from_height=1
  API docs:   $RPC/v1/openapi.json
  console:    $RPC/console   (the public view; any node's RPC serves it)
  sign in:    $DPX console login --key $K/regulator.json --rpc $RPC
              prints a one-time URL (valid 5 minutes); open it in the browser to see
              the market, the chain and the grants as the regulator
  stop:       scripts/devnet.sh stop
EOF
