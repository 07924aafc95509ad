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
PY="$("$root/bench/setup.sh" | tail -n1)"
. "$root/bench/lib/a1.sh"

cd "$WORK"
a1_serve "$DD" "$WORK/serve-$ROWS.log" "/kpi1?interval=1-hour&from=2017-03-01_08:00:00&to=2017-03-01_09:00:00"

# random: every request a different /kpi1 window and interval (kpi1_random.lua, seeded by
# SEED), so the response cache answers none of them; the two fixed queries after it are
# what the cache answers (a dashboard polling one view).
echo "A1 network: wrk -t$THREADS -c$CONNS -d$DURATION --latency (server and wrk share $(nproc) cores), $(date -u +%FT%TZ), load avg $(cut -d' ' -f1-3 /proc/loadavg)"
a1_header
export SEED="${SEED:-1}"
fail=0
FIXED="" a1_row "kpi1 random windows, both intervals (seed $SEED)" "$here/kpi1_random.lua" \
  "$WORK/wrk-random.txt" "$DURATION" || fail=1
for interval in 5-minute 1-hour; do
  path="/kpi1?from=2017-03-01_08:00:00&to=2017-03-01_09:00:00&interval=$interval"
  FIXED="$path" a1_row "fixed \`$path\`" "$here/kpi1_random.lua" "$WORK/wrk-fixed-$interval.txt" \
    "$DURATION" || fail=1
done
echo "targets (random): >= 20000 req/s, p99 <= 10 ms, 0 errors (raw wrk output in $WORK/wrk-*.txt)"
[ "$fail" = 0 ] || { echo "A1 FAILED: errors (non-2xx or socket) above" >&2; exit 1; }
