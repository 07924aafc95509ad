//! All SQL of the domain: schema, loading trips with their rollups, removing a load's
//! contribution, and the queries behind the routes. Every statement is parameterized; the
//! only request-chosen names (trip end, count column) come from fixed allow-lists here.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde::Serialize;
use sluice_core::{DbError, Migration};

use crate::engine::{
    self, BBox, Deltas, GroupConfig, GroupDelta, GroupKey, Keyed, Relation, Week, PAIR_LEVEL,
};
use crate::parse::{Point, Timestamp, TripRow};

pub fn migrations() -> Vec<Migration> {
    vec![Migration {
        name: "V1__init",
        sql: include_str!("../migrations/V1__init.sql"),
    }]
}

type Result<T> = std::result::Result<T, DbError>;

/// A load in progress or done; see `trips_load` in the schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadId(pub i64);

/// Loads of this process that are still staging (so a cleanup never removes a live one).
static LIVE_LOADS: Mutex<Option<HashSet<i64>>> = Mutex::new(None);

fn live_loads() -> std::sync::MutexGuard<'static, Option<HashSet<i64>>> {
    LIVE_LOADS.lock().unwrap_or_else(|p| p.into_inner())
}

/// Creates a load. Staging loads are registered as live until [`release`].
pub fn create_load(
    tx: &Transaction<'_>,
    name: &str,
    file_id: Option<i64>,
    cfg: GroupConfig,
) -> Result<LoadId> {
    tx.execute(
        "INSERT INTO trips_load (name, state, file_id, owner_pid, h3_resolution, bucket_minutes)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            name,
            if file_id.is_some() { "done" } else { "staging" },
            file_id,
            i64::from(std::process::id()),
            u8::from(cfg.resolution),
            cfg.bucket_minutes
        ],
    )?;
    let id = tx.last_insert_rowid();
    if file_id.is_none() {
        live_loads().get_or_insert_with(HashSet::new).insert(id);
    }
    Ok(LoadId(id))
}

/// Marks a staging load as done under its ledger entry.
pub fn finish_load(tx: &Transaction<'_>, load: LoadId, file_id: i64) -> Result<()> {
    tx.execute(
        "UPDATE trips_load SET state = 'done', file_id = ?2 WHERE id = ?1",
        params![load.0, file_id],
    )?;
    Ok(())
}

/// Forgets a load of this process as live.
pub fn release(load: LoadId) {
    if let Some(set) = live_loads().as_mut() {
        set.remove(&load.0);
    }
}

/// Writes trips of one load inside one transaction, accumulating rollup deltas in memory.
pub struct Writer<'t, 'c> {
    tx: &'t Transaction<'c>,
    cfg: GroupConfig,
    load: LoadId,
    regions: HashMap<String, i64>,
    sources: HashMap<String, i64>,
    deltas: Deltas,
    range: Option<(i64, i64)>,
}

impl<'t, 'c> Writer<'t, 'c> {
    pub fn new(tx: &'t Transaction<'c>, load: LoadId, cfg: GroupConfig) -> Result<Self> {
        Ok(Writer {
            tx,
            cfg,
            load,
            regions: dictionary(tx, "SELECT name, id FROM trips_region")?,
            sources: dictionary(tx, "SELECT name, id FROM trips_datasource")?,
            deltas: Deltas::default(),
            range: None,
        })
    }

    /// Inserts one trip; returns its id.
    pub fn push(&mut self, row: &TripRow<'_>) -> Result<i64> {
        let region = intern(
            self.tx,
            &mut self.regions,
            "trips_region",
            row.region.as_str(),
        )?;
        let ds = intern(
            self.tx,
            &mut self.sources,
            "trips_datasource",
            row.datasource.as_str(),
        )?;
        let keyed = Keyed {
            region,
            datasource: ds,
            week: Week::of(row.ts),
            o_cell: engine::cell_of(row.origin),
            d_cell: engine::cell_of(row.destination),
            group: self.cfg.key(region, row.origin, row.destination, row.ts),
        };
        let mut stmt = self.tx.prepare_cached(
            "INSERT INTO trips_trip (region_id, datasource_id, ts, o_lon, o_lat, d_lon, d_lat,
               o_cell, d_cell) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?;
        stmt.execute(params![
            region,
            ds,
            row.ts.secs(),
            row.origin.lon(),
            row.origin.lat(),
            row.destination.lon(),
            row.destination.lat(),
            keyed.o_cell,
            keyed.d_cell
        ])?;
        let id = self.tx.last_insert_rowid();
        self.range = Some(match self.range {
            None => (id, id),
            Some((a, _)) => (a, id),
        });
        self.deltas.add(&keyed);
        Ok(id)
    }

