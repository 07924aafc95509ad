#!/usr/bin/env bash
# SQLite CLI peer for T1: `.import` of the CSV into a fresh database (text columns, no
# parsing of points or times — the cheapest thing SQLite's own tool can do).
set -euo pipefail
csv="$1"; db="$2"
rm -f "$db"
sqlite3 "$db" <<SQL
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
.import --csv $csv trips
SQL
