//! [`Sql`] on PostgreSQL: one transaction of [`sluice_core::PgDb`]. Several instances may
//! write at once: id allocation and the rollup merges take turns under one
//! transaction-scoped advisory lock (the trips write lock, always taken after the ledger's),
//! so ids are assigned as SQLite assigns rowids and every rollup is the sum of whole loads.
//! Tallies are merged here, not in SQL: the changed rows are read, added to and written back
//! by binary `COPY`. Blocks are read by `substring` of uncompressed out-of-line values, which
//! fetches only the pages holding the records read.

use std::collections::HashMap;

use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{ToSql, Type};
use postgres::{Row, Transaction};
use sluice_core::pg::advisory_key;
use sluice_core::DbError;

use super::{
    end_code, BatchRow, Dict, GroupDelta, GroupQuery, GroupRow, LoadId, Result, RunPicker, Sql,
    TallyRow, TallyTable,
};
use crate::batch::{Built, End, Tally, TripRec, TRIP_BYTES};

/// Rows per statement when rollups are merged.
const CHUNK: usize = 20_000;

fn lock(tx: &mut Transaction<'_>) -> Result<()> {
    tx.execute(
        "SELECT pg_advisory_xact_lock($1)",
        &[&advisory_key("trips writes")],
    )?;
    Ok(())
}

/// A statement whose parameters are all `BIGINT`, in one round trip (no prepare).
fn ints(tx: &mut Transaction<'_>, sql: &str, params: &[i64]) -> Result<Vec<Row>> {
    let typed: Vec<(&(dyn ToSql + Sync), Type)> = params
        .iter()
        .map(|p| (p as &(dyn ToSql + Sync), Type::INT8))
        .collect();
    Ok(tx.query_typed(sql, &typed)?)
}

fn dict_table(dict: Dict) -> &'static str {
    match dict {
        Dict::Region => "trips_region",
        Dict::Datasource => "trips_datasource",
    }
}

fn tally_sql(table: TallyTable) -> (&'static str, &'static str, &'static str) {
    match table {
        TallyTable::Cell => (
            "SELECT t.end_::int8, t.level::int8, t.cell, t.weeks FROM trips_cell t
             JOIN unnest($1::int8[], $2::int8[], $3::int8[]) AS k(a, b, c)
               ON t.end_ = k.a AND t.level = k.b AND t.cell = k.c",
            "DELETE FROM trips_cell t USING unnest($1::int8[], $2::int8[], $3::int8[]) AS k(a, b, c)
             WHERE t.end_ = k.a AND t.level = k.b AND t.cell = k.c",
            "COPY trips_cell (end_, level, cell, weeks) FROM STDIN (FORMAT binary)",
        ),
        TallyTable::Pair => (
            "SELECT t.level::int8, t.o_cell, t.d_cell, t.weeks FROM trips_pair t
             JOIN unnest($1::int8[], $2::int8[], $3::int8[]) AS k(a, b, c)
               ON t.level = k.a AND t.o_cell = k.b AND t.d_cell = k.c",
            "DELETE FROM trips_pair t USING unnest($1::int8[], $2::int8[], $3::int8[]) AS k(a, b, c)
             WHERE t.level = k.a AND t.o_cell = k.b AND t.d_cell = k.c",
            "COPY trips_pair (level, o_cell, d_cell, weeks) FROM STDIN (FORMAT binary)",
        ),
    }
}

/// Columns of `keys` as three arrays.
fn columns<const N: usize>(keys: &[[i64; N]]) -> [Vec<i64>; N] {
    std::array::from_fn(|i| keys.iter().map(|k| k[i]).collect())
}

