"""DuckDB peer for T1/T2: load the trips CSV with read_csv into a typed table (points parsed
to doubles, datetime to TIMESTAMP), then answer the same weekly averages and /vehicles
lookups with SQL (ids are DuckDB's rowid + 1: the input order, as sluice numbers trips).
Each weekly average is answered with weeks=active and weeks=span (the dataset's first to
last week).

usage: duckdb_trips.py <csv> <db file> <repeats> load|query|check [boxes file [N]]
  load  -> one JSON line of load figures (a fresh database)
  query -> one JSON line per query (on the loaded database); with a boxes file (JSON lines
           {"name", "bbox"}, bench/trips/boxes.py) its first N boxes (default all) in every
           mode instead of the fixed queries and the lookups
  check -> the answers (untimed) of every box of the boxes file in every mode
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

# weeks=span: every week from the dataset's first to its last (Monday-start weeks)
SPAN = ("(SELECT date_diff('day', min(date_trunc('week', ts)), max(date_trunc('week', ts))) "
        "// 7 + 1 FROM trips)")


def box_modes(name, bbox):
    """The four match modes of one inclusive box, as (query name, WHERE condition)."""
    a, b, c, d = (v + "::DOUBLE" for v in bbox.split(","))
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
    span = con.execute(f"SELECT {SPAN}").fetchone()[0]
    BATCH = 8
    for i in range(0, len(boxes), BATCH):
        modes = [q for b in boxes[i:i + BATCH] for q in box_modes("box=" + b["name"], b["bbox"])]
        sql = ("SELECT " + ", ".join(f"count(*) FILTER (WHERE {c})" for _, c in modes)
               + " FROM trips GROUP BY date_trunc('week', ts)")
        weeks = con.execute(sql).fetchall()
        for j, (name, _) in enumerate(modes):
            n = sum(w[j] for w in weeks)
            answer(name, n, sum(1 for w in weeks if w[j]))
            answer(name + "&weeks=span", n, span)
    sys.exit(0)
if boxes is not None:
    timed_boxes = boxes[: int(sys.argv[6])] if len(sys.argv) > 6 else boxes
    queries = [q for b in timed_boxes for q in box_modes("box=" + b["name"], b["bbox"])]
else:
    BOXES = [("small", "14.42,50.07,14.44,50.09"), ("city", "14.2,49.9,14.7,50.25"),
             ("multi-city", "5,44,15,54"), ("world", "-180,-90,180,90")]
    queries = [("region=Prague", "region = 'Prague'"), ("all", "TRUE")]
    for name, b in BOXES:
        queries += box_modes(f"bbox={name}", b)
for name, cond in queries:
    for suffix, weeks in [("", "count(DISTINCT date_trunc('week', ts))"), ("&weeks=span", SPAN)]:
        p50, p95, out = timed(f"SELECT count(*), {weeks} FROM trips WHERE {cond}")
        answer(name + suffix, *out[0], p50_ms=p50, p95_ms=p95)
if boxes is not None:
    sys.exit(0)

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
