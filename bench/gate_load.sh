#!/usr/bin/env bash
# End-to-end load test of `aegis gate` against a local HTTPS upstream, on 127.0.0.1 only.
#
# Builds the release `aegis` binary and the `bench_upstream` example, sets up a throwaway vault
# with one bearer credential for the upstream, starts the gate, and measures with wrk:
#   1. throughput and latency at saturation (keep-alive, 64 connections, 2 threads, 1 KiB POST
#      to /echo-body), directly against the upstream over HTTPS and through the gate;
#   2. latency at a paced ~2,000 req/s, both ways (wrk's Lua delay(); see bench/README.md);
#   3. gate memory: idle RSS, peak RSS during the 64-connection run, and RSS growth during one
#      1 GiB streamed upload through the gate to /upload;
#   4. the cost of the ledger (the same gate built with the unaudited-bench feature) and of
#      metrics plus JSON logs (a second gate with observability.metrics false and log level
#      warn), each in ABBA order against the gate as configured by default.
# Prints every figure and exits; all processes it started are stopped on exit.
#
# Usage: bench/gate_load.sh            (from anywhere; DURATION=10 seconds per wrk run)
# Env:   DURATION, CONNECTIONS, THREADS, RATE_CONNECTIONS, RATE_DELAY_MS, UPLOAD_MIB, SKIP_BUILD=1,
#        BENCH_UPSTREAM_ALPN=h2 (upstreams offer HTTP/2; default http/1.1 only, as wrk speaks),
#        ABBA_ROUNDS (rounds of the on/off comparisons, 1; more on a noisy machine)
set -euo pipefail

DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-2}
# Paced run: RATE_CONNECTIONS connections, each pausing RATE_DELAY_MS after every response:
# 22 connections x 1000 ms / (10 ms pause + ~1 ms latency and timer slack) = about 2,000 req/s.
RATE_CONNECTIONS=${RATE_CONNECTIONS:-22}
RATE_DELAY_MS=${RATE_DELAY_MS:-10}
UPLOAD_MIB=${UPLOAD_MIB:-1024}
# ABBA rounds of the two on/off comparisons (each round: on, off, off, on, DURATION/2 each).
ABBA_ROUNDS=${ABBA_ROUNDS:-1}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LUA="$ROOT/bench/post_1k.lua"

log() { printf '%s\n' "$*" >&2; }
die() { log "gate_load: $*"; exit 1; }

# --- tools -----------------------------------------------------------------------------------
if ! command -v wrk >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        log "installing wrk (apt-get)"
        apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
    fi
    command -v wrk >/dev/null || die "wrk is required (Debian/Ubuntu: apt-get install wrk)"
fi
command -v curl >/dev/null || die "curl is required"

# --- build -----------------------------------------------------------------------------------
# The ledger-off baseline is the same gate built with the unaudited-bench feature (it records
# nothing); it is built first and copied aside, then the real binary is built.
if [ "${SKIP_BUILD:-0}" != 1 ]; then
    log "building release binaries"
    (cd "$ROOT" && cargo build --release -q -p aegis-cli --features unaudited-bench)
    cp "$ROOT/target/release/aegis" "$ROOT/target/release/aegis-unaudited-bench"
    (cd "$ROOT" && cargo build --release -q -p aegis-cli)
    (cd "$ROOT" && cargo build --release -q -p aegis-test-support --example bench_upstream)
    (cd "$ROOT" && cargo build --release -q -p aegis-server --example bench_proxy)
fi
AEGIS="$ROOT/target/release/aegis"
AEGIS_UNAUDITED="$ROOT/target/release/aegis-unaudited-bench"
UPSTREAM_BIN="$ROOT/target/release/examples/bench_upstream"
PROXY_BIN="$ROOT/target/release/examples/bench_proxy"
[ -x "$AEGIS" ] && [ -x "$AEGIS_UNAUDITED" ] && [ -x "$UPSTREAM_BIN" ] && [ -x "$PROXY_BIN" ] ||
    die "release binaries missing; run without SKIP_BUILD"

