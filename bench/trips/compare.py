"""Cross-checks sluice's answers against DuckDB's and prints the T1/T2 markdown tables.

usage: compare.py <t1 jsonl> <sluice queries jsonl> <duckdb queries jsonl>
T1 lines: {"tool", "secs", "rows", "rss_kb" (optional), "db_bytes"}; the first is the base.
Query lines: weekly averages {"query", "p50_ms", "p95_ms", "trips", "weeks", "average"} and
/vehicles lookups {"query", "p50_ms", "p95_ms", "ids"}. Exit status 1 if any answer differs.
"""
import json, sys

def lines(p):
    with open(p) as f:
        return [json.loads(l) for l in f if l.strip()]

t1, s_q, d_q = (lines(p) for p in sys.argv[1:4])
base = t1[0]["secs"]
print(f"T1 ingest, {t1[0]['rows']:,} rows\n")
print("| tool | wall s | rows/s | peak RSS MiB | DB MiB | time / sluice |\n|---|---|---|---|---|---|")
for r in t1:
    rss = f"{r['rss_kb'] / 1024:,.0f}" if r.get("rss_kb") else "–"
    print(f"| {r['tool']} | {r['secs']:.1f} | {r['rows'] / r['secs']:,.0f} | {rss} | "
          f"{r['db_bytes'] / 2**20:,.0f} | {r['secs'] / base:.2f} |")

d_by = {q["query"]: q for q in d_q}
bad = []
weekly = [q for q in s_q if "trips" in q]
print("\nT2 weekly average (weeks=active), latency in ms\n")
print("| query | trips | weeks | average | sluice p50 | sluice p95 | DuckDB p50 | DuckDB/sluice |\n|---|---|---|---|---|---|---|---|")
for q in weekly:
    d = d_by[q["query"]]
    if (q["trips"], q["weeks"]) != (d["trips"], d["weeks"]):
        bad.append((q, d))
    print(f"| {q['query']} | {q['trips']:,} | {q['weeks']} | {q['average']:.3f} | {q['p50_ms']:.2f} | "
          f"{q['p95_ms']:.2f} | {d['p50_ms']:.1f} | {d['p50_ms'] / max(q['p50_ms'], 1e-3):.1f}× |")
print("\n`/vehicles` lookups (first 10 ids of each listing), latency in ms\n")
print("| query | ids | sluice p50 | sluice p95 | DuckDB p50 | DuckDB/sluice |\n|---|---|---|---|---|---|")
for q in (q for q in s_q if "ids" in q):
    d = d_by[q["query"]]
    if q["ids"] != d["ids"]:
        bad.append((q, d))
    ids = ", ".join(map(str, q["ids"][:3])) + (" …" if len(q["ids"]) > 3 else "")
    print(f"| {q['query']} | {ids} | {q['p50_ms']:.2f} | {q['p95_ms']:.2f} | {d['p50_ms']:.1f} | "
          f"{d['p50_ms'] / max(q['p50_ms'], 1e-3):.1f}× |")
if bad:
    print("\nMISMATCH:", bad)
    sys.exit(1)
print("\nAll answers equal DuckDB's (trips and weeks per weekly query, ids per lookup).")
