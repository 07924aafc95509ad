#!/usr/bin/env bash
# T1/T2 of performance.md for trips, through the `sluice` binary.
#   T1: `sluice generate trips --rows N --seed 42 | sluice ingest trips -` (the spec's command:
#       generator and ingestion share the machine), then the same bytes from a CSV file on
#       stdin; DuckDB `read_csv`, ClickHouse (chDB) `file()` into a MergeTree table and the
#       SQLite CLI `.import` of that file.
#   T2: the weekly averages (a region, everything, 4 boxes x 4 match modes) and `/vehicles`
#       lookups on the ingested data: sluice through `trips_bench` (the code behind the
#       routes, without HTTP), DuckDB and ClickHouse SQL on their tables (the peers also in
#       weeks=span, checked peer against peer). Every answer is cross-checked; the run fails
#       on any difference.
# usage: bench/trips/run.sh [rows (default 1000000)] [query repeats (default 20)]
# env:   SLUICE=path (default: build sluice-cli in release), TOOLS="pipe file duckdb clickhouse sqlite"
#        (subset; T2 needs pipe or file, and duckdb), TRIPS_BENCH_DIR (default
#        /tmp/sluice-trips-bench), KEEP=1 keeps the CSV and the databases afterwards.
set -euo pipefail
rows="${1:-1000000}"; reps="${2:-20}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
here="$root/bench/trips"
work="${TRIPS_BENCH_DIR:-/tmp/sluice-trips-bench}"
tools="${TOOLS:-pipe file duckdb clickhouse sqlite}"
target="${CARGO_TARGET_DIR:-$root/target}"
mkdir -p "$work"
if [ -z "${SLUICE:-}" ]; then
  (cd "$root" && cargo build --release -q -p sluice-cli)
  SLUICE="$target/release/sluice"
fi
(cd "$root" && cargo build --release -q -p sluice-trips --example trips_bench)
query="$target/release/examples/trips_bench"
py="$("$root/bench/setup.sh")"
has() { [[ " $tools " == *" $1 "* ]]; }
rss() { grep "Maximum resident" "$1" | awk '{print $NF}'; }
now() { date +%s.%N; }
t1="$work/t1.jsonl"; : > "$t1"
csv="$work/trips-$rows.csv"
db="$work/sluice-data"

# One T1 line: tool label, start, end, rss file, database path.
record() {
  "$py" -c 'import json, os, sys
tool, start, end, rss, rows, path = sys.argv[1:]
size = sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path)) if os.path.isdir(path) else os.path.getsize(path)
print(json.dumps({"tool": tool, "secs": float(end) - float(start), "rows": int(rows),
                  "rss_kb": int(rss) if rss else None, "db_bytes": size}))' "$@" >> "$t1"
}

echo "date: $(date -u +%FT%TZ); machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; command: bench/trips/run.sh $rows $reps; tools: $tools"
if has pipe; then
  rm -rf "$db"
  start=$(now)
  "$SLUICE" generate trips --rows "$rows" --seed 42 \
    | /usr/bin/time -v -o "$work/pipe.time" "$SLUICE" --data-dir "$db" ingest trips - > "$work/pipe.log" 2>&1
  end=$(now)
  record "sluice: \`generate trips | ingest trips -\` (generator on the same cores)" "$start" "$end" "$(rss "$work/pipe.time")" "$rows" "$db/sluice.db"
fi
if has file || has duckdb || has clickhouse || has sqlite; then
  [ -s "$csv" ] || "$SLUICE" generate trips --rows "$rows" --seed 42 > "$csv"
fi
if has file; then
  rm -rf "$db"
  start=$(now)
  /usr/bin/time -v -o "$work/file.time" "$SLUICE" --data-dir "$db" ingest trips - < "$csv" > "$work/file.log" 2>&1
  end=$(now)
  record "sluice: \`ingest trips - < file\`" "$start" "$end" "$(rss "$work/file.time")" "$rows" "$db/sluice.db"
fi
if has duckdb; then
  /usr/bin/time -v -o "$work/duck.time" "$py" "$here/peers/duckdb_trips.py" "$csv" "$work/duck.db" 0 load > "$work/duck.json"
  "$py" -c 'import json, sys; d = json.load(open(sys.argv[1])); d["rss_kb"] = int(sys.argv[2]); print(json.dumps(d))' \
    "$work/duck.json" "$(rss "$work/duck.time")" >> "$t1"
fi
if has clickhouse; then
  /usr/bin/time -v -o "$work/ch.time" "$py" "$here/peers/clickhouse_trips.py" "$csv" "$work/ch.db" 0 load > "$work/ch.json"
  "$py" -c 'import json, sys; d = json.load(open(sys.argv[1])); d["rss_kb"] = int(sys.argv[2]); print(json.dumps(d))' \
    "$work/ch.json" "$(rss "$work/ch.time")" >> "$t1"
fi
if has sqlite; then
  start=$(now)
  /usr/bin/time -v -o "$work/sqlite.time" "$here/peers/sqlite_import.sh" "$csv" "$work/sqlite.db" > /dev/null
  end=$(now)
  record "SQLite CLI \`.import\` (text columns, no parsing)" "$start" "$end" "$(rss "$work/sqlite.time")" "$rows" "$work/sqlite.db"
  [ -n "${KEEP:-}" ] || rm -f "$work/sqlite.db"
fi
"$query" "$db" "$reps" > "$work/sluice-q.jsonl"
"$py" "$here/peers/duckdb_trips.py" "$csv" "$work/duck.db" "$reps" query > "$work/duckdb-q.jsonl"
chq=()
if has clickhouse; then
  "$py" "$here/peers/clickhouse_trips.py" "$csv" "$work/ch.db" "$reps" query > "$work/clickhouse-q.jsonl"
  chq=("$work/clickhouse-q.jsonl")
  [ -n "${KEEP:-}" ] || rm -rf "$work/ch.db"
fi
"$py" "$here/compare.py" "$t1" "$work/sluice-q.jsonl" "$work/duckdb-q.jsonl" "${chq[@]}"
[ -n "${KEEP:-}" ] || rm -f "$csv"