    /// Trips pushed since the last flush.
    pub fn pending(&self) -> u64 {
        self.deltas.trips
    }

    /// Writes the accumulated rollups and the id range of the rows written so far.
    pub fn flush(&mut self) -> Result<()> {
        if let Some((a, b)) = self.range.take() {
            self.tx.execute(
                "INSERT INTO trips_chunk (load_id, first_id, last_id) VALUES (?1, ?2, ?3)",
                params![self.load.0, a, b],
            )?;
        }
        let deltas = std::mem::take(&mut self.deltas);
        apply(self.tx, &deltas, self.cfg, 1)
    }
}

fn dictionary(c: &Connection, sql: &str) -> Result<HashMap<String, i64>> {
    let mut stmt = c.prepare(sql)?;
    let map = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(map)
}

/// The id of a dictionary name, created on first sight. `table` is one of two constants.
fn intern(
    tx: &Transaction<'_>,
    cache: &mut HashMap<String, i64>,
    table: &'static str,
    name: &str,
) -> Result<i64> {
    if let Some(&id) = cache.get(name) {
        return Ok(id);
    }
    let sql = match table {
        "trips_region" => "INSERT INTO trips_region (name) VALUES (?1)",
        _ => "INSERT INTO trips_datasource (name) VALUES (?1)",
    };
    tx.execute(sql, [name])?;
    let id = tx.last_insert_rowid();
    cache.insert(name.to_owned(), id);
    Ok(id)
}