fn merge_tallies(tx: &mut Transaction<'_>, table: TallyTable, rows: Vec<TallyRow>) -> Result<()> {
    let (select, delete, copy) = tally_sql(table);
    let keys: Vec<[i64; 3]> = rows.iter().map(|r| r.key).collect();
    let [a, b, c] = columns(&keys);
    let mut stored: HashMap<[i64; 3], Vec<u8>> = tx
        .query(select, &[&a, &b, &c])?
        .into_iter()
        .map(|r| ([r.get(0), r.get(1), r.get(2)], r.get(3)))
        .collect();
    if !stored.is_empty() {
        let old: Vec<[i64; 3]> = stored.keys().copied().collect();
        let [a, b, c] = columns(&old);
        tx.execute(delete, &[&a, &b, &c])?;
    }
    let sink = tx.copy_in(copy)?;
    let types = match table {
        TallyTable::Cell => [Type::INT2, Type::INT2, Type::INT8, Type::BYTEA],
        TallyTable::Pair => [Type::INT2, Type::INT8, Type::INT8, Type::BYTEA],
    };
    let mut w = BinaryCopyInWriter::new(sink, &types);
    for r in rows {
        let weeks = match stored.remove(&r.key) {
            Some(base) => Tally::add(&base, &r.weeks),
            None => r.weeks,
        };
        if weeks.is_empty() {
            continue;
        }
        let [k0, k1, k2] = r.key;
        match table {
            TallyTable::Cell => w.write(&[&(k0 as i16), &(k1 as i16), &k2, &weeks])?,
            TallyTable::Pair => w.write(&[&(k0 as i16), &k1, &k2, &weeks])?,
        }
    }
    w.finish()?;
    Ok(())
}

fn group_row(r: &Row) -> GroupRow {
    GroupRow {
        id: r.get(0),
        region: r.get(1),
        o_h3: r.get(2),
        d_h3: r.get(3),
        bucket: r.get::<_, i64>(4) as u32,
        n: r.get(5),
        region_id: r.get(6),
        sources: r.get(7),
    }
}

const GROUP_SELECT: &str =
    "SELECT g.id, r.name, g.o_h3, g.d_h3, g.bucket, g.n, g.region_id, g.sources
    FROM trips_group g JOIN trips_region r ON r.id = g.region_id";

