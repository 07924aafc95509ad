"""N1 peer: DuckDB. Per UTC hour, one read_csv over the hour's part files (explicit
integer schema, no sniffing) into a temp table, then the 5-minute and the exact hourly
top-3 KPIs in SQL (window ranking with QUALIFY). DuckDB uses all cores by default."""
import duckdb
from common import COLUMNS, TOP, args, files_by_hour, write_rows

QUERY = f"""
WITH k1_5 AS (
    SELECT interval_start_timestamp AS t, service_id AS id,
           sum(bytes_uplink + bytes_downlink) AS v
    FROM hour GROUP BY ALL),
k2_5 AS (
    SELECT interval_start_timestamp AS t, cell_id AS id, count(DISTINCT msisdn) AS v
    FROM hour GROUP BY ALL),
k1_h AS (
    SELECT $h AS t, service_id AS id, sum(bytes_uplink + bytes_downlink) AS v
    FROM hour GROUP BY ALL),
k2_h AS (
    SELECT $h AS t, cell_id AS id, count(DISTINCT msisdn) AS v
    FROM hour GROUP BY ALL),
allk AS (
    SELECT 1 AS kpi, 1 AS g, * FROM k1_5 UNION ALL
    SELECT 2, 1, * FROM k2_5 UNION ALL
    SELECT 1, 2, * FROM k1_h UNION ALL
    SELECT 2, 2, * FROM k2_h)
SELECT kpi, g, t, row_number() OVER (PARTITION BY kpi, g, t ORDER BY v DESC, id DESC) AS rank,
       id, v
FROM allk
QUALIFY rank <= {TOP}
"""


def main():
    src, out = args()
    con = duckdb.connect()
    types = {c: "BIGINT" for c in COLUMNS}
    rows = []
    for h, files in files_by_hour(src).items():
        con.execute("DROP TABLE IF EXISTS hour")
        con.execute(
            "CREATE TEMP TABLE hour AS SELECT * FROM read_csv($files, header = true, "
            "delim = ',', columns = $types)",
            {"files": files, "types": types},
        )
        # Files are grouped by their name's hour; in well-formed input (the generated day)
        # every row's own interval lies in that hour.
        rows += con.execute(QUERY, {"h": h}).fetchall()
    write_rows(out, rows)


if __name__ == "__main__":
    main()
