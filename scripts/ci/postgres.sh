#!/usr/bin/env bash
# Ensure a local PostgreSQL server for Neutrino's tests (Debian 12).
#
# Idempotent: installs the Debian `postgresql` package if missing, makes sure
# a cluster is running and listening on 127.0.0.1:5432, and creates the role
# `neutrino` (password `neutrino`) and the database `neutrino_test` (owned by
# `neutrino`) if missing.
#
# Log lines go to stderr; stdout carries exactly one line at the end:
#   NEUTRINO_TEST_POSTGRES=postgres://neutrino:neutrino@127.0.0.1:5432/neutrino_test?sslmode=disable
# so `export "$(scripts/ci/postgres.sh)"` works.
set -euo pipefail

PG_HOST=127.0.0.1
PG_PORT=5432
PG_USER=neutrino
PG_PASSWORD=neutrino
PG_DB=neutrino_test

log() { echo "[postgres] $*" >&2; }
die() { echo "[postgres] ERROR: $*" >&2; exit 1; }

if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || die "must run as root (or with sudo available)"
    exec sudo -n -E bash "$0" "$@"
fi
export DEBIAN_FRONTEND=noninteractive
export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:${PATH:-}"

# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# ---------------------------------------------------------------- install
if ! pkg_installed postgresql || ! command -v pg_lsclusters >/dev/null 2>&1; then
    log "installing Debian package postgresql"
    apt_install postgresql
else
    log "postgresql already installed"
fi

# ---------------------------------------------------------------- cluster
# pg_lsclusters -h: "<ver> <name> <port> <status> <owner> <datadir> <log>"
cluster_line() { pg_lsclusters -h 2>/dev/null | awk -v p="$PG_PORT" '$3 == p { print; exit }'; }

line=$(cluster_line)
if [ -z "$line" ]; then
    ver=$(ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -n 1)
    [ -n "$ver" ] || die "no PostgreSQL server version found under /usr/lib/postgresql"
    if pg_lsclusters -h 2>/dev/null | awk -v v="$ver" '$1 == v && $2 == "main" { f=1 } END { exit !f }'; then
        die "cluster $ver/main exists but not on port $PG_PORT: $(pg_lsclusters -h)"
    fi
    log "creating cluster $ver/main on port $PG_PORT"
    pg_createcluster --port "$PG_PORT" "$ver" main >&2
    line=$(cluster_line)
fi
read -r PG_VER PG_CLUSTER _ PG_STATUS _ _ PG_LOG <<<"$line"

if [ "$PG_STATUS" != online ]; then
    log "starting cluster $PG_VER/$PG_CLUSTER (status: $PG_STATUS; no systemd, using pg_ctlcluster)"
    # pg_ctlcluster falls back to pg_ctl when systemd is not PID 1; the
    # postmaster is detached and logs to $PG_LOG, so it survives this script.
    # run_clean: the postmaster must not inherit our caller's pipes/locks.
    run_clean pg_ctlcluster "$PG_VER" "$PG_CLUSTER" start \
        || { tail -n 30 "$PG_LOG" >&2 2>/dev/null || true; die "pg_ctlcluster $PG_VER $PG_CLUSTER start failed"; }
fi

ready=0
for _ in $(seq 1 60); do
    if pg_isready -q -h "$PG_HOST" -p "$PG_PORT"; then ready=1; break; fi
    sleep 0.5
done
if [ "$ready" -ne 1 ]; then
    tail -n 30 "$PG_LOG" >&2 2>/dev/null || true
    die "PostgreSQL $PG_VER/$PG_CLUSTER is not accepting connections on $PG_HOST:$PG_PORT (check listen_addresses in /etc/postgresql/$PG_VER/$PG_CLUSTER/postgresql.conf; log: $PG_LOG)"
fi
log "cluster $PG_VER/$PG_CLUSTER is accepting connections on $PG_HOST:$PG_PORT"

# ---------------------------------------------------------------- role + database
# (superuser access through the local unix socket as OS user postgres)
runuser -u postgres -- psql -X -q -p "$PG_PORT" -d postgres -v ON_ERROR_STOP=1 \
    -v role="$PG_USER" -v pw="$PG_PASSWORD" -v db="$PG_DB" >&2 <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'role')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role') \gexec
SELECT format('ALTER ROLE %I WITH LOGIN CREATEDB PASSWORD %L', :'role', :'pw') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
SELECT format('ALTER DATABASE %I OWNER TO %I', :'db', :'role') \gexec
SQL

# Check that the credentials really work over TCP (password auth).
PGPASSWORD="$PG_PASSWORD" psql -X -q -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d "$PG_DB" \
    -v ON_ERROR_STOP=1 -tAc 'SELECT 1' >/dev/null \
    || die "cannot log in as $PG_USER to $PG_DB on $PG_HOST:$PG_PORT (check pg_hba.conf)"
log "role $PG_USER and database $PG_DB are ready"

echo "NEUTRINO_TEST_POSTGRES=postgres://${PG_USER}:${PG_PASSWORD}@${PG_HOST}:${PG_PORT}/${PG_DB}?sslmode=disable"
