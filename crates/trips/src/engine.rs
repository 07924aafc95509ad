//! The computation, pure: the spatial grid and its quadtree levels, ISO weeks, the
//! decomposition of a box into rollup cells and raw edge ranges, similar-trip group keys, and
//! weekly averages from per-week counts.
//!
//! Grid: level 0 cells are 1/1024 degree; a level-k cell holds 4^k × 4^k level-0 cells.
//! Cells are numbered in Morton (Z) order, so a level-k cell is the level-0 code shifted
//! right by 4k bits and covers one contiguous range of level-0 codes.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use chrono::{Datelike, NaiveDate};
use serde::Serialize;

use crate::parse::{Point, Timestamp};

/// Level-0 cells per degree.
const CELLS_PER_DEGREE: f64 = 1024.0;
/// Level-0 columns (360°) and rows (180°).
const COLS: u32 = 360 * 1024;
const ROWS: u32 = 180 * 1024;
/// Rollup levels kept per trip end: 1 (1/256°) to 8 (64°). A box edge then reads raw only
/// the trips of the 1/256° cells it cuts (the blocks' directory is at that level too).
/// Level 0 would have about as many (cell, week) keys as trips.
pub const ROLLUP_LEVELS: std::ops::RangeInclusive<u32> = 1..=8;
/// Levels 2..8, complete in every database: level 1 may still be pending after an upgrade
/// (see `store::complete_levels`). The density route offers these.
pub const COARSE_LEVELS: std::ops::RangeInclusive<u32> = 2..=8;
/// The finest level of the (origin cell, destination cell) rollup used by `match=both`:
/// 1/16°, so that its keys stay bounded by city pairs, not by trips.
pub const PAIR_LEVEL: u32 = 3;
/// The whole grid fits in the cells of this level (256°).
const TOP_LEVEL: u32 = 9;

/// Spreads the low 20 bits of `v` to the even bits.
fn spread(v: u32) -> u64 {
    let mut x = u64::from(v) & 0xF_FFFF;
    x = (x | (x << 16)) & 0x0000_FFFF_0000_FFFF;
    x = (x | (x << 8)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x << 4)) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | (x << 2)) & 0x3333_3333_3333_3333;
    x = (x | (x << 1)) & 0x5555_5555_5555_5555;
    x
}

fn compact(mut x: u64) -> u32 {
    x &= 0x5555_5555_5555_5555;
    x = (x | (x >> 1)) & 0x3333_3333_3333_3333;
    x = (x | (x >> 2)) & 0x0F0F_0F0F_0F0F_0F0F;
    x = (x | (x >> 4)) & 0x00FF_00FF_00FF_00FF;
    x = (x | (x >> 8)) & 0x0000_FFFF_0000_FFFF;
    x = (x | (x >> 16)) & 0x0000_0000_FFFF_FFFF;
    x as u32
}

/// Morton code of column `x`, row `y`.
pub fn morton(x: u32, y: u32) -> i64 {
    (spread(x) | (spread(y) << 1)) as i64
}

/// Column and row of a Morton code.
pub fn unmorton(code: i64) -> (u32, u32) {
    let c = code as u64;
    (compact(c), compact(c >> 1))
}

/// The west/south edge, in degrees, of level-0 column/row `i` (exact in f64).
fn edge(i: u32, origin: f64) -> f64 {
    f64::from(i) / CELLS_PER_DEGREE + origin
}

/// The level-0 index holding `v`, exact: edge(i) <= v < edge(i + 1), clamped to the grid.
fn index_of(v: f64, origin: f64, count: u32) -> u32 {
    let mut i = ((v - origin) * CELLS_PER_DEGREE)
        .floor()
        .clamp(0.0, f64::from(count - 1)) as u32;
    // The subtraction may round across an edge; settle on the exact cell.
    while i > 0 && edge(i, origin) > v {
        i -= 1;
    }
    while i + 1 < count && edge(i + 1, origin) <= v {
        i += 1;
    }
    i
}

/// The level-0 cell (Morton code) of a point.
pub fn cell_of(p: Point) -> i64 {
    morton(
        index_of(p.lon(), -180.0, COLS),
        index_of(p.lat(), -90.0, ROWS),
    )
}

/// The level-`level` cell holding level-0 cell `cell0`.
pub fn parent(cell0: i64, level: u32) -> i64 {
    cell0 >> (4 * level)
}

/// An inclusive bounding box in degrees.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct BBox {
    pub min_lon: f64,
    pub min_lat: f64,
    pub max_lon: f64,
    pub max_lat: f64,
}

/// The grammar of a box parameter, `minLon,minLat,maxLon,maxLat`, as its OpenAPI pattern: four
/// plain decimals (no exponent, sign only `-`, no leading zeros, digits on both sides of a
/// point), longitudes within -180..=180 and latitudes within -90..=90 by their digits.
/// [`BBox::parse`] accepts exactly these texts.
pub const BBOX_PATTERN: &str = r"^-?(180(\.0+)?|(1[0-7][0-9]|[1-9]?[0-9])(\.[0-9]+)?),-?(90(\.0+)?|[1-8]?[0-9](\.[0-9]+)?),-?(180(\.0+)?|(1[0-7][0-9]|[1-9]?[0-9])(\.[0-9]+)?),-?(90(\.0+)?|[1-8]?[0-9](\.[0-9]+)?)$";

