"""U1 peer: the uptime report in pandas/numpy, same documented rule as sluice
(crates/uptime/src/engine.rs) and the DuckDB peer. Vectorised: per store, the up time from
the start of the week is a piecewise-linear function of time built from the status cells
(each poll holds from half-way after the previous poll to half-way before the next), so the
up time inside a business interval [a, b) is U(b) - U(a), found with one searchsorted.

usage: uptime_pandas.py DATA_DIR OUT.csv
"""
import sys
import time

import numpy as np
import pandas as pd

data, out = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
polls = pd.read_csv(f"{data}/store_status.csv", dtype=str)
hours = pd.read_csv(f"{data}/menu_hours.csv", dtype=str)
tz = pd.read_csv(f"{data}/timezones.csv", dtype=str)
polls["t"] = (
    pd.to_datetime(polls["timestamp_utc"].str.removesuffix(" UTC"), format="ISO8601")
    .dt.as_unit("us")
    .astype("int64")
)
t_load = time.perf_counter() - t0
t1 = time.perf_counter()

HOUR, DAY = 3_600_000_000, 86_400_000_000
now = int(polls["t"].max())
week = now - 7 * DAY
starts = [now - HOUR, now - DAY, week]

stores = pd.Index(
    pd.concat([polls["store_id"], hours["store_id"], tz["store_id"]]).unique()
).sort_values()
code = {s: i for i, s in enumerate(stores)}
zones = pd.Series("America/Chicago", index=stores)
zones[tz["store_id"].values] = tz["timezone_str"].values

# Status cells clipped to the week.
p = pd.DataFrame(
    {"s": stores.get_indexer(polls["store_id"]), "t": polls["t"].values, "up": (polls["status"] == "active").values}
).sort_values(["s", "t"], kind="stable")
s, t, up = p["s"].values, p["t"].values, p["up"].values
same_prev = np.r_[False, s[1:] == s[:-1]]
same_next = np.r_[s[:-1] == s[1:], False]
prev_t = np.r_[0, t[:-1]]
next_t = np.r_[t[1:], 0]
lo = np.where(same_prev, prev_t + (t - prev_t + 1) // 2, week)
hi = np.where(same_next, t + (next_t - t + 1) // 2, now)
lo, hi = np.clip(lo, week, now), np.clip(hi, week, now)
keep = lo < hi
s, lo, hi, up = s[keep], lo[keep], hi[keep], up[keep]
# Up time accumulated from the week's start to the start of each cell, per store.
gain = np.where(up, hi - lo, 0)
cum = np.cumsum(gain) - gain
first = np.r_[True, s[1:] != s[:-1]]
cum = cum - np.maximum.accumulate(np.where(first, cum, 0))
key = s.astype(np.int64) * (1 << 41) + (lo - week)
polled = np.zeros(len(stores), bool)
polled[s] = True


def up_until(st, x):
    """Up time of stores `st` from the week's start to instants `x`."""
    k = np.searchsorted(key, st.astype(np.int64) * (1 << 41) + (x - week), side="right") - 1
    return cum[k] + np.where(up[k], np.minimum(x, hi[k]) - lo[k], 0)


# Business intervals in UTC, for every local date around the week.
day_col = "day" if "day" in hours.columns else "dayOfWeek"
h = pd.DataFrame(
    {
        "s": stores.get_indexer(hours["store_id"]),
        "day": hours[day_col].astype(int),
        "start": pd.to_timedelta(hours["start_time_local"]),
        "end": pd.to_timedelta(hours["end_time_local"]),
    }
)
dates = pd.DataFrame({"d": pd.date_range(pd.Timestamp(now, unit="us").normalize() - pd.Timedelta(days=9), periods=12)})
dates["day"] = dates["d"].dt.day_of_week
h = h.merge(dates, on="day")
h["ls"] = h["d"] + h["start"]
h["le"] = h["d"] + h["end"] + pd.to_timedelta((h["end"] <= h["start"]).astype(int), unit="D")
h["zone"] = zones.values[h["s"].values]
parts = []
for zone, g in h.groupby("zone"):
    a = pd.DatetimeIndex(g["ls"]).tz_localize(zone, ambiguous="NaT", nonexistent="shift_forward")
    b = pd.DatetimeIndex(g["le"]).tz_localize(zone, ambiguous="NaT", nonexistent="shift_forward")
    parts.append(pd.DataFrame({"s": g["s"].values, "a": a.as_unit("us").asi8, "b": b.as_unit("us").asi8}))
always = np.setdiff1d(np.arange(len(stores)), h["s"].unique())
parts.append(pd.DataFrame({"s": always, "a": week, "b": now}))
biz = pd.concat(parts, ignore_index=True)
biz["a"], biz["b"] = biz["a"].clip(week, now), biz["b"].clip(week, now)
biz = biz[biz["a"] < biz["b"]].sort_values(["s", "a", "b"])
# Merge overlapping intervals of a store.
prev_hi = biz.groupby("s")["b"].transform(lambda x: x.cummax().shift())
biz["g"] = (~(biz["a"] <= prev_hi)).cumsum()
biz = biz.groupby("g").agg(s=("s", "first"), a=("a", "min"), b=("b", "max"))

res = {}
bs, ba, bb = biz["s"].values, biz["a"].values, biz["b"].values
for w, ws in enumerate(starts):
    a = np.maximum(ba, ws)
    m = (a < bb) & polled[bs]
    st, a, b = bs[m], a[m], bb[m]
    u = up_until(st, b) - up_until(st, a)
    res[f"up{w}"] = np.bincount(st, weights=u, minlength=len(stores))
    res[f"down{w}"] = np.bincount(st, weights=(b - a) - u, minlength=len(stores))

report = pd.DataFrame(
    {
        "store_id": stores,
        "uptime_last_hour": res["up0"] / 60e6,
        "uptime_last_day": res["up1"] / 3600e6,
        "uptime_last_week": res["up2"] / 3600e6,
        "downtime_last_hour": res["down0"] / 60e6,
        "downtime_last_day": res["down1"] / 3600e6,
        "downtime_last_week": res["down2"] / 3600e6,
    }
)
report.to_csv(out, index=False, float_format="%.2f")
# Load (CSV parsing) and report seconds.
print(f"{t_load:.3f} {time.perf_counter() - t1:.3f}")
