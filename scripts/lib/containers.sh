# Shared by the container suites (scripts/faults.sh, scripts/membership.sh): addresses, output,
# Docker Compose, the offline image, a fresh network from docker/gen-network.sh, and stopping
# the load generator and keeping the nodes' logs. Sourced after the caller has set ROOT, TARGET,
# WORK, SUBNET, PREFIX, IMAGE and DPX; the caller defines dc() (its compose files) itself.

ip_of() { echo "$SUBNET.$((10 + $1))"; }
rpc_of() { echo "http://$(ip_of "$1"):26657"; }
ctr() { echo "$PREFIX-node$1"; }
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
note() { printf '  %s %s\n' "$(date +%T)" "$*"; }

if docker compose version >/dev/null 2>&1; then DC=(docker compose); else DC=(docker-compose); fi

# The checkers read every block from every node: lift the per-IP rate limit for the host.
lift_rate_limits() {
  sed -i -e 's/^per_ip_requests_per_s = .*/per_ip_requests_per_s = 100000/' \
    -e 's/^per_ip_burst = .*/per_ip_burst = 100000/' "$@"
}

# build_binaries BIN...: the debug binaries the suite runs (dpx and the named test drivers),
# unless the caller's NO_BUILD is 1. The same command as scripts/test.sh's build, narrowed to
# the binaries, so after a test run nothing is compiled again.
build_binaries() {
  [ "${NO_BUILD:-0}" = 1 ] && return 0
  local args=(--bin dpx) b
  for b in "$@"; do args+=(--bin "$b"); done
  say "Building dpx and the test drivers (debug): $*"
  # The same RocksDB choice as scripts/test.sh (ROCKSDB_LIB_DIR), or this rebuilds everything.
  source "$ROOT/scripts/prereqs.sh"
  cargo build --locked --workspace "${args[@]}" 2>&1 | tail -1
}

build_image() {
  say "Building image $IMAGE offline from $DPX"
  docker/build-image.sh --binary "$DPX" --tag "$IMAGE"
}

# new_network VALIDATORS FULL_NODES CHAIN_ID: a fresh network in $WORK/net (anything the last
# run left is taken down first).
new_network() {
  if [ -f "$WORK/net/docker-compose.yml" ]; then dc down -t 2 >/dev/null 2>&1 || true; fi
  rm -rf "$WORK"
  mkdir -p "$WORK"
  docker/gen-network.sh --out "$WORK/net" --validators "$1" --full-nodes "$2" --chain-id "$3" \
    --image "$IMAGE" --subnet "$SUBNET" --rpc-port 0 --prefix "$PREFIX" --restart no \
    --dpx "$DPX" | sed 's/^/  /'
  lift_rate_limits "$WORK"/net/node*/config.toml
}

# stop_load PID: asks the load generator to stop ($WORK/stop), then makes sure it has.
stop_load() {
  [ -n "$1" ] || return 0
  touch "$WORK/stop"
  for _ in $(seq 1 40); do kill -0 "$1" 2>/dev/null || break; sleep 0.25; done
  kill -TERM "$1" 2>/dev/null
}

# keep_logs NODE...: each node's container log into $WORK/logs/.
keep_logs() {
  mkdir -p "$WORK/logs"
  local i
  for i in "$@"; do docker logs "$(ctr "$i")" >"$WORK/logs/node$i.log" 2>&1; done
}
