"""Shared helpers for the network (N1) peers: file discovery and canonical output.

Files are named ipflow_data.ts-<epoch_ms of the period END>.<part>.<txt|csv>[.gz]; the
peers group them by UTC hour of the period (as the replaced systems processed them per
period/hour) and write the canonical top-3 CSV:
    kpi,granularity,interval_start,rank,item_id,value
kpi 1 = top services by total bytes, 2 = top cells by distinct msisdn;
granularity 1 = 5 minutes, 2 = hour. Ranking: value desc, then id desc.
"""
import os
import re
import sys
from collections import defaultdict

NAME = re.compile(r"^ipflow_data\.ts-(\d+)\.(\d+)\.(txt|csv)(\.gz)?$")
PERIOD_MS = 300_000
HOUR_MS = 3_600_000
TOP = 3
COLUMNS = [
    "interval_start_timestamp", "interval_end_timestamp", "msisdn",
    "bytes_uplink", "bytes_downlink", "service_id", "cell_id",
]
HEADER = "kpi,granularity,interval_start,rank,item_id,value"


def files_by_hour(folder):
    """{hour_start_ms: [paths sorted by (period, part)]} in hour order."""
    hours = defaultdict(list)
    for name in os.listdir(folder):
        m = NAME.match(name)
        if not m:
            continue
        end = int(m.group(1))
        start = end - PERIOD_MS
        hours[start - start % HOUR_MS].append((start, int(m.group(2)), os.path.join(folder, name)))
    return {h: [p for _, _, p in sorted(v)] for h, v in sorted(hours.items())}


def write_rows(path, rows):
    """rows: iterable of (kpi, granularity, interval_start, rank, item_id, value)."""
    rows = sorted(rows)
    with open(path, "w") as f:
        f.write(HEADER + "\n")
        for r in rows:
            f.write(",".join(str(int(x)) for x in r) + "\n")
    return len(rows)


def args():
    if len(sys.argv) != 3:
        sys.exit(f"usage: {sys.argv[0]} INPUT_DIR OUTPUT_CSV")
    return sys.argv[1], sys.argv[2]
