//! [`Sql`] on SQLite: a connection inside the caller's transaction. Large blocks are read
//! through SQLite's incremental blob I/O, so a query copies only the records it reads.

use rusqlite::{params, Connection, OptionalExtension};
use sluice_core::DbError;

use super::{
    end_code, BatchRow, Dict, GroupDelta, GroupQuery, GroupRow, LoadId, Result, RunPicker, Sql,
    TallyRow, TallyTable,
};
use crate::batch::{Built, End, Tally, TripRec, TRIP_BYTES};

fn dict_table(dict: Dict) -> &'static str {
    match dict {
        Dict::Region => "trips_region",
        Dict::Datasource => "trips_datasource",
    }
}

fn collect<T>(rows: impl Iterator<Item = rusqlite::Result<T>>) -> Result<Vec<T>> {
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

const GROUP_SELECT: &str =
    "SELECT g.id, r.name, g.o_h3, g.d_h3, g.bucket, g.n, g.region_id, g.sources
    FROM trips_group g JOIN trips_region r ON r.id = g.region_id";

fn group_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<GroupRow> {
    Ok(GroupRow {
        id: r.get(0)?,
        region: r.get(1)?,
        o_h3: r.get(2)?,
        d_h3: r.get(3)?,
        bucket: r.get(4)?,
        n: r.get(5)?,
        region_id: r.get(6)?,
        sources: r.get(7)?,
    })
}

/// Registers `trips_add_counts(base, delta)` (see [`Tally`]) on a connection.
fn add_counts_function(c: &Connection) -> Result<()> {
    use rusqlite::functions::FunctionFlags;
    c.create_scalar_function(
        "trips_add_counts",
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let base = ctx.get_raw(0).as_blob_or_null()?.unwrap_or_default();
            let delta = ctx.get_raw(1).as_blob_or_null()?.unwrap_or_default();
            Ok(Tally::add(base, delta))
        },
    )?;
    Ok(())
}

impl Sql for &Connection {
    fn names(&mut self, dict: Dict) -> Result<Vec<(i64, String)>> {
        let sql = match dict {
            Dict::Region => "SELECT id, name FROM trips_region",
            Dict::Datasource => "SELECT id, name FROM trips_datasource",
        };
        let mut stmt = self.prepare_cached(sql)?;
        let rows = collect(stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?);
        rows
    }

    fn intern(&mut self, dict: Dict, name: &str) -> Result<i64> {
        let sql = format!("INSERT INTO {} (name) VALUES (?1)", dict_table(dict));
        self.execute(&sql, [name])?;
        Ok(self.last_insert_rowid())
    }

    fn create_load(&mut self, owner: &str, name: &str, res: u8, minutes: u32) -> Result<LoadId> {
        self.execute(
            "INSERT INTO trips_load (name, state, owner, h3_resolution, bucket_minutes)
             VALUES (?1, 'staging', ?2, ?3, ?4)",
            params![name, owner, res, minutes],
        )?;
        Ok(LoadId(self.last_insert_rowid()))
    }

    fn finish_load(&mut self, load: LoadId, file_id: i64) -> Result<()> {
        self.execute(
            "UPDATE trips_load SET state = 'done', file_id = ?2 WHERE id = ?1",
            params![load.0, file_id],
        )?;
        Ok(())
    }

