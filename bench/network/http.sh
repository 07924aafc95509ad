#!/usr/bin/env bash
# A1 (performance.md), network part: `sluice serve` on the data dir that run.sh ingested,
# wrk with 64 connections / 2 threads against the Flask-compat /kpi1 route: every request a
# different random window of the day (kpi1_random.lua), then two fixed queries. Prints
# req/s, p50, p99 and errors (any non-2xx answer counts); exits 1 on any error. Everything
# stays on 127.0.0.1.
#
#   bench/network/http.sh [ROWS_PER_FILE=50000] [DURATION=30s]
#
# Environment: SLUICE (binary; default ${CARGO_TARGET_DIR:-<repo>/target}/release/sluice),
# NETBENCH_WORK (as run.sh), PORT (default 18471), CONNS (64), THREADS (2), SEED (1).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
ROWS="${1:-50000}"
DURATION="${2:-30s}"
WORK="${NETBENCH_WORK:-$root/bench/out/network}"
SLUICE="$(realpath "${SLUICE:-${CARGO_TARGET_DIR:-$root/target}/release/sluice}")"
PORT="${PORT:-18471}"
CONNS="${CONNS:-64}"
THREADS="${THREADS:-2}"
DD="$WORK/sluice-data-$ROWS"
[ -f "$DD/sluice.db" ] || { echo "no $DD/sluice.db: run bench/network/run.sh $ROWS first" >&2; exit 2; }
command -v wrk > /dev/null || apt-get install -y wrk > /dev/null
BASE="http://127.0.0.1:$PORT"

cd "$WORK"
"$SLUICE" --data-dir "$DD" serve --addr "127.0.0.1:$PORT" > "$WORK/serve-$ROWS.log" 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  curl -fs -o /dev/null "$BASE/kpi1?interval=1-hour&from=2017-03-01_08:00:00&to=2017-03-01_09:00:00" && break
  kill -0 "$SERVER" 2>/dev/null || { echo "server exited:" >&2; tail "$WORK/serve-$ROWS.log" >&2; exit 1; }
  sleep 0.1
done

PY="$("$root/bench/setup.sh" | tail -n1)"
# random: every request a different /kpi1 window and interval (kpi1_random.lua, seeded by
# SEED), so the response cache answers none of them; the two fixed queries after it are
# what the cache answers (a dashboard polling one view).
echo "A1 network: wrk -t$THREADS -c$CONNS -d$DURATION --latency (server and wrk share $(nproc) cores), $(date -u +%FT%TZ), load avg $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| query | req/s | p50 ms | p99 ms | non-2xx | socket errors |"
echo "|---|---:|---:|---:|---:|---:|"
fail=0
run() {  # key label [fixed path]
  local key="$1" name="$2" out
  out="$(SEED="${SEED:-1}" FIXED="${3:-}" wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency \
      -s "$here/kpi1_random.lua" "$BASE")"
  printf '%s\n' "$out" > "$WORK/wrk-$key.txt"
  printf '%s\n' "$out" | "$PY" -c '
import re, sys
t = sys.stdin.read()
m = dict(kv.split("=") for kv in re.search(r"A1SUMMARY (.*)", t).group(1).split())
m = {k: int(v) for k, v in m.items()}
rps = m["requests"] / (m["duration_us"] / 1e6)
sock = m["connect"] + m["read"] + m["write"] + m["timeout"]
p50, p99, bad = m["p50_us"] / 1e3, m["p99_us"] / 1e3, m["non2xx"]
print(f"| {sys.argv[1]} | {rps:,.0f} | {p50:.2f} | {p99:.2f} | {bad} | {sock} |")
sys.exit(1 if m["non2xx"] or sock else 0)
' "$name" || fail=1
}
run random "kpi1 random windows, both intervals (seed ${SEED:-1})"
for interval in 5-minute 1-hour; do
  path="/kpi1?from=2017-03-01_08:00:00&to=2017-03-01_09:00:00&interval=$interval"
  run "fixed-$interval" "fixed \`$path\`" "$path"
done
echo "targets (random): >= 20000 req/s, p99 <= 10 ms, 0 errors (raw wrk output in $WORK/wrk-*.txt)"
[ "$fail" = 0 ] || { echo "A1 FAILED: errors (non-2xx or socket) above" >&2; exit 1; }
