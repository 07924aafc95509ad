//! Writing a load, the ingestion hot path: trips prepared off the writer's thread, cut into
//! batches, their names interned in the dictionaries, their deltas handed to [`super::rollup`].

use std::collections::HashMap;

use sluice_core::DbError;

use super::rollup::apply;
use super::{Dict, LoadId, Result, Sql};
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
    pub fn new(c: &mut dyn Sql, load: LoadId, cfg: GroupConfig) -> Result<Self> {
        Ok(Writer {
            cfg,
            load,
            regions: by_name(c, Dict::Region)?,
            sources: by_name(c, Dict::Datasource)?,
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
        c: &mut dyn Sql,
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
    pub fn push(&mut self, c: &mut dyn Sql, t: &Prepared) -> Result<()> {
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
    pub fn write_batch(&mut self, c: &mut dyn Sql) -> Result<()> {
        if self.recs.is_empty() {
            return Ok(());
        }
        batch::build(&self.recs, &self.cells, &mut self.built);
        let ts = self.recs.iter().fold((i64::MAX, i64::MIN), |(a, b), r| {
            (a.min(r.ts.secs()), b.max(r.ts.secs()))
        });
        c.insert_batch(self.load, self.recs.len() as i64, ts, &self.built)?;
        self.recs.clear();
        self.cells.clear();
        self.batches += 1;
        Ok(())
    }

    /// Writes what is in memory, adds the load's rollup deltas and makes its batches
    /// visible, all in the caller's transaction.
    pub fn roll_up(&mut self, c: &mut dyn Sql) -> Result<()> {
        self.write_batch(c)?;
        apply(c, &std::mem::take(&mut self.deltas), self.cfg, 1)?;
        c.make_visible(self.load)
    }
}

/// A stored trip as the rollups see it.
pub(super) fn keyed(r: &TripRec, h3: &mut engine::H3Cache) -> Keyed {
    let (region, ds) = (u32::from(r.region), u32::from(r.datasource));
    Prepared::new(h3, region, ds, r.ts, r.origin, r.destination).keyed(r.region, r.datasource)
}

/// A dictionary by name.
fn by_name(c: &mut dyn Sql, dict: Dict) -> Result<HashMap<String, u16>> {
    c.names(dict)?
        .into_iter()
        .map(|(id, name)| Ok((name, dict_id(dict, id, "")?)))
        .collect()
}

/// A dictionary id as the blobs hold it (`u16`).
fn dict_id(dict: Dict, id: i64, name: &str) -> Result<u16> {
    u16::try_from(id).map_err(|_| {
        let what = match dict {
            Dict::Region => "regions",
            Dict::Datasource => "datasources",
        };
        DbError::Task(format!(
            "more than {} distinct {what} (at `{name}`)",
            u16::MAX
        ))
    })
}

/// The id of a dictionary name, created on first sight.
fn intern(
    c: &mut dyn Sql,
    cache: &mut HashMap<String, u16>,
    dict: Dict,
    name: &str,
) -> Result<u16> {
    if let Some(&id) = cache.get(name) {
        return Ok(id);
    }
    let id = dict_id(dict, c.intern(dict, name)?, name)?;
    cache.insert(name.to_owned(), id);
    Ok(id)
}
