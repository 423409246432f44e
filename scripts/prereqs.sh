#!/usr/bin/env bash
# Installs the system prerequisites dpx needs to build, when they are missing.
# Sourced by scripts/test.sh and scripts/devnet.sh; safe to run many times.
set -euo pipefail

have_libclang() {
  # libclang itself (libclang.so, libclang-14.so.1, ...), not libclang-cpp, which bindgen cannot use.
  ldconfig -p 2>/dev/null | grep -Eq 'libclang(-[0-9][0-9.]*)?\.so' && return 0
  compgen -G '/usr/lib/llvm-*/lib/libclang.so*' >/dev/null && return 0
  compgen -G '/usr/lib/llvm-*/lib/libclang-[0-9]*.so*' >/dev/null && return 0
  compgen -G '/usr/lib/x86_64-linux-gnu/libclang.so*' >/dev/null && return 0
  compgen -G '/usr/lib/x86_64-linux-gnu/libclang-[0-9]*.so*' >/dev/null && return 0
  return 1
}

apt_install() {
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "==> installing $* (apt-get)"
    # apt-get update once per run; quiet unless it fails.
    if [ -z "${DPX_APT_UPDATED:-}" ]; then
      apt-get update -qq >/dev/null || { echo "apt-get update failed" >&2; return 1; }
      export DPX_APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    echo "error: missing system packages: $*" >&2
    echo "       install them (Debian/Ubuntu: sudo apt-get install -y $*) and run again." >&2
    return 1
  fi
}

if ! command -v cargo >/dev/null; then
  echo "error: cargo not found; install Rust (https://rustup.rs) first." >&2
  exit 1
fi
# rocksdb's bindgen needs libclang; its C++ needs a C++ compiler.
have_libclang || apt_install clang libclang-dev
command -v c++ >/dev/null || command -v g++ >/dev/null || apt_install g++
# The console's browser tests (tests/tests/console.rs) drive a headless Chromium over WebDriver;
# scripts/test.sh asks for it (DPX_PREREQS_BROWSER=1), the devnet does not need it.
if [ "${DPX_PREREQS_BROWSER:-0}" = 1 ]; then
  { [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; } || apt_install chromium chromium-driver
fi
# A compiler cache makes RocksDB's C++ cheap to rebuild; optional.
if ! command -v sccache >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt_install sccache || echo "note: sccache not available; building without a compiler cache"
fi
if command -v sccache >/dev/null && [ -z "${RUSTC_WRAPPER:-}" ]; then
  export RUSTC_WRAPPER=sccache
fi

# RocksDB. Compiling the C++ that librocksdb-sys bundles takes most of a first build (~20 min
# of 2 cores), so link the distribution's shared library when a recent enough one is installed
# or installable (Debian 12: librocksdb-dev 7.8.3). dpx uses only the C API calls that RocksDB
# 7.8 already has (a missing one would fail the link, not misbehave), writes table format 5
# (read by 7.8 and by the bundled 11.x alike), and computes its state root itself, so both
# builds make the same ledger. DPX_ROCKSDB=bundled compiles the bundled copy instead (as the
# Dockerfile does). The choice is the environment variable ROCKSDB_LIB_DIR: running cargo
# directly, `source scripts/prereqs.sh` first, or a different value rebuilds everything above
# librocksdb-sys.
# Sets DPX_ROCKSDB_DIR and DPX_ROCKSDB_VERSION when a usable system library is installed.
dpx_system_rocksdb() {
  local h=/usr/include/rocksdb/version.h major minor lib
  [ -f "$h" ] || return 1
  major=$(awk '/#define ROCKSDB_MAJOR/ {print $3}' "$h")
  minor=$(awk '/#define ROCKSDB_MINOR/ {print $3}' "$h")
  # Oldest release dpx is tested with: 7.8.
  [ -n "$major" ] && [ -n "$minor" ] || return 1
  { [ "$major" -gt 7 ] || { [ "$major" -eq 7 ] && [ "$minor" -ge 8 ]; }; } || return 1
  lib=$(compgen -G '/usr/lib/*/librocksdb.so' | head -n1 || true)
  [ -n "$lib" ] || lib=$(compgen -G '/usr/lib/librocksdb.so' | head -n1 || true)
  [ -n "$lib" ] || return 1
  DPX_ROCKSDB_VERSION="$major.$minor.$(awk '/#define ROCKSDB_PATCH/ {print $3}' "$h")"
  DPX_ROCKSDB_DIR=$(dirname "$lib")
}
if [ "${DPX_ROCKSDB:-system}" = bundled ]; then
  unset ROCKSDB_LIB_DIR
  echo "note: building the bundled RocksDB (DPX_ROCKSDB=bundled)"
else
  if ! dpx_system_rocksdb && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null \
    && apt-cache show librocksdb-dev >/dev/null 2>&1; then
    apt_install librocksdb-dev || true
  fi
  if dpx_system_rocksdb; then
    export ROCKSDB_LIB_DIR="$DPX_ROCKSDB_DIR"
    echo "note: linking the system RocksDB $DPX_ROCKSDB_VERSION from $DPX_ROCKSDB_DIR (DPX_ROCKSDB=bundled to compile the bundled one)"
  else
    echo "note: no system RocksDB >= 7.8; building the bundled one (the first build takes ~20 minutes longer)"
  fi
fi
