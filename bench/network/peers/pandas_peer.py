"""N1 peer: pandas. Per UTC hour, read the hour's part files (C parser, explicit int64
dtypes), concatenate, then the 5-minute and the exact hourly top-3 KPIs with groupby
(sum of bytes; nunique of msisdn for distinct subscribers) and sort + groupby.head."""
import numpy as np
import pandas as pd
from common import COLUMNS, TOP, args, files_by_hour, write_rows

DTYPES = {c: np.int64 for c in COLUMNS}


def top(s, kpi, g):
    """s: Series indexed by (t, id) -> [(kpi, g, t, rank, id, v)]."""
    df = s.rename("v").reset_index()
    df.columns = ["t", "id", "v"]
    df = df.sort_values(["t", "v", "id"], ascending=[True, False, False], kind="stable")
    df = df.groupby("t", sort=False).head(TOP)
    rank = df.groupby("t", sort=False).cumcount() + 1
    return [(kpi, g, t, r, i, v) for t, r, i, v in zip(df["t"], rank, df["id"], df["v"])]


def main():
    src, out = args()
    rows = []
    for h, files in files_by_hour(src).items():
        df = pd.concat([pd.read_csv(f, dtype=DTYPES) for f in files], ignore_index=True)
        df["total"] = df["bytes_uplink"] + df["bytes_downlink"]
        t = df["interval_start_timestamp"]
        rows += top(df.groupby([t, "service_id"], sort=False)["total"].sum(), 1, 1)
        rows += top(df.groupby([t, "cell_id"], sort=False)["msisdn"].nunique(), 2, 1)
        hour = pd.Series(h, index=df.index, name="t")
        rows += top(df.groupby([hour, "service_id"], sort=False)["total"].sum(), 1, 2)
        rows += top(df.groupby([hour, "cell_id"], sort=False)["msisdn"].nunique(), 2, 2)
    write_rows(out, rows)


if __name__ == "__main__":
    main()
