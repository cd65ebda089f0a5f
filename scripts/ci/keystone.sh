#!/usr/bin/env bash
# Ensure a real Keystone v3 identity service for Neutrino's tests (Debian 12).
#
# Idempotent. Runs postgres.sh first, then:
#   * installs Debian's `keystone` (uwsgi based) + python3-psycopg2 + curl if
#     missing, with debconf preseeded so the package does not configure any
#     database nor bootstrap anything itself;
#   * creates the PostgreSQL role/database `keystone` (password `keystone`);
#   * configures /etc/keystone/keystone.conf ([database] connection on
#     PostgreSQL, [token] provider = fernet) and /etc/default/keystone (uwsgi
#     bound to 127.0.0.1:5000, 2 processes);
#   * keystone-manage db_sync / fernet_setup / credential_setup / bootstrap
#     (admin/adminpass, project admin, region RegionOne,
#     endpoints http://127.0.0.1:5000/v3/);
#   * starts keystone through /etc/init.d/keystone (start-stop-daemon, works
#     without systemd; the daemon survives this script) and waits for it;
#   * through the REST API ensures roles admin/member/reader, project demo,
#     users demo/demopass (member on demo) and reader/readerpass (reader on
#     demo), and a `network` service with a public endpoint
#     http://127.0.0.1:9696 in RegionOne.
#
# Log lines go to stderr; stdout carries only the two lines
#   NEUTRINO_TEST_POSTGRES=postgres://...   (from postgres.sh)
#   NEUTRINO_TEST_KEYSTONE=http://127.0.0.1:5000/v3
# Logs of the service: /var/log/keystone/keystone.log (uwsgi + keystone).
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

KS_HOST=127.0.0.1
KS_PORT=5000
KS_URL="http://${KS_HOST}:${KS_PORT}/v3"
KS_REGION=RegionOne
KS_ADMIN_USER=admin
KS_ADMIN_PASSWORD=adminpass
KS_ADMIN_PROJECT=admin
KS_DB=keystone
KS_DB_USER=keystone
KS_DB_PASSWORD=keystone
PG_HOST=127.0.0.1
PG_PORT=5432
NETWORK_URL="http://127.0.0.1:9696"
KS_CONF=/etc/keystone/keystone.conf
KS_DEFAULTS=/etc/default/keystone
KS_LOG=/var/log/keystone/keystone.log
KS_PIDFILE=/var/run/keystone/keystone.pid
UWSGI_PROCESSES=2
UWSGI_THREADS=8
PY=/usr/bin/python3

log() { echo "[keystone] $*" >&2; }
die() { echo "[keystone] ERROR: $*" >&2; exit 1; }
log_tail() {
    if [ -r "$KS_LOG" ]; then
        echo "[keystone] ---- last lines of $KS_LOG ----" >&2
        tail -n 60 "$KS_LOG" >&2 || true
        echo "[keystone] ---- end of $KS_LOG ----" >&2
    fi
}

if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "must run as root (or with sudo available)"
    exec sudo -n -E bash "$0" "$@"
fi
export DEBIAN_FRONTEND=noninteractive
export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:${PATH:-}"

# Serialise concurrent runs of this script.
mkdir -p /run/lock
exec 9>/run/lock/neutrino-ci-keystone.lock
flock -w 900 9 || die "timed out waiting for another keystone.sh run"

# ------------------------------------------------------------------ postgres
pg_line=$(bash "$SCRIPT_DIR/postgres.sh" 9>&-) || die "postgres.sh failed"   # 9>&-: daemons must not inherit our lock
pg_line=$(printf '%s\n' "$pg_line" | grep '^NEUTRINO_TEST_POSTGRES=' | tail -n 1)

# ------------------------------------------------------------------ helpers
# shellcheck source=lib.sh
. "$SCRIPT_DIR/lib.sh"