# --- processes and clean-up ------------------------------------------------------------------
WORK=$(mktemp -d "${TMPDIR:-/tmp}/aegis-gate-load.XXXXXX")
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Stops one process this script started and forgets it.
stop_pid() {
    local pid=$1 p keep=()
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    for p in "${PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
    PIDS=("${keep[@]}")
}

# Nothing from the caller's Aegis environment leaks in.
while IFS= read -r var; do unset "$var"; done < <(compgen -e | grep '^AEGIS_' || true)
cd "$WORK"

# Waits up to $2 seconds for a line matching the sed expression $3 in file $1; prints the match.
await_line() {
    local file=$1 seconds=$2 expr=$3 found deadline=$((SECONDS + $2))
    while [ "$SECONDS" -le "$deadline" ]; do
        found=$(sed -n "$expr" "$file" 2>/dev/null | head -n 1)
        if [ -n "$found" ]; then printf '%s\n' "$found"; return 0; fi
        sleep 0.05
    done
    return 1
}

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

# Samples the VmRSS of pid $1 every 50 ms into file $2 for at most $3 seconds; background it.
sample_rss() {
    local pid=$1 out=$2 deadline=$((SECONDS + $3))
    while [ "$SECONDS" -le "$deadline" ] && [ -r "/proc/$pid/status" ]; do
        rss_kib "$pid" >>"$out" 2>/dev/null || true
        sleep 0.05
    done
}
max_of() { sort -n "$1" | tail -n 1; }
# Resets VmHWM of pid $1 to the current RSS (Linux >= 4.0), so it reports the peak of what
# follows rather than of start-up (the vault unlock runs Argon2id over 19 MiB); 0 if refused.
reset_hwm() { { echo 5 >"/proc/$1/clear_refs"; } 2>/dev/null && echo 1 || echo 0; }
# CPU time (user + system, all threads) of pid $1 in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
TICKS_PER_SEC=$(getconf CLK_TCK)
# CPU microseconds per request: $1 ticks over $2 requests.
cpu_us_per_req() { awk -v t="$1" -v n="$2" -v hz="$TICKS_PER_SEC" 'BEGIN { printf "%.1f", t * 1e6 / hz / n }'; }

# --- vault, upstream, gate -------------------------------------------------------------------
cat >aegis.config.yaml <<'YAML'
vault:
  kdf:
    memory_kib: 19456
    iterations: 2
gate:
  max_body_bytes: 2GiB
  oversize_inspection: pass
YAML

"$AEGIS" init --json >init.json 2>init.err || die "aegis init failed: $(cat init.err)"
AEGIS_MASTER_KEY=$(sed -n 's/.*"master_key":"\([^"]*\)".*/\1/p' init.json)
[ -n "$AEGIS_MASTER_KEY" ] || die "aegis init printed no master key"
export AEGIS_MASTER_KEY

# Every measured run gets a fresh upstream of its own, stopped after the run: HttpsUpstream
# keeps every request it answers (with its body) in memory, and the reallocations of that
# growing log would otherwise show up as latency outliers in whichever run comes next.
# start_upstream NAME: serves from $WORK/NAME, sets NAME_PID and NAME_PORT, adds its CA to the
# bundle the gate trusts.
start_upstream() {
    local name=$1 dir="$WORK/$1" pid port ca
    mkdir -p "$dir"
    "$UPSTREAM_BIN" "$dir" >"$dir/out" 2>"$dir/err" &
    pid=$!
    PIDS+=("$pid")
    port=$(await_line "$dir/out" 20 's/^port=//p') || die "upstream $name did not start: $(cat "$dir/err")"
    ca=$(await_line "$dir/out" 5 's/^ca=//p') || die "upstream $name printed no CA path"
    cat "$ca" >>"$WORK/ca-bundle.pem"
    printf -v "${name}_PID" '%s' "$pid"
    printf -v "${name}_PORT" '%s' "$port"
}
# add_credential SERVICE PORT [FLAG...]: a bearer credential named and routed SERVICE for
# localhost:PORT (default body inspection, `block`, unless a flag says otherwise).
add_credential() {
    local service=$1 port=$2
    shift 2
    printf 'sk-bench-%s\n' "$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')" |
        "$AEGIS" vault add --name "$service" --service "$service" --domains "localhost:$port" "$@" \
            >>vault.out 2>>vault.err ||
        die "vault add $service failed: $(cat vault.err)"
}

