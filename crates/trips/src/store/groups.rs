//! Similar-trip groups of a configuration: the largest, one by id, and one group's trips.

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::read::{scan_blocks, Names, TripOut};
use super::writer::keyed;
use super::Result;
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
