# dpx node image, multi-stage: a Rust builder, then a runtime stage that is `scratch` plus exactly
# what the binary needs (docker/rootfs.sh: the stripped binary, its ldd libraries, a passwd with
# the unprivileged user `dpx`, uid 10001). No shell, no package manager in the runtime image.
#
#   docker build -t dpx:latest .
#
# Without internet (no base image can be pulled), docker/build-image.sh builds the same runtime
# stage from a locally built binary; it takes the stage below verbatim, so keep the runtime stage
# the last one in this file and its only COPY the one from the builder's /rootfs. See
# docs/DEPLOY.md.

ARG RUST_VERSION=1.95
FROM rust:${RUST_VERSION}-bookworm AS builder
# RocksDB's bindings need libclang at build time.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends clang libclang-dev binutils \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Only what the build needs: a stray target/ or devnet/ in the context never reaches the image.
COPY Cargo.toml Cargo.lock rustfmt.toml clippy.toml ./
COPY crypto crypto
COPY consensus consensus
COPY ledger ledger
COPY contracts contracts
COPY genesis genesis
COPY app app
COPY node node
COPY tests tests
COPY docker/rootfs.sh docker/rootfs.sh
RUN cargo build --release --locked -p dpx-node --bin dpx \
 && docker/rootfs.sh target/release/dpx /rootfs

# ---- runtime stage (docker/build-image.sh reuses everything from here down) ----
FROM scratch
COPY --from=builder /rootfs/ /
USER 10001:10001
ENV DPX_HOME=/home/dpx DPX_RPC=http://127.0.0.1:26657
WORKDIR /home/dpx
# 26656: peer-to-peer (libp2p), 26657: HTTP RPC. Configure both to listen on 0.0.0.0 in a container.
EXPOSE 26656 26657
VOLUME ["/home/dpx"]
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 CMD ["/usr/local/bin/dpx", "status"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/dpx"]
CMD ["node", "start"]