/// A decimal of [`BBOX_PATTERN`] whose magnitude is at most `max` (an integer): its value,
/// else `None`. Decided on the digits, so that `180.000…01` is out however f64 rounds it.
fn bounded_decimal(s: &str, max: u32) -> Option<f64> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = match digits.split_once('.') {
        Some((int, frac)) if !frac.is_empty() => (int, frac),
        Some(_) => return None,
        None => (digits, ""),
    };
    let all_digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if int.is_empty() || int.len() > 3 || (int.len() > 1 && int.starts_with('0')) {
        return None;
    }
    if !all_digits(int) || !all_digits(frac) {
        return None;
    }
    let whole: u32 = int.parse().ok()?;
    if whole > max || (whole == max && frac.bytes().any(|b| b != b'0')) {
        return None;
    }
    s.parse().ok()
}

impl BBox {
    /// `minLon,minLat,maxLon,maxLat` ([`BBOX_PATTERN`]); the corners may come in either order
    /// (each axis is normalised to min..=max).
    pub fn parse(s: &str) -> Result<BBox, String> {
        let bad = || {
            format!(
                "`{}`: expected bbox=minLon,minLat,maxLon,maxLat in plain decimal degrees, \
                 longitudes -180..180, latitudes -90..90",
                s.escape_debug()
            )
        };
        let mut parts = s.split(',');
        let mut next = |max| parts.next().and_then(|p| bounded_decimal(p, max));
        let (Some(lon_a), Some(lat_a), Some(lon_b), Some(lat_b)) =
            (next(180), next(90), next(180), next(90))
        else {
            return Err(bad());
        };
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(BBox {
            min_lon: lon_a.min(lon_b),
            min_lat: lat_a.min(lat_b),
            max_lon: lon_a.max(lon_b),
            max_lat: lat_a.max(lat_b),
        })
    }

    pub fn contains(&self, lon: f64, lat: f64) -> bool {
        (self.min_lon..=self.max_lon).contains(&lon) && (self.min_lat..=self.max_lat).contains(&lat)
    }

    /// How a level-`level` cell relates to the box. Points of a cell lie within its closed
    /// rectangle, so `Inside` is exact and `Outside` is safe.
    pub fn classify(&self, level: u32, cell: i64) -> Relation {
        let (x, y) = unmorton(cell);
        let side = 1u32 << (2 * level);
        let (x0, x1) = (x * side, (x + 1) * side);
        let (y0, y1) = (y * side, (y + 1) * side);
        let (w, e) = (edge(x0, -180.0), edge(x1.min(COLS), -180.0));
        let (s, n) = (edge(y0, -90.0), edge(y1.min(ROWS), -90.0));
        if x0 >= COLS || y0 >= ROWS || w > self.max_lon || e < self.min_lon {
            return Relation::Outside;
        }
        if s > self.max_lat || n < self.min_lat {
            return Relation::Outside;
        }
        if self.min_lon <= w && e <= self.max_lon && self.min_lat <= s && n <= self.max_lat {
            Relation::Inside
        } else {
            Relation::Cut
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Relation {
    Inside,
    Cut,
    Outside,
}

/// A box as rollup cells fully inside it (any level from `min_level` up) plus ranges of
/// level-0 codes whose trips must be checked one by one (the cells cut by the edge).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Cover {
    /// (level, cell) fully inside the box.
    pub inside: Vec<(u32, i64)>,
    /// Inclusive level-0 code ranges of the cut cells, narrowed to level-0 cells that meet
    /// the box, merged when adjacent.
    pub raw: Vec<(i64, i64)>,
}

/// Decomposes `bbox` into cells of levels `min_level..=8` and raw ranges. `has_data(level,
/// cell)` prunes empty parts of the world early (it may say `true` when unsure).
pub fn cover(bbox: &BBox, min_level: u32, has_data: &mut dyn FnMut(u32, i64) -> bool) -> Cover {
    let mut out = Cover::default();
    for top in 0..4i64 {
        visit(bbox, TOP_LEVEL, top, min_level, has_data, &mut out);
    }
    out.raw = merge(std::mem::take(&mut out.raw));
    out
}

fn visit(
    bbox: &BBox,
    level: u32,
    cell: i64,
    min_level: u32,
    has_data: &mut dyn FnMut(u32, i64) -> bool,
    out: &mut Cover,
) {
    let rel = bbox.classify(level, cell);
    if rel == Relation::Outside {
        return;
    }
    if level <= *ROLLUP_LEVELS.end() && !has_data(level, cell) {
        return;
    }
    if rel == Relation::Inside && level >= min_level && ROLLUP_LEVELS.contains(&level) {
        out.inside.push((level, cell));
        return;
    }
    if level <= min_level && rel == Relation::Cut {
        raw_ranges(bbox, level, cell, &mut out.raw);
        return;
    }
    for child in 0..16 {
        visit(
            bbox,
            level - 1,
            (cell << 4) | child,
            min_level,
            has_data,
            out,
        );
    }
}

/// The level-0 ranges under a cut cell that meet the box.
pub fn raw_ranges(bbox: &BBox, level: u32, cell: i64, out: &mut Vec<(i64, i64)>) {
    match bbox.classify(level, cell) {
        Relation::Outside => {}
        Relation::Inside => push_range(level, cell, out),
        Relation::Cut if level == 0 => push_range(0, cell, out),
        Relation::Cut => {
            for child in 0..16 {
                raw_ranges(bbox, level - 1, (cell << 4) | child, out);
            }
        }
    }
}

/// Every level-0 range meeting `bbox`, merged (for scans of raw trips in a small area).
pub fn ranges(bbox: &BBox) -> Vec<(i64, i64)> {
    let mut raw = Vec::new();
    for top in 0..4i64 {
        raw_ranges(bbox, TOP_LEVEL, top, &mut raw);
    }
    merge(raw)
}

/// Sorts and merges inclusive ranges that overlap or touch.
pub fn merge(mut raw: Vec<(i64, i64)>) -> Vec<(i64, i64)> {
    raw.sort_unstable();
    let mut merged: Vec<(i64, i64)> = Vec::with_capacity(raw.len());
    for (a, b) in raw {
        match merged.last_mut() {
            Some(last) if last.1 + 1 >= a => last.1 = last.1.max(b),
            _ => merged.push((a, b)),
        }
    }
    merged
}

fn push_range(level: u32, cell: i64, out: &mut Vec<(i64, i64)>) {
    let shift = 4 * level;
    out.push((cell << shift, ((cell + 1) << shift) - 1));
}

/// Which end of a trip must lie in the area.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Match {
    Origin,
    Destination,
    Both,
    Either,
}

/// The denominator of a weekly average.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum WeeksMode {
    /// Weeks with at least one trip in the area (the replaced systems' rule; the default).
    Active,
    /// Every week from the first to the last week of the dataset (or of from/to).
    Span,
}

