//! Glue for the `sluice` binary: `sluice generate uptime`, `sluice report uptime` and the
//! uptime part of `sluice demo`. The binary owns argument parsing and progress bars.

use std::path::PathBuf;

use sluice_core::{ingest as core_ingest, Ctx, JobHandle, JobState};

use crate::generate::{self, Config};
use crate::ingest::UptimeIngest;
use crate::parse::Micros;
use crate::report::{self, ReportRequest, ReportState};
use crate::UptimeError;

/// `sluice generate uptime`: the three CSVs of the 2023 export's shape.
#[derive(clap::Args, Clone, Debug)]
pub struct GenerateArgs {
    /// Number of stores.
    #[arg(long, default_value_t = 14_000)]
    pub stores: usize,
    /// Days of polls.
    #[arg(long, default_value_t = 8)]
    pub days: u32,
    /// Seed; the same seed gives the same files.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Output folder (created if needed).
    #[arg(long, default_value = "uptime-data")]
    pub out: PathBuf,
}

/// Writes store_status.csv, menu_hours.csv and timezones.csv into `args.out`.
pub fn generate(args: &GenerateArgs) -> Result<Vec<PathBuf>, UptimeError> {
    generate::write(&args.out, &Config::new(args.stores, args.days, args.seed))
}

/// `sluice report uptime`.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct ReportArgs {
    /// Copy the CSV here (it is always kept under <data-dir>/reports/uptime/ too).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// End of the windows (ISO 8601 or `YYYY-MM-DD HH:MM:SS[.ffffff] UTC`); the latest
    /// poll when absent.
    #[arg(long)]
    pub now: Option<String>,
    /// Only this store (repeatable).
    #[arg(long = "store")]
    pub stores: Vec<String>,
}

impl ReportArgs {
    fn request(&self) -> Result<ReportRequest, UptimeError> {
        let now = self
            .now
            .as_deref()
            .map(Micros::parse)
            .transpose()
            .map_err(|detail| UptimeError::BadParam {
                param: "now",
                detail,
            })?;
        Ok(ReportRequest {
            now,
            stores: (!self.stores.is_empty()).then(|| self.stores.clone()),
            ..ReportRequest::default()
        })
    }
}

/// Computes a report under `job` (created by the caller with
/// `NewJob::new("uptime", "report", "stores")`; the caller starts it before and ends it
/// after, e.g. `job.succeed(..)`). Progress is in stores. Blocking. Returns the CSV's path.
pub fn report(ctx: &Ctx, args: &ReportArgs, job: &JobHandle) -> Result<PathBuf, UptimeError> {
    let req = args.request()?;
    report::validate(ctx, &req)?;
    report::register(ctx, &req, job.id())?;
    let out = report::generate(ctx, &req, job)?;
    match &args.out {
        Some(dest) => {
            std::fs::copy(&out.csv, dest).map_err(|e| UptimeError::io(dest, e))?;
            Ok(dest.clone())
        }
        None => Ok(out.csv),
    }
}

/// Stores and days of the demo data.
const DEMO_STORES: usize = 500;
const DEMO_DAYS: u32 = 8;

/// Generates demo data under `<data-dir>/demo/uptime`, ingests it and produces one report
/// (blocking). Returns lines to try against the server.
pub fn demo(ctx: &Ctx) -> Result<Vec<String>, UptimeError> {
    let dir = ctx.settings.data_dir.join("demo").join("uptime");
    let files = generate::write(&dir, &Config::new(DEMO_STORES, DEMO_DAYS, 42))?;
    let ingest = UptimeIngest;
    let job = core_ingest::new_job(ctx, &ingest, &files, None)?;
    let done = core_ingest::run(ctx, &ingest, &files, job)?;
    if done.state != JobState::Succeeded {
        return Err(UptimeError::Internal(format!(
            "demo ingestion failed: {}",
            done.error.unwrap_or_default()
        )));
    }
    let req = ReportRequest::default();
    let job = report::create_job(ctx, &req)?;
    let id = job.id();
    report::register(ctx, &req, id)?;
    report::run_job(ctx, &req, job);
    if let Some((_, ReportState::Failed(e))) = report::state(ctx, id)? {
        return Err(UptimeError::Internal(format!("demo report failed: {e}")));
    }
    let first = crate::store::read(&ctx.db, |r| Ok::<_, UptimeError>(r.stores_page(1, 0)?))?
        .into_iter()
        .next()
        .map(|s| s.store_id)
        .unwrap_or_default();
    Ok(vec![
        format!("GET  /get_report/{id}                      (the uptime report as CSV, compat)"),
        format!("GET  /api/v1/uptime/reports/{id}/rows      (the same with business and covered time)"),
        format!("GET  /api/v1/uptime/stores/{first}/timeline?window=day   (how one store's numbers come about)"),
        "POST /trigger_report                          (a new report; then GET /get_report/<report_id>)".to_owned(),
    ])
}
