//! Helpers shared by the integration tests: a fresh data directory with the domain migrated,
//! ingestion of literal CSV files, and reports through the CLI glue.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::PathBuf;
use std::sync::Arc;

use sluice_core::jobs::NewJob;
use sluice_core::{ingest, Backend, Ctx, DatabaseUrl, Domain, JobState, Settings, Summary};
use sluice_server::testing::{self, TestDatabase};
use sluice_uptime::cli::{self, ReportArgs};
use sluice_uptime::ingest::UptimeIngest;
use sluice_uptime::report::{self, NativeRow};
use sluice_uptime::UptimeDomain;

pub struct Env {
    pub dir: tempfile::TempDir,
    pub ctx: Ctx,
    /// The fresh PostgreSQL database on `SLUICE_TEST_BACKEND=postgres`, dropped last.
    _database: Option<Arc<TestDatabase>>,
}

/// A data directory, on the backend `SLUICE_TEST_BACKEND` names.
pub fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::with_data_dir(dir.path().join("data"));
    let database = (testing::backend() == Backend::Postgres).then(TestDatabase::create);
    if let Some(db) = &database {
        settings.database = DatabaseUrl::Postgres(db.url.clone());
    }
    let ctx = Ctx::open(settings).unwrap();
    ctx.db
        .migrate(
            "uptime",
            &UptimeDomain.migrations(),
            UptimeDomain.postgres_migrations().as_deref(),
        )
        .unwrap();
    Env {
        dir,
        ctx,
        _database: database,
    }
}

impl Env {
    /// Writes `(name, content)` files and ingests them as one job.
    pub fn ingest(&self, files: &[(&str, &str)]) -> Summary {
        let paths: Vec<PathBuf> = files
            .iter()
            .map(|(name, content)| {
                let p = self.dir.path().join(name);
                std::fs::write(&p, content).unwrap();
                p
            })
            .collect();
        self.ingest_paths(&paths)
    }

    pub fn ingest_paths(&self, paths: &[PathBuf]) -> Summary {
        let job = ingest::new_job(&self.ctx, &UptimeIngest, paths, None).unwrap();
        let done = ingest::run(&self.ctx, &UptimeIngest, paths, job).unwrap();
        assert_eq!(done.state, JobState::Succeeded, "{:?}", done.error);
        done.summary
    }

    /// Runs a report as `sluice report uptime` does; returns the CSV and the native rows.
    pub fn report(&self, now: Option<&str>, stores: &[&str]) -> (String, Vec<NativeRow>) {
        let job = self
            .ctx
            .jobs
            .create(NewJob::new("uptime", "report", "stores"))
            .unwrap();
        job.start().unwrap();
        let args = ReportArgs {
            out: None,
            now: now.map(str::to_owned),
            stores: stores.iter().map(|s| s.to_string()).collect(),
        };
        let csv = cli::report(&self.ctx, &args, &job).unwrap();
        let id = job.id().to_string();
        assert_eq!(
            job.snapshot().progress.done,
            job.snapshot().progress.total.unwrap()
        );
        job.succeed(Summary::default()).unwrap();
        let rows = report::native_rows(&self.ctx, &id, 0, 100_000).unwrap();
        (std::fs::read_to_string(csv).unwrap(), rows)
    }
}

/// The row of one store.
pub fn row<'a>(rows: &'a [NativeRow], store: &str) -> &'a NativeRow {
    rows.iter()
        .find(|r| r.store_id == store)
        .unwrap_or_else(|| panic!("no row for {store}"))
}

/// `[uptime, downtime]` of hour (minutes), day and week (hours).
pub fn figures(r: &NativeRow) -> [[f64; 2]; 3] {
    [
        [r.last_hour.uptime, r.last_hour.downtime],
        [r.last_day.uptime, r.last_day.downtime],
        [r.last_week.uptime, r.last_week.downtime],
    ]
}

pub const POLLS_HEADER: &str = "store_id,status,timestamp_utc\n";
pub const HOURS_HEADER: &str = "store_id,dayOfWeek,start_time_local,end_time_local\n";
pub const ZONES_HEADER: &str = "store_id,timezone_str\n";