/// A week index: weeks since the ISO week holding 1970-01-01, starting Monday 00:00 UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Week(pub i64);

impl Week {
    pub fn of(ts: Timestamp) -> Week {
        // 1970-01-01 was a Thursday: its ISO week started on day -3.
        Week((ts.secs().div_euclid(86_400) + 3).div_euclid(7))
    }
    pub fn monday(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(1970, 1, 1)
            .expect("epoch")
            .checked_add_signed(chrono::Duration::days(self.0 * 7 - 3))
            .unwrap_or_default()
    }
    /// ISO year and week number.
    pub fn iso(self) -> (i32, u32) {
        let w = self.monday().iso_week();
        (w.year(), w.week())
    }
    pub fn label(self) -> String {
        let (y, w) = self.iso();
        format!("{y}-W{w:02}")
    }
}

/// One week of a series.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct WeekCount {
    /// ISO year of the week.
    pub year: i32,
    /// ISO week number.
    pub week: u32,
    /// `2018-W18`.
    pub label: String,
    /// Monday of the week (YYYY-MM-DD).
    pub week_start: String,
    pub trips: u64,
}

/// A weekly average with its parts.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct WeeklyAverage {
    pub average: f64,
    pub trips: u64,
    pub weeks: u64,
    pub weeks_mode: WeeksMode,
    pub series: Vec<WeekCount>,
}

/// Builds the average from per-week counts. `span` is the inclusive week range of the
/// dataset or the request (None when there is no data at all).
pub fn weekly_average(
    counts: &BTreeMap<Week, u64>,
    mode: WeeksMode,
    span: Option<(Week, Week)>,
) -> WeeklyAverage {
    let entry = |w: Week, n: u64| {
        let (year, week) = w.iso();
        WeekCount {
            year,
            week,
            label: w.label(),
            week_start: w.monday().to_string(),
            trips: n,
        }
    };
    let trips: u64 = counts.values().sum();
    let series: Vec<WeekCount> = match (mode, span) {
        (WeeksMode::Span, Some((a, b))) => (a.0..=b.0)
            .map(|w| entry(Week(w), counts.get(&Week(w)).copied().unwrap_or(0)))
            .collect(),
        (WeeksMode::Span, None) => Vec::new(),
        (WeeksMode::Active, _) => counts
            .iter()
            .filter(|(_, &n)| n > 0)
            .map(|(&w, &n)| entry(w, n))
            .collect(),
    };
    let weeks = series.len() as u64;
    WeeklyAverage {
        average: if weeks == 0 {
            0.0
        } else {
            trips as f64 / weeks as f64
        },
        trips,
        weeks,
        weeks_mode: mode,
        series,
    }
}

/// Similar-trip grouping settings: H3 resolution and time-of-day bucket width.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupConfig {
    pub resolution: h3o::Resolution,
    /// Divides 1440.
    pub bucket_minutes: u32,
}

