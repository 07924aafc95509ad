//! Loads, the unit a file or stream is stored and removed as: creating and finishing one,
//! removing its batches and rollup contribution, finding a file's or a dead owner's. Apart
//! from the writer: these run once per load, in the ledger's transaction.

use rusqlite::{params, Connection, OptionalExtension, Transaction};
use sluice_core::owner::{Owner, OwnerId};
use sluice_core::DbError;

use super::read::for_each_trip;
use super::rollup::apply;
use super::writer::keyed;
use super::{LoadId, Result};
use crate::engine::{self, Deltas, GroupConfig};

/// Creates a staging load of `owner` (the writing handle's owner id).
pub fn create_load(
    tx: &Transaction<'_>,
    owner: &OwnerId,
    name: &str,
    cfg: GroupConfig,
) -> Result<LoadId> {
    tx.execute(
        "INSERT INTO trips_load (name, state, owner, h3_resolution, bucket_minutes)
         VALUES (?1, 'staging', ?2, ?3, ?4)",
        params![
            name,
            owner.as_str(),
            u8::from(cfg.resolution),
            cfg.bucket_minutes
        ],
    )?;
    Ok(LoadId(tx.last_insert_rowid()))
}

/// Marks a staging load as done under its ledger entry.
pub fn finish_load(tx: &Transaction<'_>, load: LoadId, file_id: i64) -> Result<()> {
    tx.execute(
        "UPDATE trips_load SET state = 'done', file_id = ?2 WHERE id = ?1",
        params![load.0, file_id],
    )?;
    Ok(())
}

/// Removes every batch and rollup contribution of a load, then the load itself. Returns
/// the trips removed.
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
    let batches: Vec<(i64, i64, bool)> = {
        let mut stmt = tx.prepare("SELECT id, n, visible FROM trips_batch WHERE load_id = ?1")?;
        let rows = stmt
            .query_map([load.0], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        rows
    };
    let mut removed = 0;
    let mut h3 = engine::H3Cache::new(cfg);
    for (batch_id, n, visible) in batches {
        // Only visible batches were added to the rollups.
        if visible {
            let mut deltas = Deltas::default();
            for_each_trip(tx, batch_id, |t| deltas.add(&keyed(t, &mut h3)))?;
            apply(tx, &deltas, cfg, -1)?;
        }
        tx.execute("DELETE FROM trips_block WHERE batch_id = ?1", [batch_id])?;
        tx.execute("DELETE FROM trips_batch WHERE id = ?1", [batch_id])?;
        removed += n as u64;
    }
    tx.execute("DELETE FROM trips_load WHERE id = ?1", [load.0])?;
    Ok(removed)
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

/// Staging loads whose owner no longer runs. A live owner's loads are never listed: they
/// are in progress, or their removal failed (a full disk) and waits for the owner to end.
pub fn stale_loads(c: &Connection, me: &Owner) -> Result<Vec<LoadId>> {
    let mut stmt = c.prepare("SELECT id, owner FROM trips_load WHERE state = 'staging'")?;
    let rows: Vec<(i64, String)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows
        .into_iter()
        .filter(|(_, owner)| !me.is_alive(owner))
        .map(|(id, _)| LoadId(id))
        .collect())
}
