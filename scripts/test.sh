#!/usr/bin/env bash
# The whole test suite: formatting, lints, and every test in the workspace.
# Installs missing system prerequisites first (as root with apt), so it works on a fresh machine.
#   scripts/test.sh            # everything
#   DPX_SIM_SEEDS=20000 scripts/test.sh   # a longer consensus soak
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/prereqs.sh

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy (all targets, warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "==> cargo test"
cargo test --workspace --locked --no-fail-fast
echo "==> independent Python client (clients/python)"
bash scripts/client-test.sh "${CARGO_TARGET_DIR:-target}/debug/dpx"
