#!/usr/bin/env bash
# N1 (performance.md): one day of network flow files, sluice end-to-end ingest + all 5-minute
# and hourly KPIs vs ClickHouse (chDB), DuckDB, Polars (per hour, and the whole day lazily)
# and pandas peers; outputs cross-checked; one table.
#
#   bench/network/run.sh [ROWS_PER_FILE=50000] [RUNS=3]
#
# Environment:
#   SLUICE=path        sluice binary to use (default: build `sluice-cli` in release mode
#                      into ${CARGO_TARGET_DIR:-<repo>/target} and use that)
#   NETBENCH_WORK=dir  work folder (default <repo>/bench/out/network, git-ignored)
#   TOOLS="sluice clickhouse duckdb polars polars_lazy pandas"   subset / order of tools;
#                      `sluice_pg` is sluice on PostgreSQL (issue #13), which needs
#   SLUICE_BENCH_POSTGRES=postgres://user@host:port/db  a server where it may create and drop
#                      databases (e.g. the one `.ci/postgres.sh start` prints)
# Exits non-zero if any peer's top-3 KPIs differ from sluice's (the diff is printed).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
ROWS="${1:-50000}"
RUNS="${2:-3}"
PARTS=2
PERIODS=288
TOOLS="${TOOLS:-sluice clickhouse duckdb polars polars_lazy pandas}"
WORK="${NETBENCH_WORK:-$root/bench/out/network}"

if [ -z "${SLUICE:-}" ]; then
  (cd "$root" && cargo build --release --quiet -p sluice-cli)
  SLUICE="${CARGO_TARGET_DIR:-$root/target}/release/sluice"
fi
SLUICE="$(realpath "$SLUICE")"
PY="$("$root/bench/setup.sh" | tail -n1)"
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (GNU time: apt-get install -y time)" >&2; exit 2; }

mkdir -p "$WORK"
DATA="$WORK/day-$ROWS"
if [ ! -f "$DATA/.complete" ]; then
  rm -rf "$DATA"
  echo "generating $PERIODS periods x $PARTS parts x $ROWS rows into $DATA" >&2
  (cd "$WORK" && "$SLUICE" generate network --day 2017-03-01 --rows-per-file "$ROWS" \
      --parts "$PARTS" --out "$DATA")
  touch "$DATA/.complete"
fi
NROWS=$((PERIODS * PARTS * ROWS))
MB=$(du -sm "$DATA" | cut -f1)
RES="$WORK/res-$ROWS"
rm -rf "$RES"; mkdir -p "$RES/times" "$RES/out" "$RES/logs"
cat "$DATA"/ipflow_data.* > /dev/null   # warm the page cache: every tool reads from memory

run_tool() {  # tool run#
  local t="$1" r="$2"
  local tf="$RES/times/$t.$r.time" log="$RES/logs/$t.$r.log"
  if [ "$t" = sluice ]; then
    local dd="$WORK/sluice-data-run"
    rm -rf "$dd"
    (cd "$WORK" && /usr/bin/time -v -o "$tf" \
        "$SLUICE" --data-dir "$dd" ingest network "$DATA" > "$log" 2>&1) \
      || { echo "sluice failed (run $r), see $log:" >&2; tail -20 "$log" >&2; exit 1; }
    "$PY" "$here/report.py" export "$dd/sluice.db" "$RES/out/sluice.$r.csv" > /dev/null
    rm -rf "$WORK/sluice-data-$ROWS"; mv "$dd" "$WORK/sluice-data-$ROWS"  # kept for http.sh
  elif [ "$t" = sluice_pg ]; then
    : "${SLUICE_BENCH_POSTGRES:?sluice_pg needs SLUICE_BENCH_POSTGRES=postgres://...}"
    local dd="$WORK/sluice-pg-data-run" db="sluice_bench_n1"
    local url="${SLUICE_BENCH_POSTGRES%/*}/$db"
    rm -rf "$dd"
    psql "$SLUICE_BENCH_POSTGRES" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" -c "CREATE DATABASE $db"
    (cd "$WORK" && /usr/bin/time -v -o "$tf" \
        "$SLUICE" --data-dir "$dd" --database "$url" ingest network "$DATA" > "$log" 2>&1) \
      || { echo "sluice_pg failed (run $r), see $log:" >&2; tail -20 "$log" >&2; exit 1; }
    { echo "kpi,granularity,interval_start,rank,item_id,value"
      psql "$url" -Atc "SELECT concat_ws(',', kpi, granularity, interval_start, rank, item_id, value)
        FROM network_kpi WHERE rank <= 3 ORDER BY kpi, granularity, interval_start, rank"
    } > "$RES/out/sluice_pg.$r.csv"
    psql "$url" -Atc "SELECT 'database size ' || pg_size_pretty(pg_database_size('$db'))" >> "$log"
    rm -rf "$dd"
  else
    /usr/bin/time -v -o "$tf" "$PY" "$here/peers/${t}_peer.py" "$DATA" "$RES/out/$t.$r.csv" \
        > "$log" 2>&1 || { echo "$t failed (run $r), see $log:" >&2; tail -20 "$log" >&2; exit 1; }
  fi
  printf '  run %s %-7s %s s\n' "$r" "$t" \
    "$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$tf")" >&2
}

LOAD0="$(cut -d' ' -f1-3 /proc/loadavg)"
echo "N1: $NROWS rows ($MB MB, $((PERIODS * PARTS)) files), $RUNS runs each: $TOOLS" >&2
set -- $TOOLS
for r in $(seq 1 "$RUNS"); do
  # rotate the order each run so no tool always runs first/last on a noisy machine
  tools=("$@"); n=${#tools[@]}; k=$(( (r - 1) % n ))
  for i in $(seq 0 $((n - 1))); do run_tool "${tools[$(( (i + k) % n ))]}" "$r"; done
done

# Cross-check: every output of every tool against sluice's first (or the first tool's).
ref_tool=sluice; case " $TOOLS " in *" sluice "*) ;; *) ref_tool="${1}";; esac
ref="$RES/out/$ref_tool.1.csv"
for f in "$RES"/out/*.csv; do
  "$PY" "$here/report.py" check "$ref" "$f" "$(basename "$f" .csv)" \
    || { echo "N1 FAILED: outputs disagree (kept in $RES/out)" >&2; exit 1; }
done
echo "cross-check: all $(ls "$RES"/out/*.csv | wc -l) outputs identical to $ref_tool ($(($(wc -l < "$ref") - 1)) top-3 rows)" >&2

echo
echo "N1 network day: $NROWS rows in $((PERIODS * PARTS)) files ($MB MB), median of $RUNS runs, $(date -u +%FT%TZ), $(nproc) cores, load avg before $LOAD0 / after $(cut -d' ' -f1-3 /proc/loadavg)"
"$PY" "$here/report.py" table "$RES/times" "$NROWS" $TOOLS
