# Sourced by the A1 scripts (bench/network/http.sh, bench/trips/http.sh): the server under
# test and one wrk run as a table row. Needs SLUICE, PORT, CONNS, THREADS, PY set.

A1_LUA="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/a1.lua"
export A1_LUA

# a1_serve DATA_DIR LOG PROBE_PATH: `sluice serve` on 127.0.0.1:$PORT, stopped when the
# script exits; returns once PROBE_PATH answers 2xx.
a1_serve() {
  local dd="$1" log="$2" probe="$3"
  "$SLUICE" --data-dir "$dd" serve --addr "127.0.0.1:$PORT" > "$log" 2>&1 &
  A1_SERVER=$!
  trap 'kill "$A1_SERVER" 2>/dev/null; wait "$A1_SERVER" 2>/dev/null || true' EXIT
  for _ in $(seq 1 100); do
    curl -fs -o /dev/null "http://127.0.0.1:$PORT$probe" && return 0
    kill -0 "$A1_SERVER" 2>/dev/null || { echo "server exited:" >&2; tail "$log" >&2; exit 1; }
    sleep 0.1
  done
  echo "server did not answer $probe" >&2; exit 1
}

a1_header() {
  echo "| query | req/s | p50 ms | p99 ms | non-2xx | socket errors |"
  echo "|---|---:|---:|---:|---:|---:|"
}

# a1_row LABEL SCRIPT OUT_FILE DURATION: wrk with SCRIPT (its env as the caller exports it),
# raw output kept in OUT_FILE; prints the table row; fails on any non-2xx or socket error.
a1_row() {
  local label="$1" script="$2" file="$3" duration="$4" out
  out="$(wrk -t"$THREADS" -c"$CONNS" -d"$duration" --latency -s "$script" "http://127.0.0.1:$PORT")"
  printf '%s\n' "$out" > "$file"
  printf '%s\n' "$out" | "$PY" -c '
import re, sys
t = sys.stdin.read()
m = dict(kv.split("=") for kv in re.search(r"A1SUMMARY (.*)", t).group(1).split())
m = {k: int(v) for k, v in m.items()}
rps = m["requests"] / (m["duration_us"] / 1e6)
sock = m["connect"] + m["read"] + m["write"] + m["timeout"]
p50, p99, bad = m["p50_us"] / 1e3, m["p99_us"] / 1e3, m["non2xx"]
print(f"| {sys.argv[1]} | {rps:,.0f} | {p50:.2f} | {p99:.2f} | {bad} | {sock} |")
sys.exit(1 if bad or sock else 0)
' "$label"
}
