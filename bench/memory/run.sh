#!/usr/bin/env bash
# Memory of network ingestion against inputs far larger than their answer (issue #10): peak RSS
# of `sluice serve` receiving an upload and of `sluice ingest network FILE`, for
#   1. a gzip of one valid row repeated, expanding to GZ_GIB GiB (a "gzip bomb" of valid rows:
#      the answer is one service and one subscriber in one cell, whatever the size), and
#   2. a generated plain network file of PLAIN_GIB GiB (one 5-minute period; realistic rows
#      from `sluice generate network`, 250 000 subscribers over 3 000 cells).
# Target (performance.md, N1): peak RSS <= 256 MiB. Not run in CI.
#
#   bench/memory/run.sh [GZ_GIB=25] [PLAIN_GIB=10]      (0 skips an input)
#
# Environment:
#   SLUICE=path        sluice binary (default: build `sluice-cli` in release mode and use it)
#   MEMBENCH_WORK=dir  work folder (default <repo>/bench/out/memory, git-ignored); the inputs
#                      are removed at the end unless KEEP=1
#   PORT=8391          port of the server under test
# Needs about PLAIN_GIB × 1.3 GiB of free disk (the plain file is kept as a fast gzip while its
# decompressed upload is spooled) and a little for the gzip of one row (~1 MiB per GiB of
# expansion): that gzip is never stored decompressed.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
GZ_GIB="${1:-25}"
PLAIN_GIB="${2:-10}"
WORK="${MEMBENCH_WORK:-$root/bench/out/memory}"
PORT="${PORT:-8391}"
MIB=$((1 << 20))

if [ -z "${SLUICE:-}" ]; then
  (cd "$root" && cargo build --release --quiet -p sluice-cli)
  SLUICE="${CARGO_TARGET_DIR:-$root/target}/release/sluice"
