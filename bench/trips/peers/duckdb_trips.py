"""DuckDB peer for T1/T2: load the trips CSV with read_csv into a typed table (points parsed
to doubles, datetime to TIMESTAMP), then answer the same weekly averages with SQL.

usage: duckdb_trips.py <csv> <db file> <repeats>  -> JSON lines: one 'load', then one per query
"""
import json, os, sys, time
import duckdb

csv, dbfile, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])
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
secs = time.perf_counter() - t
print(json.dumps({"load": True, "rows": rows, "secs": secs, "rows_per_s": rows / secs,
                  "db_bytes": os.path.getsize(dbfile)}), flush=True)
if repeats == 0:
    sys.exit(0)

BOXES = [("small", "14.42,50.07,14.44,50.09"), ("city", "14.2,49.9,14.7,50.25"),
         ("multi-city", "5,44,15,54"), ("world", "-180,-90,180,90")]
queries = [("region=Prague", "region = 'Prague'"), ("all", "TRUE")]
for name, b in BOXES:
    a, b2, c, d = b.split(",")
    o = f"(o_lon BETWEEN {a} AND {c} AND o_lat BETWEEN {b2} AND {d})"
    de = f"(d_lon BETWEEN {a} AND {c} AND d_lat BETWEEN {b2} AND {d})"
    for m, cond in [("origin", o), ("destination", de), ("both", f"{o} AND {de}"), ("either", f"({o} OR {de})")]:
        queries.append((f"bbox={name}&match={m}", cond))
for name, cond in queries:
    sql = f"""SELECT count(*), count(DISTINCT date_trunc('week', ts)) FROM trips WHERE {cond}"""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        n, w = con.execute(sql).fetchone()
        times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    pct = lambda p: times[round((len(times) - 1) * p)]
    print(json.dumps({"query": name, "p50_ms": pct(0.5), "p95_ms": pct(0.95), "trips": n,
                      "weeks": w, "average": (n / w if w else 0.0)}), flush=True)
