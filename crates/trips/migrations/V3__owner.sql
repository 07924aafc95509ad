-- A staging load is owned by a database handle's owner id (see core's `owner.rs`), not by
-- a process id, which other processes reuse. Loads from before have no owner: none is alive.
ALTER TABLE trips_load ADD COLUMN owner TEXT NOT NULL DEFAULT '';
ALTER TABLE trips_load DROP COLUMN owner_pid;
