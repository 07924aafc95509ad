#!/usr/bin/env bash
# Creates bench/.venv with the Python peers (DuckDB, Polars, pandas, aiohttp, chDB) once.
# Safe to call concurrently: the install runs under a lock.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
exec 9>/tmp/sluice-bench-venv.lock
flock 9
if [ ! -x "$here/.venv/bin/python" ] || ! "$here/.venv/bin/python" -c 'import duckdb, polars, pandas, aiohttp, chdb' 2>/dev/null; then
  python3 -m venv "$here/.venv"
  "$here/.venv/bin/pip" install --quiet --upgrade pip
  "$here/.venv/bin/pip" install --quiet -r "$here/requirements.txt"
fi
echo "$here/.venv/bin/python"