    fn load_config(&mut self, load: LoadId) -> Result<Option<(u8, u32)>> {
        Ok(self
            .query_row(
                "SELECT h3_resolution, bucket_minutes FROM trips_load WHERE id = ?1",
                [load.0],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    fn load_batches(&mut self, load: LoadId) -> Result<Vec<(i64, i64, bool)>> {
        let mut stmt = self.prepare("SELECT id, n, visible FROM trips_batch WHERE load_id = ?1")?;
        let rows = collect(stmt.query_map([load.0], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?);
        rows
    }

    fn delete_batch(&mut self, batch_id: i64) -> Result<()> {
        self.execute("DELETE FROM trips_block WHERE batch_id = ?1", [batch_id])?;
        self.execute("DELETE FROM trips_batch WHERE id = ?1", [batch_id])?;
        Ok(())
    }

    fn delete_load(&mut self, load: LoadId) -> Result<()> {
        self.execute("DELETE FROM trips_load WHERE id = ?1", [load.0])?;
        Ok(())
    }

    fn load_of_file(&mut self, file_id: i64) -> Result<Option<LoadId>> {
        Ok(self
            .query_row(
                "SELECT id FROM trips_load WHERE file_id = ?1",
                [file_id],
                |r| r.get(0).map(LoadId),
            )
            .optional()?)
    }

    fn staging_loads(&mut self) -> Result<Vec<(LoadId, String)>> {
        let mut stmt = self.prepare("SELECT id, owner FROM trips_load WHERE state = 'staging'")?;
        let rows = collect(stmt.query_map([], |r| Ok((LoadId(r.get(0)?), r.get(1)?)))?);
        rows
    }

    fn insert_batch(&mut self, load: LoadId, n: i64, ts: (i64, i64), built: &Built) -> Result<()> {
        let first_id: i64 = self.query_row(
            "SELECT coalesce(max(first_id + n), 1) FROM trips_batch",
            [],
            |r| r.get(0),
        )?;
        self.execute(
            "INSERT INTO trips_batch (load_id, first_id, n, visible, ts_min, ts_max, pos)
             VALUES (?1, ?2, ?3, 0, ?4, ?5, ?6)",
            params![load.0, first_id, n, ts.0, ts.1, built.pos],
        )?;
        let batch_id = self.last_insert_rowid();
        let mut stmt = self.prepare_cached(
            "INSERT INTO trips_block (end_, cell, batch_id, start, dir, data)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for b in &built.blocks {
            stmt.execute(params![
                end_code(b.end),
                b.cell,
                batch_id,
                b.start,
                b.dir,
                built.data(b)
            ])?;
        }
        Ok(())
    }

    fn make_visible(&mut self, load: LoadId) -> Result<()> {
        self.execute(
            "UPDATE trips_batch SET visible = 1 WHERE load_id = ?1 AND NOT visible",
            [load.0],
        )?;
        Ok(())
    }

    fn add_counts(&mut self, dict: Dict, rows: &[(i64, i64)]) -> Result<()> {
        let sql = match dict {
            Dict::Region => "UPDATE trips_region SET n = n + ?2 WHERE id = ?1",
            Dict::Datasource => "UPDATE trips_datasource SET n = n + ?2 WHERE id = ?1",
        };
        let mut up = self.prepare_cached(sql)?;
        for &(id, n) in rows {
            up.execute(params![id, n])?;
        }
        Ok(())
    }

    fn add_region_weeks(&mut self, rows: &[(i64, i64, i64)], removing: bool) -> Result<()> {
        let mut up = self.prepare_cached(
            "INSERT INTO trips_region_week (region_id, week, n) VALUES (?1, ?2, ?3)
             ON CONFLICT (region_id, week) DO UPDATE SET n = n + excluded.n",
        )?;
        let mut del = self.prepare_cached(
            "DELETE FROM trips_region_week WHERE region_id = ?1 AND week = ?2 AND n = 0",
        )?;
        for &(region, week, n) in rows {
            up.execute(params![region, week, n])?;
            if removing {
                del.execute(params![region, week])?;
            }
        }
        Ok(())
    }

    fn add_tallies(
        &mut self,
        table: TallyTable,
        rows: &mut dyn Iterator<Item = TallyRow>,
    ) -> Result<()> {
        add_counts_function(self)?;
        let (upsert, prune) = match table {
            TallyTable::Cell => (
                "INSERT INTO trips_cell (end_, level, cell, weeks) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (end_, level, cell)
                 DO UPDATE SET weeks = trips_add_counts(weeks, excluded.weeks)",
                "DELETE FROM trips_cell WHERE weeks = x''",
            ),
            TallyTable::Pair => (
                "INSERT INTO trips_pair (level, o_cell, d_cell, weeks) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (level, o_cell, d_cell)
                 DO UPDATE SET weeks = trips_add_counts(weeks, excluded.weeks)",
                "DELETE FROM trips_pair WHERE weeks = x''",
            ),
        };
        let mut up = self.prepare_cached(upsert)?;
        let mut negative = false;
        for r in rows {
            negative |= Tally::decode(&r.weeks).any(|(_, n)| n < 0);
            up.execute(params![r.key[0], r.key[1], r.key[2], r.weeks])?;
        }
        if negative {
            self.execute(prune, [])?;
        }
        Ok(())
    }

    fn add_groups(&mut self, rows: &mut dyn Iterator<Item = GroupDelta>) -> Result<()> {
        add_counts_function(self)?;
        let mut group = self.prepare_cached(
            "INSERT INTO trips_group
               (h3_resolution, bucket_minutes, region_id, o_h3, d_h3, bucket, n, sources)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (h3_resolution, bucket_minutes, region_id, o_h3, d_h3, bucket)
             DO UPDATE SET n = n + excluded.n,
                           sources = trips_add_counts(sources, excluded.sources)",
        )?;
        let mut negative = false;
        for g in rows {
            negative |= g.n < 0;
            let k = g.key;
            group.execute(params![k[0], k[1], k[2], k[3], k[4], k[5], g.n, g.sources])?;
        }
        if negative {
            self.execute("DELETE FROM trips_group WHERE n = 0", [])?;
        }
        Ok(())
    }

    fn level_1_pending(&mut self) -> Result<bool> {
        Ok(self
            .prepare_cached("SELECT 1 FROM trips_pending WHERE what = 'cell_level_1'")?
            .exists([])?)
    }

    fn clear_level_1_pending(&mut self) -> Result<()> {
        self.execute("DELETE FROM trips_pending WHERE what = 'cell_level_1'", [])?;
        Ok(())
    }

    fn visible_batches(&mut self) -> Result<Vec<i64>> {
        let mut stmt = self.prepare("SELECT id FROM trips_batch WHERE visible ORDER BY id")?;
        let rows = collect(stmt.query_map([], |r| r.get(0))?);
        rows
    }

    fn origin_blocks(&mut self, batch_id: i64, f: &mut dyn FnMut(&[u8])) -> Result<()> {
        let mut stmt = self.prepare_cached(
            "SELECT data FROM trips_block WHERE batch_id = ?1 AND end_ = 0 ORDER BY start",
        )?;
        let mut rows = stmt.query([batch_id])?;
        while let Some(r) = rows.next()? {
            f(r.get_ref(0)?.as_blob().map_err(rusqlite::Error::from)?);
        }
        Ok(())
    }

    fn block_runs(
        &mut self,
        end: End,
        cell: i64,
        batch: Option<i64>,
        width: usize,
        runs: &mut RunPicker<'_>,
        f: &mut dyn FnMut(&[u8], i64),
    ) -> Result<()> {
        let c: &Connection = self;
        let mut blocks = c.prepare_cached(
            "SELECT b.first_id, k.dir, k.rowid FROM trips_block k
             JOIN trips_batch b ON b.id = k.batch_id
             WHERE k.end_ = ?1 AND k.cell = ?2 AND b.visible AND (?3 IS NULL OR k.batch_id = ?3)",
        )?;
        let mut blob: Option<rusqlite::blob::Blob<'_>> = None;
        let mut buf: Vec<u8> = Vec::new();
        let mut rows = blocks.query(params![end_code(end), cell, batch])?;
        while let Some(r) = rows.next()? {
            let first_id: i64 = r.get(0)?;
            let dir = r.get_ref(1)?.as_blob().map_err(rusqlite::Error::from)?;
            let runs = runs(dir);
            if runs.is_empty() {
                continue;
            }
            // Only the runs' bytes: a large block spans overflow pages, and SQLite would
            // copy all of them to hand over the whole blob.
            let rowid: i64 = r.get(2)?;
            let handle = match &mut blob {
                Some(b) => {
                    b.reopen(rowid)?;
                    b
                }
                None => blob.insert(c.blob_open("main", "trips_block", "data", rowid, true)?),
            };
            for (a, z) in runs {
                buf.resize((z - a) as usize * width, 0);
                handle.read_at_exact(&mut buf, a as usize * width)?;
                f(&buf, first_id);
            }
        }
        Ok(())
    }

    fn batch_of(&mut self, id: i64) -> Result<Option<(i64, i64)>> {
        Ok(self
            .query_row(
                "SELECT id, first_id FROM trips_batch
                 WHERE first_id <= ?1 AND first_id + n > ?1 AND visible
                 ORDER BY first_id DESC LIMIT 1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    fn read_by_offsets(
        &mut self,
        batch_id: i64,
        offsets: std::ops::Range<u32>,
    ) -> Result<Vec<TripRec>> {
        let pos = self.blob_open("main", "trips_batch", "pos", batch_id, true)?;
        let mut at = vec![0u8; offsets.len() * 4];
        pos.read_at_exact(&mut at, offsets.start as usize * 4)?;
        let mut block = self.prepare_cached(
            "SELECT start, data FROM trips_block WHERE batch_id = ?1 AND end_ = 0 AND start <= ?2
             ORDER BY start DESC LIMIT 1",
        )?;
        at.chunks_exact(4)
            .map(|p| {
                let i = u32::from_le_bytes(p.try_into().expect("4 bytes"));
                block
                    .query_row(params![batch_id, i], |r| {
                        let start: u32 = r.get(0)?;
                        let data = r.get_ref(1)?.as_blob()?;
                        let at = (i - start) as usize * TRIP_BYTES;
                        Ok(data.get(at..at + TRIP_BYTES).map(TripRec::decode))
                    })?
                    .ok_or_else(|| {
                        DbError::Task(format!("trip {i} of batch {batch_id} is missing"))
                    })
            })
            .collect()
    }

    fn batches_from(&mut self, from: i64) -> Result<Vec<BatchRow>> {
        let mut stmt = self.prepare_cached(
            "SELECT id, first_id, n, ts_min, ts_max FROM trips_batch
             WHERE visible AND first_id + n > ?1 ORDER BY first_id",
        )?;
        let rows = collect(stmt.query_map([from], |r| {
            Ok(BatchRow {
                id: r.get(0)?,
                first_id: r.get(1)?,
                n: r.get(2)?,
                ts_min: r.get(3)?,
                ts_max: r.get(4)?,
            })
        })?);
        rows
    }

    fn dict_counts(&mut self, dict: Dict) -> Result<Vec<(String, i64)>> {
        let sql = match dict {
            Dict::Region => "SELECT name, n FROM trips_region WHERE n > 0 ORDER BY n DESC, name",
            Dict::Datasource => {
                "SELECT name, n FROM trips_datasource WHERE n > 0 ORDER BY n DESC, name"
            }
        };
        let mut stmt = self.prepare_cached(sql)?;
        let rows = collect(stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?);
        rows
    }

    fn cells(
        &mut self,
        end: End,
        level: u32,
        (lo, hi): (i64, i64),
        f: &mut dyn FnMut(i64, &[u8]) -> bool,
    ) -> Result<()> {
        let mut stmt = self.prepare_cached(
            "SELECT cell, weeks FROM trips_cell
             WHERE end_ = ?1 AND level = ?2 AND cell BETWEEN ?3 AND ?4 ORDER BY cell",
        )?;
        let mut rows = stmt.query(params![end_code(end), level, lo, hi])?;
        while let Some(r) = rows.next()? {
            let weeks = r.get_ref(1)?.as_blob().map_err(rusqlite::Error::from)?;
            if !f(r.get(0)?, weeks) {
                break;
            }
        }
        Ok(())
    }

    fn has_cell(&mut self, end: End, level: u32, cell: i64) -> Result<bool> {
        Ok(self
            .prepare_cached(
                "SELECT 1 FROM trips_cell WHERE end_ = ?1 AND level = ?2 AND cell = ?3 LIMIT 1",
            )?
            .exists(params![end_code(end), level, cell])?)
    }

    fn pairs(
        &mut self,
        level: u32,
        o: (i64, i64),
        d: (i64, i64),
        f: &mut dyn FnMut(i64, i64, &[u8]),
    ) -> Result<()> {
        let mut stmt = self.prepare_cached(
            "SELECT o_cell, d_cell, weeks FROM trips_pair
             WHERE level = ?1 AND o_cell BETWEEN ?2 AND ?3 AND d_cell BETWEEN ?4 AND ?5",
        )?;
        let mut rows = stmt.query(params![level, o.0, o.1, d.0, d.1])?;
        while let Some(r) = rows.next()? {
            let weeks = r.get_ref(2)?.as_blob().map_err(rusqlite::Error::from)?;
            f(r.get(0)?, r.get(1)?, weeks);
        }
        Ok(())
    }

    fn week_span(&mut self) -> Result<(Option<i64>, Option<i64>)> {
        Ok(self.query_row(
            "SELECT min(week), max(week) FROM trips_region_week WHERE n > 0",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?)
    }

    fn region_weeks(&mut self) -> Result<Vec<(String, i64, i64)>> {
        let mut stmt = self.prepare_cached(
            "SELECT r.name, w.week, w.n FROM trips_region_week w
             JOIN trips_region r ON r.id = w.region_id WHERE w.n > 0 ORDER BY w.week, r.name",
        )?;
        let rows = collect(stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?);
        rows
    }

    fn weekly_region(&mut self, region: Option<&str>, lo: i64, hi: i64) -> Result<Vec<(i64, i64)>> {
        let mut stmt = self.prepare_cached(
            "SELECT w.week, sum(w.n) FROM trips_region_week w
             JOIN trips_region r ON r.id = w.region_id
             WHERE (?1 IS NULL OR r.name = ?1) AND w.week BETWEEN ?2 AND ?3 GROUP BY w.week",
        )?;
        let rows =
            collect(stmt.query_map(params![region, lo, hi], |r| Ok((r.get(0)?, r.get(1)?)))?);
        rows
    }

    fn groups(&mut self, q: &GroupQuery<'_>) -> Result<Vec<GroupRow>> {
        let mut stmt = self.prepare_cached(&format!(
            "{GROUP_SELECT} WHERE g.h3_resolution = ?1 AND g.bucket_minutes = ?2
               AND (?3 IS NULL OR r.name = ?3) AND g.n >= ?4
             ORDER BY g.n DESC, g.id LIMIT ?5 OFFSET ?6"
        ))?;
        let rows = collect(stmt.query_map(
            params![
                q.resolution,
                q.bucket_minutes,
                q.region,
                q.min_size,
                q.limit,
                q.offset
            ],
            group_row,
        )?);
        rows
    }

    fn group(&mut self, id: i64, resolution: u8, minutes: u32) -> Result<Option<GroupRow>> {
        Ok(self
            .query_row(
                &format!(
                    "{GROUP_SELECT} WHERE g.id = ?1 AND g.h3_resolution = ?2 AND g.bucket_minutes = ?3"
                ),
                params![id, resolution, minutes],
                group_row,
            )
            .optional()?)
    }
}
