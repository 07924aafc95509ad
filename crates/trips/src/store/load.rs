//! Loads, the unit a file or stream is stored and removed as: creating and finishing one,
//! removing its batches and rollup contribution, finding a file's or a dead owner's. Apart
//! from the writer: these run once per load, in the ledger's transaction.

use sluice_core::owner::{Owner, OwnerId};
use sluice_core::DbError;

use super::read::for_each_trip;
use super::rollup::apply;
use super::writer::keyed;
use super::{LoadId, Result, Sql};
use crate::engine::{self, Deltas, GroupConfig};

/// Creates a staging load of `owner` (the writing handle's owner id).
pub fn create_load(
    c: &mut dyn Sql,
    owner: &OwnerId,
    name: &str,
    cfg: GroupConfig,
) -> Result<LoadId> {
    c.create_load(
        owner.as_str(),
        name,
        u8::from(cfg.resolution),
        cfg.bucket_minutes,
    )
}

/// Marks a staging load as done under its ledger entry.
pub fn finish_load(c: &mut dyn Sql, load: LoadId, file_id: i64) -> Result<()> {
    c.finish_load(load, file_id)
}

/// Removes every batch and rollup contribution of a load, then the load itself. Returns
/// the trips removed.
pub fn remove_load(c: &mut dyn Sql, load: LoadId) -> Result<u64> {
    let Some((res, minutes)) = c.load_config(load)? else {
        return Ok(0);
    };
    let cfg = GroupConfig::new(res, minutes).map_err(DbError::Task)?;
    let mut removed = 0;
    let mut h3 = engine::H3Cache::new(cfg);
    for (batch_id, n, visible) in c.load_batches(load)? {
        // Only visible batches were added to the rollups.
        if visible {
            let mut deltas = Deltas::default();
            for_each_trip(c, batch_id, |t| deltas.add(&keyed(t, &mut h3)))?;
            apply(c, &deltas, cfg, -1)?;
        }
        c.delete_batch(batch_id)?;
        removed += n as u64;
    }
    c.delete_load(load)?;
    Ok(removed)
}

/// The load of a ledger entry.
pub fn load_of_file(c: &mut dyn Sql, file_id: i64) -> Result<Option<LoadId>> {
    c.load_of_file(file_id)
}

/// Staging loads whose owner no longer runs. A live owner's loads are never listed: they
/// are in progress, or their removal failed (a full disk) and waits for the owner to end.
pub fn stale_loads(c: &mut dyn Sql, me: &Owner) -> Result<Vec<LoadId>> {
    Ok(c.staging_loads()?
        .into_iter()
        .filter(|(_, owner)| !me.is_alive(owner))
        .map(|(id, _)| id)
        .collect())
}