start_upstream UP_SAT_DIRECT
start_upstream UP_SAT_GATE
start_upstream UP_PACED_DIRECT
start_upstream UP_PACED_GATE
start_upstream UP_SAT_NOLEDGER
start_upstream UP_SAT_QUIET
start_upstream UP_SAT_PROXY
add_credential sat "$UP_SAT_GATE_PORT"
add_credential sat-noledger "$UP_SAT_NOLEDGER_PORT"
add_credential sat-quiet "$UP_SAT_QUIET_PORT"
add_credential paced "$UP_PACED_GATE_PORT"
add_credential upload "$UP_PACED_GATE_PORT" --body-inspection off
add_credential upload-inspected "$UP_PACED_GATE_PORT"

AEGIS_UPSTREAM_CA="$WORK/ca-bundle.pem" "$AEGIS" gate --port 0 >gate.out 2>gate.err &
GATE_PID=$!
PIDS+=("$GATE_PID")
GATE_PORT=$(await_line gate.out 20 's|.*listening on http://127\.0\.0\.1:\([0-9]*\).*|\1|p') ||
    die "gate did not start: $(cat gate.err)"

GATE="http://127.0.0.1:$GATE_PORT"

# The ledger-off gate, on the same vault; it runs only for its own saturation run.
AEGIS_UPSTREAM_CA="$WORK/ca-bundle.pem" "$AEGIS_UNAUDITED" gate --port 0 >gate-noledger.out 2>gate-noledger.err &
NOLEDGER_PID=$!
PIDS+=("$NOLEDGER_PID")
NOLEDGER_PORT=$(await_line gate-noledger.out 20 's|.*listening on http://127\.0\.0\.1:\([0-9]*\).*|\1|p') ||
    die "ledger-off gate did not start: $(cat gate-noledger.err)"
NOLEDGER="http://127.0.0.1:$NOLEDGER_PORT"
grep -q 'NOT recorded' gate-noledger.err || die "the ledger-off gate is not the unaudited-bench build"

# The main gate runs with the defaults: metrics on, one JSON log line per request (stderr is a
# file). The quiet gate, on the same vault, has metrics off and logs only warnings.
AEGIS_UPSTREAM_CA="$WORK/ca-bundle.pem" AEGIS_OBSERVABILITY_METRICS=false AEGIS_LOG_LEVEL=warn \
    "$AEGIS" gate --port 0 >gate-quiet.out 2>gate-quiet.err &
QUIET_PID=$!
PIDS+=("$QUIET_PID")
QUIET_PORT=$(await_line gate-quiet.out 20 's|.*listening on http://127\.0\.0\.1:\([0-9]*\).*|\1|p') ||
    die "quiet gate did not start: $(cat gate-quiet.err)"
QUIET="http://127.0.0.1:$QUIET_PORT"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$QUIET/_aegis/metrics")" = 404 ] ||
    die "the quiet gate serves metrics"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$GATE/_aegis/metrics")" = 200 ] ||
    die "the main gate serves no metrics"

# Smoke test: the gate forwards, the body comes back.
reply=$(curl -sS --max-time 10 -X POST --data-binary 'ping' "$GATE/paced/echo-body") ||
    die "gate request failed"
[ "$reply" = ping ] || die "gate answered '$reply' instead of echoing 'ping'"

sleep 1
IDLE_KIB=$(rss_kib "$GATE_PID")

