#!/usr/bin/env bash
# Build the dpx runtime image on a machine that cannot pull base images: the runtime stage of
# ./Dockerfile, taken verbatim, on top of a root filesystem assembled here from a locally built
# binary by docker/rootfs.sh (the same script the Dockerfile's builder stage runs).
#
#   docker/build-image.sh [--binary PATH] [--tag NAME]
#
# Defaults: the release binary if one was built, else the debug one ($CARGO_TARGET_DIR, default
# ./target), tag dpx:local. A release image is built the same way after
#   cargo build --release --locked -p dpx-node --bin dpx
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=${CARGO_TARGET_DIR:-$(pwd)/target}
BIN=
TAG=dpx:local
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) BIN=$2; shift 2 ;;
    --tag) TAG=$2; shift 2 ;;
    *) echo "usage: $0 [--binary PATH] [--tag NAME]" >&2; exit 2 ;;
  esac
done
if [ -z "$BIN" ]; then
  if [ -x "$TARGET/release/dpx" ]; then BIN=$TARGET/release/dpx; else BIN=$TARGET/debug/dpx; fi
fi
[ -x "$BIN" ] || { echo "no dpx binary at $BIN; build one first (cargo build -p dpx-node --bin dpx)" >&2; exit 1; }

CTX=$(mktemp -d)
trap 'rm -rf "$CTX"' EXIT
docker/rootfs.sh "$BIN" "$CTX/rootfs" >/dev/null
tar --numeric-owner -C "$CTX/rootfs" -cf "$CTX/rootfs.tar" .
rm -rf "$CTX/rootfs"
# The runtime stage: from the last FROM to the end, the builder COPY replaced by the tarball.
awk '/^FROM /{ buf = "" } { buf = buf $0 "\n" } END { printf "%s", buf }' Dockerfile \
  | sed 's#^COPY --from=builder /rootfs/ /$#ADD rootfs.tar /#' >"$CTX/Dockerfile"
grep -q '^FROM scratch$' "$CTX/Dockerfile" && grep -q '^ADD rootfs.tar /$' "$CTX/Dockerfile" \
  || { echo "the Dockerfile's last stage is not 'FROM scratch' + 'COPY --from=builder /rootfs/ /'" >&2; exit 1; }
# The legacy builder prints a deprecation notice without buildx; it is harmless here.
DOCKER_BUILDKIT=0 docker build -q -t "$TAG" \
  --label "org.opencontainers.image.source=dpx" \
  --label "dpx.binary=$(basename "$(dirname "$BIN")")" \
  "$CTX" >/dev/null
echo "built $TAG from $BIN ($(docker image inspect -f '{{.Size}}' "$TAG" | awk '{ printf "%.0f MB", $1 / 1e6 }'))"
