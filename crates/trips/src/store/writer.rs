//! Writing a load, the ingestion hot path: trips prepared off the writer's thread, cut into
//! batches, their names interned in the dictionaries, their deltas handed to [`super::rollup`].

use std::collections::HashMap;

use rusqlite::{params, Connection};
use sluice_core::DbError;

use super::rollup::apply;
use super::{LoadId, Result};
use crate::batch::{self, TripRec, BATCH_ROWS};
use crate::engine::{self, Deltas, GroupConfig, GroupKey, Keyed, Week};
use crate::parse::{Point, Timestamp};

/// A trip with what the rollups derive from its coordinates, computed off the writer's
/// thread. `region` and `datasource` (also in `group`) are the parser's own ids of the names
/// it passes to [`Writer::add_names`].
#[derive(Clone, Copy, Debug)]
pub struct Prepared {
    pub region: u32,
    pub datasource: u32,
    pub ts: Timestamp,
    pub origin: Point,
    pub destination: Point,
    pub o_cell: i64,
    pub d_cell: i64,
    pub group: GroupKey,
}

impl Prepared {
    pub fn new(
        h3: &mut engine::H3Cache,
        region: u32,
        datasource: u32,
        ts: Timestamp,
        origin: Point,
        destination: Point,
    ) -> Prepared {
        let o_cell = engine::cell_of(origin);
        let d_cell = engine::cell_of(destination);
        Prepared {
            region,
            datasource,
            ts,
            origin,
            destination,
            o_cell,
            d_cell,
            group: h3.group(
                i64::from(region),
                (origin, o_cell),
                (destination, d_cell),
                ts,
            ),
        }
    }

    /// The trip as the rollups see it, under dictionary ids.
    fn keyed(&self, region: u16, datasource: u16) -> Keyed {
        Keyed {
            region: i64::from(region),
            datasource: i64::from(datasource),
            week: Week::of(self.ts),
            o_cell: self.o_cell,
            d_cell: self.d_cell,
            group: GroupKey {
                region: i64::from(region),
                ..self.group
            },
        }
    }
}

/// Builds the batches of one load and its rollup deltas. Each method runs inside the
/// caller's transaction; a stream spans several.
pub struct Writer {
    cfg: GroupConfig,
    load: LoadId,
    regions: HashMap<String, u16>,
    sources: HashMap<String, u16>,
    /// Dictionary ids by the parser's ids.
    region_ids: Vec<u16>,
    source_ids: Vec<u16>,
    batches: u64,
    recs: Vec<TripRec>,
    /// Level-0 (origin, destination) cells of `recs`.
    cells: Vec<(i64, i64)>,
    built: batch::Built,
    batch_rows: usize,
    deltas: Deltas,
}

impl Writer {
    pub fn new(c: &Connection, load: LoadId, cfg: GroupConfig) -> Result<Self> {
        Ok(Writer {
            cfg,
            load,
            regions: pairs(c, "SELECT name, id FROM trips_region")?,
            sources: pairs(c, "SELECT name, id FROM trips_datasource")?,
            region_ids: Vec::new(),
            source_ids: Vec::new(),
            batches: 0,
            recs: Vec::new(),
            cells: Vec::new(),
            built: batch::Built::default(),
            batch_rows: BATCH_ROWS,
            deltas: Deltas::default(),
        })
    }

    /// Trips per batch, at most [`BATCH_ROWS`] (tests use small batches).
    pub fn set_batch_rows(&mut self, n: usize) {
        self.batch_rows = n.clamp(1, BATCH_ROWS);
    }

    /// Interns names the parser saw first, in the order of its ids.
    pub fn add_names(
        &mut self,
        c: &Connection,
        regions: &[String],
        sources: &[String],
    ) -> Result<()> {
        for name in regions {
            let id = intern(c, &mut self.regions, Dict::Region, name)?;
            self.region_ids.push(id);
        }
        for name in sources {
            let id = intern(c, &mut self.sources, Dict::Datasource, name)?;
            self.source_ids.push(id);
        }
        Ok(())
    }

