//! All SQL of the domain: schema, loading batches of trips with their rollups, removing a
//! load's contribution, and the queries behind the routes. Every statement is
//! parameterized; the only request-chosen names (trip end, count column) come from fixed
//! allow-lists here. The blob layout of a batch is in [`crate::batch`].

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::Serialize;
use sluice_core::owner::{Owner, OwnerId};
use sluice_core::{DbError, Migration};

use crate::batch::{self, DestRec, End, Tally, TripRec, BATCH_ROWS, DEST_BYTES, TRIP_BYTES};
use crate::engine::{
    self, BBox, CellKey, Deltas, GroupConfig, GroupKey, Keyed, Relation, SourceKey, Week,
    PAIR_LEVEL,
};
use crate::parse::{Point, Timestamp};

pub fn migrations() -> Vec<Migration> {
    vec![
        Migration {
            name: "V1__init",
            sql: include_str!("../../migrations/V1__init.sql"),
        },
        Migration {
            name: "V2__batches",
            sql: include_str!("../../migrations/V2__batches.sql"),
        },
        Migration {
            name: "V3__owner",
            sql: include_str!("../../migrations/V3__owner.sql"),
        },
        Migration {
            name: "V4__cell_weeks",
            sql: include_str!("../../migrations/V4__cell_weeks.sql"),
        },
    ]
}

type Result<T> = std::result::Result<T, DbError>;

/// A load in progress or done; see `trips_load` in the schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadId(pub i64);

/// Creates a staging load of `owner` (the writing handle's owner id).
pub fn create_load(
    tx: &Transaction<'_>,
    owner: &OwnerId,
    name: &str,
    cfg: GroupConfig,
) -> Result<LoadId> {
    tx.execute(
        "INSERT INTO trips_load (name, state, owner, h3_resolution, bucket_minutes)
         VALUES (?1, 'staging', ?2, ?3, ?4)",
        params![
            name,
            owner.as_str(),
            u8::from(cfg.resolution),
            cfg.bucket_minutes
        ],
    )?;
    Ok(LoadId(tx.last_insert_rowid()))
}

/// Marks a staging load as done under its ledger entry.
pub fn finish_load(tx: &Transaction<'_>, load: LoadId, file_id: i64) -> Result<()> {
    tx.execute(
        "UPDATE trips_load SET state = 'done', file_id = ?2 WHERE id = ?1",
        params![load.0, file_id],
    )?;
    Ok(())
}

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
fn keyed(r: &TripRec, h3: &mut engine::H3Cache) -> Keyed {
    let (region, ds) = (u32::from(r.region), u32::from(r.datasource));
    Prepared::new(h3, region, ds, r.ts, r.origin, r.destination).keyed(r.region, r.datasource)
}

/// The two columns of every row of `sql`, as a map (dictionaries, both ways).
fn pairs<K, V>(c: &Connection, sql: &str) -> Result<HashMap<K, V>>
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

/// Adds `sign` × deltas to every rollup; rows that reach zero are removed.
fn apply(c: &Connection, d: &Deltas, cfg: GroupConfig, sign: i64) -> Result<()> {
    if d.is_empty() {
        return Ok(());
    }
    add_counts_function(c)?;
    let removing = sign < 0;
    {
        let mut up = c.prepare_cached("UPDATE trips_region SET n = n + ?2 WHERE id = ?1")?;
        for (&id, &n) in &d.region {
            up.execute(params![id, sign * n])?;
        }
        let mut up = c.prepare_cached("UPDATE trips_datasource SET n = n + ?2 WHERE id = ?1")?;
        for (&id, &n) in &d.datasource {
            up.execute(params![id, sign * n])?;
        }
    }
    {
        let mut up = c.prepare_cached(
            "INSERT INTO trips_region_week (region_id, week, n) VALUES (?1, ?2, ?3)
             ON CONFLICT (region_id, week) DO UPDATE SET n = n + excluded.n",
        )?;
        let mut del = c.prepare_cached(
            "DELETE FROM trips_region_week WHERE region_id = ?1 AND week = ?2 AND n = 0",
        )?;
        let mut rows: Vec<_> = d.region_week.iter().collect();
        rows.sort_unstable();
        for (&(region, week), &n) in rows {
            up.execute(params![region, week.0, sign * n])?;
            if removing {
                del.execute(params![region, week.0])?;
            }
        }
    }
    write_cells(c, d, rollup_levels(c)?, removing)?;
    {
        let mut up = c.prepare_cached(
            "INSERT INTO trips_pair (level, o_cell, d_cell, weeks) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (level, o_cell, d_cell)
             DO UPDATE SET weeks = trips_add_counts(weeks, excluded.weeks)",
        )?;
        let pairs = d.pairs();
        for run in pairs.chunk_by(|a, b| (a.0 .0, a.0 .1, a.0 .2) == (b.0 .0, b.0 .1, b.0 .2)) {
            let (level, o, dc, _) = run[0].0;
            let weeks = Tally::encode(run.iter().map(|&((.., week), n)| (week.0, sign * n)));
            up.execute(params![level, o, dc, weeks])?;
        }
        if removing {
            c.execute("DELETE FROM trips_pair WHERE weeks = x''", [])?;
        }
    }
    apply_groups(c, d, cfg, sign)
}

