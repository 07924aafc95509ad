-- Per-cell rollups move from one row per (end, level, cell, week) to one row per cell with
-- its weeks in one blob (`batch::Tally`: (week i32, count i64) little endian, sorted by
-- week), so that a box reads one row per inside cell, not up to one per week of the data;
-- and they gain level 1 (1/256°), so that a box edge reads raw only the 1/256° cells it cuts.
CREATE TABLE trips_cell (
    end_  INTEGER NOT NULL,
    level INTEGER NOT NULL,
    cell  INTEGER NOT NULL,
    weeks BLOB NOT NULL,
    PRIMARY KEY (end_, level, cell)
) WITHOUT ROWID;
INSERT INTO trips_cell (end_, level, cell, weeks)
SELECT end_, level, cell, unhex(group_concat(
    printf('%02X%02X%02X%02X%02X%02X%02X%02X%02X%02X%02X%02X',
        week & 255, (week >> 8) & 255, (week >> 16) & 255, (week >> 24) & 255,
        n & 255, (n >> 8) & 255, (n >> 16) & 255, (n >> 24) & 255,
        (n >> 32) & 255, (n >> 40) & 255, (n >> 48) & 255, (n >> 56) & 255),
    '' ORDER BY week))
FROM trips_cell_week WHERE n <> 0 GROUP BY end_, level, cell;
DROP TABLE trips_cell_week;

-- Rollups not yet built for the trips already stored: level 1 needs the trips' records,
-- which SQL cannot decode, so the next writer builds it (`store::complete_levels`, at the
-- server's start or the next ingestion); until then queries use levels 2..8.
CREATE TABLE trips_pending (
    what TEXT PRIMARY KEY
) WITHOUT ROWID;
INSERT INTO trips_pending (what) SELECT 'cell_level_1' WHERE EXISTS (SELECT 1 FROM trips_batch);
