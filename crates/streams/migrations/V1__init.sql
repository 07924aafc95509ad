-- One row per harvest run; the id is the run's job id. Counts are kept up to date by the
-- harvest in the same transaction as the events they count.
CREATE TABLE streams_runs (
    id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    params TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('running', 'succeeded', 'failed')),
    started_at TEXT NOT NULL,
    finished_at TEXT,
    stop_reason TEXT,
    error TEXT,
    ms_sytflix INTEGER,
    ms_sytazon INTEGER,
    ms_sysney INTEGER,
    ms_total INTEGER,
    events_sytflix INTEGER NOT NULL DEFAULT 0,
    events_sytazon INTEGER NOT NULL DEFAULT 0,
    events_sysney INTEGER NOT NULL DEFAULT 0,
    malformed_sytflix INTEGER NOT NULL DEFAULT 0,
    malformed_sytazon INTEGER NOT NULL DEFAULT 0,
    malformed_sysney INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX streams_runs_finished ON streams_runs (state, started_at);

-- Every well-formed event: parsed columns for the report, the JSON as received for the API.
-- seq is the arrival order across the run's three streams.
CREATE TABLE streams_events (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    stream TEXT NOT NULL,
    event_id TEXT,
    event_type TEXT NOT NULL,
    event_date TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    first_name TEXT,
    last_name TEXT,
    date_of_birth TEXT,
    country TEXT,
    show_id TEXT NOT NULL,
    platform TEXT NOT NULL,
    title TEXT,
    first_actor TEXT,
    release_year INTEGER,
    raw TEXT NOT NULL
);
CREATE UNIQUE INDEX streams_events_run_seq ON streams_events (run_id, seq);

-- Every malformed message, with why and its raw text.
CREATE TABLE streams_malformed (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    stream TEXT NOT NULL,
    reason TEXT NOT NULL,
    raw TEXT NOT NULL
);
CREATE UNIQUE INDEX streams_malformed_run_seq ON streams_malformed (run_id, seq);
