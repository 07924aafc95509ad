//! Weekly counts: of a region from its weekly rollup; of a box from the cell and pair rollups
//! inside it plus the raw trips of the cells its edges cut (exact); of a region within a box.

use std::collections::{BTreeMap, BTreeSet};

use super::listing::{trips, TripFilter};
use super::read::scan_blocks;
use super::rollup::rollup_levels;
use super::{Result, Sql};
use crate::batch::{DestRec, End, Tally, TripRec};
use crate::engine::{self, BBox, Relation, Week, PAIR_LEVEL};
use crate::parse::Point;

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
pub fn dataset_weeks(c: &mut dyn Sql) -> Result<Option<(Week, Week)>> {
    let (a, b) = c.week_span()?;
    Ok(a.zip(b).map(|(a, b)| (Week(a), Week(b))))
}

/// Trips per region and week (compat `weekly_trips`), ordered by week then region.
pub fn region_weeks(c: &mut dyn Sql) -> Result<Vec<(String, Week, u64)>> {
    Ok(c.region_weeks()?
        .into_iter()
        .map(|(name, week, n)| (name, Week(week), n as u64))
        .collect())
}

/// Weekly counts of a region (`None`: every region). An unknown region has no weeks.
pub fn weekly_region(
    c: &mut dyn Sql,
    region: Option<&str>,
    range: WeekRange,
) -> Result<BTreeMap<Week, u64>> {
    Ok(c.weekly_region(region, range.lo(), range.hi())?
        .into_iter()
        .map(|(week, n)| (Week(week), n as u64))
        .collect())
}

fn cover(c: &mut dyn Sql, bbox: &BBox, end: End, min_level: u32) -> engine::Cover {
    // A failing probe answers "maybe", which only costs time, never exactness.
    let mut probe = |level: u32, cell: i64| c.has_cell(end, level, cell).unwrap_or(true);
    engine::cover(bbox, min_level, &mut probe)
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

fn scan_origins(
    c: &mut dyn Sql,
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
    c: &mut dyn Sql,
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

/// Adds the rollups of `end`'s cells fully inside `bbox` to `out` and returns the level-0
/// ranges, merged, of the finest-level cells the edges cut, to be read raw. The cells are
/// read level by level, top down, one range per cut cell (its 16 children), so a query
/// costs one read per cut cell and never visits cells without trips.
fn end_cover(
    c: &mut dyn Sql,
    bbox: &BBox,
    end: End,
    range: WeekRange,
    out: &mut WeekCounts,
) -> Result<Vec<(i64, i64)>> {
    let levels = rollup_levels(c)?;
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
        for span in cut {
            c.cells(end, level, span, &mut |cell, weeks| {
                match bbox.classify(level, cell) {
                    Relation::Inside => out.add_tally(weeks, range),
                    Relation::Cut if level > *levels.start() => {
                        next.push((cell << 4, (cell << 4) | 15))
                    }
                    Relation::Cut => engine::raw_ranges(bbox, level, cell, &mut raw),
                    Relation::Outside => {}
                }
                true
            })?;
        }
        cut = next;
    }
    Ok(engine::merge(raw))
}

/// Weekly counts of trips whose `end` lies in `bbox`: rollups for inside cells, raw trips
/// for the cut ones.
fn weekly_end(c: &mut dyn Sql, bbox: &BBox, end: End, range: WeekRange) -> Result<WeekCounts> {
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
    c: &mut dyn Sql,
    bbox: &BBox,
    level: u32,
    o: (i64, i64),
    d: (i64, i64),
    range: WeekRange,
    out: &mut WeekCounts,
) -> Result<()> {
    let mut cut = BTreeSet::new();
    c.pairs(
        level,
        o,
        d,
        &mut |oc, dc, weeks| match bbox.classify(level, dc) {
            Relation::Inside => out.add_tally(weeks, range),
            Relation::Cut if level > PAIR_LEVEL => {
                cut.insert((oc, dc));
            }
            _ => {}
        },
    )?;
    for (oc, dc) in cut {
        let children = |x: i64| (x << 4, (x << 4) | 15);
        both_pairs(c, bbox, level - 1, children(oc), children(dc), range, out)?;
    }
    Ok(())
}

/// Weekly counts of trips with both ends in `bbox`: the pair rollups where both pair-level
/// cells are inside, raw trips where either end's pair-level cell is cut (each trip is
/// counted by exactly one of the three parts).
fn weekly_both(c: &mut dyn Sql, bbox: &BBox, range: WeekRange) -> Result<WeekCounts> {
    let o_cover = cover(c, bbox, End::Origin, PAIR_LEVEL);
    let d_cover = cover(c, bbox, End::Destination, PAIR_LEVEL);
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
    c: &mut dyn Sql,
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
    c: &mut dyn Sql,
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
