#!/usr/bin/env bash
# T1/T2 of performance.md for trips: generate N trips, ingest them (sluice from stdin,
# DuckDB read_csv, SQLite .import), then time the weekly averages (sluice vs DuckDB SQL),
# cross-check the answers and print the tables.
# usage: bench/trips/run.sh [rows (default 1000000)] [runs (default 3)] [query repeats (default 20)]
set -euo pipefail
rows="${1:-1000000}"; runs="${2:-3}"; reps="${3:-20}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="${TRIPS_BENCH_DIR:-/tmp/sluice-trips-bench}"
target="${CARGO_TARGET_DIR:-$root/target}"
mkdir -p "$work"
(cd "$root" && cargo build --release -q -p sluice-trips --example trips_bench)
bin="$target/release/examples/trips_bench"
py="$("$root/bench/setup.sh")"
csv="$work/trips-$rows.csv"
[ -s "$csv" ] || "$bin" generate "$rows" 42 > "$csv"
rss() { grep "Maximum resident" "$1" | awk '{print $NF}'; }
: > "$work/sluice.jsonl"; : > "$work/duckdb.jsonl"; : > "$work/sqlite.jsonl"
for i in $(seq "$runs"); do
  rm -rf "$work/sluice-data"
  /usr/bin/time -v "$bin" ingest "$work/sluice-data" < "$csv" > "$work/s.json" 2> "$work/s.time"
  "$py" -c "import json,sys; d=json.load(open('$work/s.json')); d['rss_kb']=int(sys.argv[1]); print(json.dumps(d))" "$(rss "$work/s.time")" >> "$work/sluice.jsonl"
  /usr/bin/time -v "$py" "$root/bench/trips/peers/duckdb_trips.py" "$csv" "$work/duck.db" 0 > "$work/d.json" 2> "$work/d.time"
  "$py" -c "import json,sys; d=json.loads(open('$work/d.json').readline()); d['rss_kb']=int(sys.argv[1]); print(json.dumps(d))" "$(rss "$work/d.time")" >> "$work/duckdb.jsonl"
  start=$(date +%s.%N)
  /usr/bin/time -v "$root/bench/trips/peers/sqlite_import.sh" "$csv" "$work/sqlite.db" 2> "$work/q.time"
  end=$(date +%s.%N)
  "$py" -c "import os,sys; print('{\"secs\": %s, \"rows\": $rows, \"rss_kb\": %s, \"db_bytes\": %d}' % (float(sys.argv[2])-float(sys.argv[1]), sys.argv[3], os.path.getsize('$work/sqlite.db')))" "$start" "$end" "$(rss "$work/q.time")" >> "$work/sqlite.jsonl"
done
"$bin" query "$work/sluice-data" "$reps" > "$work/sluice-q.jsonl"
"$py" "$root/bench/trips/peers/duckdb_trips.py" "$csv" "$work/duck.db" "$reps" | tail -n +2 > "$work/duckdb-q.jsonl"
echo "date: $(date -u +%FT%TZ); machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; command: bench/trips/run.sh $rows $runs $reps"
"$py" "$root/bench/trips/compare.py" "$work/sluice.jsonl" "$work/duckdb.jsonl" "$work/sqlite.jsonl" "$work/sluice-q.jsonl" "$work/duckdb-q.jsonl"