# Runs wrk; $1 label, $2 url, $3 connections, $4 delay ms (0 = none). Prints the RESULT line.
run_wrk() {
    local label=$1 url=$2 conns=$3 delay=$4 out
    out=$(WRK_DELAY_MS=$delay timeout $((DURATION + 30)) \
        wrk --threads "$THREADS" --connections "$conns" --duration "${DURATION}s" \
        --timeout 5s --script "$LUA" "$url" 2>&1) || die "wrk ($label) failed: $out"
    grep '^RESULT ' <<<"$out" || die "wrk ($label) printed no RESULT line: $out"
}
field() { sed -n "s/.* $2=\([0-9.]*\).*/\1/p" <<<"$1"; }

# Compilers running beside the load skew every figure; the report says so.
compilers() { pgrep -c -x 'rustc|cargo|cc1' 2>/dev/null || true; }
COMPILERS_BEFORE=$(compilers)
log "load: ${DURATION}s per run"
up_ticks=$(cpu_ticks "$UP_SAT_DIRECT_PID")
SAT_DIRECT=$(run_wrk direct "https://localhost:$UP_SAT_DIRECT_PORT/echo-body" "$CONNECTIONS" 0)
UP_TICKS_DIRECT=$(($(cpu_ticks "$UP_SAT_DIRECT_PID") - up_ticks))
stop_pid "$UP_SAT_DIRECT_PID"

: >rss_sat.txt
HWM_RESET=$(reset_hwm "$GATE_PID")
up_ticks=$(cpu_ticks "$UP_SAT_GATE_PID")
gate_ticks=$(cpu_ticks "$GATE_PID")
sample_rss "$GATE_PID" rss_sat.txt $((DURATION + 35)) &
SAMPLER=$!
PIDS+=("$SAMPLER")
SAT_GATE=$(run_wrk gate "$GATE/sat/echo-body" "$CONNECTIONS" 0)
GATE_TICKS=$(($(cpu_ticks "$GATE_PID") - gate_ticks))
UP_TICKS_GATE=$(($(cpu_ticks "$UP_SAT_GATE_PID") - up_ticks))
stop_pid "$SAMPLER"
PEAK_SAMPLED_KIB=$(max_of rss_sat.txt)
HWM_KIB=$(hwm_kib "$GATE_PID")
stop_pid "$UP_SAT_GATE_PID"

# The floor: a bare hyper proxy built from the gate's parts (examples/bench_proxy.rs) in front
# of an upstream of its own, for the cost of being a proxy at all on this machine.
"$PROXY_BIN" "$UP_SAT_PROXY_PORT" "$WORK/ca-bundle.pem" >proxy.out 2>proxy.err &
PROXY_PID=$!
PIDS+=("$PROXY_PID")
PROXY_PORT=$(await_line proxy.out 20 's/^port=//p') || die "bench_proxy did not start: $(cat proxy.err)"
proxy_ticks=$(cpu_ticks "$PROXY_PID")
SAT_PROXY=$(run_wrk proxy "http://127.0.0.1:$PROXY_PORT/echo-body" "$CONNECTIONS" 0)
PROXY_TICKS=$(($(cpu_ticks "$PROXY_PID") - proxy_ticks))
stop_pid "$PROXY_PID"
stop_pid "$UP_SAT_PROXY_PID"

