#!/usr/bin/env bash
# T1/T2 of performance.md for trips, through the `sluice` binary.
#   T1: `sluice generate trips --rows N --seed 42 | sluice ingest trips -` (the spec's command:
#       generator and ingestion share the machine), then the same bytes from a CSV file on
#       stdin; DuckDB `read_csv`, ClickHouse (chDB) `file()` into a plain MergeTree table
#       (ORDER BY tuple(): "load this file") and into the one its T2 queries use (ordered by
#       the origin, skip indexes), and the SQLite CLI `.import` of that file. LOADS=n runs
#       of each, the tools taking turns; the table shows each tool's median.
#   T2: the weekly averages (a region, everything, 4 boxes x 4 match modes) and `/vehicles`
#       lookups on the ingested data: sluice through `trips_bench` (the code behind the
#       routes, without HTTP), DuckDB and ClickHouse SQL on their tables, each weekly average
#       in weeks=active and weeks=span. Every answer is cross-checked; the run fails on any
#       difference.
# usage: bench/trips/run.sh [rows (default 1000000)] [query repeats (default 20)]
# env:   LOADS=n (default 1) T1 runs per tool, SLUICE=path (default: build sluice-cli in
#        release), TOOLS="pipe file duckdb clickhouse sqlite"
#        (subset; T2 needs pipe or file, and duckdb), TRIPS_BENCH_DIR (default
#        /tmp/sluice-trips-bench), KEEP=1 keeps the CSV and the databases afterwards (for
#        bench/trips/boxes.sh; each database gets a <path>.rows file with its row count).
set -euo pipefail
rows="${1:-1000000}"; reps="${2:-20}"; loads="${LOADS:-1}"
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
t1="$work/t1.jsonl"
csv="$work/trips-$rows.csv"
db="$work/sluice-data"

# CPU seconds (user + sys) of a `/usr/bin/time -v` file.
cpu() { awk -F': ' '/User time|System time/ {s += $2} END {print s}' "$1"; }
# One T1 run: tool label, start, end, time -v file, database path.
record() {
  "$py" -c 'import json, os, sys
tool, start, end, rss, cpu, rows, path = sys.argv[1:]
size = sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path)) if os.path.isdir(path) else os.path.getsize(path)
print(json.dumps({"tool": tool, "secs": float(end) - float(start), "rows": int(rows),
                  "rss_kb": int(rss), "cpu_s": float(cpu), "db_bytes": size}))' \
    "$1" "$2" "$3" "$(rss "$4")" "$(cpu "$4")" "$rows" "$5" >> "$t1.runs"
}
# One T1 run of a peer script, which prints its own line (its timer excludes Python's start).
record_peer() {
  "$py" -c 'import json, sys; d = json.load(open(sys.argv[1])); d["rss_kb"] = int(sys.argv[2]); d["cpu_s"] = float(sys.argv[3]); print(json.dumps(d))' \
    "$1" "$(rss "$2")" "$(cpu "$2")" >> "$t1.runs"
}

echo "date: $(date -u +%FT%TZ); machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; load: $(cut -d' ' -f1-3 /proc/loadavg); command: LOADS=$loads bench/trips/run.sh $rows $reps; tools: $tools"
: > "$t1.runs"
if has file || has duckdb || has clickhouse || has sqlite; then
  [ -s "$csv" ] || "$SLUICE" generate trips --rows "$rows" --seed 42 > "$csv"
fi
# The tools take turns, so that each one's runs spread over the same stretch of load.
for _ in $(seq "$loads"); do
  if has pipe; then
    rm -rf "$db" "$db.rows"
    start=$(now)
    "$SLUICE" generate trips --rows "$rows" --seed 42 \
      | /usr/bin/time -v -o "$work/pipe.time" "$SLUICE" --data-dir "$db" ingest trips - > "$work/pipe.log" 2>&1
    end=$(now)
    record "sluice: \`generate trips | ingest trips -\` (generator on the same cores)" "$start" "$end" "$work/pipe.time" "$db/sluice.db"
    echo "$rows" > "$db.rows"
  fi
  if has file; then
    rm -rf "$db" "$db.rows"
    start=$(now)
    /usr/bin/time -v -o "$work/file.time" "$SLUICE" --data-dir "$db" ingest trips - < "$csv" > "$work/file.log" 2>&1
    end=$(now)
    record "sluice: \`ingest trips - < file\`" "$start" "$end" "$work/file.time" "$db/sluice.db"
    echo "$rows" > "$db.rows"
  fi
  if has duckdb; then
    rm -f "$work/duck.db.rows"
    /usr/bin/time -v -o "$work/duck.time" "$py" "$here/peers/duckdb_trips.py" "$csv" "$work/duck.db" 0 load > "$work/duck.json"
    record_peer "$work/duck.json" "$work/duck.time"
    echo "$rows" > "$work/duck.db.rows"
  fi
  if has clickhouse; then
    /usr/bin/time -v -o "$work/ch.time" "$py" "$here/peers/clickhouse_trips.py" "$csv" "$work/ch-plain.db" 0 load-plain > "$work/ch.json"
    record_peer "$work/ch.json" "$work/ch.time"
    rm -rf "$work/ch-plain.db" "$work/ch.db.rows"
    /usr/bin/time -v -o "$work/ch.time" "$py" "$here/peers/clickhouse_trips.py" "$csv" "$work/ch.db" 0 load > "$work/ch.json"
    record_peer "$work/ch.json" "$work/ch.time"
    echo "$rows" > "$work/ch.db.rows"
  fi
  if has sqlite; then
    start=$(now)
    /usr/bin/time -v -o "$work/sqlite.time" "$here/peers/sqlite_import.sh" "$csv" "$work/sqlite.db" > /dev/null
    end=$(now)
    record "SQLite CLI \`.import\` (text columns, no parsing)" "$start" "$end" "$work/sqlite.time" "$work/sqlite.db"
    [ -n "${KEEP:-}" ] || rm -f "$work/sqlite.db"
  fi
done
# Per tool, in the order of the first run: the median run's figures, the spread beside.
"$py" -c 'import json, statistics, sys
runs = [json.loads(l) for l in open(sys.argv[1])]
for tool in dict.fromkeys(r["tool"] for r in runs):
    rs = sorted((r for r in runs if r["tool"] == tool), key=lambda r: r["secs"])
    m = dict(rs[(len(rs) - 1) // 2])
    m.update(secs=statistics.median(r["secs"] for r in rs), loads=len(rs),
             secs_min=rs[0]["secs"], secs_max=rs[-1]["secs"],
             cpu_s=statistics.median(r["cpu_s"] for r in rs), rss_kb=max(r["rss_kb"] for r in rs))
    print(json.dumps(m))' "$t1.runs" > "$t1"
echo "load after the loads: $(cut -d' ' -f1-3 /proc/loadavg)"
"$query" "$db" "$reps" > "$work/sluice-q.jsonl"
"$py" "$here/peers/duckdb_trips.py" "$csv" "$work/duck.db" "$reps" query > "$work/duckdb-q.jsonl"
chq=()
if has clickhouse; then
  "$py" "$here/peers/clickhouse_trips.py" "$csv" "$work/ch.db" "$reps" query > "$work/clickhouse-q.jsonl"
  chq=("$work/clickhouse-q.jsonl")
  [ -n "${KEEP:-}" ] || rm -rf "$work/ch.db" "$work/ch.db.rows"
fi
"$py" "$here/compare.py" "$t1" "$work/sluice-q.jsonl" "$work/duckdb-q.jsonl" "${chq[@]}"
[ -n "${KEEP:-}" ] || rm -f "$csv"