/// Adds `sign` × deltas to every rollup; rows that reach zero are removed.
fn apply(tx: &Transaction<'_>, d: &Deltas, cfg: GroupConfig, sign: i64) -> Result<()> {
    if d.is_empty() {
        return Ok(());
    }
    let removing = sign < 0;
    {
        let mut up = tx.prepare_cached("UPDATE trips_region SET n = n + ?2 WHERE id = ?1")?;
        for (&id, &n) in &d.region {
            up.execute(params![id, sign * n])?;
        }
        let mut up = tx.prepare_cached("UPDATE trips_datasource SET n = n + ?2 WHERE id = ?1")?;
        for (&id, &n) in &d.datasource {
            up.execute(params![id, sign * n])?;
        }
    }
    {
        let mut up = tx.prepare_cached(
            "INSERT INTO trips_region_week (region_id, week, n) VALUES (?1, ?2, ?3)
             ON CONFLICT (region_id, week) DO UPDATE SET n = n + excluded.n",
        )?;
        let mut del = tx.prepare_cached(
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
    {
        let mut up = tx.prepare_cached(
            "INSERT INTO trips_cell_week (end_, level, cell, week, n) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (end_, level, cell, week) DO UPDATE SET n = n + excluded.n",
        )?;
        let mut del = tx.prepare_cached(
            "DELETE FROM trips_cell_week
             WHERE end_ = ?1 AND level = ?2 AND cell = ?3 AND week = ?4 AND n = 0",
        )?;
        for ((end, level, cell, week), n) in d.cells() {
            up.execute(params![end, level, cell, week.0, sign * n])?;
            if removing {
                del.execute(params![end, level, cell, week.0])?;
            }
        }
    }
    {
        let mut up = tx.prepare_cached(
            "INSERT INTO trips_pair_week (level, o_cell, d_cell, week, n)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (level, o_cell, d_cell, week) DO UPDATE SET n = n + excluded.n",
        )?;
        let mut del = tx.prepare_cached(
            "DELETE FROM trips_pair_week
             WHERE level = ?1 AND o_cell = ?2 AND d_cell = ?3 AND week = ?4 AND n = 0",
        )?;
        for ((level, o, dc, week), n) in d.pairs() {
            up.execute(params![level, o, dc, week.0, sign * n])?;
            if removing {
                del.execute(params![level, o, dc, week.0])?;
            }
        }
    }
    let res = u8::from(cfg.resolution);
    let mut group = tx.prepare_cached(
        "INSERT INTO trips_group (h3_resolution, bucket_minutes, region_id, o_h3, d_h3, bucket, n)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (h3_resolution, bucket_minutes, region_id, o_h3, d_h3, bucket)
         DO UPDATE SET n = n + excluded.n RETURNING id, n",
    )?;
    let mut source = tx.prepare_cached(
        "INSERT INTO trips_group_source (group_id, datasource_id, n) VALUES (?1, ?2, ?3)
         ON CONFLICT (group_id, datasource_id) DO UPDATE SET n = n + excluded.n",
    )?;
    let mut del_sources =
        tx.prepare_cached("DELETE FROM trips_group_source WHERE group_id = ?1 AND n = 0")?;
    let mut del_group = tx.prepare_cached("DELETE FROM trips_group WHERE id = ?1")?;
    let mut groups: Vec<(&GroupKey, &GroupDelta)> = d.groups.iter().collect();
    groups.sort_unstable_by_key(|g| g.0);
    for (k, (n, sources)) in groups {
        let (id, total): (i64, i64) = group.query_row(
            params![
                res,
                cfg.bucket_minutes,
                k.region,
                k.o_h3 as i64,
                k.d_h3 as i64,
                k.bucket,
                sign * n
            ],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        for &(ds, m) in sources {
            source.execute(params![id, ds, sign * m])?;
        }
        if removing {
            del_sources.execute([id])?;
            if total == 0 {
                del_group.execute([id])?;
            }
        }
    }
    Ok(())
}

/// Removes every row and rollup contribution of a load, then the load itself.
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
    let chunks: Vec<(i64, i64)> = {
        let mut stmt =
            tx.prepare("SELECT first_id, last_id FROM trips_chunk WHERE load_id = ?1")?;
        let rows = stmt
            .query_map([load.0], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        rows
    };
    let mut removed = 0;
    for (a, b) in chunks {
        let mut deltas = Deltas::default();
        {
            let mut stmt = tx.prepare_cached(
                "SELECT region_id, datasource_id, ts, o_lon, o_lat, d_lon, d_lat, o_cell, d_cell
                 FROM trips_trip WHERE id BETWEEN ?1 AND ?2",
            )?;
            let mut rows = stmt.query(params![a, b])?;
            while let Some(r) = rows.next()? {
                let region: i64 = r.get(0)?;
                let ts = Timestamp::from_secs(r.get(2)?);
                let o = point(r.get(3)?, r.get(4)?)?;
                let d = point(r.get(5)?, r.get(6)?)?;
                deltas.add(&Keyed {
                    region,
                    datasource: r.get(1)?,
                    week: Week::of(ts),
                    o_cell: r.get(7)?,
                    d_cell: r.get(8)?,
                    group: cfg.key(region, o, d, ts),
                });
            }
        }
        removed += deltas.trips;
        apply(tx, &deltas, cfg, -1)?;
        tx.execute(
            "DELETE FROM trips_trip WHERE id BETWEEN ?1 AND ?2",
            params![a, b],
        )?;
    }
    tx.execute("DELETE FROM trips_chunk WHERE load_id = ?1", [load.0])?;
    tx.execute("DELETE FROM trips_load WHERE id = ?1", [load.0])?;
    Ok(removed)
}

fn point(lon: f64, lat: f64) -> Result<Point> {
    Point::new(lon, lat).map_err(DbError::Task)
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

/// Staging loads left by a process that died (or by this one, if no longer live).
pub fn stale_loads(c: &Connection) -> Result<Vec<LoadId>> {
    let mut stmt = c.prepare("SELECT id, owner_pid FROM trips_load WHERE state = 'staging'")?;
    let rows: Vec<(i64, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let me = i64::from(std::process::id());
    let live = live_loads();
    Ok(rows
        .into_iter()
        .filter(|&(id, pid)| {
            if pid == me {
                !live.as_ref().is_some_and(|s| s.contains(&id))
            } else {
                !process_alive(pid)
            }
        })
        .map(|(id, _)| LoadId(id))
        .collect())
}

fn process_alive(pid: i64) -> bool {
    if cfg!(target_os = "linux") {
        std::path::Path::new(&format!("/proc/{pid}")).exists()
    } else {
        // Elsewhere a staging load of another process is left alone (never removed live).
        true
    }
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

const TRIP_SELECT: &str = "SELECT t.id, r.name, s.name, t.ts, t.o_lon, t.o_lat, t.d_lon, t.d_lat
    FROM trips_trip t JOIN trips_region r ON r.id = t.region_id
    JOIN trips_datasource s ON s.id = t.datasource_id";

fn trip_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TripOut> {
    Ok(TripOut {
        id: r.get(0)?,
        region: r.get(1)?,
        datasource: r.get(2)?,
        ts: Timestamp::from_secs(r.get(3)?),
        origin_lon: r.get(4)?,
        origin_lat: r.get(5)?,
        destination_lon: r.get(6)?,
        destination_lat: r.get(7)?,
    })
}

pub fn trip(c: &Connection, id: i64) -> Result<Option<TripOut>> {
    Ok(
        c.query_row(&format!("{TRIP_SELECT} WHERE t.id = ?1"), [id], trip_row)
            .optional()?,
    )
}

/// Filters of trip listings (all optional).
#[derive(Clone, Debug, Default)]
pub struct TripFilter {
    pub region: Option<String>,
    pub datasource: Option<String>,
    pub origin: (Option<f64>, Option<f64>),
    pub destination: (Option<f64>, Option<f64>),
    pub from: Option<Timestamp>,
    /// Exclusive.
    pub to: Option<Timestamp>,
    /// Only ids above this (cursor).
    pub after: Option<i64>,
    pub limit: u32,
}

pub fn trips(c: &Connection, f: &TripFilter) -> Result<Vec<TripOut>> {
    // With both coordinates of an end given, its cell narrows the scan through the index.
    let cell = |p: (Option<f64>, Option<f64>)| match p {
        (Some(x), Some(y)) => Point::new(x, y).ok().map(engine::cell_of),
        _ => None,
    };
    let sql = format!(
        "{TRIP_SELECT}
         WHERE (?1 IS NULL OR r.name = ?1) AND (?2 IS NULL OR s.name = ?2)
           AND (?3 IS NULL OR t.o_lon = ?3) AND (?4 IS NULL OR t.o_lat = ?4)
           AND (?5 IS NULL OR t.d_lon = ?5) AND (?6 IS NULL OR t.d_lat = ?6)
           AND (?7 IS NULL OR t.ts >= ?7) AND (?8 IS NULL OR t.ts < ?8)
           AND (?9 IS NULL OR t.id > ?9) {} {}
         ORDER BY t.id LIMIT ?10",
        if cell(f.origin).is_some() {
            "AND t.o_cell = ?11"
        } else {
            "AND ?11 IS NULL"
        },
        if cell(f.destination).is_some() {
            "AND t.d_cell = ?12"
        } else {
            "AND ?12 IS NULL"
        },
    );
    let mut stmt = c.prepare_cached(&sql)?;
    let rows = stmt
        .query_map(
            params![
                f.region,
                f.datasource,
                f.origin.0,
                f.origin.1,
                f.destination.0,
                f.destination.1,
                f.from.map(Timestamp::secs),
                f.to.map(Timestamp::secs),
                f.after,
                f.limit,
                cell(f.origin),
                cell(f.destination),
            ],
            trip_row,
        )?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
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

/// Trips per region and week (compat `weekly_trips`), ordered by region then week.
pub fn region_weeks(c: &Connection) -> Result<Vec<(String, Week, u64)>> {
    let mut stmt = c.prepare_cached(
        "SELECT r.name, w.week, w.n FROM trips_region_week w
         JOIN trips_region r ON r.id = w.region_id WHERE w.n > 0 ORDER BY r.name, w.week",
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

/// Trip ends, the allow-list of columns a box query reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Origin = 0,
    Destination = 1,
}

impl End {
    fn raw_sql(self) -> &'static str {
        match self {
            End::Origin => {
                "SELECT ts, o_lon, o_lat, d_lon, d_lat, o_cell, d_cell FROM trips_trip
                 WHERE o_cell BETWEEN ?1 AND ?2"
            }
            End::Destination => {
                "SELECT ts, o_lon, o_lat, d_lon, d_lat, o_cell, d_cell FROM trips_trip
                 WHERE d_cell BETWEEN ?1 AND ?2"
            }
        }
    }
}

/// One raw trip read for an edge check.
struct Raw {
    week: Week,
    o: (f64, f64),
    d: (f64, f64),
    o_cell: i64,
}

fn scan_raw(
    c: &Connection,
    end: End,
    ranges: &[(i64, i64)],
    range: WeekRange,
    mut f: impl FnMut(&Raw),
) -> Result<()> {
    let mut stmt = c.prepare_cached(end.raw_sql())?;
    for &(a, b) in ranges {
        let mut rows = stmt.query(params![a, b])?;
        while let Some(r) = rows.next()? {
            let week = Week::of(Timestamp::from_secs(r.get(0)?));
            if !range.has(week) {
                continue;
            }
            f(&Raw {
                week,
                o: (r.get(1)?, r.get(2)?),
                d: (r.get(3)?, r.get(4)?),
                o_cell: r.get(5)?,
            });
        }
    }
    Ok(())
}

fn has_data(c: &Connection, end: End) -> Result<impl FnMut(u32, i64) -> bool + '_> {
    let mut stmt = c.prepare_cached(
        "SELECT 1 FROM trips_cell_week WHERE end_ = ?1 AND level = ?2 AND cell = ?3 LIMIT 1",
    )?;
    // A failing probe answers "maybe", which only costs time, never exactness.
    Ok(move |level: u32, cell: i64| {
        stmt.exists(params![end as i64, level, cell])
            .unwrap_or(true)
    })
}

/// Weekly counts of trips whose `end` lies in `bbox`: rollups for inside cells, raw trips
/// for the cut ones.
fn weekly_end(
    c: &Connection,
    bbox: &BBox,
    end: End,
    range: WeekRange,
) -> Result<BTreeMap<Week, u64>> {
    let cover = {
        let mut probe = has_data(c, end)?;
        engine::cover(bbox, 1, &mut probe)
    };
    let mut out: BTreeMap<Week, u64> = BTreeMap::new();
    let mut stmt = c.prepare_cached(
        "SELECT week, n FROM trips_cell_week
         WHERE end_ = ?1 AND level = ?2 AND cell = ?3 AND week BETWEEN ?4 AND ?5",
    )?;
    for &(level, cell) in &cover.inside {
        let mut rows = stmt.query(params![end as i64, level, cell, range.lo(), range.hi()])?;
        while let Some(r) = rows.next()? {
            *out.entry(Week(r.get(0)?)).or_default() += r.get::<_, i64>(1)? as u64;
        }
    }
    scan_raw(c, end, &cover.raw, range, |t| {
        let p = if end == End::Origin { t.o } else { t.d };
        if bbox.contains(p.0, p.1) {
            *out.entry(t.week).or_default() += 1;
        }
    })?;
    Ok(out)
}

/// Adds pair-rollup counts of level `level` with origins in `o` and destinations in `d`
/// (inclusive cell ranges; the origins are inside the box): destination cells inside count,
/// cut ones are refined one level down, and at the pair level left to the raw scan.
fn both_pairs(
    c: &Connection,
    bbox: &BBox,
    level: u32,
    o: (i64, i64),
    d: (i64, i64),
    range: WeekRange,
    out: &mut BTreeMap<Week, u64>,
) -> Result<()> {
    let mut cut = std::collections::BTreeSet::new();
    {
        let mut stmt = c.prepare_cached(
            "SELECT o_cell, d_cell, week, n FROM trips_pair_week
             WHERE level = ?1 AND o_cell BETWEEN ?2 AND ?3 AND d_cell BETWEEN ?4 AND ?5
               AND week BETWEEN ?6 AND ?7",
        )?;
        let mut rows = stmt.query(params![level, o.0, o.1, d.0, d.1, range.lo(), range.hi()])?;
        while let Some(r) = rows.next()? {
            let (oc, dc): (i64, i64) = (r.get(0)?, r.get(1)?);
            match bbox.classify(level, dc) {
                Relation::Inside => {
                    *out.entry(Week(r.get(2)?)).or_default() += r.get::<_, i64>(3)? as u64
                }
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
fn weekly_both(c: &Connection, bbox: &BBox, range: WeekRange) -> Result<BTreeMap<Week, u64>> {
    let o_cover = {
        let mut probe = has_data(c, End::Origin)?;
        engine::cover(bbox, PAIR_LEVEL, &mut probe)
    };
    let d_cover = {
        let mut probe = has_data(c, End::Destination)?;
        engine::cover(bbox, PAIR_LEVEL, &mut probe)
    };
    let mut out: BTreeMap<Week, u64> = BTreeMap::new();
    let inside = |cell: i64| bbox.classify(PAIR_LEVEL, cell) == Relation::Inside;
    for &(level, cell) in &o_cover.inside {
        both_pairs(
            c,
            bbox,
            level,
            (cell, cell),
            (i64::MIN, i64::MAX),
            range,
            &mut out,
        )?;
    }
    // Origin in a cut cell.
    scan_raw(c, End::Origin, &o_cover.raw, range, |t| {
        if bbox.contains(t.o.0, t.o.1) && bbox.contains(t.d.0, t.d.1) {
            *out.entry(t.week).or_default() += 1;
        }
    })?;
    // Origin in an inside cell, destination in a cut cell.
    scan_raw(c, End::Destination, &d_cover.raw, range, |t| {
        if inside(engine::parent(t.o_cell, PAIR_LEVEL)) && bbox.contains(t.d.0, t.d.1) {
            *out.entry(t.week).or_default() += 1;
        }
    })?;
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
        Match::Origin => weekly_end(c, bbox, End::Origin, range)?,
        Match::Destination => weekly_end(c, bbox, End::Destination, range)?,
        Match::Both => weekly_both(c, bbox, range)?,
        Match::Either => {
            // |O ∪ D| = |O| + |D| − |O ∩ D|, week by week.
            let mut out = weekly_end(c, bbox, End::Origin, range)?;
            for (w, n) in weekly_end(c, bbox, End::Destination, range)? {
                *out.entry(w).or_default() += n;
            }
            for (w, n) in weekly_both(c, bbox, range)? {
                let e = out.entry(w).or_default();
                *e = e.saturating_sub(n);
            }
            out.retain(|_, n| *n > 0);
            out
        }
    })
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
    })
}

const GROUP_SELECT: &str = "SELECT g.id, r.name, g.o_h3, g.d_h3, g.bucket, g.n, g.region_id
    FROM trips_group g JOIN trips_region r ON r.id = g.region_id";

fn with_sources(c: &Connection, mut groups: Vec<GroupOut>) -> Result<Vec<GroupOut>> {
    let mut stmt = c.prepare_cached(
        "SELECT s.name, gs.n FROM trips_group_source gs
         JOIN trips_datasource s ON s.id = gs.datasource_id WHERE gs.group_id = ?1",
    )?;
    for g in &mut groups {
        g.datasources = stmt
            .query_map([g.id], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?
            .collect::<rusqlite::Result<_>>()?;
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
    let mut stmt = c.prepare_cached(&format!(
        "{TRIP_SELECT} WHERE t.o_cell BETWEEN ?1 AND ?2 AND t.region_id = ?3 AND t.id > ?4"
    ))?;
    let mut out = Vec::new();
    for (a, b) in engine::ranges(&bbox) {
        let rows = stmt.query_map(params![a, b, g.key.region, after.unwrap_or(0)], trip_row)?;
        for t in rows {
            let t = t?;
            let o = Point::new(t.origin_lon, t.origin_lat);
            let d = Point::new(t.destination_lon, t.destination_lat);
            if let (Ok(o), Ok(d)) = (o, d) {
                if cfg.key(g.key.region, o, d, t.ts) == g.key {
                    out.push(t);
                }
            }
        }
    }
    out.sort_unstable_by_key(|t| t.id);
    out.truncate(limit as usize);
    Ok(out)
}
