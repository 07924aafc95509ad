"""ClickHouse peer for T1/T2, in-process through chDB (pinned in bench/requirements.txt).

load:  one INSERT ... SELECT from file(<csv>, CSVWithNames) into a MergeTree table: the
       POINT (lon lat) texts cut into four Float64 columns, datetime parsed by the CSV reader
       into DateTime('UTC'), region and datasource LowCardinality(String). The table is
       ordered by the origin (o_lon, o_lat), with minmax skip indexes on the destination
       coordinates, so box filters can skip granules.
load-plain: the same into MergeTree ORDER BY tuple(): what "load this file" takes (T1).
query: the same weekly averages as the DuckDB peer (a region, everything, 4 boxes x 4 match
       modes; boxes inclusive), with uniqExact(toMonday(ts)) as the active weeks (weeks start
       Monday 00:00 UTC, as sluice's), and each again with weeks=span (every week from the
       dataset's first to its last). No /vehicles lookups: the MergeTree order is not the
       input order, so there is no trip id to compare.

usage: clickhouse_trips.py <csv> <db dir> <repeats> load|load-plain|query|check [boxes file [N]]
  load, load-plain -> one JSON line of load figures (a fresh database)
  query -> one JSON line per query (on the loaded database); with a boxes file (JSON lines
           {"name", "bbox"}, bench/trips/boxes.py) its first N boxes (default all) in every
           mode instead of the fixed queries
  check -> the answers (untimed) of every box of the boxes file in every mode
"""
import json, os, shutil, sys, time
from chdb import session

csv, dbdir, repeats, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]


def dir_bytes(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs
               if not os.path.islink(os.path.join(d, f)))


# The WKT points "POINT (lon lat)" cut by position: readWKTPoint (a general WKT parser) costs
# 5x the CPU on this file, and the Template format (the same cut, by the format) no less.
COORDS = ", ".join(
    f"toFloat64(substring({c}, position({c}, '(') + 1, "
    f"position({c}, ' ', position({c}, '(')) - position({c}, '(') - 1)), "
    f"toFloat64(substring({c}, position({c}, ' ', position({c}, '(')) + 1, "
    f"length({c}) - position({c}, ' ', position({c}, '(')) - 1))"
    for c in ("origin_coord", "destination_coord"))
LOADS = {
    # for the box queries: sorted by the origin, minmax skip indexes on the destination
    "load": ("ClickHouse (chDB) `file()` → MergeTree ORDER BY (o_lon, o_lat), skip indexes",
             """INDEX d_lon_mm d_lon TYPE minmax GRANULARITY 1,
                INDEX d_lat_mm d_lat TYPE minmax GRANULARITY 1
             ) ENGINE = MergeTree ORDER BY (o_lon, o_lat)"""),
    # "load this file": no order to keep, nothing else to build
    "load-plain": ("ClickHouse (chDB) `file()` → MergeTree ORDER BY tuple() (plain load)",
                   ") ENGINE = MergeTree ORDER BY tuple()"),
}
if mode in LOADS:
    tool, tail = LOADS[mode]
    shutil.rmtree(dbdir, ignore_errors=True)
    t = time.perf_counter()
    s = session.Session(dbdir)
    s.query(f"""
    CREATE TABLE trips (
        region LowCardinality(String),
        o_lon Float64, o_lat Float64, d_lon Float64, d_lat Float64,
        ts DateTime('UTC'),
        datasource LowCardinality(String),
        {tail}""")
    structure = ("region String, origin_coord String, destination_coord String, "
                 "datetime DateTime(\\'UTC\\'), datasource String")
    s.query(f"""
    INSERT INTO trips
    SELECT region, {COORDS}, datetime, datasource
    FROM file('{os.path.abspath(csv)}', 'CSVWithNames', '{structure}')""")
    rows = int(s.query("SELECT count() FROM trips", "CSV").bytes())
    s.close()
    secs = time.perf_counter() - t
    print(json.dumps({"tool": tool, "rows": rows, "secs": secs, "db_bytes": dir_bytes(dbdir)}),
          flush=True)
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


SPAN = "(SELECT intDiv(toMonday(max(ts)) - toMonday(min(ts)), 7) + 1 FROM trips)"


def box_modes(name, bbox):
    """The four match modes of one inclusive box, as (query name, WHERE condition)."""
    a, b, c, d = bbox.split(",")
    o = f"(o_lon BETWEEN {a} AND {c} AND o_lat BETWEEN {b} AND {d})"
    de = f"(d_lon BETWEEN {a} AND {c} AND d_lat BETWEEN {b} AND {d})"
    return [(f"{name}&match={m}", cond) for m, cond in
            [("origin", o), ("destination", de), ("both", f"{o} AND {de}"), ("either", f"({o} OR {de})")]]


def answer(name, n, w, **times):
    print(json.dumps({"query": name, **times, "trips": n, "weeks": w,
                      "average": (n / w if w else 0.0)}), flush=True)


boxes = [json.loads(line) for line in open(sys.argv[5]) if line.strip()] if len(sys.argv) > 5 else None
if mode == "check":
    # Every answer of the workload, cheaply: one scan per 8 boxes, the trips of each
    # mode counted per week (its active weeks: those with a trip), the span once (it is the
    # dataset's). Not timed: the timed queries are the ones a user sends.
    span = int(s.query(f"SELECT {SPAN}", "TabSeparated").bytes())
    BATCH = 8
    for i in range(0, len(boxes), BATCH):
        modes = [q for b in boxes[i:i + BATCH] for q in box_modes("box=" + b["name"], b["bbox"])]
        sql = ("SELECT " + ", ".join(f"countIf({c})" for _, c in modes)
               + " FROM trips GROUP BY toMonday(ts)")
        weeks = [[int(x) for x in l.split()] for l in s.query(sql, "TabSeparated").bytes().decode().splitlines()]
        for j, (name, _) in enumerate(modes):
            n = sum(w[j] for w in weeks)
            answer(name, n, sum(1 for w in weeks if w[j]))
            answer(name + "&weeks=span", n, span)
    s.close()
    sys.exit(0)
if boxes is not None:
    timed_boxes = boxes[: int(sys.argv[6])] if len(sys.argv) > 6 else boxes
    queries = [q for b in timed_boxes for q in box_modes("box=" + b["name"], b["bbox"])]
else:
    BOXES = [("small", "14.42,50.07,14.44,50.09"), ("city", "14.2,49.9,14.7,50.25"),
             ("multi-city", "5,44,15,54"), ("world", "-180,-90,180,90")]
    queries = [("region=Prague", "region = 'Prague'"), ("all", "1")]
    for name, b in BOXES:
        queries += box_modes(f"bbox={name}", b)
for name, cond in queries:
    for suffix, weeks in [("", "uniqExact(toMonday(ts))"), ("&weeks=span", SPAN)]:
        p50, p95, (n, w) = timed(f"SELECT count(), {weeks} FROM trips WHERE {cond}")
        answer(name + suffix, n, w, p50_ms=p50, p95_ms=p95)
s.close()
