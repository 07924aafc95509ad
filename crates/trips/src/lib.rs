//! Domain `trips`: vehicle trips at 100-million-row scale — streaming CSV ingestion,
//! similar-trip groups and exact weekly averages for a region or a bounding box.
//!
//! # Layout
//! - [`parse`]: CSV rows → [`parse::TripRow`] (WKT points, UTC timestamps, names) or a reason.
//! - [`engine`]: the pure computation — the 1/1024° Morton grid and its quadtree levels, ISO
//!   weeks, decomposing a box into rollup cells plus raw edge ranges, group keys (H3 cells and
//!   time-of-day buckets that wrap midnight), rollup deltas, weekly averages.
//! - [`batch`]: the binary layout of stored trips — batches sorted by origin and destination
//!   cell, cut into per-cell blocks with a sub-cell directory.
//! - [`store`]: all SQL — the schema (dictionaries, batches and blocks, rollups per week and
//!   cell, per cell pair, per region, groups), writing batches and rollups, removing a load,
//!   and the queries.
//! - [`ingest`]: a parser thread feeding the writer; files (one transaction each with the
//!   ledger) and streams (committed batches under a staging load).
//! - [`api`]: native routes under `/api/v1/trips/…`.
//! - [`density`]: `/api/v1/trips/density`, trips per grid cell from the rollups (for maps).
//! - [`compat`]: the replaced Flask system's `/vehicles…` routes, same shapes.
//! - [`generate`]: deterministic realistic trips (hot spots, commute peaks, years, sources).
//! - [`cli`]: glue for the `sluice` binary: `generate trips` and the demo.
//!
//! # Invariants
//! - Queries read visible batches only; a batch becomes visible in the transaction that adds
//!   its trips to the rollups, so the rollup and raw parts of an answer always agree.
//! - Box answers are exact: rollup cells are used only when fully inside the box; trips in
//!   cells cut by the edge are checked one by one.
//! - A load's trips are found through its batches; removing a load subtracts the rollups of
//!   its visible batches, recomputed from their records.

pub mod api;
pub mod batch;
pub mod cli;
pub mod compat;
pub mod density;
pub mod engine;
pub mod generate;
pub mod ingest;
pub mod parse;
pub mod store;
#[cfg(test)]
mod testgen;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sluice_core::{Ctx, DbError, Domain, FileIngest, IngestError, JobHandle, Migration, Summary};

use crate::engine::GroupConfig;

#[derive(Debug, thiserror::Error)]
pub enum TripsError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error("io error: {0}")]
    Io(#[from] std::io::Error),
    #[error("invalid trips setting: {0}")]
    Config(String),
}

impl From<rusqlite::Error> for TripsError {
    fn from(e: rusqlite::Error) -> Self {
        TripsError::Db(DbError::Sqlite(e))
    }
}

/// Grouping settings from the `[trips]` table of the config file (`h3_resolution`,
/// `bucket_minutes`), defaults resolution 7 and 60 minutes.
pub fn group_config(ctx: &Ctx) -> Result<GroupConfig, TripsError> {
    let t = ctx.settings.domain(ingest::DOMAIN);
    let def = GroupConfig::default();
    let res = match t.get("h3_resolution") {
        None => u8::from(def.resolution),
        Some(v) => v
            .as_integer()
            .and_then(|i| u8::try_from(i).ok())
            .ok_or_else(|| TripsError::Config(format!("h3_resolution = {v} is not 0..15")))?,
    };
    let minutes = match t.get("bucket_minutes") {
        None => def.bucket_minutes,
        Some(v) => v
            .as_integer()
            .and_then(|i| u32::try_from(i).ok())
            .ok_or_else(|| TripsError::Config(format!("bucket_minutes = {v} is not a number")))?,
    };
    GroupConfig::new(res, minutes).map_err(TripsError::Config)
}

/// The trips domain.
#[derive(Clone, Copy, Debug, Default)]
pub struct TripsDomain;

impl Domain for TripsDomain {
    fn name(&self) -> &'static str {
        ingest::DOMAIN
    }
    fn migrations(&self) -> Vec<Migration> {
        store::migrations()
    }
    fn postgres_migrations(&self) -> Option<Vec<Migration>> {
        Some(store::postgres_migrations())
    }
    fn router(&self, ctx: Ctx) -> axum::Router {
        // Rollups an upgrade left to build, and rows of streams whose process died, which
        // stay visible until removed: both at start, off the caller's thread (no-ops when
        // there is nothing to do).
        let bg = ctx.clone();
        std::thread::spawn(move || {
            if let Err(e) = ingest::complete_levels(&bg) {
                tracing::error!(error = %e, "could not build the pending trips rollups");
            }
            if let Err(e) = ingest::cleanup(&bg) {
                tracing::error!(error = %e, "could not remove interrupted trips streams");
            }
        });
        api::routes(ctx.clone())
            .merge(density::routes(ctx.clone()))
            .merge(compat::routes(ctx, Arc::new(TripsIngest)))
    }
    fn openapi(&self) -> utoipa::openapi::OpenApi {
        use utoipa::OpenApi;
        let mut doc = api::TripsApi::openapi();
        doc.merge(density::DensityApi::openapi());
        doc.merge(compat::CompatApi::openapi());
        doc
    }
    fn file_ingest(&self) -> Option<Arc<dyn FileIngest>> {
        Some(Arc::new(TripsIngest))
    }
}

/// File and stream ingestion of trips CSVs.
#[derive(Clone, Copy, Debug, Default)]
pub struct TripsIngest;

fn to_ingest(e: TripsError) -> IngestError {
    match e {
        TripsError::Ingest(e) => e,
        TripsError::Db(e) => IngestError::Db(e),
        other => IngestError::Invalid(other.to_string()),
    }
}

impl FileIngest for TripsIngest {
    fn domain(&self) -> &'static str {
        ingest::DOMAIN
    }
    fn accepts(&self, path: &Path) -> bool {
        path.extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
    }
    fn ingest(
        &self,
        ctx: &Ctx,
        files: &[PathBuf],
        job: &JobHandle,
    ) -> Result<Summary, IngestError> {
        let cfg = group_config(ctx).map_err(to_ingest)?;
        ingest::ingest_files(ctx, cfg, files, job, Default::default())
    }
    fn ingest_reader(
        &self,
        ctx: &Ctx,
        name: &str,
        reader: &mut (dyn std::io::BufRead + Send),
        job: &JobHandle,
    ) -> Result<Summary, IngestError> {
        let cfg = group_config(ctx).map_err(to_ingest)?;
        ingest::ingest_stream(ctx, cfg, name, reader, job, Default::default())
    }
}
