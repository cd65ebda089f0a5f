# Shared helpers of the CI scripts; source it after defining log().
# Package installs wait for other apt runs and update the lists only when
# needed; daemons are started without inheriting our descriptors.

# run_clean CMD...: run CMD with stdin from /dev/null, stdout on our stderr and
# every other inherited file descriptor closed, so that daemons it starts keep
# neither our caller's pipes nor our lock file open.
run_clean() {
    (
        for fd in /proc/self/fd/*; do
            fd=${fd##*/}
            case $fd in 0|1|2) ;; *) eval "exec ${fd}>&-" 2>/dev/null || true ;; esac
        done
        exec "$@"
    ) </dev/null >&2
}
pkg_installed() {
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = installed ]
}

# apt-get with waiting for the dpkg/apt locks (another apt may be running).
apt_get() {
    local i out rc
    for i in $(seq 1 90); do
        rc=0
        out=$(apt-get -o DPkg::Lock::Timeout=60 "$@" 2>&1 </dev/null 9>&-) || rc=$?
        printf '%s\n' "$out" >&2
        if [ "$rc" -eq 0 ]; then return 0; fi
        if printf '%s' "$out" | grep -qiE 'could not get lock|unable to lock|is another process using it'; then
            log "apt is locked by another process; waiting (attempt $i)"
            sleep 10
            continue
        fi
        return "$rc"
    done
    return 1
}

apt_install() {
    # apt-get update only when the package lists do not know the packages
    # (fresh machine / cleaned lists), or when the install failed (stale lists).
    local p need_update=0
    for p in "$@"; do
        apt-cache show --no-all-versions "$p" >/dev/null 2>&1 || need_update=1
    done
    if [ "$need_update" -eq 1 ]; then
        log "apt-get update"
        apt_get update -q
    fi
    if ! apt_get install -y -q --no-install-recommends "$@"; then
        log "install failed; retrying after apt-get update"
        apt_get update -q
        apt_get install -y -q --no-install-recommends "$@"
    fi
}
