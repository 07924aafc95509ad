-- Every store seen in any source; polls, hours and zones refer to its integer key so the
-- poll table stays narrow (millions of rows).
CREATE TABLE uptime_stores (
    id       INTEGER PRIMARY KEY,
    store_id TEXT NOT NULL UNIQUE
);

-- One row per (store, instant): the same poll delivered twice, by any file, counts once.
-- `at` is microseconds since the epoch (UTC); `file_id` is the ledger entry that delivered
-- it last, so a replaced file can take back what only it delivered.
CREATE TABLE uptime_polls (
    store   INTEGER NOT NULL,
    at      INTEGER NOT NULL,
    active  INTEGER NOT NULL,
    file_id INTEGER NOT NULL,
    PRIMARY KEY (store, at)
) WITHOUT ROWID;

-- The same polls, read-optimised for reports: one row per store and UTC day (days since
-- the epoch) holding its polls as little-endian i64 `at << 1 | active`, in time order.
-- Rebuilt from uptime_polls, in the same transaction, for every day a file touches.
CREATE TABLE uptime_poll_days (
    store INTEGER NOT NULL,
    day   INTEGER NOT NULL,
    polls BLOB NOT NULL,
    PRIMARY KEY (store, day)
) WITHOUT ROWID;

-- The latest poll of all stores (the default "now" of reports), kept by each file's
-- transaction so a report need not look for it.
CREATE TABLE uptime_latest (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    at INTEGER
);
INSERT INTO uptime_latest (id, at) VALUES (1, NULL);

-- Business hours in local seconds since midnight; day 0 = Monday.
CREATE TABLE uptime_hours (
    store   INTEGER NOT NULL,
    day     INTEGER NOT NULL,
    start_s INTEGER NOT NULL,
    end_s   INTEGER NOT NULL,
    file_id INTEGER NOT NULL,
    PRIMARY KEY (store, day, start_s, end_s)
) WITHOUT ROWID;

CREATE TABLE uptime_zones (
    store   INTEGER PRIMARY KEY,
    zone    TEXT NOT NULL,
    file_id INTEGER NOT NULL
);

-- One row per report; its state is the state of the job with the same id.
CREATE TABLE uptime_reports (
    id            TEXT PRIMARY KEY,
    created_at    TEXT NOT NULL,
    requested_now INTEGER,
    stores        TEXT,
    coverage      INTEGER NOT NULL,
    now           INTEGER,
    rows          INTEGER
);