/// Adds the per-cell counts of `d` at `levels` to `trips_cell`, one row per cell with its
/// weeks in one blob.
fn write_cells(
    c: &Connection,
    d: &Deltas,
    levels: std::ops::RangeInclusive<u32>,
    removing: bool,
) -> Result<()> {
    let sign = if removing { -1 } else { 1 };
    let mut up = c.prepare_cached(
        "INSERT INTO trips_cell (end_, level, cell, weeks) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (end_, level, cell)
         DO UPDATE SET weeks = trips_add_counts(weeks, excluded.weeks)",
    )?;
    let mut cells = d.cells(*levels.start());
    for level in levels.clone() {
        if level > *levels.start() {
            cells = Deltas::coarser(&cells);
        }
        for run in cells.chunk_by(|a, b| (a.0 .0, a.0 .1) == (b.0 .0, b.0 .1)) {
            let (end, cell, _) = run[0].0;
            let weeks = Tally::encode(run.iter().map(|&((.., week), n)| (week.0, sign * n)));
            up.execute(params![end, level, cell, weeks])?;
        }
    }
    if removing {
        c.execute("DELETE FROM trips_cell WHERE weeks = x''", [])?;
    }
    Ok(())
}

/// The per-cell rollup levels this database holds: [`engine::COARSE_LEVELS`] until
/// [`complete_levels`] has built level 1 for trips stored before it existed.
fn rollup_levels(c: &Connection) -> Result<std::ops::RangeInclusive<u32>> {
    let pending = c
        .prepare_cached("SELECT 1 FROM trips_pending WHERE what = 'cell_level_1'")?
        .exists([])?;
    Ok(if pending {
        engine::COARSE_LEVELS
    } else {
        engine::ROLLUP_LEVELS
    })
}

