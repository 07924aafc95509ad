"""The slowest queries of sluice in the arbitrary-box workload, with what their box edges
cut: the trip ends (by origin and by destination) in the 1/64-degree cells that the edges cut,
which sluice's box decomposition reads trip by trip rather than from its rollups (the finest
rollup level, engine.rs ROLLUP_LEVELS; `match=both` rolls up pairs from 1/16 degree, so its
raw part is larger). Counted on the DuckDB peer's table, untimed.

usage: edges.py <duckdb file> <boxes jsonl> <sluice boxes jsonl> [how many (default 12)]
"""
import json, math, sys
import duckdb

con = duckdb.connect(sys.argv[1], read_only=True)
bbox = {b["name"]: b["bbox"] for b in map(json.loads, open(sys.argv[2])) if b}
s_q = [json.loads(l) for l in open(sys.argv[3]) if l.strip()]
top = int(sys.argv[4]) if len(sys.argv) > 4 else 12
LEVEL0, CUT = 1024, 16  # level-0 cells per degree; level-0 cells per side of a level-2 cell


def cut_ends(lon, lat, box):
    """SQL count of the ends (lon, lat) in level-0 cells meeting the box, under level-2
    cells not wholly inside it."""
    x0, y0, x1, y1 = box
    ix, iy = f"floor(({lon} + 180) * {LEVEL0})", f"floor(({lat} + 90) * {LEVEL0})"
    ax, bx = math.floor((x0 + 180) * LEVEL0), math.floor((x1 + 180) * LEVEL0)
    ay, by = math.floor((y0 + 90) * LEVEL0), math.floor((y1 + 90) * LEVEL0)
    # a level-2 cell is inside when its first level-0 cell starts at or after the box's
    # west/south edge and its last one ends at or before the east/north edge
    lo_x, hi_x = math.ceil((x0 + 180) * LEVEL0), math.floor((x1 + 180) * LEVEL0)
    lo_y, hi_y = math.ceil((y0 + 90) * LEVEL0), math.floor((y1 + 90) * LEVEL0)
    cx, cy = f"({ix} // {CUT} * {CUT})", f"({iy} // {CUT} * {CUT})"
    inside = (f"{cx} >= {lo_x} AND {cx} + {CUT} <= {hi_x} AND "
              f"{cy} >= {lo_y} AND {cy} + {CUT} <= {hi_y}")
    return (f"count(*) FILTER (WHERE {ix} BETWEEN {ax} AND {bx} AND {iy} BETWEEN {ay} AND {by}"
            f" AND NOT ({inside}))")


print(f"The {top} slowest queries of sluice, with the trip ends under their box edges\n")
print("| query | bbox | km x km | trips | p50 ms | p95 ms | origins under the edges | "
      "destinations under the edges |\n|---|---|---|---|---|---|---|---|")
for q in sorted(s_q, key=lambda q: -q["p50_ms"])[:top]:
    b = bbox[q["query"].split("&")[0][len("box="):]]
    box = list(map(float, b.split(",")))
    o, d = con.execute(f"SELECT {cut_ends('o_lon', 'o_lat', box)}, "
                       f"{cut_ends('d_lon', 'd_lat', box)} FROM trips").fetchone()
    w = (box[2] - box[0]) * 111.32 * math.cos(math.radians((box[1] + box[3]) / 2))
    h = (box[3] - box[1]) * 111.32
    print(f"| {q['query']} | {b} | {w:.2f} x {h:.2f} | {q['trips']:,} | {q['p50_ms']:.2f} | "
          f"{q['p95_ms']:.2f} | {o:,} | {d:,} |")
