"""Helpers for run.sh (N1): export sluice's KPIs to the canonical CSV, cross-check, and
summarise /usr/bin/time -v outputs into the result table.

  report.py export SLUICE_DB OUT_CSV
  report.py check REFERENCE_CSV CANDIDATE_CSV LABEL      (exit 1 with a diff on mismatch)
  report.py table TIMES_DIR ROWS TOOL...                 (markdown table on stdout)
"""
import difflib
import glob
import os
import re
import sqlite3
import statistics
import sys

HEADER = "kpi,granularity,interval_start,rank,item_id,value"


def export(db, out):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    rows = con.execute(
        "SELECT kpi, granularity, interval_start, rank, item_id, value FROM network_kpi "
        "WHERE rank <= 3 ORDER BY kpi, granularity, interval_start, rank"
    ).fetchall()
    with open(out, "w") as f:
        f.write(HEADER + "\n")
        for r in rows:
            f.write(",".join(str(int(x)) for x in r) + "\n")
    print(f"exported {len(rows)} KPI rows from {db}")


def check(ref, cand, label):
    a = open(ref).read().splitlines()
    b = open(cand).read().splitlines()
    if a == b:
        return
    diff = list(difflib.unified_diff(a, b, "sluice", label, lineterm="", n=1))
    sys.stderr.write(f"MISMATCH: {label} disagrees with sluice "
                     f"({len(a)} vs {len(b)} lines); first differences:\n")
    sys.stderr.write("\n".join(diff[:60]) + "\n")
    sys.exit(1)


def parse_time(path):
    """(wall seconds, peak RSS KiB, CPU seconds user+sys) from a `/usr/bin/time -v -o` file."""
    text = open(path).read()
    el = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", text).group(1)
    secs = 0.0
    for part in el.split(":"):
        secs = secs * 60 + float(part)
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", text).group(1))
    cpu = sum(float(re.search(rf"{k} time \(seconds\): ([\d.]+)", text).group(1))
              for k in ("User", "System"))
    return secs, rss, cpu


def table(times_dir, rows, tools):
    rows = int(rows)
    res = {}
    for t in tools:
        runs = [parse_time(p) for p in sorted(glob.glob(os.path.join(times_dir, f"{t}.*.time")))]
        if runs:
            res[t] = runs
    base = statistics.median(w for w, _, _ in res["sluice"]) if "sluice" in res else None
    cbase = statistics.median(c for _, _, c in res["sluice"]) if "sluice" in res else None
    print("| tool | median wall s | runs (s) | rows/s | peak RSS MB | ratio to sluice (tool wall / sluice wall) "
          "| median CPU s (user+sys) | CPU ratio to sluice |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for t, runs in res.items():
        walls = [w for w, _, _ in runs]
        med = statistics.median(walls)
        rss = max(r for _, r, _ in runs) / 1024
        ratio = f"{med / base:.2f}" if base else "-"
        cpu = statistics.median(c for _, _, c in runs)
        cratio = f"{cpu / cbase:.2f}" if cbase else "-"
        print(f"| {t} | {med:.2f} | {', '.join(f'{w:.2f}' for w in walls)} | "
              f"{rows / med / 1e6:.2f} M | {rss:.0f} | {ratio} | {cpu:.1f} | {cratio} |")
    if base:
        peers = {t: statistics.median(w for w, _, _ in r) for t, r in res.items() if t != "sluice"}
        rss = max(r for _, r, _ in res["sluice"]) / 1024
        # Issue #12: >= 3x the best Polars variant and >= 5x ClickHouse, <= 256 MB.
        for label, names, aim in [("Polars (best variant)", ("polars", "polars_lazy"), 3.0),
                                  ("ClickHouse", ("clickhouse",), 5.0)]:
            got = {t: peers[t] for t in names if t in peers}
            if got:
                best = min(got, key=got.get)
                x = got[best] / base
                print(f"target vs {label}: sluice {base:.2f} s vs {best} {got[best]:.2f} s -> "
                      f"{x:.2f}x ({'PASS' if x >= aim else 'FAIL'}; >= {aim:.0f}x)")
        print(f"target RSS: sluice peak {rss:.0f} MB ({'PASS' if rss <= 256 else 'FAIL'}; <= 256 MB)")

if __name__ == "__main__":
    cmd, *rest = sys.argv[1:]
    if cmd == "export":
        export(*rest)
    elif cmd == "check":
        check(*rest)
    else:
        table(rest[0], rest[1], rest[2:])
