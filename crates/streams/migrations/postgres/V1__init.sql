-- The streams domain on PostgreSQL: SQLite's schema as of its V1, in one migration.
-- Designed for Citus: the events and the malformed messages are distributed by their run
-- (run_id), which each primary key includes; runs are few (one row per harvest) and keyed by
-- that same id, so they can be distributed by it beside their events, or be a reference table.
--
-- Text the source chose (names, titles, malformed lines and the reasons quoting them) may
-- hold NUL, which SQLite keeps and PostgreSQL's TEXT refuses: those columns are BYTEA holding
-- the text's UTF-8 bytes, so both backends store and answer the same bytes.

-- One row per harvest run; the id is the run's job id. Counts are kept up to date by the
-- harvest in the same transaction as the events they count. run_no is the insertion order
-- (SQLite's rowid), which breaks ties between runs started at the same time.
CREATE TABLE streams_runs (
    id TEXT PRIMARY KEY,
    run_no BIGINT GENERATED ALWAYS AS IDENTITY,
    source TEXT NOT NULL,
    params TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('running', 'succeeded', 'failed')),
    started_at TEXT NOT NULL,
    finished_at TEXT,
    stop_reason TEXT,
    error TEXT,
    ms_sytflix BIGINT,
    ms_sytazon BIGINT,
    ms_sysney BIGINT,
    ms_total BIGINT,
    events_sytflix BIGINT NOT NULL DEFAULT 0,
    events_sytazon BIGINT NOT NULL DEFAULT 0,
    events_sysney BIGINT NOT NULL DEFAULT 0,
    malformed_sytflix BIGINT NOT NULL DEFAULT 0,
    malformed_sytazon BIGINT NOT NULL DEFAULT 0,
    malformed_sysney BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX streams_runs_finished ON streams_runs (state, started_at, run_no);
CREATE INDEX streams_runs_started ON streams_runs (started_at, run_no);

-- Every well-formed event: parsed columns for the report, the JSON as received for the API
-- (valid JSON holds no NUL, so TEXT). seq is the arrival order across the run's three streams.
CREATE TABLE streams_events (
    run_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    stream TEXT NOT NULL,
    event_id TEXT,
    event_type TEXT NOT NULL,
    event_date TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    user_id BIGINT NOT NULL,
    first_name BYTEA,
    last_name BYTEA,
    date_of_birth TEXT,
    country BYTEA,
    show_id BYTEA NOT NULL,
    platform BYTEA NOT NULL,
    title BYTEA,
    first_actor BYTEA,
    release_year BIGINT,
    raw TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);

-- Every malformed message, with why and its raw text.
CREATE TABLE streams_malformed (
    run_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    stream TEXT NOT NULL,
    reason BYTEA NOT NULL,
    raw BYTEA NOT NULL,
    PRIMARY KEY (run_id, seq)
);
