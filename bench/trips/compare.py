"""Cross-checks sluice's answers against DuckDB's (and ClickHouse's) and prints the T1/T2
markdown tables.

usage: compare.py <t1 jsonl> <sluice queries jsonl> <duckdb queries jsonl> [<clickhouse queries jsonl>]
T1 lines: {"tool", "secs", "rows", "rss_kb", "db_bytes"} and, from run.sh's medians, "loads",
"secs_min", "secs_max", "cpu_s" (user + sys); the first is the base.
Query lines: weekly averages {"query", "p50_ms", "p95_ms", "trips", "weeks", "average"} and
/vehicles lookups {"query", "p50_ms", "p95_ms", "ids"}. Every weekly average comes in
weeks=active (the name as is) and weeks=span (the name with `&weeks=span`), from all three.
ClickHouse has no /vehicles lookups.
Exit status 1 if any answer differs.

usage: compare.py --boxes <boxes> <sluice> <duckdb check> <duckdb timed> <clickhouse check> <clickhouse timed>
T2a, the arbitrary boxes (bench/trips/boxes.sh): every answer of sluice (all boxes x 4 match
modes x 2 weeks modes) against the untimed answers of the whole workload of the peers that
gave them (an empty check file: none) and against the peers' timed ones; the latency of sluice over the whole workload, and beside the peers' over the
boxes they timed (the first ones of the file), with the ratios.
A query's latency is its p50 over the repeats; the workload's p50/p95 are over the queries.
"""
import json, sys

def lines(p):
    with open(p) as f:
        return [json.loads(l) for l in f if l.strip()]


def pct(xs, p):
    xs = sorted(xs)
    return xs[round((len(xs) - 1) * p)]


def boxes_main(boxes, s_q, d_check, d_q, c_check, c_q):
    bad = []
    for peer in (d_check, d_q, c_check, c_q):
        whole = peer is not d_q and peer is not c_q and peer
        by = {q["query"]: q for q in peer}
        for q in s_q:
            p = by.get(q["query"])
            if p is None and whole:
                bad.append((q, "missing"))
            elif p is not None and (q["trips"], q["weeks"]) != (p["trips"], p["weeks"]):
                bad.append((q, p))
    mode = lambda q: q["query"].split("&match=")[1].split("&")[0]
    groups = [(m, lambda q, m=m: mode(q) == m) for m in ("origin", "destination", "both", "either")]
    groups += [("weeks=active", lambda q: "&weeks=span" not in q["query"]),
               ("weeks=span", lambda q: "&weeks=span" in q["query"]), ("all", lambda q: True)]
    print(f"T2a sluice, {len(boxes)} boxes x 4 match modes x 2 weeks modes, latency in ms "
          "(each query's p50 over the repeats)\n")
    print("| queries | n | p50 | p95 | max |\n|---|---|---|---|---|")
    for g, f in groups:
        t = [q["p50_ms"] for q in s_q if f(q)]
        print(f"| {g} | {len(t)} | {pct(t, 0.5):.2f} | {pct(t, 0.95):.2f} | {max(t):.2f} |")

    timed = {q["query"] for q in c_q} & {q["query"] for q in d_q}
    s_by, d_by, c_by = ({q["query"]: q for q in x} for x in (s_q, d_q, c_q))
    n_boxes = len({q.split("&")[0] for q in timed})
    print(f"\nT2a side by side: the first {n_boxes} boxes, every mode, latency in ms\n")
    print("| queries | n | sluice p50 | sluice p95 | ClickHouse p50 | ClickHouse p95 | DuckDB p50 | "
          "DuckDB p95 | ClickHouse/sluice p50 | ClickHouse/sluice p95 |\n" + "|---" * 10 + "|")
    for g, f in groups:
        names = [n for n in timed if f(s_by[n])]
        s, c, d = ([by[n]["p50_ms"] for n in names] for by in (s_by, c_by, d_by))
        print(f"| {g} | {len(names)} | {pct(s, 0.5):.2f} | {pct(s, 0.95):.2f} | {pct(c, 0.5):.1f} | "
              f"{pct(c, 0.95):.1f} | {pct(d, 0.5):.1f} | {pct(d, 0.95):.1f} | "
              f"{pct(c, 0.5) / pct(s, 0.5):.1f}x | {pct(c, 0.95) / pct(s, 0.95):.1f}x |")

    if bad:
        print(f"\nMISMATCH ({len(bad)}):", bad[:20])
        sys.exit(1)
    whole = " and ".join(n for n, c in (("ClickHouse", c_check), ("DuckDB", d_check)) if c)
    print(f"\nAll {len(s_q)} answers of sluice (trips and weeks) equal {whole or 'no peer'}'s, and the "
          f"{len(c_q)} and {len(d_q)} timed ones of ClickHouse and DuckDB.")
    if not whole:
        sys.exit(1)


