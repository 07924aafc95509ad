#!/usr/bin/env bash
# T2a of issue #12: the weekly average over arbitrary boxes (bench/trips/boxes.py: 240 seeded
# boxes, sides 100 m to 30 km, in and around the generated cities' dense parts), every box in
# the 4 match modes x both weeks modes. sluice answers every query through `trips_bench
# --boxes` (the code behind GET /api/v1/trips/weekly-average, without HTTP); ClickHouse
# (chDB) answers the whole workload untimed for the cross-check (a few boxes per scan), and
# both it and DuckDB time the first PEER_BOXES boxes' queries one by one, as a user sends
# them (those answers are checked too).
# Prints the latency tables and the slowest queries of sluice with the trips under their box
# edges (bench/trips/edges.py); fails on any answer that differs.
# usage: bench/trips/boxes.sh [rows (default 1000000)] [sluice repeats per query (default 5)]
# env:   TRIPS_BENCH_DIR (default /tmp/sluice-trips-bench): the data `KEEP=1 bench/trips/run.sh`
#        left there is reused when it holds the same number of rows; what is missing is built
#        (and kept). PEER_BOXES (default 40) boxes the peers time; PEER_REPEATS (default 1)
#        runs of each of their queries; CHECK (default "clickhouse") the peers that answer the
#        whole workload ("clickhouse duckdb": DuckDB too, about 8x ClickHouse's time: 15 min
#        at 10 M on 2 busy cores); BOXES=file instead of the generated boxes; SLUICE=path.
set -euo pipefail
rows="${1:-1000000}"; reps="${2:-5}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
here="$root/bench/trips"
work="${TRIPS_BENCH_DIR:-/tmp/sluice-trips-bench}"
peer_boxes="${PEER_BOXES:-40}"; peer_reps="${PEER_REPEATS:-1}"; check="${CHECK:-clickhouse}"
target="${CARGO_TARGET_DIR:-$root/target}"
mkdir -p "$work"
if [ -z "${SLUICE:-}" ]; then
  (cd "$root" && cargo build --release -q -p sluice-cli)
  SLUICE="$target/release/sluice"
fi
(cd "$root" && cargo build --release -q -p sluice-trips --example trips_bench)
query="$target/release/examples/trips_bench"
py="$("$root/bench/setup.sh")"
csv="$work/trips-$rows.csv"
db="$work/sluice-data"
# run.sh writes <database>.rows beside each database it leaves
fresh() { [ -e "$1" ] && [ "$(cat "$1.rows" 2>/dev/null)" = "$rows" ]; }
csv_ready() { [ -s "$csv" ] || "$SLUICE" generate trips --rows "$rows" --seed 42 > "$csv"; }

echo "date: $(date -u +%FT%TZ); machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; load: $(cut -d' ' -f1-3 /proc/loadavg); command: bench/trips/boxes.sh $rows $reps (PEER_BOXES=$peer_boxes PEER_REPEATS=$peer_reps CHECK=\"$check\")"
if ! fresh "$db"; then
  csv_ready; rm -rf "$db"
  "$SLUICE" --data-dir "$db" ingest trips - < "$csv" > "$work/file.log" 2>&1
  echo "$rows" > "$db.rows"
fi
if ! fresh "$work/duck.db"; then
  csv_ready
  "$py" "$here/peers/duckdb_trips.py" "$csv" "$work/duck.db" 0 load > /dev/null
  echo "$rows" > "$work/duck.db.rows"
fi
if ! fresh "$work/ch.db"; then
  csv_ready
  "$py" "$here/peers/clickhouse_trips.py" "$csv" "$work/ch.db" 0 load > /dev/null
  echo "$rows" > "$work/ch.db.rows"
fi
boxes="${BOXES:-$work/boxes.jsonl}"
[ -n "${BOXES:-}" ] || "$py" "$here/boxes.py" --sluice "$SLUICE" > "$boxes"

s="$work/boxes-sluice.jsonl"
/usr/bin/time -f "%e s wall, %U s user, %S s sys, %M KiB peak RSS" -o "$work/boxes-sluice.time" \
  "$query" "$db" "$reps" --boxes "$boxes" > "$s"
for peer in duckdb clickhouse; do
  dbp="$work/duck.db"; [ "$peer" = duckdb ] || dbp="$work/ch.db"
  : > "$work/boxes-$peer-check.jsonl"
  [[ " $check " == *" $peer "* ]] && \
    "$py" "$here/peers/${peer}_trips.py" "$csv" "$dbp" 0 check "$boxes" > "$work/boxes-$peer-check.jsonl"
  "$py" "$here/peers/${peer}_trips.py" "$csv" "$dbp" "$peer_reps" query "$boxes" "$peer_boxes" \
    > "$work/boxes-$peer.jsonl"
done
echo "sluice: $(cat "$work/boxes-sluice.time"); load after: $(cut -d' ' -f1-3 /proc/loadavg)"
"$py" "$here/compare.py" --boxes "$boxes" "$s" \
  "$work/boxes-duckdb-check.jsonl" "$work/boxes-duckdb.jsonl" \
  "$work/boxes-clickhouse-check.jsonl" "$work/boxes-clickhouse.jsonl"
echo
"$py" "$here/edges.py" "$work/duck.db" "$boxes" "$s"
