CREATE TABLE core_jobs (
    id             TEXT PRIMARY KEY,
    domain         TEXT NOT NULL,
    kind           TEXT NOT NULL,
    state          TEXT NOT NULL,
    progress_done  INTEGER NOT NULL DEFAULT 0,
    progress_total INTEGER,
    progress_unit  TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    started_at     TEXT,
    finished_at    TEXT,
    summary        TEXT NOT NULL,
    error          TEXT,
    callback_url   TEXT,
    owner_pid      INTEGER NOT NULL
);
CREATE INDEX core_jobs_state ON core_jobs (state);

-- One row per ingested input file; a domain's rows point at `id` to be replaceable.
CREATE TABLE core_ledger (
    id            INTEGER PRIMARY KEY,
    domain        TEXT NOT NULL,
    name          TEXT NOT NULL,
    content_hash  TEXT NOT NULL,
    size          INTEGER NOT NULL,
    rows_accepted INTEGER NOT NULL DEFAULT 0,
    rows_rejected INTEGER NOT NULL DEFAULT 0,
    job_id        TEXT,
    ingested_at   TEXT NOT NULL,
    UNIQUE (domain, name)
);
CREATE INDEX core_ledger_hash ON core_ledger (domain, content_hash);
