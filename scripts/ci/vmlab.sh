#!/usr/bin/env bash
# The full-kernel lab's parts (internal/vmlab): QEMU, a static busybox for
# the VM's initramfs (and the guests' udhcpd in tests), kmod, iperf3 for the
# lab's throughput benchmark, radvd (router advertisements for the guests'
# SLAAC test), and
# Debian's own kernel (the version linux-image-amd64 depends on),
# downloaded and unpacked into a cache directory, never installed.
#
#   sudo bash scripts/ci/vmlab.sh      prints NEUTRINO_VMLAB_DIR=<dir>
#
# The cache directory is $NEUTRINO_VMLAB_DIR, default /var/cache/neutrino/vmlab;
# it holds <kver>/boot/vmlinuz-<kver> and <kver>/lib/modules/<kver>. A second
# run with everything in place touches no network.
set -euo pipefail
cd "$(dirname "$0")/../.."

log() { echo "[vmlab] $*" >&2; }
# shellcheck source=lib.sh
. scripts/ci/lib.sh
export DEBIAN_FRONTEND=noninteractive

dir=${NEUTRINO_VMLAB_DIR:-/var/cache/neutrino/vmlab}

need=()
for pkg in qemu-system-x86 busybox-static kmod iperf3 xz-utils radvd; do
    pkg_installed "$pkg" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]}"
    apt_install "${need[@]}"
fi

# The kernel package linux-image-amd64 points at today. Without package
# lists (a fresh machine) ask apt to fetch them first.
kpkg() { { apt-cache depends linux-image-amd64 2>/dev/null || true; } | sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -n1; }
# A complete cached kernel, the newest by version ("" if none).
cached() {
    local d k
    for d in "$dir"/*/; do
        k=$(basename "$d")
        [ -s "$d/boot/vmlinuz-$k" ] && [ -s "$d/lib/modules/$k/modules.dep" ] && echo "$k"
    done 2>/dev/null | sort -V | tail -n1
}
pkg=$(kpkg)
if [ -z "$pkg" ] && [ -n "$(cached)" ]; then
    # No package lists (cleaned), but a kernel is in place: no network.
    log "the package lists do not name linux-image-amd64's kernel; using the cached $(cached)"
    echo "NEUTRINO_VMLAB_DIR=$dir"
    exit 0
fi
if [ -z "$pkg" ]; then
    log "apt-get update (no package list names the kernel)"
    apt_get update -q
    pkg=$(kpkg)
fi
if [ -z "$pkg" ]; then
    echo "[vmlab] cannot tell which kernel linux-image-amd64 depends on" >&2
    exit 1
fi
kver=${pkg#linux-image-}
root="$dir/$kver"

if [ ! -s "$root/boot/vmlinuz-$kver" ] || [ ! -s "$root/lib/modules/$kver/modules.dep" ]; then
    log "fetching $pkg into $root"
    mkdir -p "$dir"
    tmp=$(mktemp -d "$dir/.fetch.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    # apt downloads as its sandbox user when that user may write here.
    chmod 755 "$tmp"
    chown _apt "$tmp" 2>/dev/null || true
    if ! (cd "$tmp" && apt_get download "$pkg"); then
        log "download failed; retrying after apt-get update"
        apt_get update -q
        (cd "$tmp" && apt_get download "$pkg")
    fi
    dpkg-deb -x "$tmp"/"$pkg"_*.deb "$tmp/tree"
    depmod -b "$tmp/tree" "$kver"
    rm -rf "$root"
    mv "$tmp/tree" "$root"
    log "kernel $kver ready ($(du -sh "$root" | cut -f1))"
fi

# The uncompressed kernel, which QEMU boots through its PVH entry point:
# under TCG the bzImage spends about 6 s decompressing itself on every
# boot. Debian's bzImage holds an xz stream; the lab boots the bzImage
# when there is no vmlinux.
vmlinux="$root/boot/vmlinux-$kver"
if [ ! -s "$vmlinux" ]; then
    z="$root/boot/vmlinuz-$kver"
    tmpv=$(mktemp "$vmlinux.XXXXXX")
    offs=$(LC_ALL=C grep -abo $'\xfd7zXZ' "$z" | cut -d: -f1 || true)
    for off in $offs; do
        # xz stops at the stream's end: tail's SIGPIPE is no failure.
        if { tail -c +"$((off + 1))" "$z" || true; } | xz -dc --single-stream >"$tmpv" 2>/dev/null &&
            [ "$(head -c4 "$tmpv" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ]; then
            chmod 644 "$tmpv"
            mv "$tmpv" "$vmlinux"
            log "extracted $(basename "$vmlinux") for a faster boot"
            break
        fi
    done
    rm -f "$tmpv"
    [ -s "$vmlinux" ] || log "no xz-compressed vmlinux in $z; the lab boots the bzImage (about 6 s slower)"
fi
echo "NEUTRINO_VMLAB_DIR=$dir"