if sys.argv[1] == "--boxes":
    boxes_main(*(lines(p) for p in sys.argv[2:8]))
    sys.exit(0)

t1, s_q, d_q = (lines(p) for p in sys.argv[1:4])
c_q = lines(sys.argv[4]) if len(sys.argv) > 4 else None
base = t1[0]["secs"]
print(f"T1 ingest, {t1[0]['rows']:,} rows\n")
print("| tool | runs | wall s (median) | min–max s | CPU s | rows/s | peak RSS MiB | DB MiB | "
      "time / sluice |\n|---|---|---|---|---|---|---|---|---|")
for r in t1:
    rss = f"{r['rss_kb'] / 1024:,.0f}" if r.get("rss_kb") else "–"
    spread = f"{r['secs_min']:.1f}–{r['secs_max']:.1f}" if "secs_min" in r else "–"
    cpu = f"{r['cpu_s']:.1f}" if "cpu_s" in r else "–"
    print(f"| {r['tool']} | {r.get('loads', 1)} | {r['secs']:.1f} | {spread} | {cpu} | "
          f"{r['rows'] / r['secs']:,.0f} | {rss} | {r['db_bytes'] / 2**20:,.0f} | {r['secs'] / base:.2f} |")

d_by = {q["query"]: q for q in d_q}
c_by = {q["query"]: q for q in c_q} if c_q is not None else {}
bad = []
weekly = [q for q in s_q if "trips" in q]
ratio = lambda peer, q: f"{peer['p50_ms'] / max(q['p50_ms'], 1e-3):.1f}×"
for weeks in ("active", "span"):
    print(f"\nT2 weekly average (weeks={weeks}), latency in ms\n")
    head = "| query | trips | weeks | average | sluice p50 | sluice p95 | DuckDB p50 | DuckDB/sluice |"
    if c_q is not None:
        head += " ClickHouse p50 | ClickHouse p95 | ClickHouse/sluice |"
    print(head + "\n|" + "---|" * (head.count("|") - 1))
    for q in weekly:
        if q["query"].endswith("&weeks=span") != (weeks == "span"):
            continue
        d = d_by[q["query"]]
        peers = [d] + ([c_by[q["query"]]] if c_q is not None else [])
        for p in peers:
            if (q["trips"], q["weeks"]) != (p["trips"], p["weeks"]):
                bad.append((q, p))
        name = q["query"].removesuffix("&weeks=span")
        row = (f"| {name} | {q['trips']:,} | {q['weeks']} | {q['average']:.3f} | {q['p50_ms']:.2f} | "
               f"{q['p95_ms']:.2f} | {d['p50_ms']:.1f} | {ratio(d, q)} |")
        if c_q is not None:
            c = c_by[q["query"]]
            row += f" {c['p50_ms']:.1f} | {c['p95_ms']:.1f} | {ratio(c, q)} |"
        print(row)
print("\n`/vehicles` lookups (first 10 ids of each listing), latency in ms\n")
print("| query | ids | sluice p50 | sluice p95 | DuckDB p50 | DuckDB/sluice |\n|---|---|---|---|---|---|")
for q in (q for q in s_q if "ids" in q):
    d = d_by[q["query"]]
    if q["ids"] != d["ids"]:
        bad.append((q, d))
    ids = ", ".join(map(str, q["ids"][:3])) + (" …" if len(q["ids"]) > 3 else "")
    print(f"| {q['query']} | {ids} | {q['p50_ms']:.2f} | {q['p95_ms']:.2f} | {d['p50_ms']:.1f} | "
          f"{ratio(d, q)} |")
if bad:
    print("\nMISMATCH:", bad)
    sys.exit(1)
print("\nAll answers equal DuckDB's (trips and weeks per weekly query, both weeks modes; ids per lookup)"
      + (" and ClickHouse's (trips and weeks per weekly query)." if c_q is not None else "."))