impl Default for GroupConfig {
    fn default() -> Self {
        GroupConfig {
            resolution: h3o::Resolution::Seven,
            bucket_minutes: 60,
        }
    }
}

impl GroupConfig {
    pub fn new(resolution: u8, bucket_minutes: u32) -> Result<GroupConfig, String> {
        let resolution = h3o::Resolution::try_from(resolution)
            .map_err(|_| format!("h3_resolution {resolution} is not 0..15"))?;
        if bucket_minutes == 0 || 1440 % bucket_minutes != 0 {
            return Err(format!(
                "bucket_minutes {bucket_minutes} must divide 1440 (e.g. 15, 30, 60, 120)"
            ));
        }
        Ok(GroupConfig {
            resolution,
            bucket_minutes,
        })
    }

    /// Buckets are centred on multiples of the width, so bucket 0 spans midnight
    /// (23:30–00:30 for one hour): times either side of midnight fall together.
    pub fn bucket(&self, ts: Timestamp) -> u32 {
        let minute = (ts.secs().rem_euclid(86_400) / 60) as u32;
        let w = self.bucket_minutes;
        ((minute + w / 2) / w) % (1440 / w)
    }

    /// `HH:MM` start and end of a bucket.
    pub fn bucket_span(&self, bucket: u32) -> (String, String) {
        let w = self.bucket_minutes;
        let start = (bucket * w + 1440 - w / 2) % 1440;
        let end = (start + w) % 1440;
        let hm = |m: u32| format!("{:02}:{:02}", m / 60, m % 60);
        (hm(start), hm(end))
    }
}

/// H3 cells of points, memoised per level-0 grid cell where the whole grid cell provably
/// lies inside one H3 cell, which is most of them at the default resolution (an H3 cell at
/// resolution 7 is about 2.6 km across, a grid cell about 0.1 km). `to_cell` costs more
/// than the rest of parsing a row, and trips cluster in few grid cells.
///
/// Why this is exact: H3 cell edges are great-circle arcs between the vertices of the
/// cell's boundary (straight lines in the gnomonic projection of an icosahedron face). The
/// distance from a grid cell's centre to the nearest great circle through an edge is a
/// lower bound of its distance to the H3 cell's boundary; when it exceeds the distance to
/// the grid cell's farthest corner (plus a metre), every point of the grid cell is in the
/// centre's H3 cell.
#[derive(Debug)]
pub struct H3Cache {
    cfg: GroupConfig,
    /// Grid cell → its H3 cell, or 0 when the grid cell is not wholly inside one.
    cells: FxHashMap<i64, u64>,
}

/// Memoised grid cells before the cache starts over (about 16 bytes each).
const H3_CACHE_CELLS: usize = 1 << 21;

impl H3Cache {
    pub fn new(cfg: GroupConfig) -> H3Cache {
        H3Cache {
            cfg,
            cells: FxHashMap::default(),
        }
    }

    /// The group of a trip: H3 cells of both ends (level-0 grid cells `o_cell`, `d_cell`)
    /// and time-of-day bucket.
    pub fn group(
        &mut self,
        region: i64,
        (o, o_cell): (Point, i64),
        (d, d_cell): (Point, i64),
        ts: Timestamp,
    ) -> GroupKey {
        GroupKey {
            region,
            o_h3: self.cell(o, o_cell),
            d_h3: self.cell(d, d_cell),
            bucket: self.cfg.bucket(ts),
        }
    }

    /// The H3 cell of `p`, whose level-0 grid cell is `cell0`.
    pub fn cell(&mut self, p: Point, cell0: i64) -> u64 {
        let whole = match self.cells.get(&cell0) {
            Some(&h) => h,
            None => {
                if self.cells.len() >= H3_CACHE_CELLS {
                    self.cells.clear();
                }
                let h = whole_cell(cell0, self.cfg.resolution);
                self.cells.insert(cell0, h);
                h
            }
        };
        if whole != 0 {
            return whole;
        }
        h3_of(p, self.cfg.resolution)
    }
}

fn h3_of(p: Point, res: h3o::Resolution) -> u64 {
    h3o::LatLng::new(p.lat(), p.lon())
        .map(|ll| u64::from(ll.to_cell(res)))
        .unwrap_or(0)
}

/// Unit vector of a point given in degrees.
fn unit(lat: f64, lon: f64) -> [f64; 3] {
    let (la, lo) = (lat.to_radians(), lon.to_radians());
    [la.cos() * lo.cos(), la.cos() * lo.sin(), la.sin()]
}

fn dot(a: [f64; 3], b: [f64; 3]) -> f64 {
    a[0] * b[0] + a[1] * b[1] + a[2] * b[2]
}

fn cross(a: [f64; 3], b: [f64; 3]) -> [f64; 3] {
    [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ]
}

