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
