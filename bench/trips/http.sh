#!/usr/bin/env bash
# A1 (performance.md), trips part: `sluice serve` on the data dir that bench/trips/run.sh
# left, wrk with 64 connections / 2 threads (wrk and the server share the machine's cores),
# every request a different weekly average over the boxes of the T2a workload
# (boxes.lua: a random box of bench/trips/boxes.py, match mode and weeks mode). Prints
# req/s, p50, p99 and errors (any non-2xx answer counts); exits 1 on any error. Everything
# stays on 127.0.0.1.
#
#   bench/trips/http.sh [ROWS=10000000] [DURATION=30s]
#
# Environment: TRIPS_BENCH_DIR (as run.sh; its sluice-data must hold ROWS trips), SLUICE
# (binary; default ${CARGO_TARGET_DIR:-<repo>/target}/release/sluice), BOXES (default: the
# work dir's boxes.jsonl, made by boxes.py when absent), PORT (18472), CONNS (64),
# THREADS (2), SEED (1).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
ROWS="${1:-10000000}"
DURATION="${2:-30s}"
WORK="${TRIPS_BENCH_DIR:-/tmp/sluice-trips-bench}"
SLUICE="$(realpath "${SLUICE:-${CARGO_TARGET_DIR:-$root/target}/release/sluice}")"
PORT="${PORT:-18472}"
CONNS="${CONNS:-64}"
THREADS="${THREADS:-2}"
DD="$WORK/sluice-data"
[ "$(cat "$DD.rows" 2>/dev/null)" = "$ROWS" ] || {
  echo "no $DD with $ROWS trips: run KEEP=1 bench/trips/run.sh $ROWS first" >&2; exit 2; }
command -v wrk > /dev/null || apt-get install -y wrk > /dev/null
PY="$("$root/bench/setup.sh" | tail -n1)"
BOXES="${BOXES:-$WORK/boxes.jsonl}"
[ -s "$BOXES" ] || "$PY" "$here/boxes.py" --sluice "$SLUICE" > "$BOXES"
. "$root/bench/lib/a1.sh"

a1_serve "$DD" "$WORK/serve.log" "/api/v1/trips/weekly-average?bbox=14.42,50.07,14.44,50.09"

echo "A1 trips: wrk -t$THREADS -c$CONNS -d$DURATION --latency, $ROWS trips, $(wc -l < "$BOXES") boxes x 4 match modes x 2 weeks modes (server and wrk share $(nproc) cores), $(date -u +%FT%TZ), load avg $(cut -d' ' -f1-3 /proc/loadavg)"
a1_header
export SEED="${SEED:-1}" BOXES
fail=0
a1_row "weekly average, random boxes of the workload, all modes (seed $SEED)" "$here/boxes.lua" \
  "$WORK/wrk-boxes.txt" "$DURATION" || fail=1
echo "targets: >= 2000 req/s, p99 <= 100 ms, 0 errors (load avg after: $(cut -d' ' -f1-3 /proc/loadavg); raw wrk output in $WORK/wrk-boxes.txt)"
[ "$fail" = 0 ] || { echo "A1 FAILED: errors (non-2xx or socket) above" >&2; exit 1; }