/// The H3 cell holding every point of grid cell `cell0`, or 0 if that is not certain.
fn whole_cell(cell0: i64, res: h3o::Resolution) -> u64 {
    /// A metre, in radians of the Earth's surface.
    const METRE: f64 = 1.0 / 6_371_000.0;
    let (x, y) = unmorton(cell0);
    let (w, s) = (edge(x, -180.0), edge(y, -90.0));
    let (e, n) = (edge(x + 1, -180.0), edge(y + 1, -90.0));
    let (clon, clat) = ((w + e) / 2.0, (s + n) / 2.0);
    let Ok(centre) = Point::new(clon, clat) else {
        return 0;
    };
    let h = h3_of(centre, res);
    let Ok(index) = h3o::CellIndex::try_from(h) else {
        return 0;
    };
    let c = unit(clat, clon);
    let reach = [(w, s), (w, n), (e, s), (e, n)]
        .iter()
        .map(|&(lon, lat)| dot(c, unit(lat, lon)).clamp(-1.0, 1.0).acos())
        .fold(0.0, f64::max)
        + METRE;
    let vertices: Vec<[f64; 3]> = index
        .boundary()
        .iter()
        .map(|v| unit(v.lat(), v.lng()))
        .collect();
    for (i, &a) in vertices.iter().enumerate() {
        let b = vertices[(i + 1) % vertices.len()];
        let nrm = cross(a, b);
        let len = dot(nrm, nrm).sqrt();
        if len < 1e-15 {
            return 0;
        }
        let dist = (dot(c, nrm) / len).abs().clamp(0.0, 1.0).asin();
        if dist <= reach {
            return 0;
        }
    }
    h
}

/// Centre of an H3 cell as (lon, lat).
pub fn h3_center(cell: u64) -> Option<(f64, f64)> {
    let c = h3o::CellIndex::try_from(cell).ok()?;
    let ll = h3o::LatLng::from(c);
    Some((ll.lng(), ll.lat()))
}

/// A box holding an H3 cell (its vertices' extent, widened a little for the curved edges).
pub fn h3_bbox(cell: u64) -> Option<BBox> {
    let c = h3o::CellIndex::try_from(cell).ok()?;
    let (mut w, mut s, mut e, mut n) = (180f64, 90f64, -180f64, -90f64);
    for v in c.boundary().iter() {
        w = w.min(v.lng());
        e = e.max(v.lng());
        s = s.min(v.lat());
        n = n.max(v.lat());
    }
    let pad_x = (e - w) * 0.05;
    let pad_y = (n - s) * 0.05;
    Some(BBox {
        min_lon: (w - pad_x).max(-180.0),
        min_lat: (s - pad_y).max(-90.0),
        max_lon: (e + pad_x).min(180.0),
        max_lat: (n + pad_y).min(90.0),
    })
}

/// A trip as the rollups see it: dictionary ids, week, level-0 cells and its group.
#[derive(Clone, Copy, Debug)]
pub struct Keyed {
    pub region: i64,
    pub datasource: i64,
    pub week: Week,
    pub o_cell: i64,
    pub d_cell: i64,
    pub group: GroupKey,
}

/// The identity of a similar-trip group under one [`GroupConfig`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupKey {
    pub region: i64,
    pub o_h3: u64,
    pub d_h3: u64,
    pub bucket: u32,
}

/// Rollup changes accumulated in memory, so that each rollup row is written once per load
/// (or per spill) instead of once per trip. Only the finest level of each rollup is kept
/// here; coarser levels are derived when writing. The maps are bounded by the number of
/// distinct keys (cells × weeks, groups), not by the number of trips.
#[derive(Debug, Default)]
pub struct Deltas {
    pub trips: u64,
    pub region: FxHashMap<i64, i64>,
    pub datasource: FxHashMap<i64, i64>,
    pub region_week: FxHashMap<(i64, Week), i64>,
    /// (end, cell at the finest rollup level, week).
    pub cell: FxHashMap<CellKey, i64>,
    /// (origin cell, destination cell, week) at [`PAIR_LEVEL`].
    pub pair: FxHashMap<(i64, i64, Week), i64>,
    /// (group, datasource); a group's count is the sum over its datasources.
    pub group_sources: FxHashMap<SourceKey, i64>,
}

/// An (end, level-1 cell, week) key packed into 8 bytes, ordered by end, cell, week: the
/// level-1 map holds millions of keys per load, and tuple keys took 24 bytes each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CellKey(u64);

/// Bits of a [`CellKey`]'s week, offset to be unsigned: weeks of every parseable time
/// (years ±262 143) fit, as do level-1 cells (< 2^33) in the 35 bits left under the end.
const WEEK_BITS: u32 = 28;
const WEEK_OFFSET: i64 = 1 << (WEEK_BITS - 1);

impl CellKey {
    pub fn new(end: u8, cell: i64, week: Week) -> CellKey {
        let week = (week.0 + WEEK_OFFSET) as u64 & ((1 << WEEK_BITS) - 1);
        CellKey((u64::from(end) << 63) | ((cell as u64) << WEEK_BITS) | week)
    }

    pub fn end(self) -> u8 {
        (self.0 >> 63) as u8
    }

    pub fn cell(self) -> i64 {
        ((self.0 << 1) >> (WEEK_BITS + 1)) as i64
    }

