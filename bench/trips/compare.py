"""Cross-checks the T2 answers of sluice and DuckDB and prints the T1/T2 markdown tables.

usage: compare.py <sluice ingest runs jsonl> <duckdb load runs jsonl> <sqlite runs jsonl>
                  <sluice queries jsonl> <duckdb queries jsonl>
Each *runs* line: {"secs", "rows", "rss_kb", "db_bytes"}. Exit status 1 if answers differ.
"""
import json, statistics, sys

def lines(p):
    with open(p) as f:
        return [json.loads(l) for l in f if l.strip()]

s_runs, d_runs, q_runs, s_q, d_q = (lines(p) for p in sys.argv[1:6])
def row(tool, runs, base):
    secs = statistics.median(r["secs"] for r in runs)
    rows = runs[0]["rows"]
    rss = max(r["rss_kb"] for r in runs) / 1024
    size = runs[0].get("db_bytes", 0) / 2**20
    return f"| {tool} | {secs:.1f} | {rows / secs:,.0f} | {rss:,.0f} | {size:,.0f} | {secs / base:.2f} |"
base = statistics.median(r["secs"] for r in s_runs)
print(f"T1 ingest, {s_runs[0]['rows']:,} rows, median of {len(s_runs)} runs\n")
print("| tool | wall s | rows/s | peak RSS MiB | DB MiB | time / sluice |\n|---|---|---|---|---|---|")
print(row("sluice (`ingest trips -`, parse + rollups + groups + indexes)", s_runs, base))
print(row("DuckDB `read_csv` → typed table", d_runs, base))
print(row("SQLite CLI `.import` (text only)", q_runs, base))

d_by = {q["query"]: q for q in d_q}
bad = []
print("\nT2 weekly average (weeks=active), latency in ms\n")
print("| query | trips | weeks | average | sluice p50 | sluice p95 | DuckDB p50 | DuckDB/sluice |\n|---|---|---|---|---|---|---|---|")
for q in s_q:
    d = d_by[q["query"]]
    if (q["trips"], q["weeks"]) != (d["trips"], d["weeks"]):
        bad.append((q, d))
    print(f"| {q['query']} | {q['trips']:,} | {q['weeks']} | {q['average']:.3f} | {q['p50_ms']:.2f} | "
          f"{q['p95_ms']:.2f} | {d['p50_ms']:.1f} | {d['p50_ms'] / max(q['p50_ms'], 1e-3):.1f}× |")
if bad:
    print("\nMISMATCH:", bad)
    sys.exit(1)
print("\nAll answers equal DuckDB's (trips and weeks per query).")
