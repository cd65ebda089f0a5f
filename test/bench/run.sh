#!/usr/bin/env bash
# Run the API benchmark (test/bench) and print a markdown table; as root,
# also the agent benchmarks (real server, bus and agent over the kernel
# data plane in throw-away namespaces) and their tables.
#
#   test/bench/run.sh                  # SQLite; PostgreSQL too if NEUTRINO_TEST_POSTGRES is set
#   BENCHTIME=500x test/bench/run.sh   # requests per cell (default 300x)
#   BENCH='API/sqlite/ports' test/bench/run.sh   # a subset of the API benchmark
#   AGENT=0 test/bench/run.sh          # no agent benchmarks (they need root)
#   PINGTIME=20x test/bench/run.sh     # interface-to-ping iterations (default 5x)
#   VPNTIME=50x test/bench/run.sh      # second-side-to-ACTIVE iterations (default 20x)
#
# To include PostgreSQL: export "$(bash scripts/ci/postgres.sh)" first.
set -euo pipefail
cd "$(dirname "$0")/../.."

out=$(mktemp)
aout=$(mktemp)
trap 'rm -f "$out" "$aout"' EXIT
[ -n "${NEUTRINO_TEST_POSTGRES:-}" ] || echo "note: NEUTRINO_TEST_POSTGRES unset; PostgreSQL skipped" >&2
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs" >&2
start=$(date +%s)
if ! go test -run '^$' -bench "${BENCH:-^BenchmarkAPI$}" -benchtime="${BENCHTIME:-300x}" -timeout 30m ./test/bench/ >"$out" 2>&1; then
    cat "$out" >&2
    exit 1
fi
go test -run '^$' -bench '^BenchmarkServerMemory$' -benchtime=1x -timeout 10m ./test/bench/ >>"$out" 2>&1 || { cat "$out" >&2; exit 1; }
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
}
/^BenchmarkServerMemory/ {
    for (i = 3; i < NF; i++) mm[$(i + 1)] = $i
    mem = sprintf("| 10,000 VPN resources, SQLite, after listing 9,500 connections | %.1f | %.1f |", mm["rss-mib"], mm["peak-mib"])
}
END {
    if (mem != "") {
        print ""
        print "| server memory | RSS MiB | peak MiB |"
        print "|---|---:|---:|"
        print mem
    }
}' "$out"

# The agent benchmarks: one cold start and restart of 100 routers, then
# add_router_interface to the first ping between two VMs.
[ "${AGENT:-1}" != 0 ] || exit 0
if [ "$(id -u)" != 0 ]; then
    echo "note: not root; agent benchmarks skipped" >&2
    exit 0
fi
agent_ok=1
start=$(date +%s)
go test -run '^$' -bench '^BenchmarkAgentResync$' -benchtime=1x -timeout 10m ./test/bench/ >"$aout" 2>&1 || agent_ok=0
go test -run '^$' -bench '^BenchmarkInterfaceToPing$' -benchtime="${PINGTIME:-5x}" -timeout 10m ./test/bench/ >>"$aout" 2>&1 || agent_ok=0
go test -run '^$' -bench '^BenchmarkVPNSecondSide$' -benchtime="${VPNTIME:-20x}" -timeout 10m ./test/bench/ >>"$aout" 2>&1 || agent_ok=0
go test -run '^$' -bench '^BenchmarkVPNAgentRestart$' -benchtime=1x -timeout 10m ./test/bench/ >>"$aout" 2>&1 || agent_ok=0
echo "agent benchmarks: $(($(date +%s) - start))s; load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

awk '
/^BenchmarkAgentResync/ {
    for (i = 3; i < NF; i++) m[$(i + 1)] = $i
    print ""
    print "| agent, 100 routers | cold start s | restart resync s | recreated | L3 writes on restart |"
    print "|---|---:|---:|---:|---:|"
    printf "| real l2 + l3 | %.2f | %.2f | %d | %d |\n", m["cold-s"], m["resync-s"], m["recreated"], m["resync-writes"]
}
/^BenchmarkInterfaceToPing/ {
    for (i = 3; i < NF; i++) m[$(i + 1)] = $i
    print ""
    print "| add_router_interface to ping | iterations | p50 ms | p99 ms | API ms | to L3 Apply ms | Apply start to answer ms | L3 Apply ms |"
    print "|---|---:|---:|---:|---:|---:|---:|---:|"
    printf "| real l2 + l3 | %d | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f |\n", $2, m["p50-ms"], m["p99-ms"], m["api-ms"], m["to-apply-ms"], m["in-apply-ms"], m["apply-ms"]
}
/^BenchmarkVPNSecondSide/ {
    for (i = 3; i < NF; i++) m[$(i + 1)] = $i
    print ""
    print "| POST of the second connection to both ACTIVE in GET | runs | p50 ms | p99 ms |"
    print "|---|---:|---:|---:|"
    printf "| strongSwan, one host | %d | %.0f | %.0f |\n", $2, m["p50-ms"], m["p99-ms"]
}
/^BenchmarkVPNAgentRestart/ {
    for (i = 3; i < NF; i++) m[$(i + 1)] = $i
    print ""
    print "| agent restart, 50 routers with VPN | resync s | tunnels dropped | charon RSS MiB per router |"
    print "|---|---:|---:|---:|"
    printf "| strongSwan | %.2f | %d | %.1f |\n", m["resync-s"], m["dropped"], m["rss-mib-per-router"]
}' "$aout"
if [ "$agent_ok" = 0 ]; then
    cat "$aout" >&2
    echo "agent benchmarks failed; their output is above" >&2
    exit 1
fi
