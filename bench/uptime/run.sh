#!/usr/bin/env bash
# Bench U1 (performance.md): the uptime report on generated data of the 2023 export's shape,
# sluice next to pandas and DuckDB peers implementing the same documented rule; every
# peer's CSV is cross-checked against sluice's (a disagreement fails the bench).
# usage: bench/uptime/run.sh [STORES=14000] [DAYS=8] [RUNS=5]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
stores=${1:-14000} days=${2:-8} runs=${3:-5}
py="$(bash "$root/bench/setup.sh")"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
cargo build --quiet --release -p sluice-uptime --example uptime_bench
bin="$CARGO_TARGET_DIR/release/examples/uptime_bench"
work="${WORK:-/tmp/sluice-u1}"
rm -rf "$work" && mkdir -p "$work"
"$bin" generate "$work/in" "$stores" "$days" 1 >/dev/null
polls=$(($(wc -l < "$work/in/store_status.csv") - 1))
echo "U1: $stores stores x $days days = $polls polls; $runs runs each; $(nproc) cores"

# Runs a command under /usr/bin/time; prints "<its stdout> <peak RSS MiB>".
measure() {
  local out
  out=$(/usr/bin/time -v -o "$work/time.txt" "$@")
  echo "$out $(awk '/Maximum resident/ {printf "%.0f", $6 / 1024}' "$work/time.txt")"
}
median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
max() { sort -g | tail -1; }

: > "$work/ingest" ; : > "$work/report"
for i in $(seq "$runs"); do
  rm -rf "$work/data"
  measure "$bin" ingest "$work/data" "$work/in"/*.csv >> "$work/ingest"
done
for i in $(seq "$runs"); do
  measure "$bin" report "$work/data" "$work/sluice.csv" >> "$work/report"
done
for peer in duckdb pandas; do
  : > "$work/$peer"
  for i in $(seq "$runs"); do
    measure "$py" "$root/bench/uptime/peers/uptime_$peer.py" "$work/in" "$work/$peer.csv" >> "$work/$peer"
  done
  echo -n "cross-check $peer: " && "$py" "$root/bench/uptime/compare.py" "$work/sluice.csv" "$work/$peer.csv"
done

s_ing=$(cut -d' ' -f1 "$work/ingest" | median) s_ing_rss=$(cut -d' ' -f2 "$work/ingest" | max)
s_rep=$(cut -d' ' -f1 "$work/report" | median) s_rep_rss=$(cut -d' ' -f2 "$work/report" | max)
echo
echo "| tool | load/ingest s (median) | report s (median) | report polls/s | peak RSS MiB | report time / sluice |"
echo "|---|---|---|---|---|---|"
printf "| sluice (SQLite, persisted) | %s | %s | %.0f | ingest %s, report %s | 1.0 |\n" \
  "$s_ing" "$s_rep" "$(echo "$polls / $s_rep" | bc -l)" "$s_ing_rss" "$s_rep_rss"
for peer in duckdb pandas; do
  load=$(cut -d' ' -f1 "$work/$peer" | median) rep=$(cut -d' ' -f2 "$work/$peer" | median)
  rss=$(cut -d' ' -f3 "$work/$peer" | max)
  printf "| %s (in memory) | %s | %s | %.0f | %s | %.1f |\n" "$peer" "$load" "$rep" \
    "$(echo "$polls / $rep" | bc -l)" "$rss" "$(echo "$rep / $s_rep" | bc -l)"
done