    /// Adds one trip, first writing the batch in memory if it is full.
    pub fn push(&mut self, c: &Connection, t: &Prepared) -> Result<()> {
        if self.recs.len() >= self.batch_rows {
            self.write_batch(c)?;
        }
        let unknown = || DbError::Task("a trip names a region or datasource not yet added".into());
        let region = *self.region_ids.get(t.region as usize).ok_or_else(unknown)?;
        let datasource = *self
            .source_ids
            .get(t.datasource as usize)
            .ok_or_else(unknown)?;
        let rec = TripRec {
            offset: self.recs.len() as u32,
            region,
            datasource,
            ts: t.ts,
            origin: t.origin,
            destination: t.destination,
        };
        self.deltas.add(&t.keyed(region, datasource));
        if self.recs.capacity() == 0 {
            self.recs.reserve_exact(self.batch_rows);
            self.cells.reserve_exact(self.batch_rows);
        }
        self.recs.push(rec);
        self.cells.push((t.o_cell, t.d_cell));
        Ok(())
    }

    /// Batches written so far.
    pub fn batches(&self) -> u64 {
        self.batches
    }

    /// Distinct rollup keys held in memory (the caller rolls up when they grow large).
    pub fn rollup_keys(&self) -> usize {
        self.deltas.keys()
    }

    /// Writes the trips in memory as one batch, not yet visible.
    pub fn write_batch(&mut self, c: &Connection) -> Result<()> {
        if self.recs.is_empty() {
            return Ok(());
        }
        batch::build(&self.recs, &self.cells, &mut self.built);
        let first_id: i64 = c.query_row(
            "SELECT coalesce(max(first_id + n), 1) FROM trips_batch",
            [],
            |r| r.get(0),
        )?;
        let (ts_min, ts_max) = self.recs.iter().fold((i64::MAX, i64::MIN), |(a, b), r| {
            (a.min(r.ts.secs()), b.max(r.ts.secs()))
        });
        let built = &self.built;
        c.execute(
            "INSERT INTO trips_batch (load_id, first_id, n, visible, ts_min, ts_max, pos)
             VALUES (?1, ?2, ?3, 0, ?4, ?5, ?6)",
            params![
                self.load.0,
                first_id,
                self.recs.len() as i64,
                ts_min,
                ts_max,
                built.pos
            ],
        )?;
        let batch_id = c.last_insert_rowid();
        let mut stmt = c.prepare_cached(
            "INSERT INTO trips_block (end_, cell, batch_id, start, dir, data)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for b in &built.blocks {
            stmt.execute(params![
                b.end as i64,
                b.cell,
                batch_id,
                b.start,
                b.dir,
                built.data(b)
            ])?;
        }
        self.recs.clear();
        self.cells.clear();
        self.batches += 1;
        Ok(())
    }

    /// Writes what is in memory, adds the load's rollup deltas and makes its batches
    /// visible, all in the caller's transaction.
    pub fn roll_up(&mut self, c: &Connection) -> Result<()> {
        self.write_batch(c)?;
        apply(c, &std::mem::take(&mut self.deltas), self.cfg, 1)?;
        c.execute(
            "UPDATE trips_batch SET visible = 1 WHERE load_id = ?1 AND NOT visible",
            [self.load.0],
        )?;
        Ok(())
    }
}

/// A stored trip as the rollups see it.
pub(super) fn keyed(r: &TripRec, h3: &mut engine::H3Cache) -> Keyed {
    let (region, ds) = (u32::from(r.region), u32::from(r.datasource));
    Prepared::new(h3, region, ds, r.ts, r.origin, r.destination).keyed(r.region, r.datasource)
}

/// The two columns of every row of `sql`, as a map (dictionaries, both ways).
pub(super) fn pairs<K, V>(c: &Connection, sql: &str) -> Result<HashMap<K, V>>
where
    K: rusqlite::types::FromSql + std::hash::Hash + Eq,
    V: rusqlite::types::FromSql,
{
    let mut stmt = c.prepare_cached(sql)?;
    let map = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(map)
}

/// The two dictionaries (an allow-list of table names).
#[derive(Clone, Copy)]
enum Dict {
    Region,
    Datasource,
}

/// The id of a dictionary name, created on first sight. Ids are `u16` in the blobs.
fn intern(c: &Connection, cache: &mut HashMap<String, u16>, dict: Dict, name: &str) -> Result<u16> {
    if let Some(&id) = cache.get(name) {
        return Ok(id);
    }
    let (sql, what) = match dict {
        Dict::Region => ("INSERT INTO trips_region (name) VALUES (?1)", "regions"),
        Dict::Datasource => (
            "INSERT INTO trips_datasource (name) VALUES (?1)",
            "datasources",
        ),
    };
    c.execute(sql, [name])?;
    let id = u16::try_from(c.last_insert_rowid()).map_err(|_| {
        DbError::Task(format!(
            "more than {} distinct {what} (at `{name}`)",
            u16::MAX
        ))
    })?;
    cache.insert(name.to_owned(), id);
    Ok(id)
}
