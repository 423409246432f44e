#!/usr/bin/env bash
# The whole test suite: formatting, lints, and every test in the workspace.
# Installs missing system prerequisites first (as root with apt), so it works on a fresh machine.
#   scripts/test.sh            # everything
#   DPX_SIM_SEEDS=20000 scripts/test.sh   # a longer consensus soak
set -euo pipefail
cd "$(dirname "$0")/.."
# The browser tests of the console need chromium and chromium-driver.
export DPX_PREREQS_BROWSER=1
source scripts/prereqs.sh

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy (all targets, warnings are errors)"
# Clippy only checks, it never links; yet a check build runs librocksdb-sys's build script in
# a unit of its own (not the test build's), which would compile RocksDB's C++ a second time
# (~20 minutes on 2 cores). Given a library dir, that script only generates the bindings; no
# link step ever reads the dir, and the test build below is untouched (it compiles RocksDB once).
ROCKSDB_LIB_DIR=/nonexistent/clippy-never-links \
  cargo clippy --workspace --all-targets --locked -- -D warnings
echo "==> cargo test"
cargo test --workspace --locked --no-fail-fast
echo "==> the console's in-browser proof verifier against the vectors (Node.js)"
bash scripts/console-js-test.sh
echo "==> independent Python client (clients/python)"
bash scripts/client-test.sh "${CARGO_TARGET_DIR:-target}/debug/dpx"