# Ledger on vs off, in ABBA order (on, off, off, on; half the duration each) so that a drift
# over time (an A/A run of this block with two identical gates showed the second run ~5%
# faster) cancels out. Both gates forward to the same upstream.
HALF=$(( (DURATION + 1) / 2 ))
CMP_ON_REQ=0 CMP_OFF_REQ=0 CMP_ON_US=0 CMP_OFF_US=0 CMP_ON_TICKS=0 CMP_OFF_TICKS=0
cmp_run() {
    local which=$1 pid url out ticks
    if [ "$which" = on ]; then pid=$GATE_PID url="$GATE/sat-noledger/echo-body"
    else pid=$NOLEDGER_PID url="$NOLEDGER/sat-noledger/echo-body"; fi
    ticks=$(cpu_ticks "$pid")
    out=$(DURATION=$HALF run_wrk "ledger-$which" "$url" "$CONNECTIONS" 0)
    ticks=$(($(cpu_ticks "$pid") - ticks))
    if [ "$which" = on ]; then
        CMP_ON_REQ=$((CMP_ON_REQ + $(field "$out" requests)))
        CMP_ON_US=$((CMP_ON_US + $(field "$out" duration_us)))
        CMP_ON_TICKS=$((CMP_ON_TICKS + ticks))
    else
        CMP_OFF_REQ=$((CMP_OFF_REQ + $(field "$out" requests)))
        CMP_OFF_US=$((CMP_OFF_US + $(field "$out" duration_us)))
        CMP_OFF_TICKS=$((CMP_OFF_TICKS + ticks))
    fi
}
ENTRIES_BEFORE=$("$AEGIS" ledger stats --json | sed -n 's/.*"requests":\([0-9]*\).*/\1/p')
for _ in $(seq "$ABBA_ROUNDS"); do cmp_run on; cmp_run off; cmp_run off; cmp_run on; done
stop_pid "$NOLEDGER_PID"
stop_pid "$UP_SAT_NOLEDGER_PID"

# Metrics and JSON logs on (the main gate) vs off (the quiet gate), ABBA, same upstream.
OBS_ON_REQ=0 OBS_OFF_REQ=0 OBS_ON_US=0 OBS_OFF_US=0 OBS_ON_TICKS=0 OBS_OFF_TICKS=0
obs_run() {
    local which=$1 pid url out ticks
    if [ "$which" = on ]; then pid=$GATE_PID url="$GATE/sat-quiet/echo-body"
    else pid=$QUIET_PID url="$QUIET/sat-quiet/echo-body"; fi
    ticks=$(cpu_ticks "$pid")
    out=$(DURATION=$HALF run_wrk "observability-$which" "$url" "$CONNECTIONS" 0)
    ticks=$(($(cpu_ticks "$pid") - ticks))
    if [ "$which" = on ]; then
        OBS_ON_REQ=$((OBS_ON_REQ + $(field "$out" requests)))
        OBS_ON_US=$((OBS_ON_US + $(field "$out" duration_us)))
        OBS_ON_TICKS=$((OBS_ON_TICKS + ticks))
    else
        OBS_OFF_REQ=$((OBS_OFF_REQ + $(field "$out" requests)))
        OBS_OFF_US=$((OBS_OFF_US + $(field "$out" duration_us)))
        OBS_OFF_TICKS=$((OBS_OFF_TICKS + ticks))
    fi
}
for _ in $(seq "$ABBA_ROUNDS"); do obs_run on; obs_run off; obs_run off; obs_run on; done
LOG_LINES=$(grep -c '"target":"aegis::request"' gate.err || true)
stop_pid "$QUIET_PID"
stop_pid "$UP_SAT_QUIET_PID"

# Each paced run follows a one-second unmeasured warm-up of the same shape, so that it measures
# steady state: the gate's pool holds its upstream connections (TLS handshakes done), as it
# does in service; wrk opens its own connections anew for every run either way.
DURATION=1 run_wrk direct-warm-up "https://localhost:$UP_PACED_DIRECT_PORT/echo-body" \
    "$RATE_CONNECTIONS" "$RATE_DELAY_MS" >/dev/null
PACED_DIRECT=$(run_wrk direct-paced "https://localhost:$UP_PACED_DIRECT_PORT/echo-body" \
    "$RATE_CONNECTIONS" "$RATE_DELAY_MS")
stop_pid "$UP_PACED_DIRECT_PID"
DURATION=1 run_wrk gate-warm-up "$GATE/paced/echo-body" "$RATE_CONNECTIONS" "$RATE_DELAY_MS" >/dev/null
PACED_GATE=$(run_wrk gate-paced "$GATE/paced/echo-body" "$RATE_CONNECTIONS" "$RATE_DELAY_MS")

