#!/usr/bin/env bash
# Run the API benchmark (test/bench) and print a markdown table.
#
#   test/bench/run.sh                  # SQLite; PostgreSQL too if NEUTRINO_TEST_POSTGRES is set
#   BENCHTIME=500x test/bench/run.sh   # requests per cell (default 300x)
#   BENCH='API/sqlite/ports' test/bench/run.sh   # a subset
#
# To include PostgreSQL: export "$(bash scripts/ci/postgres.sh)" first.
set -euo pipefail
cd "$(dirname "$0")/../.."

out=$(mktemp)
trap 'rm -f "$out"' EXIT
[ -n "${NEUTRINO_TEST_POSTGRES:-}" ] || echo "note: NEUTRINO_TEST_POSTGRES unset; PostgreSQL skipped" >&2
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs" >&2
start=$(date +%s)
if ! go test -run '^$' -bench "${BENCH:-.}" -benchtime="${BENCHTIME:-300x}" -timeout 30m ./test/bench/ >"$out" 2>&1; then
    cat "$out" >&2
    exit 1
fi
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg); $(($(date +%s) - start))s" >&2

awk '
BEGIN {
    print "| store | resource | op | clients | ops/s | p50 ms | p99 ms |"
    print "|---|---|---|---:|---:|---:|---:|"
}
/^BenchmarkAPI\// {
    split($1, p, "/"); c = p[5]; sub(/^c/, "", c); sub(/-[0-9]+$/, "", c)
    for (i = 3; i < NF; i++) m[$(i + 1)] = $i
    printf "| %s | %s | %s | %s | %.0f | %.2f | %.2f |\n", p[2], p[3], p[4], c, m["ops/s"], m["p50-ms"], m["p99-ms"]
}' "$out"
