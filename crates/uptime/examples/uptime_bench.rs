//! Bench driver of U1 (bench/uptime/run.sh), until the `sluice` binary wires the domain in:
//! `uptime_bench generate DIR STORES DAYS SEED`, `uptime_bench ingest DATA_DIR FILE…`,
//! `uptime_bench report DATA_DIR OUT.csv`. Each phase is its own process so that peak RSS is
//! measured per phase; each prints its wall time in seconds.

use std::path::PathBuf;
use std::time::Instant;

use sluice_core::jobs::NewJob;
use sluice_core::{ingest, Ctx, Domain, JobState, Settings, Summary};
use sluice_uptime::cli::{self, GenerateArgs, ReportArgs};
use sluice_uptime::ingest::UptimeIngest;
use sluice_uptime::UptimeDomain;

fn open(dir: &str) -> anyhow::Result<Ctx> {
    let ctx = Ctx::open(Settings::with_data_dir(dir))?;
    ctx.db.migrate("uptime", &UptimeDomain.migrations())?;
    Ok(ctx)
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let t = Instant::now();
    match args.first().map(String::as_str) {
        Some("generate") if args.len() == 5 => {
            let files = cli::generate(&GenerateArgs {
                out: PathBuf::from(&args[1]),
                stores: args[2].parse()?,
                days: args[3].parse()?,
                seed: args[4].parse()?,
            })?;
            eprintln!("generated {files:?}");
        }
        Some("ingest") if args.len() >= 3 => {
            let ctx = open(&args[1])?;
            let files: Vec<PathBuf> = args[2..].iter().map(PathBuf::from).collect();
            let job = ingest::new_job(&ctx, &UptimeIngest, &files, None)?;
            let done = ingest::run(&ctx, &UptimeIngest, &files, job);
            anyhow::ensure!(done.state == JobState::Succeeded, "{:?}", done.error);
            eprintln!("ingested {} rows", done.summary.rows_accepted);
        }
        Some("report") if args.len() == 3 => {
            let ctx = open(&args[1])?;
            let job = ctx.jobs.create(NewJob::new("uptime", "report", "stores"))?;
            job.start()?;
            let args = ReportArgs {
                out: Some(PathBuf::from(&args[2])),
                ..ReportArgs::default()
            };
            cli::report(&ctx, &args, &job)?;
            job.succeed(Summary::default())?;
        }
        _ => anyhow::bail!(
            "usage: uptime_bench generate DIR STORES DAYS SEED | ingest DATA_DIR FILE... | report DATA_DIR OUT.csv"
        ),
    }
    println!("{:.3}", t.elapsed().as_secs_f64());
    Ok(())
}