    pub fn week(self) -> Week {
        Week((self.0 & ((1 << WEEK_BITS) - 1)) as i64 - WEEK_OFFSET)
    }
}

/// A (group, datasource) key packed into 24 bytes: at 100 M trips this map holds millions
/// of keys and is the largest part of a load's memory. Region and datasource are dictionary
/// ids (16 bits), the bucket is below 1440.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SourceKey {
    o_h3: u64,
    d_h3: u64,
    /// region << 32 | bucket << 16 | datasource.
    rest: u64,
}

impl SourceKey {
    pub fn new(g: &GroupKey, datasource: i64) -> SourceKey {
        SourceKey {
            o_h3: g.o_h3,
            d_h3: g.d_h3,
            rest: ((g.region as u64) << 32)
                | (u64::from(g.bucket & 0xFFFF) << 16)
                | (datasource as u64 & 0xFFFF),
        }
    }

    pub fn group(&self) -> GroupKey {
        GroupKey {
            region: (self.rest >> 32) as i64,
            o_h3: self.o_h3,
            d_h3: self.d_h3,
            bucket: ((self.rest >> 16) & 0xFFFF) as u32,
        }
    }

    pub fn datasource(&self) -> i64 {
        (self.rest & 0xFFFF) as i64
    }
}

impl Deltas {
    pub fn add(&mut self, t: &Keyed) {
        let base = *ROLLUP_LEVELS.start();
        self.trips += 1;
        *self.region.entry(t.region).or_default() += 1;
        *self.datasource.entry(t.datasource).or_default() += 1;
        *self.region_week.entry((t.region, t.week)).or_default() += 1;
        *self
            .cell
            .entry(CellKey::new(0, parent(t.o_cell, base), t.week))
            .or_default() += 1;
        *self
            .cell
            .entry(CellKey::new(1, parent(t.d_cell, base), t.week))
            .or_default() += 1;
        let pair = (
            parent(t.o_cell, PAIR_LEVEL),
            parent(t.d_cell, PAIR_LEVEL),
            t.week,
        );
        *self.pair.entry(pair).or_default() += 1;
        *self
            .group_sources
            .entry(SourceKey::new(&t.group, t.datasource))
            .or_default() += 1;
    }

    /// Distinct keys held, the measure of the memory the maps take.
    pub fn keys(&self) -> usize {
        self.region_week.len() + self.cell.len() + self.pair.len() + self.group_sources.len()
    }

    /// Cell counts of one level (within [`ROLLUP_LEVELS`]) as (end, cell, week), sorted by
    /// key for B-tree friendly writes; one level at a time keeps a spill's memory small.
    pub fn cells(&self, level: u32) -> Vec<((u8, i64, Week), i64)> {
        let shift = 4 * (level - *ROLLUP_LEVELS.start());
        rollup_levels(&self.cell, level..=level, |k, _| {
            (k.end(), k.cell() >> shift, k.week())
        })
    }

    /// The counts of `cells` (as from [`Deltas::cells`]) one level up: sorting the level
    /// below, far smaller than the finest map, instead of the map again for every level.
    pub fn coarser(cells: &[((u8, i64, Week), i64)]) -> Vec<((u8, i64, Week), i64)> {
        let mut up: Vec<((u8, i64, Week), i64)> = cells
            .iter()
            .map(|&((end, cell, week), n)| ((end, cell >> 4, week), n))
            .collect();
        up.sort_unstable_by_key(|e| e.0);
        up.dedup_by(|b, a| {
            let same = a.0 == b.0;
            if same {
                a.1 += b.1;
            }
            same
        });
        up
    }

    /// Per-level cell pair counts (levels `PAIR_LEVEL..=8`), sorted the same way.
    pub fn pairs(&self) -> Vec<((u32, i64, i64, Week), i64)> {
        rollup_levels(
            &self.pair,
            PAIR_LEVEL..=*ROLLUP_LEVELS.end(),
            |&(o, d, week), level| {
                let shift = 4 * (level - PAIR_LEVEL);
                (level, o >> shift, d >> shift, week)
            },
        )
    }

    pub fn is_empty(&self) -> bool {
        self.trips == 0
    }
}