# ini_set FILE SECTION KEY VALUE: set KEY = VALUE in [SECTION] (replacing the
# first active KEY line of the section, or adding it at the end of the
# section / file). Sets CONF_CHANGED=1 if the file content changed.
CONF_CHANGED=0
ini_set() {
    local f=$1 s=$2 k=$3 v=$4 tmp
    tmp=$(mktemp)
    awk -v s="$s" -v k="$k" -v v="$v" '
        function flush() { if (insec && !done) { print k " = " v; done = 1 } }
        /^[ \t]*\[[^]]*\][ \t]*$/ {
            h = $0; gsub(/^[ \t]*\[|\][ \t]*$/, "", h)
            flush(); insec = (h == s); if (insec) seen = 1
            print; next
        }
        insec && $0 ~ ("^[ \t]*" k "[ \t]*=") { if (!done) { print k " = " v; done = 1 }; next }
        { print }
        END { flush(); if (!seen) { print ""; print "[" s "]"; print k " = " v } }
    ' "$f" >"$tmp"
    if ! cmp -s "$tmp" "$f"; then
        cat "$tmp" >"$f"     # keep owner/mode (root:keystone 0640)
        CONF_CHANGED=1
        log "set [$s] $k in $f"
    fi
    rm -f "$tmp"
}

# write_file FILE CONTENT: replace FILE if its content differs.
write_file() {
    local f=$1 content=$2
    if [ ! -f "$f" ] || [ "$(cat "$f")" != "$content" ]; then
        printf '%s\n' "$content" >"$f"
        CONF_CHANGED=1
        log "wrote $f"
    fi
}

as_keystone() { runuser -u keystone -- "$@"; }

api_up() { curl -fsS -m 3 -o /dev/null "${KS_URL}" 2>/dev/null; }

# ks_token USER PASSWORD PROJECT: prints a project-scoped token (Default
# domain) or returns 1.
ks_token() {
    local hdr body code tok
    hdr=$(mktemp)
    body=$(printf '{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"%s","domain":{"id":"default"},"password":"%s"}}},"scope":{"project":{"name":"%s","domain":{"id":"default"}}}}}' "$1" "$2" "$3")
    code=$(curl -sS -m 20 -o /dev/null -D "$hdr" -w '%{http_code}' \
        -H 'Content-Type: application/json' -d "$body" "${KS_URL}/auth/tokens" 2>/dev/null || true)
    tok=$(awk 'tolower($1) == "x-subject-token:" { sub(/\r$/, "", $2); print $2 }' "$hdr")
    rm -f "$hdr"
    [ "$code" = 201 ] && [ -n "$tok" ] || return 1
    printf '%s\n' "$tok"
}

# api METHOD PATH [JSON]: admin REST call, prints the body; dies on HTTP >= 400.
api() {
    local method=$1 path=$2 data=${3:-} out code
    local args=(-sS -m 30 -X "$method" -H "X-Auth-Token: ${ADMIN_TOKEN}" -w '\n%{http_code}')
    if [ -n "$data" ]; then args+=(-H 'Content-Type: application/json' -d "$data"); fi
    out=$(curl "${args[@]}" "${KS_URL}${path}") || die "$method $path: curl failed"
    code=${out##*$'\n'}
    out=${out%$'\n'*}
    if [ "$code" -ge 400 ]; then die "$method $path -> HTTP $code: $out"; fi
    printf '%s' "$out"
}

# first_id KEY: id of the first element of the JSON list KEY on stdin ("" if none)
first_id() { "$PY" -c 'import json,sys; l=json.load(sys.stdin)[sys.argv[1]]; print(l[0]["id"] if l else "")' "$1"; }
new_id()   { "$PY" -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]]["id"])' "$1"; }

