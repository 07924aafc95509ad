//! Reading stored trips: one by id, a batch whole or at id offsets, and the level-0 block scan
//! every raw part of a query goes through, with the dictionary names trips are shown with;
//! the listing, weekly and group queries share these.

use std::collections::HashMap;

use serde::Serialize;

use super::{Dict, Result, Sql};
use crate::batch::{self, End, TripRec, DEST_BYTES, TRIP_BYTES};
use crate::parse::Timestamp;

/// Dictionary names by id, for showing trips.
pub(super) struct Names {
    pub(super) regions: HashMap<u16, String>,
    pub(super) sources: HashMap<u16, String>,
}

impl Names {
    pub(super) fn load(c: &mut dyn Sql) -> Result<Names> {
        let mut by_id = |dict| -> Result<HashMap<u16, String>> {
            Ok(c.names(dict)?
                .into_iter()
                .filter_map(|(id, name)| Some((u16::try_from(id).ok()?, name)))
                .collect())
        };
        Ok(Names {
            regions: by_id(Dict::Region)?,
            sources: by_id(Dict::Datasource)?,
        })
    }

    pub(super) fn id(map: &HashMap<u16, String>, name: &str) -> Option<u16> {
        map.iter().find(|(_, n)| *n == name).map(|(&id, _)| id)
    }

    pub(super) fn trip(&self, first_id: i64, r: &TripRec) -> TripOut {
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
pub(super) fn for_each_trip(
    c: &mut dyn Sql,
    batch_id: i64,
    mut f: impl FnMut(&TripRec),
) -> Result<()> {
    c.origin_blocks(batch_id, &mut |data| {
        data.chunks_exact(TRIP_BYTES)
            .for_each(|b| f(&TripRec::decode(b)))
    })
}

/// Calls `f(record, first id of its batch)` for every visible trip whose `end` lies in one
/// of the level-0 ranges (sorted, merged), plus neighbours in the same 1/256° sub-cells:
/// callers check coordinates exactly. `batch` restricts the scan to one batch.
pub(super) fn scan_blocks(
    c: &mut dyn Sql,
    end: End,
    ranges: &[(i64, i64)],
    batch: Option<i64>,
    mut f: impl FnMut(&[u8], i64),
) -> Result<()> {
    let width = width(end);
    for cell in batch::block_cells(ranges) {
        c.block_runs(
            end,
            cell,
            batch,
            width,
            &mut |dir| batch::runs(dir, cell, ranges),
            &mut |bytes, first_id| {
                for rec in bytes.chunks_exact(width) {
                    f(rec, first_id);
                }
            },
        )?;
    }
    Ok(())
}

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

/// Reads the trips at id offsets `offsets` of one batch.
pub(super) fn read_by_offsets(
    c: &mut dyn Sql,
    batch_id: i64,
    offsets: std::ops::Range<u32>,
) -> Result<Vec<TripRec>> {
    c.read_by_offsets(batch_id, offsets)
}

pub fn trip(c: &mut dyn Sql, id: i64) -> Result<Option<TripOut>> {
    let Some((batch_id, first_id)) = c.batch_of(id)? else {
        return Ok(None);
    };
    let off = (id - first_id) as u32;
    let recs = read_by_offsets(c, batch_id, off..off + 1)?;
    let names = Names::load(c)?;
    Ok(recs.first().map(|r| names.trip(first_id, r)))
}
