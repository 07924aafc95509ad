//! Reading stored trips: one by id, a batch whole or at id offsets, and the level-0 block scan
//! every raw part of a query goes through, with the dictionary names trips are shown with;
//! the listing, weekly and group queries share these.

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use sluice_core::DbError;

use super::writer::pairs;
use super::Result;
use crate::batch::{self, End, TripRec, DEST_BYTES, TRIP_BYTES};
use crate::parse::Timestamp;

/// Dictionary names by id, for showing trips.
pub(super) struct Names {
    pub(super) regions: HashMap<u16, String>,
    pub(super) sources: HashMap<u16, String>,
}

impl Names {
    pub(super) fn load(c: &Connection) -> Result<Names> {
        Ok(Names {
            regions: pairs(c, "SELECT id, name FROM trips_region")?,
            sources: pairs(c, "SELECT id, name FROM trips_datasource")?,
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
    c: &Connection,
    batch_id: i64,
    mut f: impl FnMut(&TripRec),
) -> Result<()> {
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
pub(super) fn scan_blocks(
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
pub(super) fn read_by_offsets(
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