# state_ok: the whole expected state, checked with 3 password authentications
# run in parallel (a project-scoped token lists the user's effective roles and
# the service catalog): admin has role admin on project admin; demo has member
# on demo; reader has reader on demo; the catalog has the public network
# endpoint in RegionOne.
state_ok() {
    local d rc=0
    d=$(mktemp -d)
    auth_to_file "$KS_ADMIN_USER" "$KS_ADMIN_PASSWORD" "$KS_ADMIN_PROJECT" "$d/admin" &
    auth_to_file demo demopass demo "$d/demo" &
    auth_to_file reader readerpass demo "$d/reader" &
    wait
    "$PY" - "$d" "$KS_ADMIN_PROJECT" "$NETWORK_URL" "$KS_REGION" <<'PY' || rc=$?
import json, sys
d, admin_project, net_url, region = sys.argv[1:5]
def token(name):
    try:
        with open(f"{d}/{name}.code") as f:
            if f.read().strip() != "201":
                return None
        with open(f"{d}/{name}.json") as f:
            return json.load(f)["token"]
    except Exception:
        return None
ok = True
for name, project, role in (("admin", admin_project, "admin"),
                            ("demo", "demo", "member"),
                            ("reader", "demo", "reader")):
    t = token(name)
    if not t or t.get("project", {}).get("name") != project \
            or role not in {r["name"] for r in t.get("roles", [])}:
        print(f"[keystone] check: user {name} has no working token with role {role} on project {project}",
              file=sys.stderr)
        ok = False
t = token("demo") or token("admin")
if t and not any(s.get("type") == "network" and any(
        e.get("interface") == "public" and e.get("region_id") == region and e.get("url") == net_url
        for e in s.get("endpoints", [])) for s in t.get("catalog", [])):
    print(f"[keystone] check: no public network endpoint {net_url} in {region}", file=sys.stderr)
    ok = False
sys.exit(0 if ok else 1)
PY
    rm -rf "$d"
    return "$rc"
}
# auth_to_file USER PASSWORD PROJECT PREFIX: writes PREFIX.code and PREFIX.json
auth_to_file() {
    curl -s -m 20 -o "$4.json" -w '%{http_code}' -H 'Content-Type: application/json' \
        -d "$(printf '{"auth":{"identity":{"methods":["password"],"password":{"user":{"name":"%s","domain":{"id":"default"},"password":"%s"}}},"scope":{"project":{"name":"%s","domain":{"id":"default"}}}}}' "$1" "$2" "$3")" \
        "${KS_URL}/auth/tokens" >"$4.code" 2>/dev/null || true
}

# ------------------------------------------------------------------ install
JUST_INSTALLED=0
if ! pkg_installed keystone || ! pkg_installed python3-psycopg2 || ! pkg_installed curl \
    || ! pkg_installed uwsgi-plugin-python3; then
    log "installing Debian packages keystone python3-psycopg2 curl (noninteractive, debconf preseeded)"
    # Do not let the package configure a database (dbconfig-common) nor
    # bootstrap/register anything: we do all that below.
    debconf-set-selections <<'EOF'
keystone keystone/configure_db boolean false
keystone keystone/create-admin-tenant boolean false
keystone keystone/register-endpoint boolean false
EOF
    apt_install keystone python3-psycopg2 curl uwsgi-plugin-python3
    JUST_INSTALLED=1
else
    log "keystone packages already installed"
fi
id keystone >/dev/null 2>&1 || die "system user keystone missing (package postinst should have created it)"
[ -f "$KS_CONF" ] || die "$KS_CONF missing"

# ------------------------------------------------------------------ database
runuser -u postgres -- psql -X -q -p "$PG_PORT" -d postgres -v ON_ERROR_STOP=1 \
    -v role="$KS_DB_USER" -v pw="$KS_DB_PASSWORD" -v db="$KS_DB" >&2 <<'SQL'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'role', :'pw')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
SQL
if ! PGPASSWORD="$KS_DB_PASSWORD" psql -X -q -h "$PG_HOST" -p "$PG_PORT" -U "$KS_DB_USER" -d "$KS_DB" \
        -tAc 'SELECT 1' >/dev/null 2>&1; then
    log "resetting password of PostgreSQL role $KS_DB_USER"
    runuser -u postgres -- psql -X -q -p "$PG_PORT" -d postgres -v ON_ERROR_STOP=1 \
        -v role="$KS_DB_USER" -v pw="$KS_DB_PASSWORD" >&2 <<'SQL'
SELECT format('ALTER ROLE %I WITH LOGIN PASSWORD %L', :'role', :'pw') \gexec
SQL
fi

# ------------------------------------------------------------------ config
ini_set "$KS_CONF" database connection \
    "postgresql+psycopg2://${KS_DB_USER}:${KS_DB_PASSWORD}@${PG_HOST}:${PG_PORT}/${KS_DB}"
ini_set "$KS_CONF" token provider fernet
# CI only: cheapest bcrypt cost (default 12 makes every password
# authentication take ~0.3 s of CPU).
ini_set "$KS_CONF" identity password_hash_rounds 4
# The init script (and the systemd unit, via `/etc/init.d/keystone
# systemd-start`) sources /etc/default/keystone after computing its uwsgi
# arguments: override them to bind only 127.0.0.1:5000 and to use a CI-sized
# worker pool (the packaged ini asks for 8 processes x 32 threads). Options
# given after --ini override the ini file.
write_file "$KS_DEFAULTS" "# Managed by neutrino scripts/ci/keystone.sh
DAEMON_ARGS=\"--ini /etc/keystone/keystone-uwsgi.ini --http-socket ${KS_HOST}:${KS_PORT} --processes ${UWSGI_PROCESSES} --threads ${UWSGI_THREADS}\""

