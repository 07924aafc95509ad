-- Trips move from one row each (with two per-row cell indexes) to batches of blobs: see
-- src/batch.rs. Rows of V1 are not converted: the trips ledger entries are dropped with
-- them, so their files can simply be ingested again.
DROP TABLE trips_trip;
DROP TABLE trips_chunk;
DELETE FROM trips_load;
DELETE FROM trips_region_week;
DELETE FROM trips_cell_week;
DROP TABLE trips_pair_week;
DROP TABLE trips_group_source;
DELETE FROM trips_group;
UPDATE trips_region SET n = 0;
UPDATE trips_datasource SET n = 0;
DELETE FROM core_ledger WHERE domain = 'trips';

-- Up to 2^20 trips of one load with ids first_id .. first_id + n - 1. `visible` is set in
-- the transaction that adds the batch to the rollups: queries read visible batches only, so
-- raw edge checks and rollups always agree. `pos` (last, so that the small columns are read
-- without its overflow pages) maps id order to the origin order of the batch's blocks.
CREATE TABLE trips_batch (
    id       INTEGER PRIMARY KEY,
    load_id  INTEGER NOT NULL,
    first_id INTEGER NOT NULL UNIQUE,
    n        INTEGER NOT NULL,
    visible  INTEGER NOT NULL,
    ts_min   INTEGER NOT NULL,
    ts_max   INTEGER NOT NULL,
    pos      BLOB NOT NULL
);
CREATE INDEX trips_batch_load ON trips_batch (load_id);

-- The trips of a batch with one end (0 origin, 1 destination) in one 1/64° cell: records
-- sorted by level-0 cell (`data`, see src/batch.rs), a directory by 1/256° sub-cell, and
-- `start`, the index of the first record in the batch's origin (or destination) order.
CREATE TABLE trips_block (
    end_     INTEGER NOT NULL,
    cell     INTEGER NOT NULL,
    batch_id INTEGER NOT NULL,
    start    INTEGER NOT NULL,
    dir      BLOB NOT NULL,
    data     BLOB NOT NULL,
    PRIMARY KEY (end_, cell, batch_id)
);
CREATE INDEX trips_block_batch ON trips_block (batch_id, end_, start);

-- A group's datasources with their trip counts, as one small blob (see `batch::Tally`)
-- merged by the SQL function `trips_add_counts`: one row write per group instead of one
-- per group and datasource.
ALTER TABLE trips_group ADD COLUMN sources BLOB NOT NULL DEFAULT x'';

-- Trips per (origin cell, destination cell) of the same level, levels 3..8 (1/16° to 64°),
-- for match=both, with the counts per week in one blob (`batch::Tally`, keyed by week):
-- a box reads one row per cell pair, not one per pair and week.
CREATE TABLE trips_pair (
    level  INTEGER NOT NULL,
    o_cell INTEGER NOT NULL,
    d_cell INTEGER NOT NULL,
    weeks  BLOB NOT NULL,
    PRIMARY KEY (level, o_cell, d_cell)
) WITHOUT ROWID;
