//! Domain `uptime`: how long each restaurant store was up and down within its business hours
//! over the last hour, day and week, from hourly-ish status polls, weekly local business hours
//! and time zones. Reports are asynchronous jobs.
//!
//! # Layout
//! - [`parse`]: the three CSV sources told apart by header (any column order, `day` or
//!   `dayOfWeek`, byte-order mark), each row a domain value or a reason; newtypes for store
//!   ids, instants, weekdays, local times and zones.
//! - [`engine`]: the computation, pure: business intervals in UTC across DST changes, the
//!   nearest-poll status, per-window uptime/downtime/coverage. Its module doc states the rules.
//! - [`store`]: the SQLite SQL: schema, the writes of one file (its polls collected per store and
//!   written as day blocks), the sorted per-store reads of a report, the report registry.
//! - [`postgres`]: the same SQL on PostgreSQL (writes loaded with binary `COPY`, report
//!   scans fetched from portals a part at a time); `store` holds what both share.
//! - [`polls`]: polls files read fast: cut into chunks, parsed on worker threads, merged in
//!   file order, exactly as the csv reader reads them.
//! - [`ingest`]: the [`sluice_core::FileIngest`] of the domain (inbox, uploads, CLI, stdin).
//! - [`report`]: a report as a job: streams the polls store by store into the engine and
//!   writes the CSV and native rows; the state of a report comes from its job.
//! - [`api`]: native routes under `/api/v1/uptime/…` (reports, rows, stores, timelines).
//! - [`compat`]: the replaced system's `POST /trigger_report` and `GET /get_report`.
//! - [`generate`]: deterministic, realistic data of the same shape, from a seed.
//! - [`cli`]: arguments and functions the `sluice` binary wires in.
//!
//! # Invariants
//! - A poll is keyed by (store, instant): re-delivered polls count once whatever file brings
//!   them.
//! - Polls are stored once, in `uptime_poll_blocks` (per store, UTC day and file): each
//!   (store, instant) is in exactly one block, that of the file that delivered it last, with
//!   that delivery's status. A file's transaction moves what it re-delivers out of other
//!   files' blocks; a replaced file's blocks are deleted.
//! - A report never holds more than one store's polls at a time.
//! - A report is `Running` exactly while its job is queued or running, so a crash never leaves
//!   one stuck (the platform fails interrupted jobs at start).

pub mod api;
pub mod cli;
pub mod compat;
pub mod engine;
pub mod generate;
pub mod ingest;
pub mod parse;
pub mod polls;
pub mod postgres;
pub mod report;
pub mod store;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sluice_core::{ApiError, Ctx, DbError, Domain, FileIngest, IngestError, Migration};

/// The domain's name: routes, tables, inbox, jobs.
pub const DOMAIN: &str = "uptime";

#[derive(Debug, thiserror::Error)]
pub enum UptimeError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid {param}: {detail}")]
    BadParam { param: &'static str, detail: String },
    /// A parameter names something that does not exist (a 404 over HTTP).
    #[error("{param}: {detail}")]
    NotFound { param: &'static str, detail: String },
    #[error("{0}")]
    Internal(String),
}

impl UptimeError {
    pub fn io(path: &Path, source: std::io::Error) -> UptimeError {
        UptimeError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

impl From<rusqlite::Error> for UptimeError {
    fn from(e: rusqlite::Error) -> Self {
        UptimeError::Db(DbError::Sqlite(e))
    }
}

impl From<UptimeError> for ApiError {
    fn from(e: UptimeError) -> Self {
        match e {
            UptimeError::BadParam { param, detail } => ApiError::bad_param(param, detail),
            UptimeError::NotFound { param, detail } => ApiError {
                param: Some(param.to_owned()),
                ..ApiError::not_found(detail)
            },
            other => ApiError::internal(other),
        }
    }
}

/// The uptime domain, registered by the server and the CLI.
pub struct UptimeDomain;

impl Domain for UptimeDomain {
    fn name(&self) -> &'static str {
        DOMAIN
    }

    fn migrations(&self) -> Vec<Migration> {
        store::migrations()
    }

    fn postgres_migrations(&self) -> Option<Vec<Migration>> {
        Some(postgres::migrations())
    }

    fn router(&self, ctx: Ctx) -> axum::Router {
        api::router(ctx.clone()).merge(compat::router(ctx))
    }

    fn openapi(&self) -> utoipa::openapi::OpenApi {
        let mut doc = <api::ApiDoc as utoipa::OpenApi>::openapi();
        doc.merge(<compat::CompatDoc as utoipa::OpenApi>::openapi());
        doc
    }

    fn file_ingest(&self) -> Option<Arc<dyn FileIngest>> {
        Some(Arc::new(ingest::UptimeIngest))
    }
}