/// Sums finest-level counts into every level of `levels`, sorted by the derived key.
/// Sorting and merging runs beats hashing here: each level has about as many keys as the
/// finest one.
fn rollup_levels<K, L: Copy + Ord>(
    fine: &FxHashMap<K, i64>,
    levels: std::ops::RangeInclusive<u32>,
    key: impl Fn(&K, u32) -> L,
) -> Vec<(L, i64)> {
    let mut out: Vec<(L, i64)> = Vec::with_capacity(fine.len() * 2);
    let mut keys: Vec<(L, i64)> = Vec::with_capacity(fine.len());
    for level in levels {
        keys.clear();
        keys.extend(fine.iter().map(|(k, &n)| (key(k, level), n)));
        keys.sort_unstable_by_key(|e| e.0);
        for &(k, n) in &keys {
            match out.last_mut() {
                Some((last, m)) if *last == k => *m += n,
                _ => out.push((k, n)),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn p(lon: f64, lat: f64) -> Point {
        Point::new(lon, lat).unwrap()
    }

    #[test]
    fn morton_round_trips_and_cells_are_exact() {
        for (x, y) in [(0, 0), (1, 2), (COLS - 1, ROWS - 1), (12345, 54321)] {
            assert_eq!(unmorton(morton(x, y)), (x, y));
        }
        assert_eq!(unmorton(cell_of(p(-180.0, -90.0))), (0, 0));
        assert_eq!(unmorton(cell_of(p(180.0, 90.0))), (COLS - 1, ROWS - 1));
        // 14.25 is a cell edge: the point belongs to the cell starting there.
        let (x, _) = unmorton(cell_of(p(14.25, 50.0)));
        assert_eq!(edge(x, -180.0), 14.25);
        let (x, _) = unmorton(cell_of(p(14.25 - 1e-12, 50.0)));
        assert_eq!(edge(x + 1, -180.0), 14.25);
    }

    #[test]
    fn cover_is_inside_plus_raw() {
        let b = BBox::parse("14.2,49.9,14.45,50.2").unwrap();
        let c = cover(&b, 2, &mut |_, _| true);
        assert!(!c.inside.is_empty() && !c.raw.is_empty());
        for &(level, cell) in &c.inside {
            assert_eq!(b.classify(level, cell), Relation::Inside);
            assert!(ROLLUP_LEVELS.contains(&level));
        }
        // A point well inside is covered by exactly one inside cell, not by the raw ranges.
        let c0 = cell_of(p(14.3, 50.0));
        let hits = c
            .inside
            .iter()
            .filter(|&&(l, cell)| parent(c0, l) == cell)
            .count();
        assert_eq!(hits, 1);
        assert!(!c.raw.iter().any(|&(a, z)| (a..=z).contains(&c0)));
        // A point on the edge is in a raw range.
        let e0 = cell_of(p(14.2, 50.0));
        assert!(c.raw.iter().any(|&(a, z)| (a..=z).contains(&e0)));
        assert_eq!(
            cover(&BBox::parse("0,0,1,1").unwrap(), 2, &mut |_, _| false),
            Cover::default()
        );
    }

    #[test]
    fn cell_keys_round_trip_in_order() {
        let top = parent(cell_of(p(180.0, 90.0)), 1);
        let keys: Vec<(u8, i64, Week)> = vec![
            (0, 0, Week(-13_700_000)),
            (0, 0, Week(2400)),
            (0, 5, Week(-1)),
            (0, top, Week(13_700_000)),
            (1, 0, Week(0)),
            (1, top, Week(2500)),
        ];
        let packed: Vec<CellKey> = keys
            .iter()
            .map(|&(e, c, w)| CellKey::new(e, c, w))
            .collect();
        for (k, &(e, c, w)) in packed.iter().zip(&keys) {
            assert_eq!((k.end(), k.cell(), k.week()), (e, c, w));
        }
        assert!(packed.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn weeks_are_iso_weeks() {
        let w = Week::of(Timestamp::parse("2018-05-06 23:59:59").unwrap());
        assert_eq!(w.iso(), (2018, 18));
        assert_eq!(w.monday().to_string(), "2018-04-30");
        assert_eq!(
            Week::of(Timestamp::parse("2018-05-07 00:00:00").unwrap()).0,
            w.0 + 1
        );
        // ISO year differs from the calendar year at the turn of the year.
        let w = Week::of(Timestamp::parse("2021-01-03 12:00:00").unwrap());
        assert_eq!(w.label(), "2020-W53");
        assert_eq!(
            Week::of(Timestamp::from_secs(-1)).monday().to_string(),
            "1969-12-29"
        );
    }

    #[test]
    fn averages_active_and_span() {
        let counts: BTreeMap<Week, u64> = [(Week(10), 4), (Week(12), 2)].into();
        let a = weekly_average(&counts, WeeksMode::Active, Some((Week(10), Week(13))));
        assert_eq!((a.average, a.trips, a.weeks), (3.0, 6, 2));
        let s = weekly_average(&counts, WeeksMode::Span, Some((Week(10), Week(13))));
        assert_eq!((s.average, s.trips, s.weeks), (1.5, 6, 4));
        assert_eq!(s.series[1].trips, 0);
        let none = weekly_average(&BTreeMap::new(), WeeksMode::Active, None);
        assert_eq!((none.average, none.weeks), (0.0, 0));
    }

    #[test]
    fn memoised_h3_cells_equal_direct_ones() {
        // Dense random points around three cities, at the default, a finer and a coarser
        // resolution: memoised or not, the cell is the one `to_cell` gives.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for res in [7u8, 9, 5] {
            let cfg = GroupConfig::new(res, 60).unwrap();
            let mut cache = H3Cache::new(cfg);
            let mut memoised = 0;
            for i in 0..60_000 {
                let (cx, cy) = [(14.43, 50.08), (7.68, 45.07), (-9.14, 38.72)][i % 3];
                let p = Point::new(
                    cx + rng.random_range(-0.05..0.05),
                    cy + rng.random_range(-0.05..0.05),
                )
                .unwrap();
                let c0 = cell_of(p);
                let got = cache.cell(p, c0);
                assert_eq!(got, h3_of(p, cfg.resolution), "{p:?} at resolution {res}");
                memoised += usize::from(cache.cells[&c0] != 0);
            }
            if res == 7 {
                assert!(memoised > 40_000, "{memoised}");
            }
        }
    }

    #[test]
    fn buckets_wrap_midnight() {
        let g = GroupConfig::default();
        let at = |s: &str| g.bucket(Timestamp::parse(s).unwrap());
        assert_eq!(at("2018-05-01 23:50:00"), at("2018-05-02 00:10:00"));
        assert_eq!(at("2018-05-01 23:50:00"), 0);
        assert_eq!(at("2018-05-01 08:29:59"), 8);
        assert_eq!(at("2018-05-01 08:30:00"), 9);
        assert_eq!(g.bucket_span(0), ("23:30".into(), "00:30".into()));
        assert!(GroupConfig::new(7, 7).is_err());
        assert!(GroupConfig::new(16, 60).is_err());
    }

    /// A random text close to the box grammar: valid decimals, or pieces around the grammar's
    /// edges (signs, leading zeros, 89..91 and 179..181, fractions, exponents); usually four
    /// parts, sometimes mutated by a random edit.
    fn near_bbox(rng: &mut impl Rng) -> String {
        const SIGNS: [&str; 4] = ["", "", "-", "+"];
        const INTS: [&str; 17] = [
            "0", "00", "1", "9", "07", "10", "45", "89", "90", "91", "99", "100", "179", "180",
            "181", "1000", "",
        ];
        const FRACS: [&str; 10] = [
            "",
            "",
            ".",
            ".0",
            ".00",
            ".5",
            ".000001",
            ".0000000000000000001",
            "e1",
            ".5.5",
        ];
        let parts = if rng.random_range(0..10) == 0 {
            rng.random_range(1..7)
        } else {
            4
        };
        let clean = rng.random_bool(0.5);
        let t = (0..parts)
            .map(|i| {
                if clean {
                    // A valid decimal of the part's axis: lon 0..=180, lat 0..=90.
                    let max = if i % 2 == 0 { 180 } else { 90 };
                    let int = rng.random_range(0..=max);
                    let sign = if rng.random_bool(0.5) { "-" } else { "" };
                    let digits = rng.random_range(0..4usize);
                    let frac: String = (0..digits)
                        .map(|_| {
                            if int == max {
                                '0'
                            } else {
                                char::from(b'0' + rng.random_range(0..10u8))
                            }
                        })
                        .collect();
                    let point = if digits > 0 { "." } else { "" };
                    return format!("{sign}{int}{point}{frac}");
                }
                let pick = |rng: &mut dyn rand::RngCore, a: &[&'static str]| {
                    a[rng.random_range(0..a.len())]
                };
                format!(
                    "{}{}{}",
                    pick(rng, &SIGNS),
                    pick(rng, &INTS),
                    pick(rng, &FRACS)
                )
            })
            .collect::<Vec<_>>()
            .join(",");
        crate::testgen::maybe_edit(rng, t, b"0123456789.,-+ eE")
    }

    #[test]
    fn boxes_are_exactly_the_bbox_pattern() {
        let re = regex::Regex::new(BBOX_PATTERN).unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
        let (mut valid, mut invalid) = (0, 0);
        for _ in 0..200_000 {
            let t = near_bbox(&mut rng);
            let parsed = BBox::parse(&t);
            assert_eq!(re.is_match(&t), parsed.is_ok(), "{t:?}: {parsed:?}");
            if let Ok(b) = parsed {
                valid += 1;
                // Normalised, within the world, and the same box with its corners swapped.
                assert!(b.min_lon <= b.max_lon && b.min_lat <= b.max_lat, "{t}");
                assert!(b.min_lon >= -180.0 && b.max_lon <= 180.0, "{t}");
                assert!(b.min_lat >= -90.0 && b.max_lat <= 90.0, "{t}");
                let v: Vec<&str> = t.split(',').collect();
                let swapped = format!("{},{},{},{}", v[2], v[3], v[0], v[1]);
                assert_eq!(BBox::parse(&swapped), Ok(b), "{t}");
            } else {
                invalid += 1;
            }
        }
        // Both sides of the grammar were exercised in quantity.
        assert!(
            valid > 10_000 && invalid > 10_000,
            "{valid} valid, {invalid} invalid"
        );
    }

    #[test]
    fn box_extremes_parse_to_their_values() {
        let b = BBox::parse("180,90.000,-180.0,-90").unwrap();
        assert_eq!(
            (b.min_lon, b.min_lat, b.max_lon, b.max_lat),
            (-180.0, -90.0, 180.0, 90.0)
        );
        for t in [
            "180.0000000000000000001,0,0,0",
            "0,90.01,0,0",
            "1e1,0,0,0",
            "0,0,0,0,",
        ] {
            assert!(BBox::parse(t).is_err(), "{t}");
        }
    }
}
