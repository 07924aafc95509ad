-- The uptime domain on PostgreSQL: SQLite's schema as of its V2, in one migration.
-- Designed for Citus: the large per-store tables (poll blocks, hours, zones) have the store
-- key as distribution column, which every primary key includes, and no unique constraint
-- spans it; `uptime_stores` (one row per store, unique by key and by id), `uptime_latest`
-- and `uptime_reports` are small (reference tables under Citus).

-- Every store seen in any source; the other tables refer to its integer key. Keys are
-- assigned by ingestion (the largest plus one, as SQLite's rowids), under the ledger lock.
CREATE TABLE uptime_stores (
    id       BIGINT PRIMARY KEY,
    store_id TEXT NOT NULL UNIQUE
);

-- One row per store, UTC day (days since the epoch) and file: the polls of that day that the
-- file delivered last, as little-endian i64 `at << 1 | active` in time order (see SQLite's V2).
CREATE TABLE uptime_poll_blocks (
    store   BIGINT NOT NULL,
    day     BIGINT NOT NULL,
    file_id BIGINT NOT NULL,
    polls   BYTEA NOT NULL,
    PRIMARY KEY (store, day, file_id)
);
-- A replaced file's blocks are deleted by file.
CREATE INDEX uptime_poll_blocks_file ON uptime_poll_blocks (file_id);
-- The latest poll after a replacement: the blocks of the latest day.
CREATE INDEX uptime_poll_blocks_day ON uptime_poll_blocks (day);

-- The latest poll of all stores (the default "now" of reports), kept by each file's
-- transaction.
CREATE TABLE uptime_latest (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    at BIGINT
);
INSERT INTO uptime_latest (id, at) VALUES (1, NULL);

-- Business hours in local seconds since midnight; day 0 = Monday.
CREATE TABLE uptime_hours (
    store   BIGINT NOT NULL,
    day     BIGINT NOT NULL,
    start_s BIGINT NOT NULL,
    end_s   BIGINT NOT NULL,
    file_id BIGINT NOT NULL,
    PRIMARY KEY (store, day, start_s, end_s)
);
CREATE INDEX uptime_hours_file ON uptime_hours (file_id);

CREATE TABLE uptime_zones (
    store   BIGINT PRIMARY KEY,
    zone    TEXT NOT NULL,
    file_id BIGINT NOT NULL
);
CREATE INDEX uptime_zones_file ON uptime_zones (file_id);

-- One row per report; its state is the state of the job with the same id. `seq` is the
-- registration order (SQLite lists by rowid).
CREATE TABLE uptime_reports (
    seq           BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    id            TEXT PRIMARY KEY,
    created_at    TEXT NOT NULL,
    requested_now BIGINT,
    stores        TEXT,
    coverage      BIGINT NOT NULL,
    now           BIGINT,
    rows          BIGINT
);