/// Builds the level-1 cell rollups of the visible trips of a database upgraded from before
/// they existed (V4), in the caller's transaction, and marks them complete; a no-op
/// otherwise. Returns whether it built them. Until then queries use levels 2..8, which are
/// complete, so answers stay exact meanwhile.
pub fn complete_levels(tx: &Transaction<'_>) -> Result<bool> {
    if rollup_levels(tx)? == engine::ROLLUP_LEVELS {
        return Ok(false);
    }
    let batches: Vec<i64> = {
        let mut stmt = tx.prepare("SELECT id FROM trips_batch WHERE visible ORDER BY id")?;
        let rows = stmt
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        rows
    };
    let level = *engine::ROLLUP_LEVELS.start();
    let mut d = Deltas::default();
    for batch_id in batches {
        for_each_trip(tx, batch_id, |t| {
            let week = Week::of(t.ts);
            for (end, p) in [(0u8, t.origin), (1, t.destination)] {
                let cell = engine::parent(engine::cell_of(p), level);
                *d.cell.entry(CellKey::new(end, cell, week)).or_default() += 1;
            }
        })?;
    }
    add_counts_function(tx)?;
    write_cells(tx, &d, level..=level, false)?;
    tx.execute("DELETE FROM trips_pending WHERE what = 'cell_level_1'", [])?;
    Ok(true)
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

fn apply_groups(c: &Connection, d: &Deltas, cfg: GroupConfig, sign: i64) -> Result<()> {
    let res = u8::from(cfg.resolution);
    let mut group = c.prepare_cached(
        "INSERT INTO trips_group
           (h3_resolution, bucket_minutes, region_id, o_h3, d_h3, bucket, n, sources)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (h3_resolution, bucket_minutes, region_id, o_h3, d_h3, bucket)
         DO UPDATE SET n = n + excluded.n,
                       sources = trips_add_counts(sources, excluded.sources)",
    )?;
    let mut sources: Vec<(SourceKey, i64)> =
        d.group_sources.iter().map(|(&k, &n)| (k, n)).collect();
    sources.sort_unstable_by_key(|s| s.0);
    for run in sources.chunk_by(|a, b| a.0.group() == b.0.group()) {
        let k = run[0].0.group();
        let n: i64 = run.iter().map(|s| s.1).sum();
        let blob = Tally::encode(run.iter().map(|&(key, m)| (key.datasource(), sign * m)));
        group.execute(params![
            res,
            cfg.bucket_minutes,
            k.region,
            k.o_h3 as i64,
            k.d_h3 as i64,
            k.bucket,
            sign * n,
            blob
        ])?;
    }
    if sign < 0 {
        c.execute("DELETE FROM trips_group WHERE n = 0", [])?;
    }
    Ok(())
}

/// Removes every batch and rollup contribution of a load, then the load itself. Returns
/// the trips removed.
pub fn remove_load(tx: &Transaction<'_>, load: LoadId) -> Result<u64> {
    let Some((res, minutes)) = tx
        .query_row(
            "SELECT h3_resolution, bucket_minutes FROM trips_load WHERE id = ?1",
            [load.0],
            |r| Ok((r.get::<_, u8>(0)?, r.get::<_, u32>(1)?)),
        )
        .optional()?
    else {
        return Ok(0);
    };
    let cfg = GroupConfig::new(res, minutes).map_err(DbError::Task)?;
    let batches: Vec<(i64, i64, bool)> = {
        let mut stmt = tx.prepare("SELECT id, n, visible FROM trips_batch WHERE load_id = ?1")?;
        let rows = stmt
            .query_map([load.0], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        rows
    };
    let mut removed = 0;
    let mut h3 = engine::H3Cache::new(cfg);
    for (batch_id, n, visible) in batches {
        // Only visible batches were added to the rollups.
        if visible {
            let mut deltas = Deltas::default();
            for_each_trip(tx, batch_id, |t| deltas.add(&keyed(t, &mut h3)))?;
            apply(tx, &deltas, cfg, -1)?;
        }
        tx.execute("DELETE FROM trips_block WHERE batch_id = ?1", [batch_id])?;
        tx.execute("DELETE FROM trips_batch WHERE id = ?1", [batch_id])?;
        removed += n as u64;
    }
    tx.execute("DELETE FROM trips_load WHERE id = ?1", [load.0])?;
    Ok(removed)
}

/// The load of a ledger entry.
pub fn load_of_file(tx: &Transaction<'_>, file_id: i64) -> Result<Option<LoadId>> {
    Ok(tx
        .query_row(
            "SELECT id FROM trips_load WHERE file_id = ?1",
            [file_id],
            |r| r.get(0).map(LoadId),
        )
        .optional()?)
}

/// Staging loads whose owner no longer runs. A live owner's loads are never listed: they
/// are in progress, or their removal failed (a full disk) and waits for the owner to end.
pub fn stale_loads(c: &Connection, me: &Owner) -> Result<Vec<LoadId>> {
    let mut stmt = c.prepare("SELECT id, owner FROM trips_load WHERE state = 'staging'")?;
    let rows: Vec<(i64, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows
        .into_iter()
        .filter(|(_, owner)| !me.is_alive(owner))
        .map(|(id, _)| LoadId(id))
        .collect())
}

// ---------------------------------------------------------------------------------------
// Reading batches

/// Dictionary names by id, for showing trips.
struct Names {
    regions: HashMap<u16, String>,
    sources: HashMap<u16, String>,
}

impl Names {
    fn load(c: &Connection) -> Result<Names> {
        Ok(Names {
            regions: pairs(c, "SELECT id, name FROM trips_region")?,
            sources: pairs(c, "SELECT id, name FROM trips_datasource")?,
        })
    }

    fn id(map: &HashMap<u16, String>, name: &str) -> Option<u16> {
        map.iter().find(|(_, n)| *n == name).map(|(&id, _)| id)
    }

    fn trip(&self, first_id: i64, r: &TripRec) -> TripOut {
        TripOut {
            id: first_id + i64::from(r.offset),
            region: self.regions.get(&r.region).cloned().unwrap_or_default(),
            datasource: self.sources.get(&r.datasource).cloned().unwrap_or_default(),
            ts: r.ts,
            origin_lon: r.origin.lon(),
            origin_lat: r.origin.lat(),
            destination_lon: r.destination.lon(),
            destination_lat: r.destination.lat(),
        }
    }
}

fn width(end: End) -> usize {
    match end {
        End::Origin => TRIP_BYTES,
        End::Destination => DEST_BYTES,
    }
}

/// Calls `f` with every trip of a batch, in origin order.
fn for_each_trip(c: &Connection, batch_id: i64, mut f: impl FnMut(&TripRec)) -> Result<()> {
    let mut stmt = c.prepare_cached(
        "SELECT data FROM trips_block WHERE batch_id = ?1 AND end_ = 0 ORDER BY start",
    )?;
    let mut rows = stmt.query([batch_id])?;
    while let Some(r) = rows.next()? {
        let data = r.get_ref(0)?.as_blob().map_err(rusqlite::Error::from)?;
        data.chunks_exact(TRIP_BYTES)
            .for_each(|b| f(&TripRec::decode(b)));
    }
    Ok(())
}

/// Calls `f(record, first id of its batch)` for every visible trip whose `end` lies in one
/// of the level-0 ranges (sorted, merged), plus neighbours in the same 1/256° sub-cells:
/// callers check coordinates exactly. `batch` restricts the scan to one batch.
fn scan_blocks(
    c: &Connection,
    end: End,
    ranges: &[(i64, i64)],
    batch: Option<i64>,
    mut f: impl FnMut(&[u8], i64),
) -> Result<()> {
    let width = width(end);
    let mut blocks = c.prepare_cached(
        "SELECT b.first_id, k.dir, k.rowid FROM trips_block k
         JOIN trips_batch b ON b.id = k.batch_id
         WHERE k.end_ = ?1 AND k.cell = ?2 AND b.visible AND (?3 IS NULL OR k.batch_id = ?3)",
    )?;
    let mut blob: Option<rusqlite::blob::Blob<'_>> = None;
    let mut buf: Vec<u8> = Vec::new();
    for cell in batch::block_cells(ranges) {
        let mut rows = blocks.query(params![end as i64, cell, batch])?;
        while let Some(r) = rows.next()? {
            let first_id: i64 = r.get(0)?;
            let dir = r.get_ref(1)?.as_blob().map_err(rusqlite::Error::from)?;
            let runs = batch::runs(dir, cell, ranges);
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
                for rec in buf.chunks_exact(width) {
                    f(rec, first_id);
                }
            }
        }
    }
    Ok(())
}

fn scan_origins(
    c: &Connection,
    ranges: &[(i64, i64)],
    range: WeekRange,
    mut f: impl FnMut(&TripRec, Week),
) -> Result<()> {
    scan_blocks(c, End::Origin, ranges, None, |b, _| {
        let r = TripRec::decode(b);
        let week = Week::of(r.ts);
        if range.has(week) {
            f(&r, week);
        }
    })
}

fn scan_dests(
    c: &Connection,
    ranges: &[(i64, i64)],
    range: WeekRange,
    mut f: impl FnMut(&DestRec),
) -> Result<()> {
    scan_blocks(c, End::Destination, ranges, None, |b, _| {
        let r = DestRec::decode(b);
        if range.has(r.week) {
            f(&r);
        }
    })
}

// ---------------------------------------------------------------------------------------
// Queries

/// One trip as the APIs show it.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct TripOut {
    pub id: i64,
    pub region: String,
    pub datasource: String,
    #[serde(skip)]
    pub ts: Timestamp,
    pub origin_lon: f64,
    pub origin_lat: f64,
    pub destination_lon: f64,
    pub destination_lat: f64,
}

