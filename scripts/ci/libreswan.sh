#!/usr/bin/env bash
# Libreswan for the tests (internal/ipsec/libreswan, the lab's end-to-end
# tests against pluto). Debian 12's libreswan package conflicts with the
# strongSwan packages the VPN driver needs (strongswan-libcharon,
# strongswan-starter), so it is never installed: its runtime dependencies
# are, and the package itself is downloaded and unpacked into a cache
# directory, one per version.
#
#   sudo bash scripts/ci/libreswan.sh     prints NEUTRINO_LIBRESWAN_DIR=<dir>
#
# <dir> is $NEUTRINO_LIBRESWAN_CACHE/<version> (default
# /var/cache/neutrino/libreswan/<version>), a root holding usr/sbin/ipsec,
# usr/libexec/ipsec/{pluto,whack,addconn,_updown,...}. A second run with
# everything in place touches no network.
set -euo pipefail
cd "$(dirname "$0")/../.."

log() { echo "[libreswan] $*" >&2; }
# shellcheck source=lib.sh
. scripts/ci/lib.sh
export DEBIAN_FRONTEND=noninteractive

cache=${NEUTRINO_LIBRESWAN_CACHE:-/var/cache/neutrino/libreswan}

# A complete unpacked copy, the newest by version ("" if none).
cached() {
    local d
    for d in "$cache"/*/; do
        [ -x "$d/usr/libexec/ipsec/pluto" ] && [ -x "$d/usr/libexec/ipsec/whack" ] && basename "$d"
    done 2>/dev/null | sort -V | tail -n1
}

# libreswan's Depends, minus alternatives and version constraints; debconf
# (a Pre-Depends for its maintainer scripts, which never run here) is not
# needed. libnss3-tools gives certutil for the NSS databases.
deps() {
    apt-cache show --no-all-versions libreswan 2>/dev/null |
        sed -n 's/^Depends: //p' | tr ',' '\n' |
        sed -e 's/|.*//' -e 's/(.*)//' -e 's/ //g' | grep -v '^$'
}

list=$(deps || true)
if [ -z "$list" ]; then
    if [ -n "$(cached)" ] && pkg_installed libnss3-tools; then
        log "no package lists name libreswan; using the cached $(cached)"
        echo "NEUTRINO_LIBRESWAN_DIR=$cache/$(cached)"
        exit 0
    fi
    log "apt-get update (no package list names libreswan)"
    apt_get update -q
    list=$(deps)
fi
# Installed, or provided by an installed package (host is bind9-host's).
present() {
    pkg_installed "$1" ||
        dpkg-query -W -f='${db:Status-Status} ${Provides}\n' 2>/dev/null |
        grep '^installed ' | tr ',' '\n' | sed 's/(.*)//' | grep -E "(^installed| ) *$1 *$" >/dev/null
}
need=()
for pkg in $list libnss3-tools; do
    present "$pkg" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
    log "installing ${need[*]}"
    apt_install "${need[@]}"
fi

ver=$(apt-cache show --no-all-versions libreswan | sed -n 's/^Version: //p' | head -n1)
# Version strings may hold ':' (epochs); the directory name must not.
dir="$cache/${ver//:/_}"
if [ ! -x "$dir/usr/libexec/ipsec/pluto" ] || [ ! -x "$dir/usr/libexec/ipsec/whack" ]; then
    log "fetching libreswan $ver into $dir"
    mkdir -p "$cache"
    tmp=$(mktemp -d "$cache/.fetch.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    # apt downloads as its sandbox user when that user may write here.
    chmod 755 "$tmp"
    chown _apt "$tmp" 2>/dev/null || true
    if ! (cd "$tmp" && apt_get download "libreswan=$ver"); then
        log "download failed; retrying after apt-get update"
        apt_get update -q
        (cd "$tmp" && apt_get download "libreswan=$ver")
    fi
    dpkg-deb -x "$tmp"/libreswan_*.deb "$tmp/tree"
    rm -rf "$dir"
    mv "$tmp/tree" "$dir"
    log "libreswan $ver ready ($(du -sh "$dir" | cut -f1))"
fi
echo "NEUTRINO_LIBRESWAN_DIR=$dir"
