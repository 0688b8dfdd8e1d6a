#!/usr/bin/env bash
# A/B comparison of two `aegis` gate binaries on the same vault and the same local HTTPS
# upstream (bench_upstream), in ABBA order so that drift over time cancels out.
#
# Usage: A=path/to/aegis-a B=path/to/aegis-b bench/gate_ab.sh
#        (one binary, two settings: A=… B=<the same> B_ENV="AEGIS_LOG_LEVEL=warn …")
# Env:   D (seconds per wrk run, 5), R (ABBA rounds, 2), C (connections, 64),
#        A_ENV / B_ENV (space-separated VAR=value settings for gate A / B only),
#        WRK_DELAY_MS (pause after each response, 0 = saturation; 10 with C=22 is ~2,000 req/s)
# Prints each wrk run (rps, p50, p99) and, per binary, throughput over all its runs and the
# gate's CPU time per request (user + system, from /proc/<pid>/stat).
#
# Builds nothing: build the two binaries first (e.g. `cargo build --release -p aegis-cli`, copy
# target/release/aegis aside, change, build again) and the upstream with
# `cargo build --release -p aegis-test-support --example bench_upstream`.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
UP="$ROOT/target/release/examples/bench_upstream"
LUA="$ROOT/bench/post_1k.lua"
: "${A:?set A to the first aegis binary}" "${B:?set B to the second aegis binary}"
[ -x "$A" ] && [ -x "$B" ] && [ -x "$UP" ] || { echo "gate_ab: A, B or $UP is not executable" >&2; exit 1; }
command -v wrk >/dev/null || { echo "gate_ab: wrk is required (apt-get install wrk)" >&2; exit 1; }
D=${D:-5} R=${R:-2} C=${C:-64}
A=$(realpath "$A") B=$(realpath "$B")

WORK=$(mktemp -d "${TMPDIR:-/tmp}/aegis-gate-ab.XXXXXX")
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
while IFS= read -r var; do unset "$var"; done < <(compgen -e | grep '^AEGIS_' || true)
cd "$WORK"

# Waits up to 20 s for a line matching the sed expression $2 in file $1; prints the match.
await_line() {
    local found deadline=$((SECONDS + 20))
    while [ "$SECONDS" -le "$deadline" ]; do
        found=$(sed -n "$2" "$1" 2>/dev/null | head -n 1)
        if [ -n "$found" ]; then printf '%s\n' "$found"; return 0; fi
        sleep 0.05
    done
    echo "gate_ab: nothing matched $2 in $1: $(cat "$1")" >&2
    return 1
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

printf 'vault:\n  kdf:\n    memory_kib: 19456\n    iterations: 2\n' >aegis.config.yaml
"$A" init --json >init.json
AEGIS_MASTER_KEY=$(sed -n 's/.*"master_key":"\([^"]*\)".*/\1/p' init.json)
export AEGIS_MASTER_KEY
mkdir up
"$UP" "$WORK/up" >up.out 2>up.err &
PIDS+=("$!")
PORT=$(await_line up.out 's/^port=//p')
CA=$(await_line up.out 's/^ca=//p')
printf 'sk-ab-%s\n' "$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')" |
    "$A" vault add --name sat --service sat --domains "localhost:$PORT" >/dev/null

declare -A PID PORT_OF REQ US TICKS
for w in a b; do
    bin=$A
    [ "$w" = b ] && bin=$B
    settings=${A_ENV:-}
    [ "$w" = b ] && settings=${B_ENV:-}
    # shellcheck disable=SC2086 # word splitting of the VAR=value list is intended
    env $settings AEGIS_UPSTREAM_CA="$CA" "$bin" gate --port 0 >"$w.out" 2>"$w.err" &
    PID[$w]=$!
    PIDS+=("$!")
    PORT_OF[$w]=$(await_line "$w.out" 's|.*listening on http://127\.0\.0\.1:\([0-9]*\).*|\1|p')
    REQ[$w]=0 US[$w]=0 TICKS[$w]=0
done

run() {
    local w=$1 t0 out
    t0=$(cpu_ticks "${PID[$w]}")
    out=$(WRK_DELAY_MS=${WRK_DELAY_MS:-0} wrk -t2 -c"$C" -d"${D}s" --timeout 5s -s "$LUA" \
        "http://127.0.0.1:${PORT_OF[$w]}/sat/echo-body" | grep '^RESULT ')
    TICKS[$w]=$((TICKS[$w] + $(cpu_ticks "${PID[$w]}") - t0))
    REQ[$w]=$((REQ[$w] + $(sed -n 's/.* requests=\([0-9]*\).*/\1/p' <<<"$out")))
    US[$w]=$((US[$w] + $(sed -n 's/.* duration_us=\([0-9]*\).*/\1/p' <<<"$out")))
    echo "  $w: $(sed -n 's/.* rps=\([0-9.]*\).* p50_us=\([0-9]*\).* p99_us=\([0-9]*\).*/\1 req\/s  p50 \2 us  p99 \3 us/p' <<<"$out")"
}
echo "gate A/B ($(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)): $C connections, ${D}s runs, ABBA x $R, delay ${WRK_DELAY_MS:-0} ms"
echo "  A=$A ${A_ENV:-}"
echo "  B=$B ${B_ENV:-}"
for _ in $(seq "$R"); do run a; run b; run b; run a; done
hz=$(getconf CLK_TCK)
for w in a b; do
    awk -v n="${REQ[$w]}" -v us="${US[$w]}" -v t="${TICKS[$w]}" -v hz="$hz" -v w="$w" \
        'BEGIN { printf "%s: %.0f req/s, gate CPU %.1f us per request\n", toupper(w), n * 1e6 / us, t * 1e6 / hz / n }'
done
