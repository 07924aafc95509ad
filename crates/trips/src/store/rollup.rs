//! The rollups (per region, region and week, cell and level, cell pair, group): adding or
//! subtracting deltas, shared by writing and removing a load, and building the level-1 cells
//! of a database upgraded from before they existed.

use super::read::for_each_trip;
use super::{Dict, GroupDelta, Result, Sql, TallyRow, TallyTable};
use crate::batch::Tally;
use crate::engine::{self, CellKey, Deltas, GroupConfig, SourceKey, Week};

/// Adds `sign` × deltas to every rollup; rows that reach zero are removed.
pub(super) fn apply(c: &mut dyn Sql, d: &Deltas, cfg: GroupConfig, sign: i64) -> Result<()> {
    if d.is_empty() {
        return Ok(());
    }
    let removing = sign < 0;
    let signed = |m: &rustc_hash::FxHashMap<i64, i64>| -> Vec<(i64, i64)> {
        let mut v: Vec<_> = m.iter().map(|(&id, &n)| (id, sign * n)).collect();
        v.sort_unstable();
        v
    };
    c.add_counts(Dict::Region, &signed(&d.region))?;
    c.add_counts(Dict::Datasource, &signed(&d.datasource))?;
    let mut weeks: Vec<(i64, i64, i64)> = d
        .region_week
        .iter()
        .map(|(&(region, week), &n)| (region, week.0, sign * n))
        .collect();
    weeks.sort_unstable();
    c.add_region_weeks(&weeks, removing)?;
    let levels = rollup_levels(c)?;
    write_cells(c, d, levels, sign)?;
    let pairs = d.pairs();
    c.add_tallies(
        TallyTable::Pair,
        &mut pairs
            .chunk_by(|a, b| (a.0 .0, a.0 .1, a.0 .2) == (b.0 .0, b.0 .1, b.0 .2))
            .map(|run| {
                let (level, o, dc, _) = run[0].0;
                TallyRow {
                    key: [i64::from(level), o, dc],
                    weeks: Tally::encode(run.iter().map(|&((.., week), n)| (week.0, sign * n))),
                }
            }),
    )?;
    apply_groups(c, d, cfg, sign)
}

/// Adds the per-cell counts of `d` at `levels` to `trips_cell`, one row per cell with its
/// weeks in one blob.
fn write_cells(
    c: &mut dyn Sql,
    d: &Deltas,
    levels: std::ops::RangeInclusive<u32>,
    sign: i64,
) -> Result<()> {
    let mut cells = d.cells(*levels.start());
    for level in levels.clone() {
        if level > *levels.start() {
            cells = Deltas::coarser(&cells);
        }
        c.add_tallies(
            TallyTable::Cell,
            &mut cells
                .chunk_by(|a, b| (a.0 .0, a.0 .1) == (b.0 .0, b.0 .1))
                .map(|run| {
                    let (end, cell, _) = run[0].0;
                    TallyRow {
                        key: [i64::from(end), i64::from(level), cell],
                        weeks: Tally::encode(run.iter().map(|&((.., week), n)| (week.0, sign * n))),
                    }
                }),
        )?;
    }
    Ok(())
}

/// The per-cell rollup levels this database holds: [`engine::COARSE_LEVELS`] until
/// [`complete_levels`] has built level 1 for trips stored before it existed.
pub(super) fn rollup_levels(c: &mut dyn Sql) -> Result<std::ops::RangeInclusive<u32>> {
    Ok(if c.level_1_pending()? {
        engine::COARSE_LEVELS
    } else {
        engine::ROLLUP_LEVELS
    })
}

/// Builds the level-1 cell rollups of the visible trips of a database upgraded from before
/// they existed (V4), in the caller's transaction, and marks them complete; a no-op
/// otherwise. Returns whether it built them. Until then queries use levels 2..8, which are
/// complete, so answers stay exact meanwhile.
pub fn complete_levels(c: &mut dyn Sql) -> Result<bool> {
    if rollup_levels(c)? == engine::ROLLUP_LEVELS {
        return Ok(false);
    }
    let level = *engine::ROLLUP_LEVELS.start();
    let mut d = Deltas::default();
    for batch_id in c.visible_batches()? {
        for_each_trip(c, batch_id, |t| {
            let week = Week::of(t.ts);
            for (end, p) in [(0u8, t.origin), (1, t.destination)] {
                let cell = engine::parent(engine::cell_of(p), level);
                *d.cell.entry(CellKey::new(end, cell, week)).or_default() += 1;
            }
        })?;
    }
    write_cells(c, &d, level..=level, 1)?;
    c.clear_level_1_pending()?;
    Ok(true)
}

fn apply_groups(c: &mut dyn Sql, d: &Deltas, cfg: GroupConfig, sign: i64) -> Result<()> {
    let res = i64::from(u8::from(cfg.resolution));
    let mut sources: Vec<(SourceKey, i64)> =
        d.group_sources.iter().map(|(&k, &n)| (k, n)).collect();
    sources.sort_unstable_by_key(|s| s.0);
    c.add_groups(
        &mut sources
            .chunk_by(|a, b| a.0.group() == b.0.group())
            .map(|run| {
                let k = run[0].0.group();
                let n: i64 = run.iter().map(|s| s.1).sum();
                GroupDelta {
                    key: [
                        res,
                        i64::from(cfg.bucket_minutes),
                        k.region,
                        k.o_h3 as i64,
                        k.d_h3 as i64,
                        i64::from(k.bucket),
                    ],
                    n: sign * n,
                    sources: Tally::encode(
                        run.iter().map(|&(key, m)| (key.datasource(), sign * m)),
                    ),
                }
            }),
    )
}
