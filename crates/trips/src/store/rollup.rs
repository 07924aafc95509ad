//! The rollups (per region, region and week, cell and level, cell pair, group): adding or
//! subtracting deltas, shared by writing and removing a load, and building the level-1 cells
//! of a database upgraded from before they existed.

use rusqlite::{params, Connection, Transaction};

use super::read::for_each_trip;
use super::Result;
use crate::batch::Tally;
use crate::engine::{self, CellKey, Deltas, GroupConfig, SourceKey, Week};

/// Adds `sign` × deltas to every rollup; rows that reach zero are removed.
pub(super) fn apply(c: &Connection, d: &Deltas, cfg: GroupConfig, sign: i64) -> Result<()> {
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
pub(super) fn rollup_levels(c: &Connection) -> Result<std::ops::RangeInclusive<u32>> {
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
