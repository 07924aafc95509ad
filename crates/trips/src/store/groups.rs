//! Similar-trip groups of a configuration: the largest, one by id, and one group's trips.

use std::collections::BTreeMap;

use serde::Serialize;

use super::read::{scan_blocks, Names, TripOut};
use super::writer::keyed;
use super::{GroupQuery, GroupRow, Result, Sql};
use crate::batch::{End, Tally, TripRec};
use crate::engine::{self, GroupConfig, GroupKey};

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

fn group_out(r: GroupRow, cfg: GroupConfig) -> GroupOut {
    let (bucket_start, bucket_end) = cfg.bucket_span(r.bucket);
    let center = |c: i64| engine::h3_center(c as u64).map_or([0.0, 0.0], |(x, y)| [x, y]);
    GroupOut {
        id: r.id,
        region: r.region,
        trips: r.n as u64,
        origin_cell: format!("{:x}", r.o_h3 as u64),
        origin_center: center(r.o_h3),
        destination_cell: format!("{:x}", r.d_h3 as u64),
        destination_center: center(r.d_h3),
        bucket: r.bucket,
        bucket_start,
        bucket_end,
        datasources: BTreeMap::new(),
        key: GroupKey {
            region: r.region_id,
            o_h3: r.o_h3 as u64,
            d_h3: r.d_h3 as u64,
            bucket: r.bucket,
        },
        sources: r.sources,
    }
}

/// Names the datasources of groups.
fn with_sources(c: &mut dyn Sql, mut groups: Vec<GroupOut>) -> Result<Vec<GroupOut>> {
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
    c: &mut dyn Sql,
    cfg: GroupConfig,
    region: Option<&str>,
    min_size: u64,
    limit: u32,
    offset: u64,
) -> Result<Vec<GroupOut>> {
    let groups = c
        .groups(&GroupQuery {
            resolution: u8::from(cfg.resolution),
            bucket_minutes: cfg.bucket_minutes,
            region,
            min_size: min_size as i64,
            limit,
            offset: offset as i64,
        })?
        .into_iter()
        .map(|r| group_out(r, cfg))
        .collect();
    with_sources(c, groups)
}

/// One group of the current configuration.
pub fn group(c: &mut dyn Sql, cfg: GroupConfig, id: i64) -> Result<Option<GroupOut>> {
    let g = c
        .group(id, u8::from(cfg.resolution), cfg.bucket_minutes)?
        .map(|r| group_out(r, cfg));
    Ok(with_sources(c, g.into_iter().collect())?.pop())
}

/// Trips of a group in id order: raw trips under the origin cell's box, keyed again.
pub fn group_trips(
    c: &mut dyn Sql,
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
