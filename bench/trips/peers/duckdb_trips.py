"""DuckDB peer for T1/T2: load the trips CSV with read_csv into a typed table (points parsed
to doubles, datetime to TIMESTAMP), then answer the same weekly averages and /vehicles
lookups with SQL (ids are DuckDB's rowid + 1: the input order, as sluice numbers trips).
Each weekly average is also answered with weeks=span (the dataset's first to last week), for
the cross-check with the ClickHouse peer (trips_bench reports weeks=active only).

usage: duckdb_trips.py <csv> <db file> <repeats> [load|query]
  load  -> one JSON line of load figures (a fresh database)
  query -> one JSON line per query (on the loaded database)
"""
import json, os, sys, time
import duckdb

csv, dbfile, repeats, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
if mode == "load":
    if os.path.exists(dbfile):
        os.remove(dbfile)
    con = duckdb.connect(dbfile)
    t = time.perf_counter()
    pt = r"'\(\s*(\S+)\s+(\S+)\s*\)'"
    con.execute(f"""
    CREATE TABLE trips AS
    SELECT region,
           regexp_extract(origin_coord, {pt}, 1)::DOUBLE AS o_lon,
           regexp_extract(origin_coord, {pt}, 2)::DOUBLE AS o_lat,
           regexp_extract(destination_coord, {pt}, 1)::DOUBLE AS d_lon,
           regexp_extract(destination_coord, {pt}, 2)::DOUBLE AS d_lat,
           datetime::TIMESTAMP AS ts,
           datasource
    FROM read_csv('{csv}', header = true, all_varchar = true)
    """)
    rows = con.execute("SELECT count(*) FROM trips").fetchone()[0]
    con.close()
    secs = time.perf_counter() - t
    print(json.dumps({"tool": "DuckDB `read_csv` → typed table", "rows": rows, "secs": secs,
                      "db_bytes": os.path.getsize(dbfile)}), flush=True)
    sys.exit(0)

con = duckdb.connect(dbfile, read_only=True)

def timed(sql):
    times, out = [], None
    for _ in range(max(repeats, 1)):
        t = time.perf_counter()
        out = con.execute(sql).fetchall()
        times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    pct = lambda p: times[round((len(times) - 1) * p)]
    return pct(0.5), pct(0.95), out

BOXES = [("small", "14.42,50.07,14.44,50.09"), ("city", "14.2,49.9,14.7,50.25"),
         ("multi-city", "5,44,15,54"), ("world", "-180,-90,180,90")]
queries = [("region=Prague", "region = 'Prague'"), ("all", "TRUE")]
for name, b in BOXES:
    a, b2, c, d = b.split(",")
    o = f"(o_lon BETWEEN {a} AND {c} AND o_lat BETWEEN {b2} AND {d})"
    de = f"(d_lon BETWEEN {a} AND {c} AND d_lat BETWEEN {b2} AND {d})"
    for m, cond in [("origin", o), ("destination", de), ("both", f"{o} AND {de}"), ("either", f"({o} OR {de})")]:
        queries.append((f"bbox={name}&match={m}", cond))
# weeks=span: every week from the dataset's first to its last (Monday-start weeks)
SPAN = ("(SELECT date_diff('day', min(date_trunc('week', ts)), max(date_trunc('week', ts))) "
        "// 7 + 1 FROM trips)")
for name, cond in queries:
    for suffix, weeks in [("", "count(DISTINCT date_trunc('week', ts))"), ("&weeks=span", SPAN)]:
        p50, p95, out = timed(f"SELECT count(*), {weeks} FROM trips WHERE {cond}")
        n, w = out[0]
        print(json.dumps({"query": name + suffix, "p50_ms": p50, "p95_ms": p95, "trips": n,
                          "weeks": w, "average": (n / w if w else 0.0)}), flush=True)

total = con.execute("SELECT count(*) FROM trips").fetchone()[0]
mid = max(total // 2, 1)
p50, p95, out = timed(f"SELECT rowid + 1, o_lon, o_lat FROM trips WHERE rowid = {mid - 1}")
_, x, y = out[0]
print(json.dumps({"query": f"vehicles/{mid}", "p50_ms": p50, "p95_ms": p95, "ids": [mid],
                  "origin": [x, y]}), flush=True)
listings = [
    ("vehicles?limit=10", "TRUE"),
    ("vehicles?region=Prague&limit=10", "region = 'Prague'"),
    ("vehicles?datasource=cheap_mobile&date=2017-06-01&limit=10",
     "datasource = 'cheap_mobile' AND ts >= TIMESTAMP '2017-06-01' AND ts < TIMESTAMP '2017-06-02'"),
    (f"vehicles?origin_coord_x&origin_coord_y of trip {mid}&limit=10",
     f"o_lon = '{x!r}'::DOUBLE AND o_lat = '{y!r}'::DOUBLE"),
]
for name, cond in listings:
    p50, p95, out = timed(f"SELECT rowid + 1 FROM trips WHERE {cond} ORDER BY rowid LIMIT 10")
    print(json.dumps({"query": name, "p50_ms": p50, "p95_ms": p95, "ids": [r[0] for r in out]}),
          flush=True)
