-- The trips domain on PostgreSQL: SQLite's schema as of its V4, in one migration (see the
-- SQLite migrations for what each table holds). Ids are assigned as SQLite's rowids are
-- (the largest plus one), under the trips write lock (`store::postgres`), so both backends
-- give the same ids. Designed for Citus: the large tables (blocks, cell and pair rollups,
-- groups) each have a distribution column (`cell`, `cell`, `o_cell`, `o_h3`) in every key
-- and no unique constraint without it; dictionaries, loads and batches are small
-- (reference tables under Citus).

CREATE TABLE trips_region (
    id   BIGINT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    n    BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE trips_datasource (
    id   BIGINT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    n    BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE trips_load (
    id             BIGINT PRIMARY KEY,
    name           TEXT NOT NULL,
    state          TEXT NOT NULL CHECK (state IN ('staging', 'done')),
    file_id        BIGINT UNIQUE,
    owner          TEXT NOT NULL,
    h3_resolution  BIGINT NOT NULL,
    bucket_minutes BIGINT NOT NULL
);

CREATE TABLE trips_batch (
    id       BIGINT PRIMARY KEY,
    load_id  BIGINT NOT NULL,
    first_id BIGINT NOT NULL UNIQUE,
    n        BIGINT NOT NULL,
    visible  BOOLEAN NOT NULL,
    ts_min   BIGINT NOT NULL,
    ts_max   BIGINT NOT NULL,
    pos      BYTEA NOT NULL
);
CREATE INDEX trips_batch_load ON trips_batch (load_id);
-- Uncompressed out of line, so that `substring` reads only the pages it needs (SQLite's
-- incremental blob reads).
ALTER TABLE trips_batch ALTER COLUMN pos SET STORAGE EXTERNAL;

CREATE TABLE trips_block (
    end_     SMALLINT NOT NULL,
    cell     BIGINT NOT NULL,
    batch_id BIGINT NOT NULL,
    start    BIGINT NOT NULL,
    dir      BYTEA NOT NULL,
    data     BYTEA NOT NULL,
    PRIMARY KEY (end_, cell, batch_id)
);
CREATE INDEX trips_block_batch ON trips_block (batch_id, end_, start);
ALTER TABLE trips_block ALTER COLUMN data SET STORAGE EXTERNAL;

CREATE TABLE trips_region_week (
    region_id BIGINT NOT NULL,
    week      BIGINT NOT NULL,
    n         BIGINT NOT NULL,
    PRIMARY KEY (region_id, week)
);

CREATE TABLE trips_cell (
    end_  SMALLINT NOT NULL,
    level SMALLINT NOT NULL,
    cell  BIGINT NOT NULL,
    weeks BYTEA NOT NULL,
    PRIMARY KEY (end_, level, cell)
);

CREATE TABLE trips_pair (
    level  SMALLINT NOT NULL,
    o_cell BIGINT NOT NULL,
    d_cell BIGINT NOT NULL,
    weeks  BYTEA NOT NULL,
    PRIMARY KEY (level, o_cell, d_cell)
);

CREATE TABLE trips_group (
    id             BIGINT NOT NULL,
    h3_resolution  BIGINT NOT NULL,
    bucket_minutes BIGINT NOT NULL,
    region_id      BIGINT NOT NULL,
    o_h3           BIGINT NOT NULL,
    d_h3           BIGINT NOT NULL,
    bucket         BIGINT NOT NULL,
    n              BIGINT NOT NULL,
    sources        BYTEA NOT NULL DEFAULT '',
    PRIMARY KEY (o_h3, id),
    UNIQUE (o_h3, h3_resolution, bucket_minutes, region_id, d_h3, bucket)
);
CREATE INDEX trips_group_id ON trips_group (id);
CREATE INDEX trips_group_size ON trips_group (h3_resolution, bucket_minutes, n DESC, id);

-- Nothing is pending on a schema created whole; kept so that both backends share the code.
CREATE TABLE trips_pending (
    what TEXT PRIMARY KEY
);
