-- Jobs are owned by a database handle's owner id (see `owner.rs`), not by a process id,
-- which other processes reuse. Rows from before have no owner: none of them is alive.
ALTER TABLE core_jobs ADD COLUMN owner TEXT NOT NULL DEFAULT '';
ALTER TABLE core_jobs DROP COLUMN owner_pid;
