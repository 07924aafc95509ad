-- Per-file partial state of each 5-minute interval, so a late or re-delivered file updates
-- its intervals exactly and a replaced file's contribution can be removed. `services` and
-- `cells` are compact encodings (engine::codec): byte sums per service, and the sorted
-- subscribers of every cell.
CREATE TABLE network_file_interval (
    period_start INTEGER NOT NULL,
    file_id      INTEGER NOT NULL,
    rows         INTEGER NOT NULL,
    services     BLOB NOT NULL,
    cells        BLOB NOT NULL,
    PRIMARY KEY (period_start, file_id)
) WITHOUT ROWID;
CREATE INDEX network_file_interval_file ON network_file_interval (file_id);

-- 5-minute intervals whose KPIs must be recomputed (written in the file's transaction).
CREATE TABLE network_dirty (period_start INTEGER PRIMARY KEY);

-- Materialized KPIs: the top entries of every interval. granularity 1 = 5 minutes, 2 = hour;
-- kpi 1 = top services by bytes, 2 = top cells by unique users.
CREATE TABLE network_interval (
    granularity    INTEGER NOT NULL,
    interval_start INTEGER NOT NULL,
    rows           INTEGER NOT NULL,
    coverage       INTEGER NOT NULL,
    PRIMARY KEY (granularity, interval_start)
) WITHOUT ROWID;

CREATE TABLE network_kpi (
    id             INTEGER PRIMARY KEY,
    kpi            INTEGER NOT NULL,
    granularity    INTEGER NOT NULL,
    interval_start INTEGER NOT NULL,
    rank           INTEGER NOT NULL,
    item_id        INTEGER NOT NULL,
    value          INTEGER NOT NULL,
    UNIQUE (kpi, granularity, interval_start, rank)
);
