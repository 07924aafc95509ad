#!/usr/bin/env bash
# A throwaway PostgreSQL 15 primary and a streaming replica of it for the tests, on free
# loopback ports, under target/pg. `start` writes target/pg/env (the two URLs as `export`
# lines) and prints it; `stop` stops both and removes target/pg; `status` says what runs.
#
# Usage: .ci/postgres.sh start|stop|status   (status exits 1 unless both run)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bin=/usr/lib/postgresql/15/bin
base=$root/target/pg
env_file=$base/env

# initdb refuses root, so as root (CI) the clusters belong to the `postgres` user the package
# creates; run from / so that a working directory postgres cannot enter does not matter.
# Fd 9 is the lock (below): a postmaster that inherited it would hold it for its lifetime.
as_pg() {
  if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@" 9>&-); else "$@" 9>&-; fi
}

# The data directories, beside env when the postgres user can reach target/; otherwise (a
# parent directory it cannot traverse, e.g. a checkout under a 0700 home) under /tmp.
data_dir() {
  if as_pg test -x "$root/target"; then
    echo "$base"
  else
    echo "/tmp/sluice-pg-$(printf %s "$root" | cksum | cut -d' ' -f1)"
  fi
}

# The postmaster's pid when one runs for data directory $1. Its working directory is the
# data directory: a pid file left by a killed run whose pid was reused does not count.
postmaster_pid() {
  local pid
  pid=$(head -n1 "$1/postmaster.pid" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" = "$(readlink -f "$1")" ] && echo "$pid"
}

port_of() { sed -n 4p "$1/postmaster.pid"; }

# Stops the clusters under $1 (mode $2) and removes $1 and target/pg.
teardown() {
  local dir
  for dir in "$1/replica" "$1/primary"; do
    if postmaster_pid "$dir" >/dev/null; then
      as_pg "$bin/pg_ctl" stop -D "$dir" -m "$2" -w >/dev/null
    fi
  done
  rm -rf "$1" "$base"
}

# Two distinct ports free on 127.0.0.1, below the ephemeral range so that the tests' own
# port-0 listeners and outgoing connections cannot take them before the clusters bind.
free_ports() {
  python3 - <<'EOF'
import random, socket
low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
ports = []
while len(ports) < 2:
    port = random.randrange(10000, max(low, 10001))
    if port in ports:
        continue
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            continue
    ports.append(port)
print(*ports)
EOF
}

psql_at() { "$bin/psql" -X -A -t -q -h 127.0.0.1 -p "$1" -U postgres -d postgres -c "$2"; }

wait_for() {
  local what=$1
  shift
  for _ in $(seq 300); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "postgres.sh: timed out waiting for $what" >&2
  return 1
}

streaming() { [ "$(psql_at "$1" "select count(*) from pg_stat_replication where state = 'streaming'")" -ge 1 ]; }

start() {
  if [ ! -x "$bin/initdb" ]; then
    echo "-- installing postgresql-15"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update && apt-get install -y --no-install-recommends postgresql-15
  fi
  local primary replica
  data=$(data_dir)
  primary=$data/primary
  replica=$data/replica
  if [ -f "$env_file" ] && postmaster_pid "$primary" >/dev/null && postmaster_pid "$replica" >/dev/null; then
    cat "$env_file"
    return
  fi
  # A failed start shows the servers' logs: on a CI machine they go with it.
  trap '[ $? = 0 ] || tail -n 20 "$data"/*.log >&2' EXIT
  # Whatever a killed or half-finished run left: immediate, the data is thrown away anyway.
  teardown "$data" immediate
  mkdir -p "$base" "$data"
  if [ "$(id -u)" = 0 ]; then chown postgres: "$data"; fi

  local ports primary_port replica_port
  ports=$(free_ports)
  primary_port=${ports% *}
  replica_port=${ports#* }

  # C collation: text sorts bytewise, as in SQLite. --no-sync and fsync etc. off below: the
  # cluster lives for one CI run, so durability buys nothing and costs seconds.
  as_pg "$bin/initdb" -D "$primary" -U postgres --auth=trust --encoding=UTF8 --locale=C --no-sync >/dev/null
  # Trust only over loopback, where nothing but this machine connects.
  as_pg tee "$primary/pg_hba.conf" >/dev/null <<EOF
local all         all                trust
host  all         all   127.0.0.1/32 trust
host  replication all   127.0.0.1/32 trust
EOF
  # max_connections: every test opens its own database and pool, many tests at once; a
  # hot standby needs at least the primary's value, which it inherits with this file.
  # shared_buffers stays at the default 128 MB: 400 backends on each cluster took ~1 GiB more
  # in all, far inside a 24 GiB machine.
  # dynamic_shared_memory_type=mmap: containers often give /dev/shm only 64 MiB, too little
  # for parallel queries. The sockets go beside the data directories: /var/run/postgresql
  # may be missing or another cluster's, and pg_basebackup warns about sockets it copies.
  as_pg tee -a "$primary/postgresql.conf" >/dev/null <<EOF
listen_addresses = '127.0.0.1'
port = $primary_port
unix_socket_directories = '$data'
max_connections = 400
shared_buffers = 128MB
dynamic_shared_memory_type = mmap
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
  as_pg "$bin/pg_ctl" start -D "$primary" -l "$data/primary.log" -w -t 30 >/dev/null

  # -R writes standby.signal and primary_conninfo; the slot keeps the WAL the replica still
  # needs however far it falls behind.
  as_pg "$bin/pg_basebackup" -h 127.0.0.1 -p "$primary_port" -U postgres -D "$replica" \
    -R -X stream -C -S sluice_replica --checkpoint=fast --no-sync
  # hot_standby_feedback: vacuum on the primary must not cancel the tests' reads on the replica.
  as_pg tee -a "$replica/postgresql.auto.conf" >/dev/null <<EOF
port = $replica_port
unix_socket_directories = '$data'
hot_standby_feedback = on
EOF
  as_pg "$bin/pg_ctl" start -D "$replica" -l "$data/replica.log" -w -t 30 >/dev/null

  wait_for "the primary" "$bin/pg_isready" -q -U postgres -h 127.0.0.1 -p "$primary_port"
  wait_for "the replica" "$bin/pg_isready" -q -U postgres -h 127.0.0.1 -p "$replica_port"
  wait_for "the replica to stream" streaming "$primary_port"

  cat >"$env_file" <<EOF
export SLUICE_TEST_POSTGRES=postgres://postgres@127.0.0.1:$primary_port/postgres
export SLUICE_TEST_POSTGRES_REPLICA=postgres://postgres@127.0.0.1:$replica_port/postgres
EOF
  cat "$env_file"
}

status() {
  local data dir rc=0
  data=$(data_dir)
  for dir in primary replica; do
    if postmaster_pid "$data/$dir" >/dev/null; then
      echo "$dir: running on 127.0.0.1:$(port_of "$data/$dir")"
    else
      echo "$dir: not running"
      rc=1
    fi
  done
  return $rc
}

# Concurrent invocations (several sessions on one checkout) would tear down each other's clusters.
mkdir -p "$root/target"
exec 9>"$root/target/pg.lock"
flock 9

case "${1:-}" in
  start) start ;;
  stop) teardown "$(data_dir)" fast ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
