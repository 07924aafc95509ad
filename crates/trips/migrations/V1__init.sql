-- Dictionaries: every trip stores small integer ids, not text. `n` is the trip count.
CREATE TABLE trips_region (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    n    INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE trips_datasource (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    n    INTEGER NOT NULL DEFAULT 0
);

-- Raw trips with full-precision coordinates. `o_cell`/`d_cell` are Morton codes of the
-- 1/1024-degree grid cell of each end: the only per-row indexes, used for the exact raw
-- scan of box-edge cells, trips of a group, and coordinate filters.
CREATE TABLE trips_trip (
    id            INTEGER PRIMARY KEY,
    region_id     INTEGER NOT NULL,
    datasource_id INTEGER NOT NULL,
    ts            INTEGER NOT NULL,
    o_lon         REAL NOT NULL,
    o_lat         REAL NOT NULL,
    d_lon         REAL NOT NULL,
    d_lat         REAL NOT NULL,
    o_cell        INTEGER NOT NULL,
    d_cell        INTEGER NOT NULL
);
CREATE INDEX trips_trip_o_cell ON trips_trip (o_cell);
CREATE INDEX trips_trip_d_cell ON trips_trip (d_cell);

-- One input (file or stream). A stream commits in chunks while `state = 'staging'`; a load
-- left staging by a dead process is removed before the next ingestion.
CREATE TABLE trips_load (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL,
    state         TEXT NOT NULL CHECK (state IN ('staging', 'done')),
    file_id       INTEGER UNIQUE,
    owner_pid     INTEGER NOT NULL,
    h3_resolution INTEGER NOT NULL,
    bucket_minutes INTEGER NOT NULL
);
-- Rows of a load: each chunk is written in one transaction by the single writer, so its
-- ids are contiguous and a contribution is removed by id ranges, without a per-row index.
CREATE TABLE trips_chunk (
    load_id  INTEGER NOT NULL,
    first_id INTEGER NOT NULL,
    last_id  INTEGER NOT NULL,
    PRIMARY KEY (load_id, first_id)
) WITHOUT ROWID;

-- Weekly counts per region (week = ISO week index, see engine::week_of).
CREATE TABLE trips_region_week (
    region_id INTEGER NOT NULL,
    week      INTEGER NOT NULL,
    n         INTEGER NOT NULL,
    PRIMARY KEY (region_id, week)
) WITHOUT ROWID;

-- Weekly counts per quadtree cell of one trip end (0 origin, 1 destination), levels 1..8
-- (cell sides 1/256 to 64 degrees, factor 4 per level).
CREATE TABLE trips_cell_week (
    end_  INTEGER NOT NULL,
    level INTEGER NOT NULL,
    cell  INTEGER NOT NULL,
    week  INTEGER NOT NULL,
    n     INTEGER NOT NULL,
    PRIMARY KEY (end_, level, cell, week)
) WITHOUT ROWID;

-- Weekly counts per (origin cell, destination cell) of the same level, levels 2..8, for
-- match=both: coarse pairs answer where the destination cell is inside the box, finer ones
-- only where it is cut.
CREATE TABLE trips_pair_week (
    level  INTEGER NOT NULL,
    o_cell INTEGER NOT NULL,
    d_cell INTEGER NOT NULL,
    week   INTEGER NOT NULL,
    n      INTEGER NOT NULL,
    PRIMARY KEY (level, o_cell, d_cell, week)
) WITHOUT ROWID;

-- Similar-trip groups, maintained at ingestion. The key includes the resolution and bucket
-- width so that a configuration change starts new groups instead of mixing them.
CREATE TABLE trips_group (
    id             INTEGER PRIMARY KEY,
    h3_resolution  INTEGER NOT NULL,
    bucket_minutes INTEGER NOT NULL,
    region_id      INTEGER NOT NULL,
    o_h3           INTEGER NOT NULL,
    d_h3           INTEGER NOT NULL,
    bucket         INTEGER NOT NULL,
    n              INTEGER NOT NULL,
    UNIQUE (h3_resolution, bucket_minutes, region_id, o_h3, d_h3, bucket)
);
CREATE INDEX trips_group_size ON trips_group (h3_resolution, bucket_minutes, n DESC);
CREATE TABLE trips_group_source (
    group_id      INTEGER NOT NULL,
    datasource_id INTEGER NOT NULL,
    n             INTEGER NOT NULL,
    PRIMARY KEY (group_id, datasource_id)
) WITHOUT ROWID;