fi
SLUICE="$(realpath "$SLUICE")"
[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (GNU time: apt-get install -y time)" >&2; exit 2; }
for t in curl jq gzip sqlite3 bc; do command -v "$t" > /dev/null || { echo "needs $t" >&2; exit 2; }; done
mkdir -p "$WORK"
df -h "$WORK" >&2

HEADER="interval_start_timestamp,interval_end_timestamp,msisdn,bytes_uplink,bytes_downlink,service_id,cell_id"
ROW="1488355200000,1488355500000,31619690654,100,200,1,1001"
END_MS=1488355500000   # the end of the period ROW belongs to (and its file name names)
RESULTS=()

# A gzip of the header and ROW repeated to GZ_GIB GiB, as concatenated gzip members (valid gzip,
# as `cat a.gz b.gz` is): one 64 MiB block is compressed once and its member repeated, so the
# input is built in seconds and never exists decompressed.
make_gz() {  # out
  local out="$1" block="$WORK/block.txt" rows=$((64 * MIB / (${#ROW} + 1)))
  awk -v r="$ROW" -v n="$rows" 'BEGIN { for (i = 0; i < n; i++) print r }' > "$block"
  { echo "$HEADER"; cat "$block"; } | gzip -c > "$out"
  gzip -c "$block" > "$WORK/member.gz"
  local n=$((GZ_GIB * 16)) i
  for ((i = 1; i < n; i++)); do cat "$WORK/member.gz"; done >> "$out"
  rm -f "$block" "$WORK/member.gz"
  GZ_ROWS=$((rows * n))
}

# `sluice ingest network FILE` under GNU time: peak RSS of the whole process.
measure_cli() {  # label file rows
  local label="$1" file="$2" rows="$3" dd="$WORK/data-cli" tf="$WORK/cli.time"
  rm -rf "$dd"
  /usr/bin/time -v -o "$tf" "$SLUICE" --data-dir "$dd" ingest network "$file" > "$WORK/cli.log" 2>&1 \
    || { echo "ingest failed:" >&2; tail -20 "$WORK/cli.log" >&2; exit 1; }
  local rss wall
  rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$tf")
  wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$tf")
  check_kpi "$dd" "$rows"
  RESULTS+=("$(printf '%-34s %-8s %10s %12s %10d' "$label" cli "$wall" "$rows" $((rss / 1024)))")
  rm -rf "$dd"
}

# The file uploaded to a fresh `sluice serve`; peak RSS is the server's VmHWM once its job ended.
# With `gunzip`, the file is a gzip whose decompressed content is streamed as the body.
measure_upload() {  # label file name content-type rows [gunzip]
  local label="$1" file="$2" name="$3" ctype="$4" rows="$5" dd="$WORK/data-serve"
  rm -rf "$dd"
  "$SLUICE" --data-dir "$dd" serve --addr "127.0.0.1:$PORT" --max-body-bytes $((64 << 30)) \
    > "$WORK/serve.log" 2>&1 &
  local pid=$! url="http://127.0.0.1:$PORT"
  trap 'kill $pid 2> /dev/null || true' EXIT
  for _ in $(seq 100); do curl -sf "$url/api/v1/jobs" > /dev/null && break; sleep 0.1; done
  local t0 job state
  t0=$(date +%s.%N)
  if [ "${6:-}" = gunzip ]; then
    job=$(gzip -dc "$file" | curl -sS --fail-with-body -X POST -T - -H "content-type: $ctype" \
      -H 'Expect:' "$url/api/v1/network/uploads?name=$name" | jq -r .id)
  elif [ "$(stat -c %s "$file")" -lt $((1 << 30)) ]; then
    job=$(curl -sS --fail-with-body --data-binary "@$file" -H "content-type: $ctype" \
      "$url/api/v1/network/uploads?name=$name" | jq -r .id)
  else
    # curl --data-binary reads the whole file into curl's memory first; -T streams it.
    job=$(curl -sS --fail-with-body -X POST -T "$file" -H "content-type: $ctype" -H 'Expect:' \
      "$url/api/v1/network/uploads?name=$name" | jq -r .id)
  fi
  while :; do
    state=$(curl -sS "$url/api/v1/jobs/$job" | jq -r .state)
    case "$state" in succeeded|failed|cancelled) break;; esac
    sleep 0.5
  done
  local wall hwm
  wall=$(echo "$(date +%s.%N) - $t0" | bc)
  hwm=$(sed -n 's/^VmHWM:\s*\([0-9]*\) kB/\1/p' "/proc/$pid/status")
  curl -sS "$url/api/v1/jobs/$job" > "$WORK/upload-job.json"
  kill "$pid"; wait "$pid" 2> /dev/null || true
  trap - EXIT
  [ "$state" = succeeded ] || { echo "upload job $state:" >&2; cat "$WORK/upload-job.json" >&2; exit 1; }
  check_kpi "$dd" "$rows"
  RESULTS+=("$(printf '%-34s %-8s %10s %12s %10d' "$label" upload "$(printf '%.1f s' "$wall")" "$rows" $((hwm / 1024)))")
  rm -rf "$dd"
}

# Every row was accepted into the one 5-minute interval the file names (its name's period end
# is the interval's end): the stored interval counts them all.
check_kpi() {  # data-dir rows
  local start=$(( $(basename "$CURRENT" | sed 's/^ipflow_data\.ts-\([0-9]*\)\..*/\1/') - 300000 )) got
  got=$(sqlite3 "$1/sluice.db" \
    "SELECT rows FROM network_interval WHERE granularity = 1 AND interval_start = $start")
  [ "$got" = "$2" ] || { echo "expected $2 rows in interval $start, found '$got'" >&2; exit 1; }
}

if [ "$GZ_GIB" -gt 0 ]; then
  gz="$WORK/ipflow_data.ts-$END_MS.1.txt.gz"
  echo "building a gzip of one row repeated, expanding to $GZ_GIB GiB" >&2
  make_gz "$gz"
  CURRENT="$gz"
  echo "  $(stat -c %s "$gz") bytes compressed, $GZ_ROWS rows" >&2
  label="gzip, 1 row x $GZ_ROWS ($GZ_GIB GiB)"
  measure_upload "$label" "$gz" "ipflow_data.ts-$END_MS.1.txt.gz" application/gzip "$GZ_ROWS"
  measure_cli "$label" "$gz" "$GZ_ROWS"
  [ "${KEEP:-0}" = 1 ] || rm -f "$gz"
fi

if [ "$PLAIN_GIB" -gt 0 ]; then
  plain_dir="$WORK/plain"
  rm -rf "$plain_dir"
  # Generated rows average ~58 bytes (N1: 1.6 GB for 28.8 M rows).
  prows=$((PLAIN_GIB * (1 << 30) / 58))
  echo "generating a plain file of $prows rows (~$PLAIN_GIB GiB)" >&2
  (cd "$WORK" && "$SLUICE" generate network --day 2017-03-01 --periods 1 --parts 1 \
      --rows-per-file "$prows" --out "$plain_dir" > /dev/null)
  plain="$(ls "$plain_dir"/ipflow_data.ts-*.1.txt)"
  CURRENT="$plain"
  label="plain, generated, $(($(stat -c %s "$plain") / MIB)) MiB"
  gzip -1 "$plain"
  measure_upload "$label" "$plain.gz" "$(basename "$plain")" text/csv "$prows" gunzip
  gzip -d "$plain.gz"
  measure_cli "$label" "$plain" "$prows"
  [ "${KEEP:-0}" = 1 ] || rm -rf "$plain_dir"
fi

echo
echo "network ingestion memory, $(date -u +%FT%TZ), $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, load avg $(cut -d' ' -f1-3 /proc/loadavg), $SLUICE"
printf '%-34s %-8s %10s %12s %10s\n' input path wall rows "peak MiB"
printf '%s\n' "${RESULTS[@]}"
