"""ClickHouse peer for T1/T2, in-process through chDB (pinned in bench/requirements.txt).

load:  one INSERT ... SELECT from file(<csv>, CSVWithNames) into a MergeTree table: the
       POINT (lon lat) texts parsed with readWKTPoint into four Float64 columns, datetime
       parsed by the CSV reader into DateTime('UTC'), region and datasource
       LowCardinality(String). The table is ordered by the origin (o_lon, o_lat), with minmax
       skip indexes on the destination coordinates, so box filters can skip granules.
query: the same weekly averages as the DuckDB peer (a region, everything, 4 boxes x 4 match
       modes; boxes inclusive), with uniqExact(toMonday(ts)) as the active weeks (weeks start
       Monday 00:00 UTC, as sluice's), and each again with weeks=span (every week from the
       dataset's first to its last). No /vehicles lookups: the MergeTree order is not the
       input order, so there is no trip id to compare.

usage: clickhouse_trips.py <csv> <db dir> <repeats> [load|query]
  load  -> one JSON line of load figures (a fresh database)
  query -> one JSON line per query (on the loaded database)
"""
import json, os, shutil, sys, time
from chdb import session

csv, dbdir, repeats, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]


def dir_bytes(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs
               if not os.path.islink(os.path.join(d, f)))


if mode == "load":
    shutil.rmtree(dbdir, ignore_errors=True)
    t = time.perf_counter()
    s = session.Session(dbdir)
    s.query("""
    CREATE TABLE trips (
        region LowCardinality(String),
        o_lon Float64, o_lat Float64, d_lon Float64, d_lat Float64,
        ts DateTime('UTC'),
        datasource LowCardinality(String),
        INDEX d_lon_mm d_lon TYPE minmax GRANULARITY 1,
        INDEX d_lat_mm d_lat TYPE minmax GRANULARITY 1
    ) ENGINE = MergeTree ORDER BY (o_lon, o_lat)""")
    structure = ("region String, origin_coord String, destination_coord String, "
                 "datetime DateTime(\\'UTC\\'), datasource String")
    s.query(f"""
    INSERT INTO trips
    SELECT region, o.1, o.2, d.1, d.2, datetime, datasource
    FROM (SELECT region, readWKTPoint(origin_coord) AS o, readWKTPoint(destination_coord) AS d,
                 datetime, datasource
          FROM file('{os.path.abspath(csv)}', 'CSVWithNames', '{structure}'))""")
    rows = int(s.query("SELECT count() FROM trips", "CSV").bytes())
    s.close()
    secs = time.perf_counter() - t
    print(json.dumps({"tool": "ClickHouse (chDB) `file()` → MergeTree", "rows": rows,
                      "secs": secs, "db_bytes": dir_bytes(dbdir)}), flush=True)
    sys.exit(0)

s = session.Session(dbdir)


def timed(sql):
    times, out = [], None
    for _ in range(max(repeats, 1)):
        t = time.perf_counter()
        out = s.query(sql, "TabSeparated").bytes().decode()
        times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    pct = lambda p: times[round((len(times) - 1) * p)]
    return pct(0.5), pct(0.95), [int(x) for x in out.split()]


BOXES = [("small", "14.42,50.07,14.44,50.09"), ("city", "14.2,49.9,14.7,50.25"),
         ("multi-city", "5,44,15,54"), ("world", "-180,-90,180,90")]
queries = [("region=Prague", "region = 'Prague'"), ("all", "1")]
for name, b in BOXES:
    a, b2, c, d = b.split(",")
    o = f"(o_lon BETWEEN {a} AND {c} AND o_lat BETWEEN {b2} AND {d})"
    de = f"(d_lon BETWEEN {a} AND {c} AND d_lat BETWEEN {b2} AND {d})"
    for m, cond in [("origin", o), ("destination", de), ("both", f"{o} AND {de}"), ("either", f"({o} OR {de})")]:
        queries.append((f"bbox={name}&match={m}", cond))
SPAN = "(SELECT intDiv(toMonday(max(ts)) - toMonday(min(ts)), 7) + 1 FROM trips)"
for name, cond in queries:
    for suffix, weeks in [("", "uniqExact(toMonday(ts))"), ("&weeks=span", SPAN)]:
        p50, p95, (n, w) = timed(f"SELECT count(), {weeks} FROM trips WHERE {cond}")
        print(json.dumps({"query": name + suffix, "p50_ms": p50, "p95_ms": p95, "trips": n,
                          "weeks": w, "average": (n / w if w else 0.0)}), flush=True)
s.close()
