"""Cross-checks sluice's answers against DuckDB's (and ClickHouse's) and prints the T1/T2
markdown tables.

usage: compare.py <t1 jsonl> <sluice queries jsonl> <duckdb queries jsonl> [<clickhouse queries jsonl>]
T1 lines: {"tool", "secs", "rows", "rss_kb" (optional), "db_bytes"}; the first is the base.
Query lines: weekly averages {"query", "p50_ms", "p95_ms", "trips", "weeks", "average"} and
/vehicles lookups {"query", "p50_ms", "p95_ms", "ids"}. The peers also answer every weekly
average with `&weeks=span` (trips_bench reports weeks=active only): those are checked peer
against peer, and their trips against sluice's. ClickHouse has no /vehicles lookups.
Exit status 1 if any answer differs.
"""
import json, sys

def lines(p):
    with open(p) as f:
        return [json.loads(l) for l in f if l.strip()]

t1, s_q, d_q = (lines(p) for p in sys.argv[1:4])
c_q = lines(sys.argv[4]) if len(sys.argv) > 4 else None
base = t1[0]["secs"]
print(f"T1 ingest, {t1[0]['rows']:,} rows\n")
print("| tool | wall s | rows/s | peak RSS MiB | DB MiB | time / sluice |\n|---|---|---|---|---|---|")
for r in t1:
    rss = f"{r['rss_kb'] / 1024:,.0f}" if r.get("rss_kb") else "–"
    print(f"| {r['tool']} | {r['secs']:.1f} | {r['rows'] / r['secs']:,.0f} | {rss} | "
          f"{r['db_bytes'] / 2**20:,.0f} | {r['secs'] / base:.2f} |")

d_by = {q["query"]: q for q in d_q}
c_by = {q["query"]: q for q in c_q} if c_q is not None else {}
bad = []
weekly = [q for q in s_q if "trips" in q]
ratio = lambda peer, q: f"{peer['p50_ms'] / max(q['p50_ms'], 1e-3):.1f}×"
print("\nT2 weekly average (weeks=active), latency in ms\n")
head = "| query | trips | weeks | average | sluice p50 | sluice p95 | DuckDB p50 | DuckDB/sluice |"
if c_q is not None:
    head += " ClickHouse p50 | ClickHouse p95 | ClickHouse/sluice |"
print(head + "\n|" + "---|" * (head.count("|") - 1))
for q in weekly:
    d = d_by[q["query"]]
    peers = [d] + ([c_by[q["query"]]] if c_q is not None else [])
    for p in peers:
        if (q["trips"], q["weeks"]) != (p["trips"], p["weeks"]):
            bad.append((q, p))
    row = (f"| {q['query']} | {q['trips']:,} | {q['weeks']} | {q['average']:.3f} | {q['p50_ms']:.2f} | "
           f"{q['p95_ms']:.2f} | {d['p50_ms']:.1f} | {ratio(d, q)} |")
    if c_q is not None:
        c = c_by[q["query"]]
        row += f" {c['p50_ms']:.1f} | {c['p95_ms']:.1f} | {ratio(c, q)} |"
    print(row)
spans = [q for q in d_q if q["query"].endswith("&weeks=span")]
if spans:
    s_by = {q["query"]: q for q in weekly}
    print("\nT2 weekly average (weeks=span, peers only: trips checked against sluice's), latency in ms\n")
    head = "| query | trips | weeks | average | DuckDB p50 |" + (" ClickHouse p50 |" if c_q is not None else "")
    print(head + "\n|" + "---|" * (head.count("|") - 1))
    for d in spans:
        s = s_by.get(d["query"][: -len("&weeks=span")])
        if s is not None and s["trips"] != d["trips"]:
            bad.append((s, d))
        row = f"| {d['query']} | {d['trips']:,} | {d['weeks']} | {d['average']:.3f} | {d['p50_ms']:.1f} |"
        if c_q is not None:
            c = c_by[d["query"]]
            if (c["trips"], c["weeks"]) != (d["trips"], d["weeks"]):
                bad.append((d, c))
            row += f" {c['p50_ms']:.1f} |"
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
print("\nAll answers equal DuckDB's (trips and weeks per weekly query, ids per lookup)"
      + (" and ClickHouse's (trips and weeks per weekly query, both weeks modes)." if c_q is not None else "."))
