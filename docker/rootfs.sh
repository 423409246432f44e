#!/usr/bin/env bash
# Assemble the dpx runtime root filesystem from a built `dpx` binary: the binary (debug info
# stripped), exactly the shared libraries `ldd` says it loads, a passwd/group with the unprivileged
# `dpx` user (uid 10001) and its home. Both image paths use this script, so the image a user
# builds with the multi-stage Dockerfile and the one built offline by docker/build-image.sh have
# the same contents:
#
#   docker/rootfs.sh target/release/dpx /rootfs     (inside the Dockerfile's builder stage)
#   docker/rootfs.sh /work/target/debug/dpx DIR     (docker/build-image.sh, on the host)
#
# Ownership (home owned by 10001) needs root or fakeroot, as any image build does.
set -euo pipefail
BIN=${1:?usage: rootfs.sh DPX_BINARY OUT_DIR}
OUT=${2:?usage: rootfs.sh DPX_BINARY OUT_DIR}
UID_DPX=10001

[ -x "$BIN" ] || { echo "rootfs.sh: $BIN is not an executable" >&2; exit 1; }
if [ -e "$OUT" ] && [ -n "$(ls -A "$OUT")" ]; then
  echo "rootfs.sh: $OUT exists and is not empty" >&2; exit 1
fi
mkdir -p "$OUT"/{usr/local/bin,etc,tmp,home/dpx}
chmod 1777 "$OUT/tmp"

# A debug binary carries ~400 MB of DWARF; symbols stay, so backtraces still name functions.
if command -v objcopy >/dev/null; then
  objcopy --strip-debug "$BIN" "$OUT/usr/local/bin/dpx"
else
  cp "$BIN" "$OUT/usr/local/bin/dpx"
fi
chmod 0755 "$OUT/usr/local/bin/dpx"

# Every library the dynamic loader resolves, at the path it resolved it to, plus the loader
# itself at the path written into the binary (PT_INTERP). Real files, no symlinks into the host.
libs=$(ldd "$BIN" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
[ -n "$libs" ] || { echo "rootfs.sh: ldd found no libraries (a static binary?)" >&2; }
for lib in $libs; do
  mkdir -p "$OUT$(dirname "$lib")"
  cp -L "$lib" "$OUT$lib"
done

cat >"$OUT/etc/passwd" <<PASSWD
root:x:0:0:root:/root:/sbin/nologin
dpx:x:$UID_DPX:$UID_DPX:dpx node:/home/dpx:/sbin/nologin
PASSWD
cat >"$OUT/etc/group" <<GROUP
root:x:0:
dpx:x:$UID_DPX:
GROUP
# glibc 2.34+ has the files and dns NSS modules built in; this is all name lookup needs.
echo 'hosts: files dns' >"$OUT/etc/nsswitch.conf"
chown "$UID_DPX:$UID_DPX" "$OUT/home/dpx"
chmod 0700 "$OUT/home/dpx"

# The check that matters: the binary runs inside the new root with nothing from the host.
if [ "$(id -u)" = 0 ] && command -v chroot >/dev/null; then
  chroot "$OUT" /usr/local/bin/dpx --version >/dev/null \
    || { echo "rootfs.sh: dpx does not run inside $OUT" >&2; exit 1; }
fi
echo "rootfs.sh: $(du -sh "$OUT" | cut -f1) in $OUT ($(echo "$libs" | wc -w) libraries)"
