#!/usr/bin/env bash
# T1/T2 of trips on PostgreSQL beside SQLite (issue #13), same machine, same run: the same
# CSV file loaded by `sluice ingest trips -` into the SQLite file and into a PostgreSQL
# database, then every T2 weekly average (a region, everything, the 4 fixed boxes x 4 match
# modes, weeks=active and span) and the arbitrary boxes of bench/trips/boxes.py through
# `trips_bench` on each. The answers must be identical (SQLite's are checked against DuckDB
# and ClickHouse by run.sh and boxes.sh); the run fails on any difference.
# usage: SLUICE_BENCH_POSTGRES=postgres://user@host:port/db bench/trips/postgres.sh [rows] [repeats]
#        (a server where the script may create and drop a database; `.ci/postgres.sh start`
#        gives one: `source target/pg/env` and pass $SLUICE_TEST_POSTGRES)
set -euo pipefail
rows="${1:-1000000}"; reps="${2:-5}"
: "${SLUICE_BENCH_POSTGRES:?needs SLUICE_BENCH_POSTGRES=postgres://...}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="${TRIPS_BENCH_DIR:-/tmp/sluice-trips-pg-bench}"
target="${CARGO_TARGET_DIR:-$root/target}"
(cd "$root" && cargo build --release -q -p sluice-cli && cargo build --release -q -p sluice-trips --example trips_bench)
sluice="$target/release/sluice"; query="$target/release/examples/trips_bench"
mkdir -p "$work"
csv="$work/trips-$rows.csv"
[ -s "$csv" ] || "$sluice" generate trips --rows "$rows" --seed 42 > "$csv"
[ -s "$work/boxes.jsonl" ] || python3 "$root/bench/trips/boxes.py" --sluice "$sluice" > "$work/boxes.jsonl"
db="sluice_trips_bench"
url="${SLUICE_BENCH_POSTGRES%/*}/$db"
echo "date: $(date -u +%FT%TZ); machine: $(nproc) cores; load: $(cut -d' ' -f1-3 /proc/loadavg); rows: $rows; repeats: $reps"
load() { # label, data dir, extra args...
  local label="$1" dir="$2"; shift 2
  rm -rf "$dir"
  local start end
  start=$(date +%s.%N)
  /usr/bin/time -v -o "$work/$label.time" "$sluice" --data-dir "$dir" "$@" ingest trips - < "$csv" > "$work/$label.log" 2>&1
  end=$(date +%s.%N)
  echo "$label $start $end $(awk '/Maximum resident/ {print $NF}' "$work/$label.time")"
}
psql "$SLUICE_BENCH_POSTGRES" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
t1=("$(load sqlite "$work/sqlite")" "$(load postgres "$work/pg" --database "$url")")
sqlite_bytes=$(du -cb "$work/sqlite"/sluice.db* | tail -1 | cut -f1)
pg_bytes=$(psql "$url" -tAc "SELECT sum(pg_total_relation_size(oid)) FROM pg_class WHERE relkind = 'r' AND relname LIKE 'trips%'")
for b in sqlite postgres; do
  dir="$work/$b"; [ "$b" = postgres ] && dir="$work/pg"
  env=(); [ "$b" = postgres ] && env=(SLUICE_DATABASE="$url")
  env "${env[@]}" "$query" "$dir" "$reps" > "$work/$b-q.jsonl"
  env "${env[@]}" "$query" "$dir" "$reps" --boxes "$work/boxes.jsonl" > "$work/$b-boxes.jsonl"
done
python3 - "$rows" "$sqlite_bytes" "$pg_bytes" "$work" "${t1[@]}" <<'PY'
import json, statistics, sys
rows, sb, pb, work = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
t1 = {l.split()[0]: l.split() for l in sys.argv[5:]}
print("\n| T1 | secs | rows/s | peak RSS MiB | database MB |\n|---|---|---|---|---|")
for b, size in (("sqlite", sb), ("postgres", pb)):
    _, s, e, rss = t1[b]
    secs = float(e) - float(s)
    print(f"| {b} | {secs:.2f} | {rows / secs:,.0f} | {int(rss) / 1024:.0f} | {size / 1e6:.0f} |")
bad = 0
for kind in ("q", "boxes"):
    a = [json.loads(l) for l in open(f"{work}/sqlite-{kind}.jsonl")]
    b = [json.loads(l) for l in open(f"{work}/postgres-{kind}.jsonl")]
    assert len(a) == len(b) and a, kind
    strip = lambda d: {k: v for k, v in d.items() if not k.startswith("p50") and not k.startswith("p95")}
    for x, y in zip(a, b):
        if strip(x) != strip(y):
            bad += 1
            print("DIFFERENT:", x, y)
    if kind == "q":
        print("\n| T2 query | SQLite p50 / p95 ms | PostgreSQL p50 / p95 ms |\n|---|---|---|")
        for x, y in zip(a, b):
            if "p50_ms" in x:
                print(f"| {x['query']} | {x['p50_ms']:.2f} / {x['p95_ms']:.2f} | {y['p50_ms']:.2f} / {y['p95_ms']:.2f} |")
    else:
        def pct(v, q): v = sorted(v); return v[min(len(v) - 1, int(q * len(v)))]
        for name, d in (("SQLite", a), ("PostgreSQL", b)):
            v = [r["p50_ms"] for r in d if "p50_ms" in r]
            print(f"\nT2a arbitrary boxes on {name}: {len(v)} queries, p50 {pct(v, .5):.2f} ms, p95 {pct(v, .95):.2f} ms, max {max(v):.2f} ms")
print(f"\n{bad} answers differ")
sys.exit(1 if bad else 0)
PY
psql "$SLUICE_BENCH_POSTGRES" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"