# --- 1 GiB streamed uploads ------------------------------------------------------------------
# upload SERVICE: streams UPLOAD_MIB MiB of zeros through the gate to SERVICE/upload while
# sampling the gate's RSS; prints "before_kib peak_kib hwm_kib seconds".
upload() {
    local service=$1 before peak hwm reply counted start sampler
    local bytes=$((UPLOAD_MIB * 1024 * 1024))
    sleep 1
    before=$(rss_kib "$GATE_PID")
    reset_hwm "$GATE_PID" >/dev/null
    : >"rss_upload_$service.txt"
    sample_rss "$GATE_PID" "rss_upload_$service.txt" 300 &
    sampler=$!
    PIDS+=("$sampler")
    start=$SECONDS
    reply=$(head -c "$bytes" /dev/zero |
        curl -sS --max-time 240 -X POST -T - -H 'Expect:' -H 'Content-Type: application/octet-stream' \
            -w '\nhttp_status=%{http_code}\n' "$GATE/$service/upload" 2>"upload_$service.err") ||
        die "upload to $service failed: $(cat "upload_$service.err") ${reply:-}"
    stop_pid "$sampler"
    peak=$(max_of "rss_upload_$service.txt")
    hwm=$(hwm_kib "$GATE_PID")
    counted=$(sed -n 's/.*"body_len":\([0-9]*\).*/\1/p' <<<"$reply")
    [ "$counted" = "$bytes" ] || die "upstream counted '$counted' bytes of $bytes via $service: $reply"
    echo "$before $peak $hwm $((SECONDS - start))"
}
# Inspection off: the body streams straight through.
UPLOAD_OFF=$(upload upload)
# Inspection block with oversize_inspection: pass: the first max_inspect_bytes (10 MiB) are
# buffered and scanned, the rest streams.
UPLOAD_INSPECTED=$(upload upload-inspected)

COMPILERS_AFTER=$(compilers)