impl Sql for Transaction<'_> {
    fn names(&mut self, dict: Dict) -> Result<Vec<(i64, String)>> {
        let sql = format!("SELECT id, name FROM {}", dict_table(dict));
        Ok(self
            .query(&sql, &[])?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
    }

    fn intern(&mut self, dict: Dict, name: &str) -> Result<i64> {
        lock(self)?;
        let table = dict_table(dict);
        let found = self.query_opt(&format!("SELECT id FROM {table} WHERE name = $1"), &[&name])?;
        if let Some(r) = found {
            return Ok(r.get(0));
        }
        let sql = format!(
            "INSERT INTO {table} (id, name) SELECT coalesce(max(id), 0) + 1, $1 FROM {table}
             RETURNING id"
        );
        Ok(self.query_one(&sql, &[&name])?.get(0))
    }

    fn create_load(&mut self, owner: &str, name: &str, res: u8, minutes: u32) -> Result<LoadId> {
        lock(self)?;
        let row = self.query_one(
            "INSERT INTO trips_load (id, name, state, owner, h3_resolution, bucket_minutes)
             SELECT coalesce(max(id), 0) + 1, $1, 'staging', $2, $3, $4 FROM trips_load
             RETURNING id",
            &[&name, &owner, &i64::from(res), &i64::from(minutes)],
        )?;
        Ok(LoadId(row.get(0)))
    }

    fn finish_load(&mut self, load: LoadId, file_id: i64) -> Result<()> {
        ints(
            self,
            "UPDATE trips_load SET state = 'done', file_id = $2 WHERE id = $1",
            &[load.0, file_id],
        )?;
        Ok(())
    }

    fn load_config(&mut self, load: LoadId) -> Result<Option<(u8, u32)>> {
        let rows = ints(
            self,
            "SELECT h3_resolution, bucket_minutes FROM trips_load WHERE id = $1",
            &[load.0],
        )?;
        Ok(rows
            .first()
            .map(|r| (r.get::<_, i64>(0) as u8, r.get::<_, i64>(1) as u32)))
    }

    fn load_batches(&mut self, load: LoadId) -> Result<Vec<(i64, i64, bool)>> {
        let rows = ints(
            self,
            "SELECT id, n, visible FROM trips_batch WHERE load_id = $1 ORDER BY id",
            &[load.0],
        )?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }

    fn delete_batch(&mut self, batch_id: i64) -> Result<()> {
        ints(
            self,
            "DELETE FROM trips_block WHERE batch_id = $1",
            &[batch_id],
        )?;
        ints(self, "DELETE FROM trips_batch WHERE id = $1", &[batch_id])?;
        Ok(())
    }

    fn delete_load(&mut self, load: LoadId) -> Result<()> {
        ints(self, "DELETE FROM trips_load WHERE id = $1", &[load.0])?;
        Ok(())
    }

    fn load_of_file(&mut self, file_id: i64) -> Result<Option<LoadId>> {
        let rows = ints(
            self,
            "SELECT id FROM trips_load WHERE file_id = $1",
            &[file_id],
        )?;
        Ok(rows.first().map(|r| LoadId(r.get(0))))
    }

    fn staging_loads(&mut self) -> Result<Vec<(LoadId, String)>> {
        Ok(self
            .query(
                "SELECT id, owner FROM trips_load WHERE state = 'staging' ORDER BY id",
                &[],
            )?
            .iter()
            .map(|r| (LoadId(r.get(0)), r.get(1)))
            .collect())
    }

    fn insert_batch(&mut self, load: LoadId, n: i64, ts: (i64, i64), built: &Built) -> Result<()> {
        lock(self)?;
        let row = self.query_one(
            "INSERT INTO trips_batch (id, load_id, first_id, n, visible, ts_min, ts_max, pos)
             SELECT coalesce(max(id), 0) + 1, $1, coalesce(max(first_id + n), 1), $2, false,
                    $3, $4, $5
             FROM trips_batch RETURNING id",
            &[&load.0, &n, &ts.0, &ts.1, &built.pos],
        )?;
        let batch_id: i64 = row.get(0);
        let sink = self.copy_in(
            "COPY trips_block (end_, cell, batch_id, start, dir, data) FROM STDIN (FORMAT binary)",
        )?;
        let mut w = BinaryCopyInWriter::new(
            sink,
            &[
                Type::INT2,
                Type::INT8,
                Type::INT8,
                Type::INT8,
                Type::BYTEA,
                Type::BYTEA,
            ],
        );
        for b in &built.blocks {
            w.write(&[
                &(end_code(b.end) as i16),
                &b.cell,
                &batch_id,
                &i64::from(b.start),
                &b.dir,
                &built.data(b),
            ])?;
        }
        w.finish()?;
        Ok(())
    }

    fn make_visible(&mut self, load: LoadId) -> Result<()> {
        ints(
            self,
            "UPDATE trips_batch SET visible = true WHERE load_id = $1 AND NOT visible",
            &[load.0],
        )?;
        Ok(())
    }

    fn add_counts(&mut self, dict: Dict, rows: &[(i64, i64)]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let (ids, ns): (Vec<i64>, Vec<i64>) = rows.iter().copied().unzip();
        let sql = format!(
            "UPDATE {0} SET n = {0}.n + d.n FROM unnest($1::int8[], $2::int8[]) AS d(id, n)
             WHERE {0}.id = d.id",
            dict_table(dict)
        );
        self.execute(&sql, &[&ids, &ns])?;
        Ok(())
    }

    fn add_region_weeks(&mut self, rows: &[(i64, i64, i64)], removing: bool) -> Result<()> {
        for part in rows.chunks(CHUNK) {
            let [a, b, c] = columns(&part.iter().map(|&(r, w, n)| [r, w, n]).collect::<Vec<_>>());
            self.execute(
                "INSERT INTO trips_region_week (region_id, week, n)
                 SELECT * FROM unnest($1::int8[], $2::int8[], $3::int8[])
                 ON CONFLICT (region_id, week) DO UPDATE SET n = trips_region_week.n + excluded.n",
                &[&a, &b, &c],
            )?;
        }
        if removing {
            self.execute("DELETE FROM trips_region_week WHERE n = 0", &[])?;
        }
        Ok(())
    }

    fn add_tallies(
        &mut self,
        table: TallyTable,
        rows: &mut dyn Iterator<Item = TallyRow>,
    ) -> Result<()> {
        lock(self)?;
        loop {
            let part: Vec<TallyRow> = (&mut *rows).take(CHUNK).collect();
            if part.is_empty() {
                return Ok(());
            }
            merge_tallies(self, table, part)?;
        }
    }

    fn add_groups(&mut self, rows: &mut dyn Iterator<Item = GroupDelta>) -> Result<()> {
        lock(self)?;
        let mut next: i64 = self
            .query_one("SELECT coalesce(max(id), 0) + 1 FROM trips_group", &[])?
            .get(0);
        loop {
            let part: Vec<GroupDelta> = (&mut *rows).take(CHUNK).collect();
            if part.is_empty() {
                return Ok(());
            }
            let keys: Vec<[i64; 6]> = part.iter().map(|g| g.key).collect();
            let [a, b, c, d, e, f] = columns(&keys);
            let mut stored: HashMap<[i64; 6], (i64, i64, Vec<u8>)> = self
                .query(
                    "SELECT g.h3_resolution, g.bucket_minutes, g.region_id, g.o_h3, g.d_h3,
                            g.bucket, g.id, g.n, g.sources
                     FROM trips_group g
                     JOIN unnest($1::int8[], $2::int8[], $3::int8[], $4::int8[], $5::int8[],
                                 $6::int8[]) AS k(a, b, c, d, e, f)
                       ON g.o_h3 = k.d AND g.h3_resolution = k.a AND g.bucket_minutes = k.b
                      AND g.region_id = k.c AND g.d_h3 = k.e AND g.bucket = k.f",
                    &[&a, &b, &c, &d, &e, &f],
                )?
                .into_iter()
                .map(|r| {
                    let key = std::array::from_fn(|i| r.get(i));
                    (key, (r.get(6), r.get(7), r.get(8)))
                })
                .collect();
            if !stored.is_empty() {
                let (o, ids): (Vec<i64>, Vec<i64>) =
                    stored.iter().map(|(k, v)| (k[3], v.0)).unzip();
                self.execute(
                    "DELETE FROM trips_group g USING unnest($1::int8[], $2::int8[]) AS k(o, id)
                     WHERE g.o_h3 = k.o AND g.id = k.id",
                    &[&o, &ids],
                )?;
            }
            let sink = self.copy_in(
                "COPY trips_group (id, h3_resolution, bucket_minutes, region_id, o_h3, d_h3,
                                   bucket, n, sources) FROM STDIN (FORMAT binary)",
            )?;
            let mut types = vec![Type::INT8; 8];
            types.push(Type::BYTEA);
            let mut w = BinaryCopyInWriter::new(sink, &types);
            for g in part {
                let (id, n, sources) = match stored.remove(&g.key) {
                    Some((id, n, base)) => (id, n + g.n, Tally::add(&base, &g.sources)),
                    None => {
                        next += 1;
                        (next - 1, g.n, g.sources)
                    }
                };
                if n == 0 {
                    continue;
                }
                let k = &g.key;
                w.write(&[&id, &k[0], &k[1], &k[2], &k[3], &k[4], &k[5], &n, &sources])?;
            }
            w.finish()?;
        }
    }

    fn level_1_pending(&mut self) -> Result<bool> {
        Ok(self
            .query_typed_one(
                "SELECT EXISTS (SELECT 1 FROM trips_pending WHERE what = 'cell_level_1')",
                &[],
            )?
            .get(0))
    }

    fn clear_level_1_pending(&mut self) -> Result<()> {
        self.execute("DELETE FROM trips_pending WHERE what = 'cell_level_1'", &[])?;
        Ok(())
    }

    fn visible_batches(&mut self) -> Result<Vec<i64>> {
        Ok(self
            .query("SELECT id FROM trips_batch WHERE visible ORDER BY id", &[])?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    fn origin_blocks(&mut self, batch_id: i64, f: &mut dyn FnMut(&[u8])) -> Result<()> {
        let mut rows = self.query_typed_raw(
            "SELECT data FROM trips_block WHERE batch_id = $1 AND end_ = 0 ORDER BY start",
            [(batch_id, Type::INT8)],
        )?;
        while let Some(r) = postgres::fallible_iterator::FallibleIterator::next(&mut rows)? {
            f(r.get::<_, &[u8]>(0));
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
        let blocks = ints(
            self,
            "SELECT b.first_id, k.batch_id, k.dir FROM trips_block k
             JOIN trips_batch b ON b.id = k.batch_id
             WHERE k.end_ = $1 AND k.cell = $2 AND b.visible AND ($3 < 0 OR k.batch_id = $3)",
            &[end_code(end), cell, batch.unwrap_or(-1)],
        )?;
        for block in blocks {
            let (first_id, batch_id): (i64, i64) = (block.get(0), block.get(1));
            let runs = runs(block.get::<_, &[u8]>(2));
            if runs.is_empty() {
                continue;
            }
            // Positions are 1-based and `int4` (blocks are far below 2 GiB).
            let from: Vec<i32> = runs
                .iter()
                .map(|&(a, _)| (a as usize * width + 1) as i32)
                .collect();
            let len: Vec<i32> = runs
                .iter()
                .map(|&(a, z)| ((z - a) as usize * width) as i32)
                .collect();
            let parts = self.query_typed(
                "SELECT substring(k.data FROM r.a FOR r.l) FROM trips_block k,
                        unnest($4::int4[], $5::int4[]) WITH ORDINALITY AS r(a, l, i)
                 WHERE k.end_ = $1 AND k.cell = $2 AND k.batch_id = $3 ORDER BY r.i",
                &[
                    (&end_code(end), Type::INT8),
                    (&cell, Type::INT8),
                    (&batch_id, Type::INT8),
                    (&from, Type::INT4_ARRAY),
                    (&len, Type::INT4_ARRAY),
                ],
            )?;
            for p in &parts {
                f(p.get::<_, &[u8]>(0), first_id);
            }
        }
        Ok(())
    }

    fn batch_of(&mut self, id: i64) -> Result<Option<(i64, i64)>> {
        let rows = ints(
            self,
            "SELECT id, first_id FROM trips_batch
             WHERE first_id <= $1 AND first_id + n > $1 AND visible
             ORDER BY first_id DESC LIMIT 1",
            &[id],
        )?;
        Ok(rows.first().map(|r| (r.get(0), r.get(1))))
    }

    fn read_by_offsets(
        &mut self,
        batch_id: i64,
        offsets: std::ops::Range<u32>,
    ) -> Result<Vec<TripRec>> {
        if offsets.is_empty() {
            return Ok(Vec::new());
        }
        let from = (offsets.start as usize * 4 + 1) as i32;
        let len = (offsets.len() * 4) as i32;
        let rows = self.query_typed(
            "WITH p AS (SELECT substring(pos FROM $2 FOR $3) AS b FROM trips_batch WHERE id = $1),
                  i AS (SELECT n, get_byte(p.b, 4 * n) | (get_byte(p.b, 4 * n + 1) << 8)
                                 | (get_byte(p.b, 4 * n + 2) << 16)
                                 | (get_byte(p.b, 4 * n + 3) << 24) AS at
                        FROM p, generate_series(0, length(p.b) / 4 - 1) AS n)
             SELECT i.at, (SELECT substring(k.data FROM ((i.at - k.start) * $4 + 1)::int4 FOR $4::int4)
                           FROM trips_block k
                           WHERE k.batch_id = $1 AND k.end_ = 0 AND k.start <= i.at
                           ORDER BY k.start DESC LIMIT 1)
             FROM i ORDER BY i.n",
            &[
                (&batch_id, Type::INT8),
                (&from, Type::INT4),
                (&len, Type::INT4),
                (&(TRIP_BYTES as i64), Type::INT8),
            ],
        )?;
        if rows.len() != offsets.len() {
            return Err(DbError::Task(format!(
                "batch {batch_id} has no trips at offsets {offsets:?}"
            )));
        }
        rows.iter()
            .map(|r| {
                let at: i32 = r.get(0);
                match r.get::<_, Option<&[u8]>>(1) {
                    Some(b) if b.len() == TRIP_BYTES => Ok(TripRec::decode(b)),
                    _ => Err(DbError::Task(format!(
                        "trip {at} of batch {batch_id} is missing"
                    ))),
                }
            })
            .collect()
    }

    fn batches_from(&mut self, from: i64) -> Result<Vec<BatchRow>> {
        let rows = ints(
            self,
            "SELECT id, first_id, n, ts_min, ts_max FROM trips_batch
             WHERE visible AND first_id + n > $1 ORDER BY first_id",
            &[from],
        )?;
        Ok(rows
            .iter()
            .map(|r| BatchRow {
                id: r.get(0),
                first_id: r.get(1),
                n: r.get(2),
                ts_min: r.get(3),
                ts_max: r.get(4),
            })
            .collect())
    }

    fn dict_counts(&mut self, dict: Dict) -> Result<Vec<(String, i64)>> {
        // Names in byte order, as SQLite compares them, whatever the database's collation.
        let sql = format!(
            "SELECT name, n FROM {} WHERE n > 0 ORDER BY n DESC, name COLLATE \"C\"",
            dict_table(dict)
        );
        Ok(self
            .query_typed(&sql, &[])?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
    }

    fn cells(
        &mut self,
        end: End,
        level: u32,
        (lo, hi): (i64, i64),
        f: &mut dyn FnMut(i64, &[u8]) -> bool,
    ) -> Result<()> {
        let mut rows = self.query_typed_raw(
            "SELECT cell, weeks FROM trips_cell
             WHERE end_ = $1 AND level = $2 AND cell BETWEEN $3 AND $4 ORDER BY cell",
            [end_code(end), i64::from(level), lo, hi].map(|p| (p, Type::INT8)),
        )?;
        while let Some(r) = postgres::fallible_iterator::FallibleIterator::next(&mut rows)? {
            if !f(r.get(0), r.get::<_, &[u8]>(1)) {
                break;
            }
        }
        Ok(())
    }

    fn has_cell(&mut self, end: End, level: u32, cell: i64) -> Result<bool> {
        let rows = ints(
            self,
            "SELECT 1 FROM trips_cell WHERE end_ = $1 AND level = $2 AND cell = $3",
            &[end_code(end), i64::from(level), cell],
        )?;
        Ok(!rows.is_empty())
    }

    fn pairs(
        &mut self,
        level: u32,
        o: (i64, i64),
        d: (i64, i64),
        f: &mut dyn FnMut(i64, i64, &[u8]),
    ) -> Result<()> {
        let rows = ints(
            self,
            "SELECT o_cell, d_cell, weeks FROM trips_pair
             WHERE level = $1 AND o_cell BETWEEN $2 AND $3 AND d_cell BETWEEN $4 AND $5",
            &[i64::from(level), o.0, o.1, d.0, d.1],
        )?;
        for r in &rows {
            f(r.get(0), r.get(1), r.get::<_, &[u8]>(2));
        }
        Ok(())
    }

    fn week_span(&mut self) -> Result<(Option<i64>, Option<i64>)> {
        let r = self.query_typed_one(
            "SELECT min(week), max(week) FROM trips_region_week WHERE n > 0",
            &[],
        )?;
        Ok((r.get(0), r.get(1)))
    }

    fn region_weeks(&mut self) -> Result<Vec<(String, i64, i64)>> {
        Ok(self
            .query_typed(
                "SELECT r.name, w.week, w.n FROM trips_region_week w
                 JOIN trips_region r ON r.id = w.region_id WHERE w.n > 0
                 ORDER BY w.week, r.name COLLATE \"C\"",
                &[],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }

    fn weekly_region(&mut self, region: Option<&str>, lo: i64, hi: i64) -> Result<Vec<(i64, i64)>> {
        Ok(self
            .query_typed(
                "SELECT w.week, sum(w.n)::int8 FROM trips_region_week w
                 JOIN trips_region r ON r.id = w.region_id
                 WHERE ($1::text IS NULL OR r.name = $1) AND w.week BETWEEN $2 AND $3
                 GROUP BY w.week",
                &[(&region, Type::TEXT), (&lo, Type::INT8), (&hi, Type::INT8)],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
    }

    fn groups(&mut self, q: &GroupQuery<'_>) -> Result<Vec<GroupRow>> {
        let sql = format!(
            "{GROUP_SELECT} WHERE g.h3_resolution = $1 AND g.bucket_minutes = $2
               AND ($3::text IS NULL OR r.name = $3) AND g.n >= $4
             ORDER BY g.n DESC, g.id LIMIT $5 OFFSET $6"
        );
        let rows = self.query_typed(
            &sql,
            &[
                (&i64::from(q.resolution), Type::INT8),
                (&i64::from(q.bucket_minutes), Type::INT8),
                (&q.region, Type::TEXT),
                (&q.min_size, Type::INT8),
                (&i64::from(q.limit), Type::INT8),
                (&q.offset, Type::INT8),
            ],
        )?;
        Ok(rows.iter().map(group_row).collect())
    }

    fn group(&mut self, id: i64, resolution: u8, minutes: u32) -> Result<Option<GroupRow>> {
        let sql = format!(
            "{GROUP_SELECT} WHERE g.id = $1 AND g.h3_resolution = $2 AND g.bucket_minutes = $3"
        );
        let rows = ints(self, &sql, &[id, i64::from(resolution), i64::from(minutes)])?;
        Ok(rows.first().map(group_row))
    }
}