# Log dir must stay writable by keystone (uwsgi logto + oslo.log).
mkdir -p /var/log/keystone
chown keystone:adm /var/log/keystone
[ -e "$KS_LOG" ] && chown keystone:keystone "$KS_LOG"

# ------------------------------------------------------------------ keys
if [ ! -s /etc/keystone/fernet-keys/0 ]; then
    log "keystone-manage fernet_setup"
    as_keystone keystone-manage fernet_setup --keystone-user keystone --keystone-group keystone >&2
fi
if [ ! -s /etc/keystone/credential-keys/0 ]; then
    log "keystone-manage credential_setup"
    as_keystone keystone-manage credential_setup --keystone-user keystone --keystone-group keystone >&2
fi

# ------------------------------------------------------------------ fast path
RUNNING=0
api_up && RUNNING=1
if [ "$RUNNING" -eq 1 ] && [ "$CONF_CHANGED" -eq 0 ] && [ "$JUST_INSTALLED" -eq 0 ] && state_ok; then
    log "keystone is running and already set up (admin, demo, reader tokens + network endpoint verified)"
    printf '%s\n' "$pg_line"
    echo "NEUTRINO_TEST_KEYSTONE=${KS_URL}"
    exit 0
fi

# ------------------------------------------------------------------ schema + bootstrap
NEED_BOOTSTRAP=1
if [ "$RUNNING" -eq 1 ] && [ "$CONF_CHANGED" -eq 0 ] && [ "$JUST_INSTALLED" -eq 0 ] \
    && ADMIN_TOKEN=$(ks_token "$KS_ADMIN_USER" "$KS_ADMIN_PASSWORD" "$KS_ADMIN_PROJECT"); then
    NEED_BOOTSTRAP=0
    log "keystone is running and bootstrapped"
fi
if [ "$NEED_BOOTSTRAP" -eq 1 ]; then
    # Both are idempotent (db_sync is a no-op on an up-to-date schema;
    # bootstrap only creates what is missing).
    log "keystone-manage db_sync"
    as_keystone keystone-manage db_sync >&2 || { log_tail; die "keystone-manage db_sync failed"; }
    log "keystone-manage bootstrap (admin/${KS_ADMIN_PASSWORD}, project ${KS_ADMIN_PROJECT}, region ${KS_REGION})"
    as_keystone keystone-manage bootstrap \
        --bootstrap-username "$KS_ADMIN_USER" \
        --bootstrap-password "$KS_ADMIN_PASSWORD" \
        --bootstrap-project-name "$KS_ADMIN_PROJECT" \
        --bootstrap-role-name admin \
        --bootstrap-service-name keystone \
        --bootstrap-region-id "$KS_REGION" \
        --bootstrap-admin-url "${KS_URL}/" \
        --bootstrap-internal-url "${KS_URL}/" \
        --bootstrap-public-url "${KS_URL}/" >&2 \
        || { log_tail; die "keystone-manage bootstrap failed"; }
fi

# ------------------------------------------------------------------ (re)start
if [ "$RUNNING" -eq 1 ] && { [ "$CONF_CHANGED" -eq 1 ] || [ "$JUST_INSTALLED" -eq 1 ]; }; then
    log "configuration changed or package just installed: restarting keystone"
    run_clean /etc/init.d/keystone stop || true
    for _ in $(seq 1 40); do api_up || break; sleep 0.25; done
    RUNNING=0
fi
if [ "$RUNNING" -eq 0 ]; then
    # A stale pid file (e.g. after a reboot with a persistent /run) would make
    # start-stop-daemon believe keystone is already running.
    if [ -f "$KS_PIDFILE" ]; then
        pid=$(cat "$KS_PIDFILE" 2>/dev/null || true)
        if [ -z "$pid" ] || ! grep -qa uwsgi "/proc/$pid/cmdline" 2>/dev/null; then
            rm -f "$KS_PIDFILE"
        fi
    fi
    log "starting keystone (uwsgi via /etc/init.d/keystone on ${KS_HOST}:${KS_PORT}; log: $KS_LOG)"
    run_clean /etc/init.d/keystone start || { log_tail; die "/etc/init.d/keystone start failed"; }
    up=0
    for _ in $(seq 1 240); do   # up to ~60 s
        if api_up; then up=1; break; fi
        sleep 0.25
    done
    if [ "$up" -ne 1 ]; then
        log_tail
        die "keystone did not answer on ${KS_URL} within 60 s"
    fi
    log "keystone answers on ${KS_URL}"
