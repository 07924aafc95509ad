#!/usr/bin/env bash
# Bench U1 (performance.md): the uptime report on generated data of the 2023 export's shape,
# sluice next to pandas and DuckDB peers implementing the same documented rule; every
# peer's CSV is cross-checked against sluice's (a disagreement fails the bench). Prints
# ingestion (load) and report times, and files → first report: sluice's ingest + report
# beside each peer's load + report.
# usage: [SLUICE=binary] [WORK=dir] bench/uptime/run.sh [STORES=14000] [DAYS=8] [RUNS=5]
# SLUICE_BENCH_POSTGRES=postgres://user@host:port/db (a server where a database may be created
# and dropped, e.g. the one `.ci/postgres.sh start` prints) adds sluice on PostgreSQL (#13),
# a fresh database per run, its report cross-checked against the SQLite one.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
stores=${1:-14000} days=${2:-8} runs=${3:-5}
py="$(bash "$root/bench/setup.sh")"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
# SLUICE=<binary> measures a binary built before (no build now).
sluice="${SLUICE:-}"
if [ -z "$sluice" ]; then
  cargo build --quiet --release -p sluice-cli
  sluice="$CARGO_TARGET_DIR/release/sluice"
fi
work="${WORK:-/tmp/sluice-u1}"
rm -rf "$work" && mkdir -p "$work"
"$sluice" generate uptime --stores "$stores" --days "$days" --seed 1 --out "$work/in" >/dev/null
polls=$(($(wc -l < "$work/in/store_status.csv") - 1))
echo "U1: $stores stores x $days days = $polls polls; $runs runs each; $(nproc) cores"

# Appends "<wall s> <peak RSS MiB> <user+sys CPU s>" of a sluice command to file $1.
timed() {
  local file=$1; shift
  /usr/bin/time -f "%e %M %U %S" -o "$work/time.txt" "$@" >/dev/null 2>"$work/stderr.txt" \
    || { cat "$work/stderr.txt"; exit 1; }
  awk '{printf "%s %.0f %.2f\n", $1, $2 / 1024, $3 + $4}' "$work/time.txt" >> "$file"
}
# Appends "<load s> <report s> <peak RSS MiB>" of a peer (which prints its two times) to $1.
peer() {
  local file=$1; shift
  local out
  out=$(/usr/bin/time -f "%M" -o "$work/time.txt" "$@")
  echo "$out $(awk '{printf "%.0f", $1 / 1024}' "$work/time.txt")" >> "$file"
}
median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
max() { sort -g | tail -1; }
load() { cut -d' ' -f1-3 /proc/loadavg; }

echo "load average before: $(load)"
# Each run: a fresh data directory, the files ingested, then the first report on them (a
# fresh process each), so ingest + report is what a user waits from files to a report.
: > "$work/ingest"
: > "$work/report"
for i in $(seq "$runs"); do
  rm -rf "$work/data"
  timed "$work/ingest" "$sluice" --data-dir "$work/data" ingest uptime "$work/in"/*.csv
  timed "$work/report" "$sluice" --data-dir "$work/data" report uptime --out "$work/sluice.csv"
done
pg=${SLUICE_BENCH_POSTGRES:-}
if [ -n "$pg" ]; then
  db=sluice_bench_u1 url="${pg%/*}/sluice_bench_u1"
  : > "$work/pg_ingest"
  : > "$work/pg_report"
  for i in $(seq "$runs"); do
    psql "$pg" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
    rm -rf "$work/pgdata"
    timed "$work/pg_ingest" "$sluice" --data-dir "$work/pgdata" --database "$url" ingest uptime "$work/in"/*.csv
    timed "$work/pg_report" "$sluice" --data-dir "$work/pgdata" --database "$url" report uptime --out "$work/sluice_pg.csv"
  done
  echo "PostgreSQL database size: $(psql "$url" -Atc "SELECT pg_size_pretty(pg_database_size('$db'))")"
  # The same report byte for byte, not within a tolerance: the same engine on both.
  cmp "$work/sluice.csv" "$work/sluice_pg.csv" && echo "cross-check sluice on PostgreSQL: identical report"
fi
for p in duckdb pandas; do
  : > "$work/$p"
  for i in $(seq "$runs"); do
    peer "$work/$p" "$py" "$root/bench/uptime/peers/uptime_$p.py" "$work/in" "$work/$p.csv"
  done
  echo -n "cross-check $p: " && "$py" "$root/bench/uptime/compare.py" "$work/sluice.csv" "$work/$p.csv"
done
echo "load average after: $(load)"

s_ing=$(cut -d' ' -f1 "$work/ingest" | median) s_ing_rss=$(cut -d' ' -f2 "$work/ingest" | max)
s_rep=$(cut -d' ' -f1 "$work/report" | median) s_rep_rss=$(cut -d' ' -f2 "$work/report" | max)
s_cpu=$(paste -d' ' "$work/ingest" "$work/report" | awk '{printf "%.2f\n", $3 + $6}' | median)
s_e2e=$(paste -d' ' "$work/ingest" "$work/report" | awk '{printf "%.2f\n", $1 + $4}' | median)
echo
echo "| tool | load/ingest s | ingest polls/s | report s | report polls/s | files → report s | report / sluice's | files → report / sluice's | peak RSS MiB |"
echo "|---|---|---|---|---|---|---|---|---|"
printf "| sluice (SQLite, persisted) | %s | %.0f | %s | %.0f | %s (CPU %s) | 1.0 | 1.0 | ingest %s, report %s |\n" \
  "$s_ing" "$(echo "$polls / $s_ing" | bc -l)" "$s_rep" "$(echo "$polls / $s_rep" | bc -l)" \
  "$s_e2e" "$s_cpu" "$s_ing_rss" "$s_rep_rss"
for p in duckdb pandas; do
  load=$(cut -d' ' -f1 "$work/$p" | median) rep=$(cut -d' ' -f2 "$work/$p" | median)
  e2e=$(awk '{printf "%.3f\n", $1 + $2}' "$work/$p" | median)
  rss=$(cut -d' ' -f3 "$work/$p" | max)
  printf "| %s (in memory) | %s | %.0f | %s | %.0f | %s | %.1f | %.2f | %s |\n" "$p" "$load" \
    "$(echo "$polls / $load" | bc -l)" "$rep" "$(echo "$polls / $rep" | bc -l)" "$e2e" \
    "$(echo "$rep / $s_rep" | bc -l)" "$(echo "$e2e / $s_e2e" | bc -l)" "$rss"
done
if [ -n "$pg" ]; then
  p_ing=$(cut -d' ' -f1 "$work/pg_ingest" | median) p_rep=$(cut -d' ' -f1 "$work/pg_report" | median)
  p_e2e=$(paste -d' ' "$work/pg_ingest" "$work/pg_report" | awk '{printf "%.2f\n", $1 + $4}' | median)
  printf "| sluice (PostgreSQL, persisted) | %s | %.0f | %s | %.0f | %s | %.2f | %.2f | ingest %s, report %s (sluice only) |\n" \
    "$p_ing" "$(echo "$polls / $p_ing" | bc -l)" "$p_rep" "$(echo "$polls / $p_rep" | bc -l)" "$p_e2e" \
    "$(echo "$p_rep / $s_rep" | bc -l)" "$(echo "$p_e2e / $s_e2e" | bc -l)" \
    "$(cut -d' ' -f2 "$work/pg_ingest" | max)" "$(cut -d' ' -f2 "$work/pg_report" | max)"
fi
