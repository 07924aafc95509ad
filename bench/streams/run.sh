#!/usr/bin/env bash
# Bench S1 (performance.md): the simulator at full speed serving 3 streams, harvested for
# DURATION seconds by sluice and by a Python aiohttp peer, each against a fresh simulator
# process (same seed, so both see the same events first). Prints events/s persisted, loss,
# peak RSS and CPU time of the harvesting process in every run (the simulator is a separate
# process, not counted), ratios, and the load average before and after; fails when the two
# disagree on what they stored first.
#   DURATION=60 RUNS=3 [WORK_DIR=/dev/shm] bench/streams/run.sh
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
DURATION="${DURATION:-20}"
RUNS="${RUNS:-3}"
PORT="${PORT:-18931}"
MALFORMED="${MALFORMED:-0.01}"
# Where the databases go: the default disk, or e.g. /dev/shm to take the disk out.
WORK_DIR="${WORK_DIR:-/tmp}"
py="$("$root/bench/setup.sh")"
target="${CARGO_TARGET_DIR:-$root/target}"
(cd "$root" && CARGO_TARGET_DIR="$target" cargo build --release -q -p sluice-streams --example s1)
bin="$target/release/examples/s1"
work="$(mktemp -d "$WORK_DIR/sluice-s1.XXXXXX")"
sim=""
# Only the simulator this script started, never `kill 0` (the whole process group).
trap '[ -n "$sim" ] && kill "$sim" 2>/dev/null; rm -rf "$work"' EXIT

start_sim() {
  "$bin" simulate --addr "127.0.0.1:$PORT" --rate 0 --malformed "$MALFORMED" --seed 1 >"$work/sim.log" 2>&1 &
  sim=$!
  for _ in $(seq 100); do
    grep -q simulating "$work/sim.log" 2>/dev/null && return
    sleep 0.05
  done
  echo "simulator did not start" >&2; cat "$work/sim.log" >&2; exit 1
}
stop_sim() { kill -INT "$sim"; wait "$sim" || true; sim=""; }
rss_mb() { awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2/1024}' "$1"; }
cpu_s() { awk -F': ' '/User time/ {u = $2} /System time/ {s = $2} END {printf "%.1f", u + s}' "$1"; }
field() { "$py" -c "import json,sys; print(json.loads(open(sys.argv[1]).read().splitlines()[-1])[sys.argv[2]])" "$1" "$2"; }

load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
for i in $(seq "$RUNS"); do
  start_sim
  /usr/bin/time -v "$bin" harvest --data-dir "$work/sluice-$i" --source "http://127.0.0.1:$PORT" \
    --max-duration "${DURATION}s" --stop-count 0 >"$work/sluice-$i.out" 2>"$work/sluice-$i.time"
  stop_sim
  # The figures are read from the database by a second process, so that the peak RSS is the
  # harvest's own (a count over the run's tables maps the database file into memory).
  "$bin" check --data-dir "$work/sluice-$i" >"$work/sluice-$i.json"
  start_sim
  /usr/bin/time -v "$py" "$here/peers/aiohttp_harvest.py" --source "http://127.0.0.1:$PORT" \
    --duration "$DURATION" --db "$work/peer-$i.db" >"$work/peer-$i.json" 2>"$work/peer-$i.time"
  stop_sim
  # Cross-check: the first 1000 events of each stream, in order, are the same in both stores.
  "$py" - "$work/sluice-$i/sluice.db" "$work/peer-$i.db" <<'PY'
import sqlite3, sys
from datetime import datetime, timezone
# Event times are stamped live, so they differ between runs; what must agree is the content
# and the zone offset each tool applied to the user's local event_date.
q = ("SELECT event_id, event_type, user_id, show_id, platform, first_actor, release_year, "
     "event_date, at_ms FROM {t} WHERE stream = ? ORDER BY seq LIMIT 1000")
def rows(db, table, stream):
    out = []
    for *k, date, at in sqlite3.connect(db).execute(q.format(t=table), (stream,)):
        local = datetime.strptime(date, "%d-%m-%Y %H:%M:%S.%f").replace(tzinfo=timezone.utc)
        out.append((*k, round(local.timestamp() * 1000) - at))
    return out
for stream in ["sytflix", "sytazon", "sysney"]:
    a, b = rows(sys.argv[1], "streams_events", stream), rows(sys.argv[2], "events", stream)
    if len(a) < 1000 or a != b:
        sys.exit(f"S1 cross-check failed on {stream}: sluice and the peer stored different events")
PY
  for t in sluice peer; do
    echo "$t $(field "$work/$t-$i.json" events_per_s) $(field "$work/$t-$i.json" lost) $(rss_mb "$work/$t-$i.time") $(field "$work/$t-$i.json" received) $(cpu_s "$work/$t-$i.time")" >>"$work/results"
  done
  rm -rf "$work/sluice-$i" "$work/peer-$i.db"*
done

echo "S1 streams: simulator at full speed (malformed share $MALFORMED), 3 streams, ${DURATION} s per run, $RUNS runs, $(nproc) cores, databases under $WORK_DIR; load average $load_before before, $(cut -d' ' -f1-3 /proc/loadavg) after"
"$py" - "$work/results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    t, rate, lost, rss, received, cpu = line.split()
    rows.setdefault(t, []).append((float(rate), int(lost), int(rss), int(received), float(cpu)))
med = {t: statistics.median(r[0] for r in v) for t, v in rows.items()}
print(f"| tool | events/s persisted (median) | runs | lost | peak RSS MB (max) | peak RSS MB, runs | CPU s, runs | received (median) | ratio to sluice |")
print(f"|---|---|---|---|---|---|---|---|---|")
for t, name in [("sluice", "sluice harvest"), ("peer", "Python aiohttp + sqlite3")]:
    v = rows[t]
    print(f"| {name} | {med[t]:,.0f} | {', '.join(f'{r[0]:,.0f}' for r in v)} | {sum(r[1] for r in v)} "
          f"| {max(r[2] for r in v)} | {', '.join(str(r[2]) for r in v)} | {', '.join(f'{r[4]:.1f}' for r in v)} "
          f"| {statistics.median(r[3] for r in v):,.0f} | {med[t] / med['sluice']:.2f} |")
PY