/// The visible batch holding trip `id`: (batch id, first id).
fn batch_of(c: &Connection, id: i64) -> Result<Option<(i64, i64)>> {
    Ok(c.query_row(
        "SELECT id, first_id FROM trips_batch
             WHERE first_id <= ?1 AND first_id + n > ?1 AND visible
             ORDER BY first_id DESC LIMIT 1",
        [id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()?)
}

/// Reads the trips at id offsets `offsets` of one batch, through its `pos` blob.
fn read_by_offsets(
    c: &Connection,
    batch_id: i64,
    offsets: std::ops::Range<u32>,
) -> Result<Vec<TripRec>> {
    let pos = c.blob_open("main", "trips_batch", "pos", batch_id, true)?;
    let mut at = vec![0u8; offsets.len() * 4];
    pos.read_at_exact(&mut at, offsets.start as usize * 4)?;
    let mut block = c.prepare_cached(
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
                .ok_or_else(|| DbError::Task(format!("trip {i} of batch {batch_id} is missing")))
        })
        .collect()
}

pub fn trip(c: &Connection, id: i64) -> Result<Option<TripOut>> {
    let Some((batch_id, first_id)) = batch_of(c, id)? else {
        return Ok(None);
    };
    let off = (id - first_id) as u32;
    let recs = read_by_offsets(c, batch_id, off..off + 1)?;
    let names = Names::load(c)?;
    Ok(recs.first().map(|r| names.trip(first_id, r)))
}

/// Filters of trip listings (all optional).
#[derive(Clone, Debug, Default)]
pub struct TripFilter {
    pub region: Option<String>,
    pub datasource: Option<String>,
    /// Longitude and latitude of the origin.
    pub origin: [Option<CoordPrefix>; 2],
    pub destination: [Option<CoordPrefix>; 2],
    pub from: Option<Timestamp>,
    /// Exclusive.
    pub to: Option<Timestamp>,
    /// Only ids above this (cursor).
    pub after: Option<i64>,
    pub limit: u32,
}

impl TripFilter {
    fn is_empty(&self) -> bool {
        self.region.is_none()
            && self.datasource.is_none()
            && self
                .origin
                .iter()
                .chain(&self.destination)
                .all(Option::is_none)
            && self.from.is_none()
            && self.to.is_none()
    }
}

/// The replaced system's coordinate filter, `LIKE 'value%'` on a text column: the
/// coordinate's shortest round-trip text (Rust's `Display` of the f64) starts with the
/// prefix, so truncated values still find their trip.
#[derive(Clone, Debug, PartialEq)]
pub struct CoordPrefix {
    prefix: String,
    /// Bounds of every value whose text may start with the prefix; only a prefix with a
    /// decimal point has them (`7` also starts `72.5`).
    range: Option<(f64, f64)>,
}

/// A value may lie up to half an ulp (< 1e-13 within ±180) outside the decimal interval of
/// its shortest text.
const PREFIX_SLACK: f64 = 1e-9;

impl CoordPrefix {
    pub fn new(prefix: &str) -> CoordPrefix {
        let (negative, magnitude) = match prefix.strip_prefix('-') {
            Some(m) => (true, m),
            None => (false, prefix),
        };
        let range = magnitude.split_once('.').and_then(|(_, fraction)| {
            let lo: f64 = magnitude.parse().ok()?;
            let width = 10f64.powi(-i32::try_from(fraction.len()).ok()?);
            let (lo, hi) = (lo - PREFIX_SLACK, lo + width + PREFIX_SLACK);
            Some(if negative { (-hi, -lo) } else { (lo, hi) })
        });
        CoordPrefix {
            prefix: prefix.to_owned(),
            range,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.prefix
    }

    pub fn matches(&self, v: f64) -> bool {
        if self.range.is_some_and(|(lo, hi)| !(lo..=hi).contains(&v)) {
            return false;
        }
        v.to_string().starts_with(&self.prefix)
    }
}

/// The one level-0 cell holding every point whose coordinates match `lon` and `lat`, if
/// there is one.
fn prefix_cell(lon: &CoordPrefix, lat: &CoordPrefix) -> Option<i64> {
    let ((x0, x1), (y0, y1)) = (lon.range?, lat.range?);
    let lo = engine::cell_of(Point::new(x0, y0).ok()?);
    let hi = engine::cell_of(Point::new(x1, y1).ok()?);
    (lo == hi).then_some(lo)
}

/// Trips read one by one, in id order, before a filtered listing decodes a whole batch.
const LISTING_PROBES: usize = 128;

/// Trips in id order after the cursor. Batches are read in id order: with both origin
/// coordinates through that cell's block; otherwise trip by trip first (enough when matches
/// are frequent), then whole.
pub fn trips(c: &Connection, f: &TripFilter) -> Result<Vec<TripOut>> {
    let names = Names::load(c)?;
    let lookup = |map: &HashMap<u16, String>, name: &Option<String>| match name {
        None => Some(None),
        Some(n) => Names::id(map, n).map(Some),
    };
    let (Some(region), Some(source)) = (
        lookup(&names.regions, &f.region),
        lookup(&names.sources, &f.datasource),
    ) else {
        return Ok(Vec::new());
    };
    let like = |want: &Option<CoordPrefix>, v: f64| want.as_ref().is_none_or(|w| w.matches(v));
    let keep = |r: &TripRec| {
        region.is_none_or(|x| x == r.region)
            && source.is_none_or(|x| x == r.datasource)
            && like(&f.origin[0], r.origin.lon())
            && like(&f.origin[1], r.origin.lat())
            && like(&f.destination[0], r.destination.lon())
            && like(&f.destination[1], r.destination.lat())
            && f.from.is_none_or(|t| r.ts >= t)
            && f.to.is_none_or(|t| r.ts < t)
    };
    let origin_cell = match &f.origin {
        [Some(x), Some(y)] => prefix_cell(x, y),
        _ => None,
    };
    let after = f.after.unwrap_or(0).max(0);
    if after == i64::MAX {
        return Ok(Vec::new());
    }
    let limit = f.limit as usize;
    let mut stmt = c.prepare_cached(
        "SELECT id, first_id, n, ts_min, ts_max FROM trips_batch
         WHERE visible AND first_id + n > ?1 ORDER BY first_id",
    )?;
    let mut rows = stmt.query([after + 1])?;
    let mut out: Vec<TripOut> = Vec::new();
    while let Some(r) = rows.next()? {
        if out.len() >= limit {
            break;
        }
        let (batch_id, first_id, n, ts_min, ts_max): (i64, i64, i64, i64, i64) =
            (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
        if f.from.is_some_and(|t| ts_max < t.secs()) || f.to.is_some_and(|t| ts_min >= t.secs()) {
            continue;
        }
        let skip = (after + 1 - first_id).max(0) as u32;
        let need = limit - out.len();
        let mut found: Vec<TripRec> = if let Some(cell) = origin_cell {
            let mut v = Vec::new();
            scan_blocks(c, End::Origin, &[(cell, cell)], Some(batch_id), |b, _| {
                let r = TripRec::decode(b);
                if r.offset >= skip && keep(&r) {
                    v.push(r);
                }
            })?;
            v
        } else {
            // Frequent matches are found by reading trips in id order, a few at a time;
            // when they turn out rare, decoding the rest of the batch is cheaper.
            let probe = if f.is_empty() { need } else { LISTING_PROBES };
            let end = (skip as usize + probe).min(n as usize) as u32;
            let mut v: Vec<TripRec> = read_by_offsets(c, batch_id, skip..end)?
                .into_iter()
                .filter(|r| keep(r))
                .collect();
            if v.len() < need && (end as i64) < n {
                for_each_trip(c, batch_id, |r| {
                    if r.offset >= end && keep(r) {
                        v.push(*r);
                    }
                })?;
            }
            v
        };
        found.sort_unstable_by_key(|r| r.offset);
        found.truncate(need);
        out.extend(found.iter().map(|r| names.trip(first_id, r)));
    }
    Ok(out)
}

/// Which dictionary to count by (the allow-list of `/vehicles/{column}/count`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CountBy {
    Region,
    Datasource,
}

/// Trip counts per name, largest first.
pub fn counts(c: &Connection, by: CountBy) -> Result<Vec<(String, u64)>> {
    let sql = match by {
        CountBy::Region => "SELECT name, n FROM trips_region WHERE n > 0 ORDER BY n DESC, name",
        CountBy::Datasource => {
            "SELECT name, n FROM trips_datasource WHERE n > 0 ORDER BY n DESC, name"
        }
    };
    let mut stmt = c.prepare_cached(sql)?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

/// Inclusive week range of a query; `None` bounds are open.
#[derive(Clone, Copy, Debug, Default)]
pub struct WeekRange {
    pub from: Option<Week>,
    pub to: Option<Week>,
}

impl WeekRange {
    fn lo(&self) -> i64 {
        self.from.map_or(i64::MIN, |w| w.0)
    }
    fn hi(&self) -> i64 {
        self.to.map_or(i64::MAX, |w| w.0)
    }
    fn has(&self, w: Week) -> bool {
        (self.lo()..=self.hi()).contains(&w.0)
    }
}

/// The first and last week holding any trip.
pub fn dataset_weeks(c: &Connection) -> Result<Option<(Week, Week)>> {
    let (a, b): (Option<i64>, Option<i64>) = c.query_row(
        "SELECT min(week), max(week) FROM trips_region_week WHERE n > 0",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(a.zip(b).map(|(a, b)| (Week(a), Week(b))))
}

/// Trips per region and week (compat `weekly_trips`), ordered by week then region.
pub fn region_weeks(c: &Connection) -> Result<Vec<(String, Week, u64)>> {
    let mut stmt = c.prepare_cached(
        "SELECT r.name, w.week, w.n FROM trips_region_week w
         JOIN trips_region r ON r.id = w.region_id WHERE w.n > 0 ORDER BY w.week, r.name",
    )?;
    let rows = stmt
        .query_map([], |r| {
            Ok((r.get(0)?, Week(r.get(1)?), r.get::<_, i64>(2)? as u64))
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

/// Weekly counts of a region (`None`: every region). An unknown region has no weeks.
pub fn weekly_region(
    c: &Connection,
    region: Option<&str>,
    range: WeekRange,
) -> Result<BTreeMap<Week, u64>> {
    let mut stmt = c.prepare_cached(
        "SELECT w.week, sum(w.n) FROM trips_region_week w JOIN trips_region r ON r.id = w.region_id
         WHERE (?1 IS NULL OR r.name = ?1) AND w.week BETWEEN ?2 AND ?3 GROUP BY w.week",
    )?;
    let rows = stmt
        .query_map(params![region, range.lo(), range.hi()], |r| {
            Ok((Week(r.get(0)?), r.get::<_, i64>(1)? as u64))
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

fn has_data(c: &Connection, end: End) -> Result<impl FnMut(u32, i64) -> bool + '_> {
    let mut stmt = c.prepare_cached(
        "SELECT 1 FROM trips_cell WHERE end_ = ?1 AND level = ?2 AND cell = ?3 LIMIT 1",
    )?;
    // A failing probe answers "maybe", which only costs time, never exactness.
    Ok(move |level: u32, cell: i64| {
        stmt.exists(params![end as i64, level, cell])
            .unwrap_or(true)
    })
}

fn cover(c: &Connection, bbox: &BBox, end: End, min_level: u32) -> Result<engine::Cover> {
    let mut probe = has_data(c, end)?;
    Ok(engine::cover(bbox, min_level, &mut probe))
}

/// Widest span of weeks counted in a vector; weeks further out (only in absurd data) go to
/// a map.
const WEEK_WINDOW: i64 = 1 << 16;

/// Per-week counts as a query accumulates them: a vector around the first week seen (a
/// `BTreeMap` entry per trip cost more than the rest of reading it).
#[derive(Default)]
struct WeekCounts {
    base: i64,
    dense: Vec<u64>,
    far: BTreeMap<Week, u64>,
}

impl WeekCounts {
    fn add(&mut self, week: Week, n: u64) {
        if self.dense.is_empty() {
            self.base = week.0 - WEEK_WINDOW / 2;
        }
        let at = week.0 - self.base;
        if !(0..WEEK_WINDOW).contains(&at) {
            *self.far.entry(week).or_default() += n;
            return;
        }
        let at = at as usize;
        if at >= self.dense.len() {
            self.dense.resize(at + 1, 0);
        }
        self.dense[at] += n;
    }

    /// Adds a rollup blob's weeks within `range`.
    fn add_tally(&mut self, weeks: &[u8], range: WeekRange) {
        for (week, n) in Tally::decode(weeks) {
            if range.has(Week(week)) {
                self.add(Week(week), n as u64);
            }
        }
    }

    fn into_map(self) -> BTreeMap<Week, u64> {
        let base = self.base;
        let mut out = self.far;
        out.extend(
            self.dense
                .into_iter()
                .enumerate()
                .filter(|&(_, n)| n > 0)
                .map(|(i, n)| (Week(base + i as i64), n)),
        );
        out
    }
}

/// Adds the rollups of `end`'s cells fully inside `bbox` to `out` and returns the level-0
/// ranges, merged, of the finest-level cells the edges cut, to be read raw. The cells are
/// read level by level, top down, one range per cut cell (its 16 children), so a query
/// costs one read per cut cell and never visits cells without trips.
fn end_cover(
    c: &Connection,
    bbox: &BBox,
    end: End,
    range: WeekRange,
    out: &mut WeekCounts,
) -> Result<Vec<(i64, i64)>> {
    let levels = rollup_levels(c)?;
    let mut stmt = c.prepare_cached(
        "SELECT cell, weeks FROM trips_cell
         WHERE end_ = ?1 AND level = ?2 AND cell BETWEEN ?3 AND ?4",
    )?;
    let top = *levels.end();
    // Every cell meeting the box lies between its corners' codes (Morton order is
    // monotone in both coordinates).
    let corner = |lon: f64, lat: f64| engine::parent(engine::cell_of(Point::stored(lon, lat)), top);
    let mut cut = vec![(
        corner(bbox.min_lon, bbox.min_lat),
        corner(bbox.max_lon, bbox.max_lat),
    )];
    let mut raw = Vec::new();
    for level in levels.clone().rev() {
        let mut next = Vec::new();
        for (a, z) in cut {
            let mut rows = stmt.query(params![end as i64, level, a, z])?;
            while let Some(r) = rows.next()? {
                let cell: i64 = r.get(0)?;
                match bbox.classify(level, cell) {
                    Relation::Inside => out.add_tally(
                        r.get_ref(1)?.as_blob().map_err(rusqlite::Error::from)?,
                        range,
                    ),
                    Relation::Cut if level > *levels.start() => {
                        next.push((cell << 4, (cell << 4) | 15))
                    }
                    Relation::Cut => engine::raw_ranges(bbox, level, cell, &mut raw),
                    Relation::Outside => {}
                }
            }
        }
        cut = next;
    }
    Ok(engine::merge(raw))
}

/// Weekly counts of trips whose `end` lies in `bbox`: rollups for inside cells, raw trips
/// for the cut ones.
fn weekly_end(c: &Connection, bbox: &BBox, end: End, range: WeekRange) -> Result<WeekCounts> {
    let mut out = WeekCounts::default();
    let raw = end_cover(c, bbox, end, range, &mut out)?;
    let mut count = |p: Point, week: Week| {
        if bbox.contains(p.lon(), p.lat()) {
            out.add(week, 1);
        }
    };
    match end {
        End::Origin => scan_origins(c, &raw, range, |t, week| count(t.origin, week))?,
        End::Destination => scan_dests(c, &raw, range, |t| count(t.destination, t.week))?,
    }
    Ok(out)
}

/// Adds pair-rollup counts of level `level` with origins in cell `o` (inside the box) and
/// destinations in the inclusive cell range `d`: destination cells inside count, cut ones
/// are refined one level down, and at the pair level left to the raw scan.
fn both_pairs(
    c: &Connection,
    bbox: &BBox,
    level: u32,
    o: (i64, i64),
    d: (i64, i64),
    range: WeekRange,
    out: &mut WeekCounts,
) -> Result<()> {
    let mut cut = BTreeSet::new();
    {
        let mut stmt = c.prepare_cached(
            "SELECT o_cell, d_cell, weeks FROM trips_pair
             WHERE level = ?1 AND o_cell BETWEEN ?2 AND ?3 AND d_cell BETWEEN ?4 AND ?5",
        )?;
        let mut rows = stmt.query(params![level, o.0, o.1, d.0, d.1])?;
        while let Some(r) = rows.next()? {
            let (oc, dc): (i64, i64) = (r.get(0)?, r.get(1)?);
            match bbox.classify(level, dc) {
                Relation::Inside => out.add_tally(
                    r.get_ref(2)?.as_blob().map_err(rusqlite::Error::from)?,
                    range,
                ),
                Relation::Cut if level > PAIR_LEVEL => {
                    cut.insert((oc, dc));
                }
                _ => {}
            }
        }
    }
    for (oc, dc) in cut {
        let children = |x: i64| (x << 4, (x << 4) | 15);
        both_pairs(c, bbox, level - 1, children(oc), children(dc), range, out)?;
    }
    Ok(())
}

/// Weekly counts of trips with both ends in `bbox`: the pair rollups where both pair-level
/// cells are inside, raw trips where either end's pair-level cell is cut (each trip is
/// counted by exactly one of the three parts).
fn weekly_both(c: &Connection, bbox: &BBox, range: WeekRange) -> Result<WeekCounts> {
    let o_cover = cover(c, bbox, End::Origin, PAIR_LEVEL)?;
    let d_cover = cover(c, bbox, End::Destination, PAIR_LEVEL)?;
    let mut out = WeekCounts::default();
    // Destination records name their origin's pair-level cell; few distinct ones occur.
    let mut inside_memo: rustc_hash::FxHashMap<i64, bool> = Default::default();
    let mut inside = |cell: i64| {
        *inside_memo
            .entry(cell)
            .or_insert_with(|| bbox.classify(PAIR_LEVEL, cell) == Relation::Inside)
    };
    for &(level, cell) in &o_cover.inside {
        let corner = |lon: f64, lat: f64| {
            Point::new(lon, lat).map_or(0, |p| engine::parent(engine::cell_of(p), level))
        };
        let d = (
            corner(bbox.min_lon, bbox.min_lat),
            corner(bbox.max_lon, bbox.max_lat),
        );
        both_pairs(c, bbox, level, (cell, cell), d, range, &mut out)?;
    }
    let has = |p: Point| bbox.contains(p.lon(), p.lat());
    // Origin in a cut cell.
    scan_origins(c, &o_cover.raw, range, |t, week| {
        if has(t.origin) && has(t.destination) {
            out.add(week, 1);
        }
    })?;
    // Origin in an inside cell, destination in a cut cell: none when no origin cell is
    // inside (a box within a few pair-level cells), so its destinations need no reading.
    if !o_cover.inside.is_empty() {
        scan_dests(c, &d_cover.raw, range, |t| {
            if has(t.destination) && inside(t.o_pair_cell) {
                out.add(t.week, 1);
            }
        })?;
    }
    Ok(out)
}

/// Weekly counts of trips matching `bbox` under `mode`.
pub fn weekly_bbox(
    c: &Connection,
    bbox: &BBox,
    mode: engine::Match,
    range: WeekRange,
) -> Result<BTreeMap<Week, u64>> {
    use engine::Match;
    Ok(match mode {
        Match::Origin => weekly_end(c, bbox, End::Origin, range)?.into_map(),
        Match::Destination => weekly_end(c, bbox, End::Destination, range)?.into_map(),
        Match::Both => weekly_both(c, bbox, range)?.into_map(),
        Match::Either => {
            // |O ∪ D| = |O| + |D| − |O ∩ D|, week by week.
            let mut out = weekly_end(c, bbox, End::Origin, range)?.into_map();
            for (w, n) in weekly_end(c, bbox, End::Destination, range)?.into_map() {
                *out.entry(w).or_default() += n;
            }
            for (w, n) in weekly_both(c, bbox, range)?.into_map() {
                let e = out.entry(w).or_default();
                *e = e.saturating_sub(n);
            }
            out.retain(|_, n| *n > 0);
            out
        }
    })
}

/// Weekly counts of the trips of `region` matching `bbox` under `mode`. The rollups are
/// not per region and box, so this reads the region's trips (page by page in id order, as
/// the listing does): exact, at a cost that grows with the region's size.
pub fn weekly_region_bbox(
    c: &Connection,
    region: &str,
    bbox: &BBox,
    mode: engine::Match,
    range: WeekRange,
) -> Result<BTreeMap<Week, u64>> {
    use engine::Match;
    const PAGE: u32 = 4096;
    let mut out: BTreeMap<Week, u64> = BTreeMap::new();
    let mut filter = TripFilter {
        region: Some(region.to_owned()),
        limit: PAGE,
        ..TripFilter::default()
    };
    loop {
        let page = trips(c, &filter)?;
        for t in &page {
            let (o, d) = (
                bbox.contains(t.origin_lon, t.origin_lat),
                bbox.contains(t.destination_lon, t.destination_lat),
            );
            let matched = match mode {
                Match::Origin => o,
                Match::Destination => d,
                Match::Both => o && d,
                Match::Either => o || d,
            };
            let week = Week::of(t.ts);
            if matched && range.has(week) {
                *out.entry(week).or_default() += 1;
            }
        }
        match page.last() {
            Some(t) if page.len() == PAGE as usize => filter.after = Some(t.id),
            _ => return Ok(out),
        }
    }
}

/// A similar-trip group as listed.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct GroupOut {
    pub id: i64,
    pub region: String,
    pub trips: u64,
    /// H3 cell of the origins (hex) and its centre.
    pub origin_cell: String,
    pub origin_center: [f64; 2],
    pub destination_cell: String,
    pub destination_center: [f64; 2],
    /// Time-of-day bucket index and its span (`HH:MM`, may wrap midnight).
    pub bucket: u32,
    pub bucket_start: String,
    pub bucket_end: String,
    /// Datasources seen in the group with their trip counts.
    pub datasources: BTreeMap<String, u64>,
    #[serde(skip)]
    key: GroupKey,
    #[serde(skip)]
    sources: Vec<u8>,
}

fn group_row(r: &rusqlite::Row<'_>, cfg: GroupConfig) -> rusqlite::Result<GroupOut> {
    let o: i64 = r.get(2)?;
    let d: i64 = r.get(3)?;
    let bucket: u32 = r.get(4)?;
    let (bucket_start, bucket_end) = cfg.bucket_span(bucket);
    let center = |c: i64| engine::h3_center(c as u64).map_or([0.0, 0.0], |(x, y)| [x, y]);
    Ok(GroupOut {
        id: r.get(0)?,
        region: r.get(1)?,
        trips: r.get::<_, i64>(5)? as u64,
        origin_cell: format!("{:x}", o as u64),
        origin_center: center(o),
        destination_cell: format!("{:x}", d as u64),
        destination_center: center(d),
        bucket,
        bucket_start,
        bucket_end,
        datasources: BTreeMap::new(),
        key: GroupKey {
            region: r.get(6)?,
            o_h3: o as u64,
            d_h3: d as u64,
            bucket,
        },
        sources: r.get(7)?,
    })
}

const GROUP_SELECT: &str =
    "SELECT g.id, r.name, g.o_h3, g.d_h3, g.bucket, g.n, g.region_id, g.sources
    FROM trips_group g JOIN trips_region r ON r.id = g.region_id";

/// Names the datasources of groups.
fn with_sources(c: &Connection, mut groups: Vec<GroupOut>) -> Result<Vec<GroupOut>> {
    let names = Names::load(c)?;
    for g in &mut groups {
        g.datasources = Tally::decode(&g.sources)
            .map(|(id, n)| {
                let name = names.sources.get(&(id as u16)).cloned().unwrap_or_default();
                (name, n as u64)
            })
            .collect();
    }
    Ok(groups)
}

/// Groups of the current configuration, largest first.
pub fn groups(
    c: &Connection,
    cfg: GroupConfig,
    region: Option<&str>,
    min_size: u64,
    limit: u32,
    offset: u64,
) -> Result<Vec<GroupOut>> {
    let mut stmt = c.prepare_cached(&format!(
        "{GROUP_SELECT} WHERE g.h3_resolution = ?1 AND g.bucket_minutes = ?2
           AND (?3 IS NULL OR r.name = ?3) AND g.n >= ?4
         ORDER BY g.n DESC, g.id LIMIT ?5 OFFSET ?6"
    ))?;
    let groups = stmt
        .query_map(
            params![
                u8::from(cfg.resolution),
                cfg.bucket_minutes,
                region,
                min_size as i64,
                limit,
                offset as i64
            ],
            |r| group_row(r, cfg),
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    with_sources(c, groups)
}

/// One group of the current configuration.
pub fn group(c: &Connection, cfg: GroupConfig, id: i64) -> Result<Option<GroupOut>> {
    let g = c
        .query_row(
            &format!(
                "{GROUP_SELECT} WHERE g.id = ?1 AND g.h3_resolution = ?2 AND g.bucket_minutes = ?3"
            ),
            params![id, u8::from(cfg.resolution), cfg.bucket_minutes],
            |r| group_row(r, cfg),
        )
        .optional()?;
    Ok(with_sources(c, g.into_iter().collect())?.pop())
}

/// Trips of a group in id order: raw trips under the origin cell's box, keyed again.
pub fn group_trips(
    c: &Connection,
    cfg: GroupConfig,
    g: &GroupOut,
    after: Option<i64>,
    limit: u32,
) -> Result<Vec<TripOut>> {
    let Some(bbox) = engine::h3_bbox(g.key.o_h3) else {
        return Ok(Vec::new());
    };
    let after = after.unwrap_or(0);
    let mut h3 = engine::H3Cache::new(cfg);
    let mut found: Vec<(i64, TripRec)> = Vec::new();
    scan_blocks(
        c,
        End::Origin,
        &engine::ranges(&bbox),
        None,
        |b, first_id| {
            let t = TripRec::decode(b);
            let id = first_id + i64::from(t.offset);
            if id > after
                && i64::from(t.region) == g.key.region
                && keyed(&t, &mut h3).group == g.key
            {
                found.push((id, t));
            }
        },
    )?;
    found.sort_unstable_by_key(|t| t.0);
    found.truncate(limit as usize);
    let names = Names::load(c)?;
    Ok(found
        .iter()
        .map(|(id, t)| names.trip(id - i64::from(t.offset), t))
        .collect())
}

/// Trips per level-`level` rollup cell of one end over all weeks, as (column, row, trips) on
/// that level's grid, in Morton order: only cells that meet `bbox`, at most `limit` of them.
/// The rollups change only in the transaction that makes their batches visible, so this
/// counts exactly the visible trips.
pub fn density(
    c: &Connection,
    end: End,
    level: u32,
    bbox: Option<&BBox>,
    limit: usize,
) -> Result<Vec<(u32, u32, u64)>> {
    let shift = 2 * level;
    let at_level = |lon: f64, lat: f64| {
        let (x, y) = engine::unmorton(engine::cell_of(Point::stored(lon, lat)));
        (x >> shift, y >> shift)
    };
    let (lo, hi) = match bbox {
        Some(b) => (
            at_level(b.min_lon, b.min_lat),
            at_level(b.max_lon, b.max_lat),
        ),
        None => ((0, 0), (u32::MAX, u32::MAX)),
    };
    // In Z order every cell of the box lies between its two corners' codes.
    let (code_lo, code_hi) = match bbox {
        Some(_) => (engine::morton(lo.0, lo.1), engine::morton(hi.0, hi.1)),
        None => (0, i64::MAX),
    };
    let mut stmt = c.prepare_cached(
        "SELECT cell, weeks FROM trips_cell
         WHERE end_ = ?1 AND level = ?2 AND cell BETWEEN ?3 AND ?4 ORDER BY cell",
    )?;
    let mut rows = stmt.query(params![end as i64, level, code_lo, code_hi])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let (x, y) = engine::unmorton(r.get(0)?);
        if (lo.0..=hi.0).contains(&x) && (lo.1..=hi.1).contains(&y) {
            let weeks = r.get_ref(1)?.as_blob().map_err(rusqlite::Error::from)?;
            let trips: i64 = Tally::decode(weeks).map(|(_, n)| n).sum();
            out.push((x, y, trips as u64));
            if out.len() >= limit {
                break;
            }
        }
    }
    Ok(out)
}
