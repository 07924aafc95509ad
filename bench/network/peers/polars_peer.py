"""N1 peer: Polars. Per UTC hour, one scan_csv over the hour's part files (explicit Int64
schema), then the 5-minute and the exact hourly top-3 KPIs with group_by (n_unique for
distinct subscribers) and a sort + per-interval head. Polars is multi-threaded."""
import polars as pl
from common import COLUMNS, TOP, args, files_by_hour, write_rows

SCHEMA = {c: pl.Int64 for c in COLUMNS}


def top(df, kpi, g):
    """df: columns t, id, v -> top rows per t as (kpi, g, t, rank, id, v)."""
    return (
        df.sort(["t", "v", "id"], descending=[False, True, True])
        .group_by("t", maintain_order=True)
        .head(TOP)
        .with_columns(rank=pl.int_range(1, pl.len() + 1).over("t"))
        .select(pl.lit(kpi).alias("kpi"), pl.lit(g).alias("g"), "t", "rank", "id", "v")
        .rows()
    )


def main():
    src, out = args()
    rows = []
    bytes_ = (pl.col("bytes_uplink") + pl.col("bytes_downlink")).sum().alias("v")
    users = pl.col("msisdn").n_unique().alias("v")
    for h, files in files_by_hour(src).items():
        df = pl.scan_csv(files, schema=SCHEMA).collect()
        df = df.rename({"interval_start_timestamp": "t"})
        rows += top(df.group_by("t", "service_id").agg(bytes_).rename({"service_id": "id"}), 1, 1)
        rows += top(df.group_by("t", "cell_id").agg(users).rename({"cell_id": "id"}), 2, 1)
        hour = df.with_columns(t=pl.lit(h, pl.Int64))
        rows += top(hour.group_by("t", "service_id").agg(bytes_).rename({"service_id": "id"}), 1, 2)
        rows += top(hour.group_by("t", "cell_id").agg(users).rename({"cell_id": "id"}), 2, 2)
    write_rows(out, rows)


if __name__ == "__main__":
    main()
