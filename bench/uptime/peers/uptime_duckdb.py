"""U1 peer: the uptime report in DuckDB SQL, same documented rule as sluice
(crates/uptime/src/engine.rs): now = latest poll; windows [now-1h, now), [now-24h, now),
[now-7d, now); business intervals from local weekly hours converted with the store's zone
(America/Chicago by default; no hours at all = 24x7; end <= start runs past midnight);
every instant takes the status of the nearest poll (switch half-way, ties to the later poll).

usage: uptime_duckdb.py DATA_DIR OUT.csv
"""
import sys
import time

import duckdb

data, out = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
con = duckdb.connect()
con.execute(f"""
CREATE TABLE polls AS
SELECT store_id, status = 'active' AS up,
       epoch_us(CAST(replace(timestamp_utc, ' UTC', '') AS TIMESTAMP)) AS t
FROM read_csv('{data}/store_status.csv', all_varchar = true);
CREATE TABLE hours AS
SELECT * FROM read_csv('{data}/menu_hours.csv', all_varchar = true);
CREATE TABLE tz AS
SELECT * FROM read_csv('{data}/timezones.csv', all_varchar = true);
""")
t_load = time.perf_counter() - t0
t1 = time.perf_counter()
# The day column is `day` (2023 export) or `dayOfWeek` (2024 export).
day_col = "day" if "day" in [c[0] for c in con.execute("DESCRIBE hours").fetchall()] else "dayOfWeek"
con.execute(f"""
CREATE TEMP TABLE bounds AS SELECT max(t) AS now FROM polls;
CREATE TEMP TABLE windows AS
SELECT w, now - len AS ws, now FROM bounds,
  (VALUES (0, 3600000000::BIGINT), (1, 86400000000::BIGINT), (2, 604800000000::BIGINT)) v(w, len);
CREATE TEMP TABLE stores AS
SELECT s.store_id, coalesce(tz.timezone_str, 'America/Chicago') AS zone
FROM (SELECT store_id FROM polls UNION SELECT store_id FROM hours UNION SELECT store_id FROM tz) s
LEFT JOIN tz USING (store_id);

-- Status cells: each poll holds from half-way after the previous poll to half-way before the next.
CREATE TEMP TABLE cells AS
SELECT store_id, up,
       CASE WHEN prev IS NULL THEN -4611686018427387904 ELSE prev + (t - prev + 1) // 2 END AS lo,
       CASE WHEN nxt IS NULL THEN 4611686018427387904 ELSE t + (nxt - t + 1) // 2 END AS hi
FROM (SELECT store_id, up, t, lag(t) OVER w AS prev, lead(t) OVER w AS nxt
      FROM polls WINDOW w AS (PARTITION BY store_id ORDER BY t)), bounds
WHERE hi > now - 604800000000 AND lo < now;

-- Business intervals in UTC: every local date around the week, each interval of its weekday.
CREATE TEMP TABLE local_days AS
SELECT d::DATE AS d FROM bounds,
  range(CAST(make_timestamp(now) AS DATE) - 9, CAST(make_timestamp(now) AS DATE) + 2, INTERVAL 1 DAY) r(d);
CREATE TEMP TABLE raw_biz AS
SELECT h.store_id,
       epoch_us(timezone(s.zone, d + CAST(h.start_time_local AS TIME))) AS lo,
       epoch_us(timezone(s.zone, d + CAST(h.end_time_local AS TIME)
            + CASE WHEN CAST(h.end_time_local AS TIME) <= CAST(h.start_time_local AS TIME)
                   THEN INTERVAL 1 DAY ELSE INTERVAL 0 DAY END)) AS hi
FROM hours h JOIN stores s USING (store_id) JOIN local_days ON isodow(d) - 1 = CAST(h.{day_col} AS INTEGER)
UNION ALL
SELECT store_id, now - 604800000000, now FROM stores, bounds
WHERE store_id NOT IN (SELECT store_id FROM hours);
-- Clipped to the week and merged where intervals overlap.
CREATE TEMP TABLE biz AS
SELECT store_id, min(lo) AS lo, max(hi) AS hi FROM (
  SELECT *, sum(CASE WHEN lo <= prev_hi THEN 0 ELSE 1 END) OVER (PARTITION BY store_id ORDER BY lo, hi) AS grp
  FROM (SELECT *, max(hi) OVER (PARTITION BY store_id ORDER BY lo, hi ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_hi
        FROM (SELECT store_id, greatest(lo, now - 604800000000) AS lo, least(hi, now) AS hi
              FROM raw_biz, bounds) WHERE lo < hi))
GROUP BY store_id, grp;

CREATE TEMP TABLE figures AS
SELECT b.store_id, w.w,
       sum(CASE WHEN c.up THEN greatest(0, least(b.hi, c.hi) - greatest(b.lo, c.lo, w.ws)) ELSE 0 END) AS up,
       sum(CASE WHEN c.up THEN 0 ELSE greatest(0, least(b.hi, c.hi) - greatest(b.lo, c.lo, w.ws)) END) AS down
FROM biz b JOIN cells c ON c.store_id = b.store_id AND c.lo < b.hi AND c.hi > b.lo
CROSS JOIN windows w
GROUP BY b.store_id, w.w;
""")
con.execute(f"""
COPY (
  SELECT s.store_id,
    printf('%.2f', coalesce(max(CASE WHEN w = 0 THEN up END), 0) / 60e6) AS uptime_last_hour,
    printf('%.2f', coalesce(max(CASE WHEN w = 1 THEN up END), 0) / 3600e6) AS uptime_last_day,
    printf('%.2f', coalesce(max(CASE WHEN w = 2 THEN up END), 0) / 3600e6) AS uptime_last_week,
    printf('%.2f', coalesce(max(CASE WHEN w = 0 THEN down END), 0) / 60e6) AS downtime_last_hour,
    printf('%.2f', coalesce(max(CASE WHEN w = 1 THEN down END), 0) / 3600e6) AS downtime_last_day,
    printf('%.2f', coalesce(max(CASE WHEN w = 2 THEN down END), 0) / 3600e6) AS downtime_last_week
  FROM stores s LEFT JOIN figures f USING (store_id)
  GROUP BY s.store_id ORDER BY s.store_id
) TO '{out}' (HEADER, QUOTE '')
""")
# Load (CSV into tables) and report seconds.
print(f"{t_load:.3f} {time.perf_counter() - t1:.3f}")
