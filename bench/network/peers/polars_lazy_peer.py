"""N1 peer: Polars, the whole day lazily (beside polars_peer.py's per-hour eager loop). One
scan_csv over all the day's part files (explicit Int64 schema), four lazy aggregations (the
5-minute and the exact hourly top-3 KPIs; n_unique for distinct subscribers) collected
together with collect_all, so the optimizer shares the one scan between them
(common-subplan elimination), then a sort + per-interval head, also lazy."""
import polars as pl
from common import COLUMNS, HOUR_MS, TOP, args, files_by_hour, write_rows

SCHEMA = {c: pl.Int64 for c in COLUMNS}


def top(lf, key, agg, kpi, g):
    return (
        lf.group_by("t", key).agg(agg).rename({key: "id"})
        .sort(["t", "v", "id"], descending=[False, True, True])
        .group_by("t", maintain_order=True).head(TOP)
        .with_columns(rank=pl.int_range(1, pl.len() + 1).over("t"))
        .select(pl.lit(kpi).alias("kpi"), pl.lit(g).alias("g"), "t", "rank", "id", "v")
    )


def main():
    src, out = args()
    files = [p for ps in files_by_hour(src).values() for p in ps]
    day = pl.scan_csv(files, schema=SCHEMA).select(
        t=pl.col("interval_start_timestamp"),
        h=pl.col("interval_start_timestamp") // HOUR_MS * HOUR_MS,
        total=pl.col("bytes_uplink") + pl.col("bytes_downlink"),
        msisdn="msisdn", service_id="service_id", cell_id="cell_id",
    )
    hour = day.with_columns(t=pl.col("h"))
    bytes_ = pl.col("total").sum().alias("v")
    users = pl.col("msisdn").n_unique().cast(pl.Int64).alias("v")
    frames = pl.collect_all([
        top(day, "service_id", bytes_, 1, 1),
        top(day, "cell_id", users, 2, 1),
        top(hour, "service_id", bytes_, 1, 2),
        top(hour, "cell_id", users, 2, 2),
    ])
    write_rows(out, [r for f in frames for r in f.rows()])


if __name__ == "__main__":
    main()
