-- The platform's tables on PostgreSQL: the same columns as on SQLite (times as RFC 3339 text,
-- so both backends answer byte for byte alike); `seq` orders listings as SQLite's rowid does.
CREATE TABLE core_jobs (
    seq            BIGSERIAL NOT NULL,
    id             TEXT PRIMARY KEY,
    domain         TEXT NOT NULL,
    kind           TEXT NOT NULL,
    state          TEXT NOT NULL,
    progress_done  BIGINT NOT NULL DEFAULT 0,
    progress_total BIGINT,
    progress_unit  TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    started_at     TEXT,
    finished_at    TEXT,
    summary        TEXT NOT NULL,
    error          TEXT,
    callback_url   TEXT,
    owner          TEXT NOT NULL DEFAULT ''
);
CREATE INDEX core_jobs_state ON core_jobs (state);
CREATE INDEX core_jobs_seq ON core_jobs (seq);

-- One row per ingested input file; a domain's rows point at `id` to be replaceable.
CREATE TABLE core_ledger (
    id            BIGSERIAL PRIMARY KEY,
    domain        TEXT NOT NULL,
    name          TEXT NOT NULL,
    content_hash  TEXT NOT NULL,
    size          BIGINT NOT NULL,
    rows_accepted BIGINT NOT NULL DEFAULT 0,
    rows_rejected BIGINT NOT NULL DEFAULT 0,
    job_id        TEXT,
    ingested_at   TEXT NOT NULL,
    UNIQUE (domain, name)
);
CREATE INDEX core_ledger_hash ON core_ledger (domain, content_hash);
