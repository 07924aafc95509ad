//! The shared platform of sluice. It knows no domain: domains plug in through [`Domain`].
//!
//! # Layout
//! - [`database`]: which database (the setting `database`): SQLite or PostgreSQL.
//! - [`db`]: the SQLite handle (WAL, one writer, pooled readers) and per-owner migrations.
//! - [`pg`]: the PostgreSQL handle (pools, replica reads, owner leases, `LISTEN`/`NOTIFY`).
//! - [`jobs`]: persisted jobs, their progress and summaries, and the in-process event bus
//!   every push channel (SSE, WebSocket, webhooks) reads from.
//! - [`ledger`]: the ingestion ledger that makes every file ingestion atomic and idempotent.
//! - [`owner`]: who owns unfinished work (jobs, staging loads): a lock held per open handle.
//! - [`ingest`]: running file ingestions as jobs, spooling uploads, the generic ingest routes.
//! - [`inbox`]: watching inbox folders and handing over files once they are complete.
//! - [`http`]: problem+json errors and extractors that turn bad input into 4xx answers.
//! - [`time`]: parsing and formatting of UTC timestamps in the formats the APIs accept.
//! - [`cache`]: read responses cached until the database changes (exact, not time-based).
//! - [`config`]: settings shared by every command.
//! - [`webhook`]: signed delivery of final job states to `callback_url`s.
//!
//! # Invariants
//! - Every input file is ingested in one transaction together with its ledger entry.
//! - Job state changes are written to the database before they are published on the bus.

pub mod cache;
pub mod config;
pub mod database;
pub mod db;
pub mod http;
pub mod inbox;
pub mod ingest;
pub mod jobs;
pub mod ledger;
pub mod owner;
pub mod pg;
pub mod time;
pub mod webhook;

use std::sync::Arc;

pub use config::Settings;
pub use database::{Backend, Database, DatabaseUrl};
pub use db::{Db, DbError, Migration};
pub use http::ApiError;
pub use ingest::{FileIngest, IngestError};
pub use jobs::{Job, JobHandle, JobId, JobState, Jobs, Summary};
pub use pg::PgDb;

/// What every request handler and background task of a domain gets: the database, the jobs
/// and the settings.
#[derive(Clone)]
pub struct Ctx {
    pub db: Database,
    pub jobs: Jobs,
    pub settings: Arc<Settings>,
}

impl Ctx {
    /// Opens the database the settings name (SQLite under the data directory by default)
    /// and applies the core migrations.
    pub fn open(settings: Settings) -> Result<Ctx, DbError> {
        std::fs::create_dir_all(&settings.data_dir).map_err(DbError::Io)?;
        let db = match &settings.database {
            DatabaseUrl::Postgres(url) => {
                Database::Postgres(PgDb::connect(url, settings.database_replica.as_deref())?)
            }
            DatabaseUrl::DataDir | DatabaseUrl::Sqlite(_) => {
                if settings.database_replica.is_some() {
                    return Err(DbError::Unsupported(
                        "database_replica needs a PostgreSQL database".into(),
                    ));
                }
                Database::Sqlite(Db::open_capped(&settings.db_path(), settings.max_db_bytes)?)
            }
        };
        db.migrate(
            "core",
            &jobs::migrations(),
            Some(&jobs::postgres_migrations()),
        )?;
        let jobs = Jobs::new(db.clone(), settings.webhook_secret.clone());
        Ok(Ctx {
            db,
            jobs,
            settings: Arc::new(settings),
        })
    }

    /// The SQLite handle, for what works on the embedded file only (`backup`, tests that
    /// inspect its tables).
    ///
    /// # Panics
    /// On PostgreSQL: callers check the backend first (a usage error, not an input error).
    pub fn sqlite(&self) -> &Db {
        match &self.db {
            Database::Sqlite(db) => db,
            Database::Postgres(_) => {
                panic!("an SQLite-only operation was called on PostgreSQL")
            }
        }
    }
}

/// A built-in domain: its schema, its routes and, optionally, its inbox.
pub trait Domain: Send + Sync + 'static {
    /// Short lowercase name used in routes, table prefixes and inbox folders.
    fn name(&self) -> &'static str;
    /// The domain's migrations, tracked in their own history table.
    fn migrations(&self) -> Vec<Migration>;
    /// Its migrations on PostgreSQL; `None` for a domain without a PostgreSQL store, which
    /// then refuses to start there, naming it.
    fn postgres_migrations(&self) -> Option<Vec<Migration>> {
        None
    }
    /// Compat and native routes of the domain, with absolute paths.
    fn router(&self, ctx: Ctx) -> axum::Router;
    /// The OpenAPI description of the domain's routes.
    fn openapi(&self) -> utoipa::openapi::OpenApi {
        utoipa::openapi::OpenApiBuilder::new().build()
    }
    /// Checks the domain's table of the config file (and the environment folded into it)
    /// before anything is opened: a bad value is a start-up error naming the setting.
    fn check_settings(&self, _settings: &Settings) -> Result<(), String> {
        Ok(())
    }
    /// File ingestion, for domains fed by CSV files (inbox, upload, CLI).
    fn file_ingest(&self) -> Option<Arc<dyn FileIngest>> {
        None
    }
}