# --- report ----------------------------------------------------------------------------------
report_row() {
    printf '  %-30s %10s req/s  p50 %7s us  p90 %7s us  p99 %7s us  max %8s us  errors %s  non-2xx %s\n' \
        "$1" "$(field "$2" rps)" "$(field "$2" p50_us)" "$(field "$2" p90_us)" "$(field "$2" p99_us)" \
        "$(field "$2" max_us)" "$(field "$2" errors)" "$(field "$2" non2xx)"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f%%", 100 * a / b }'; }
added() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+d us", a - b }'; }

echo "aegis gate load test ($(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg))"
echo "  gate $GATE; upstreams https://localhost:<port> (HTTP/1.1 over TLS from wrk), a fresh one per run;" \
    "upstream ALPN ${BENCH_UPSTREAM_ALPN:-http/1.1}"
echo "  wrk: keep-alive, $THREADS threads, ${DURATION}s per run, POST 1 KiB to /echo-body"
if [ "$COMPILERS_BEFORE" != 0 ] || [ "$COMPILERS_AFTER" != 0 ]; then
    echo "  warning: compilers were running during the measurement ($COMPILERS_BEFORE at start," \
        "$COMPILERS_AFTER at end); figures are skewed"
fi
echo
echo "Saturation ($CONNECTIONS connections):"
report_row "direct (HTTPS upstream)" "$SAT_DIRECT"
report_row "through gate" "$SAT_GATE"
report_row "through bare hyper proxy" "$SAT_PROXY"
echo "  gate/direct throughput: $(ratio "$(field "$SAT_GATE" rps)" "$(field "$SAT_DIRECT" rps)")" \
    "  added p50: $(added "$(field "$SAT_GATE" p50_us)" "$(field "$SAT_DIRECT" p50_us)")" \
    "  added p99: $(added "$(field "$SAT_GATE" p99_us)" "$(field "$SAT_DIRECT" p99_us)")"
echo "  bare proxy/direct throughput: $(ratio "$(field "$SAT_PROXY" rps)" "$(field "$SAT_DIRECT" rps)")," \
    "gate/bare proxy: $(ratio "$(field "$SAT_GATE" rps)" "$(field "$SAT_PROXY" rps)");" \
    "bare proxy CPU per request $(cpu_us_per_req "$PROXY_TICKS" "$(field "$SAT_PROXY" requests)") us"
per_sec() { awk -v n="$1" -v us="$2" 'BEGIN { printf "%.1f", n * 1e6 / us }'; }
CMP_ON_RPS=$(per_sec "$CMP_ON_REQ" "$CMP_ON_US")
CMP_OFF_RPS=$(per_sec "$CMP_OFF_REQ" "$CMP_OFF_US")
echo "  ledger on vs off (ABBA x $ABBA_ROUNDS, ${HALF}s runs, same upstream): on $CMP_ON_RPS req/s, off $CMP_OFF_RPS req/s," \
    "on/off $(ratio "$CMP_ON_RPS" "$CMP_OFF_RPS");" \
    "gate CPU per request on $(cpu_us_per_req "$CMP_ON_TICKS" "$CMP_ON_REQ") us," \
    "off $(cpu_us_per_req "$CMP_OFF_TICKS" "$CMP_OFF_REQ") us" \
    "(ledger request entries before: $ENTRIES_BEFORE)"
OBS_ON_RPS=$(per_sec "$OBS_ON_REQ" "$OBS_ON_US")
OBS_OFF_RPS=$(per_sec "$OBS_OFF_REQ" "$OBS_OFF_US")
echo "  metrics + JSON logs on vs off (ABBA x $ABBA_ROUNDS, ${HALF}s runs, same upstream): on $OBS_ON_RPS req/s," \
    "off $OBS_OFF_RPS req/s, on/off $(ratio "$OBS_ON_RPS" "$OBS_OFF_RPS");" \
    "gate CPU per request on $(cpu_us_per_req "$OBS_ON_TICKS" "$OBS_ON_REQ") us," \
    "off $(cpu_us_per_req "$OBS_OFF_TICKS" "$OBS_OFF_REQ") us ($LOG_LINES request log lines written)"
echo "  CPU per request: upstream $(cpu_us_per_req "$UP_TICKS_DIRECT" "$(field "$SAT_DIRECT" requests)") us (direct)," \
    "gate $(cpu_us_per_req "$GATE_TICKS" "$(field "$SAT_GATE" requests)") us +" \
    "upstream $(cpu_us_per_req "$UP_TICKS_GATE" "$(field "$SAT_GATE" requests)") us (through gate)"
echo
echo "Paced (~2,000 req/s: $RATE_CONNECTIONS connections, ${RATE_DELAY_MS} ms pause after each response):"
report_row "direct (HTTPS upstream)" "$PACED_DIRECT"
report_row "through gate" "$PACED_GATE"
echo "  added p50: $(added "$(field "$PACED_GATE" p50_us)" "$(field "$PACED_DIRECT" p50_us)")" \
    "  added p99: $(added "$(field "$PACED_GATE" p99_us)" "$(field "$PACED_DIRECT" p99_us)")"
echo
echo "Gate memory:"
echo "  idle RSS:                         $(mib "$IDLE_KIB") MiB"
if [ "$HWM_RESET" = 1 ]; then hwm_note="VmHWM over the run"; else hwm_note="VmHWM since start, incl. Argon2id unlock"; fi
echo "  peak RSS, $CONNECTIONS-connection run:      $(mib "$PEAK_SAMPLED_KIB") MiB sampled every 50 ms ($hwm_note: $(mib "$HWM_KIB") MiB)"
upload_row() {
    local before peak hwm secs
    read -r before peak hwm secs <<<"$2"
    echo "  $1: RSS $(mib "$before") MiB before, peak $(mib "$peak") MiB sampled," \
        "growth $(mib $((peak - before))) MiB (VmHWM $(mib "$hwm") MiB; ${secs}s)"
}
upload_row "${UPLOAD_MIB} MiB upload, inspection off  " "$UPLOAD_OFF"
upload_row "${UPLOAD_MIB} MiB upload, inspection block" "$UPLOAD_INSPECTED"
echo "  (each upload streamed with curl -T -, chunked; the upstream counted every byte)"
