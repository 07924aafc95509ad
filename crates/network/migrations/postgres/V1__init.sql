-- The network domain on PostgreSQL: SQLite's schema as of its V3, in one migration.
-- Designed for Citus: each large table has a distribution column (the interval start) that
-- every primary key includes, and no unique constraint spans it; `network_dirty` and
-- `network_kpi_generation` are small (reference tables under Citus).

-- Per-file partial state of each 5-minute interval (engine::codec encodings).
CREATE TABLE network_file_interval (
    period_start BIGINT NOT NULL,
    file_id      BIGINT NOT NULL,
    rows         BIGINT NOT NULL,
    services     BYTEA NOT NULL,
    cells        BYTEA NOT NULL,
    PRIMARY KEY (period_start, file_id)
);
CREATE INDEX network_file_interval_file ON network_file_interval (file_id);

-- 5-minute intervals whose KPIs must be recomputed (written in the file's transaction).
CREATE TABLE network_dirty (period_start BIGINT PRIMARY KEY);

-- granularity 1 = 5 minutes, 2 = hour; kpi 1 = top services by bytes, 2 = top cells.
CREATE TABLE network_interval (
    granularity    BIGINT NOT NULL,
    interval_start BIGINT NOT NULL,
    rows           BIGINT NOT NULL,
    coverage       BIGINT NOT NULL,
    PRIMARY KEY (interval_start, granularity)
);

CREATE TABLE network_kpi (
    kpi            BIGINT NOT NULL,
    granularity    BIGINT NOT NULL,
    interval_start BIGINT NOT NULL,
    rank           BIGINT NOT NULL,
    item_id        BIGINT NOT NULL,
    value          BIGINT NOT NULL,
    PRIMARY KEY (interval_start, granularity, kpi, rank)
);
CREATE INDEX network_kpi_by_kpi ON network_kpi (kpi, granularity, interval_start, rank);

CREATE TABLE network_kpi_generation (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    generation BIGINT NOT NULL
);
INSERT INTO network_kpi_generation (id, generation) VALUES (1, 0);
