-- A KPI row's id is derived from its key (store::KpiRow::id), so it no longer changes when
-- the row is recomputed (late files, crash recovery). The rowid column goes; the key becomes
-- the primary key.
CREATE TABLE network_kpi_v2 (
    kpi            INTEGER NOT NULL,
    granularity    INTEGER NOT NULL,
    interval_start INTEGER NOT NULL,
    rank           INTEGER NOT NULL,
    item_id        INTEGER NOT NULL,
    value          INTEGER NOT NULL,
    PRIMARY KEY (kpi, granularity, interval_start, rank)
) WITHOUT ROWID;
INSERT INTO network_kpi_v2 (kpi, granularity, interval_start, rank, item_id, value)
    SELECT kpi, granularity, interval_start, rank, item_id, value FROM network_kpi;
DROP TABLE network_kpi;
ALTER TABLE network_kpi_v2 RENAME TO network_kpi;
