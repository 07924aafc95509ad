#!/usr/bin/env bash
# A1 (performance.md), network part: `sluice serve` on the data dir that run.sh ingested,
# wrk with 64 connections / 2 threads against the Flask-compat /kpi1 route (5-minute and
# hourly query). Everything stays on 127.0.0.1.
#
#   bench/network/http.sh [ROWS_PER_FILE=50000] [DURATION=30s]
#
# Environment: SLUICE (binary; default ${CARGO_TARGET_DIR:-<repo>/target}/release/sluice),
# NETBENCH_WORK (as run.sh), PORT (default 18471), CONNS (64), THREADS (2).
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
declare -A QUERIES=(
  [kpi1-5min]="/kpi1?from=2017-03-01_08:00:00&to=2017-03-01_09:00:00&interval=5-minute"
  [kpi1-hour]="/kpi1?from=2017-03-01_08:00:00&to=2017-03-01_09:00:00&interval=1-hour"
)
echo "A1 network: wrk -t$THREADS -c$CONNS -d$DURATION --latency (server and wrk share $(nproc) cores), $(date -u +%FT%TZ)"
echo "| query | items | response bytes | req/s | p50 ms | p99 ms | non-2xx | socket errors |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for name in kpi1-5min kpi1-hour; do
  path="${QUERIES[$name]}"
  body="$(curl -fsS "$BASE$path")"
  items="$(printf '%s' "$body" | "$PY" -c 'import json,sys; print(len(json.load(sys.stdin)))')"
  out="$(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "$BASE$path")"
  printf '%s\n' "$out" > "$WORK/wrk-$name.txt"
  printf '%s\n' "$out" | "$PY" -c '
import re, sys
t = sys.stdin.read()
def ms(s):
    v, u = re.match(r"([\d.]+)(\w+)", s).groups()
    return float(v) * {"us": 1e-3, "ms": 1, "s": 1e3, "m": 6e4}[u]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
p50 = ms(re.search(r"\s50%\s+(\S+)", t).group(1))
p99 = ms(re.search(r"\s99%\s+(\S+)", t).group(1))
n2 = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
se = re.search(r"Socket errors: (.*)", t)
name, items, size = sys.argv[1:4]
print(f"| {name} | {items} | {size} | {rps:,.0f} | {p50:.2f} | {p99:.2f} | {n2.group(1) if n2 else 0} | {se.group(1) if se else 0} |")
' "$name $path" "$items" "${#body}"
done
echo "targets: >= 20000 req/s, p99 <= 10 ms, 0 errors (raw wrk output in $WORK/wrk-*.txt)"
