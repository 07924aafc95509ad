//! Listings: trips in id order under a filter (with the replaced system's coordinate
//! prefixes), trip counts per dictionary name, and trips per rollup cell (density).

use std::collections::HashMap;

use super::read::{for_each_trip, read_by_offsets, scan_blocks, Names, TripOut};
use super::{BatchRow, Dict, Result, Sql};
use crate::batch::{End, Tally, TripRec};
use crate::engine::{self, BBox};
use crate::parse::{Point, Timestamp};

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
pub fn trips(c: &mut dyn Sql, f: &TripFilter) -> Result<Vec<TripOut>> {
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
    let mut out: Vec<TripOut> = Vec::new();
    for batch in c.batches_from(after + 1)? {
        if out.len() >= limit {
            break;
        }
        let BatchRow {
            id: batch_id,
            first_id,
            n,
            ts_min,
            ts_max,
        } = batch;
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
pub fn counts(c: &mut dyn Sql, by: CountBy) -> Result<Vec<(String, u64)>> {
    let dict = match by {
        CountBy::Region => Dict::Region,
        CountBy::Datasource => Dict::Datasource,
    };
    Ok(c.dict_counts(dict)?
        .into_iter()
        .map(|(name, n)| (name, n as u64))
        .collect())
}

/// Trips per level-`level` rollup cell of one end over all weeks, as (column, row, trips) on
/// that level's grid, in Morton order: only cells that meet `bbox`, at most `limit` of them.
/// The rollups change only in the transaction that makes their batches visible, so this
/// counts exactly the visible trips.
pub fn density(
    c: &mut dyn Sql,
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
    let mut out = Vec::new();
    c.cells(end, level, (code_lo, code_hi), &mut |cell, weeks| {
        let (x, y) = engine::unmorton(cell);
        if (lo.0..=hi.0).contains(&x) && (lo.1..=hi.1).contains(&y) {
            let trips: i64 = Tally::decode(weeks).map(|(_, n)| n).sum();
            out.push((x, y, trips as u64));
        }
        out.len() < limit
    })?;
    Ok(out)
}