fi

if [ "$NEED_BOOTSTRAP" -eq 1 ]; then
    ADMIN_TOKEN=$(ks_token "$KS_ADMIN_USER" "$KS_ADMIN_PASSWORD" "$KS_ADMIN_PROJECT") \
        || { log_tail; die "cannot get an admin token from ${KS_URL}"; }
fi

# ------------------------------------------------------------------ resources
ensure_role() {
    local id
    id=$(api GET "/roles?name=$1" | first_id roles)
    if [ -z "$id" ]; then
        log "creating role $1"
        id=$(api POST /roles "{\"role\":{\"name\":\"$1\"}}" | new_id role)
    fi
    printf '%s' "$id"
}
ensure_project() {
    local id
    id=$(api GET "/projects?name=$1&domain_id=default" | first_id projects)
    if [ -z "$id" ]; then
        log "creating project $1"
        id=$(api POST /projects "{\"project\":{\"name\":\"$1\",\"domain_id\":\"default\",\"description\":\"Neutrino CI\",\"enabled\":true}}" | new_id project)
    fi
    printf '%s' "$id"
}
# ensure_user NAME PASSWORD PROJECT_ID ROLE_ID PROJECT_NAME
ensure_user() {
    local id
    id=$(api GET "/users?name=$1&domain_id=default" | first_id users)
    if [ -z "$id" ]; then
        log "creating user $1"
        id=$(api POST /users "{\"user\":{\"name\":\"$1\",\"domain_id\":\"default\",\"password\":\"$2\",\"default_project_id\":\"$3\",\"enabled\":true}}" | new_id user)
    fi
    api PUT "/projects/$3/users/${id}/roles/$4" >/dev/null
    if ! ks_token "$1" "$2" "$5" >/dev/null; then
        log "resetting password of user $1"
        api PATCH "/users/${id}" "{\"user\":{\"password\":\"$2\",\"enabled\":true}}" >/dev/null
        ks_token "$1" "$2" "$5" >/dev/null || die "user $1 still cannot authenticate on project $5"
    fi
}

ADMIN_ROLE=$(ensure_role admin)
MEMBER_ROLE=$(ensure_role member)
READER_ROLE=$(ensure_role reader)
: "$ADMIN_ROLE"
DEMO_PROJECT=$(ensure_project demo)
ensure_user demo demopass "$DEMO_PROJECT" "$MEMBER_ROLE" demo
ensure_user reader readerpass "$DEMO_PROJECT" "$READER_ROLE" demo

NET_SERVICE=$(api GET "/services?type=network" | first_id services)
if [ -z "$NET_SERVICE" ]; then
    log "creating service neutron (type network)"
    NET_SERVICE=$(api POST /services '{"service":{"type":"network","name":"neutron","description":"Neutrino (OpenStack Networking API)","enabled":true}}' | new_id service)
fi
ep=$(api GET "/endpoints?service_id=${NET_SERVICE}&interface=public&region_id=${KS_REGION}")
ep_id=$(printf '%s' "$ep" | first_id endpoints)
if [ -z "$ep_id" ]; then
    log "creating public network endpoint ${NETWORK_URL} in ${KS_REGION}"
    api POST /endpoints "{\"endpoint\":{\"service_id\":\"${NET_SERVICE}\",\"interface\":\"public\",\"region_id\":\"${KS_REGION}\",\"url\":\"${NETWORK_URL}\",\"enabled\":true}}" >/dev/null
else
    ep_url=$(printf '%s' "$ep" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["endpoints"][0]["url"])')
    if [ "$ep_url" != "$NETWORK_URL" ]; then
        log "updating public network endpoint ${ep_url} -> ${NETWORK_URL}"
        api PATCH "/endpoints/${ep_id}" "{\"endpoint\":{\"url\":\"${NETWORK_URL}\",\"enabled\":true}}" >/dev/null
    fi
fi
state_ok || { log_tail; die "final verification failed"; }
log "roles admin/member/reader, project demo, users demo+reader, network endpoint ready"

printf '%s\n' "$pg_line"
echo "NEUTRINO_TEST_KEYSTONE=${KS_URL}"
