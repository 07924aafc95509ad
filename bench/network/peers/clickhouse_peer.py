"""N1 peer: ClickHouse, in-process through chDB (pinned in bench/requirements.txt). The whole
day at once: one file() read of all the day's part files (format CSVWithNames, explicit Int64
structure, no schema inference) into a Memory table, then one query for the 5-minute and the
exact hourly top-3 KPIs (sum of bytes; uniqExact of msisdn for distinct subscribers, never
an approximate uniq), ranked with ORDER BY ... LIMIT 3 BY. ClickHouse uses all cores by
default (max_threads = cores). The file list is exactly the one the other peers read
(common.files_by_hour), passed to file() as a {a,b,...} glob."""
import os
import tempfile

from chdb import session
from common import COLUMNS, HOUR_MS, TOP, args, files_by_hour, write_rows

STRUCTURE = ", ".join(f"{c} Int64" for c in COLUMNS)

QUERY = f"""
SELECT kpi, g, t, id, v FROM (
    SELECT 1 AS kpi, 1 AS g, interval_start_timestamp AS t, service_id AS id,
           sum(bytes_uplink + bytes_downlink) AS v
    FROM day GROUP BY t, id
    UNION ALL
    SELECT 2, 1, interval_start_timestamp AS t, cell_id AS id, toInt64(uniqExact(msisdn))
    FROM day GROUP BY t, id
    UNION ALL
    SELECT 1, 2, intDiv(interval_start_timestamp, {HOUR_MS}) * {HOUR_MS} AS t, service_id AS id,
           sum(bytes_uplink + bytes_downlink)
    FROM day GROUP BY t, id
    UNION ALL
    SELECT 2, 2, intDiv(interval_start_timestamp, {HOUR_MS}) * {HOUR_MS} AS t, cell_id AS id,
           toInt64(uniqExact(msisdn))
    FROM day GROUP BY t, id)
ORDER BY kpi, g, t, v DESC, id DESC
LIMIT {TOP} BY kpi, g, t
"""


def main():
    src, out = args()
    files = [p for ps in files_by_hour(src).values() for p in ps]
    folder = os.path.dirname(os.path.abspath(files[0]))
    assert all(os.path.dirname(os.path.abspath(p)) == folder for p in files)
    glob = folder + "/{" + ",".join(os.path.basename(p) for p in files) + "}"
    with tempfile.TemporaryDirectory(prefix="chdb-n1-") as tmp:
        s = session.Session(tmp)
        s.query(f"CREATE TABLE day ENGINE = Memory AS SELECT * FROM "
                f"file('{glob}', 'CSVWithNames', '{STRUCTURE}')")
        res = s.query(QUERY, "TabSeparated").bytes().decode()
        s.close()
    rows, last, rank = [], None, 0
    for line in res.splitlines():
        kpi, g, t, i, v = map(int, line.split("\t"))
        rank = rank + 1 if (kpi, g, t) == last else 1
        last = (kpi, g, t)
        rows.append((kpi, g, t, rank, i, v))
    write_rows(out, rows)


if __name__ == "__main__":
    main()
