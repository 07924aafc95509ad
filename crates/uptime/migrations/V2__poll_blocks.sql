-- Polls in one representation instead of two (a row table deduplicating by (store, instant)
-- and day blocks rebuilt from it for reports): ingestion wrote every poll twice.
--
-- One row per store, UTC day (days since the epoch) and file: the polls of that day that the
-- file delivered last, as little-endian i64 `at << 1 | active` in time order. A poll
-- delivered again by another file moves to that file's block, so each (store, instant) is in
-- exactly one block: re-delivered polls count once, the latest delivery's status wins, and
-- a replaced file takes back what it delivered last by deleting its blocks.
CREATE TABLE uptime_poll_blocks (
    store   INTEGER NOT NULL,
    day     INTEGER NOT NULL,
    file_id INTEGER NOT NULL,
    polls   BLOB NOT NULL,
    PRIMARY KEY (store, day, file_id)
) WITHOUT ROWID;

-- The blocks from the row table (the source of truth until now). Days are floored for
-- instants before 1970 as in Rust's div_euclid; each value's bytes are written least
-- significant first.
INSERT INTO uptime_poll_blocks (store, day, file_id, polls)
SELECT store, day, file_id, unhex(group_concat(le, '' ORDER BY at))
FROM (
    SELECT store, file_id, at,
           at / 86400000000 - (at % 86400000000 < 0) AS day,
           printf('%02x%02x%02x%02x%02x%02x%02x%02x',
                  v & 255, (v >> 8) & 255, (v >> 16) & 255, (v >> 24) & 255,
                  (v >> 32) & 255, (v >> 40) & 255, (v >> 48) & 255, (v >> 56) & 255) AS le
    FROM (SELECT store, file_id, at, (at << 1) | active AS v FROM uptime_polls)
)
GROUP BY store, day, file_id;

DROP TABLE uptime_poll_days;
DROP TABLE uptime_polls;
