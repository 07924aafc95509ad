//! Driver of benchmark S1 (bench/streams/run.sh) until the `sluice` binary has the
//! `simulate` and `harvest` commands: the same library functions, as two processes.
//!
//! `s1 simulate [SimulateArgs]` serves until Ctrl-C (SIGINT).
//! `s1 harvest --data-dir DIR [HarvestArgs]` harvests (the harvest of `sluice harvest`,
//! without the report figures the command adds after a run of at most 500 000 events, which
//! a loaded machine's slower runs would reach) and prints the outcome as JSON.
//! `s1 check --data-dir DIR` prints one JSON line of figures of the latest run, read from the
//! database: a separate process, so that the harvest's peak RSS is the harvest's alone (a
//! count over a run's tables maps up to the database handle's 256 MiB of file into memory).

use std::path::PathBuf;

use clap::Parser;
use sluice_core::{Ctx, Domain, Settings};
use sluice_streams::cli::{self, HarvestArgs, SimulateArgs};
use sluice_streams::harvest::{self, HarvestParams};
use sluice_streams::StreamsDomain;

#[derive(Parser)]
enum Cmd {
    Simulate(SimulateArgs),
    Harvest {
        #[arg(long)]
        data_dir: PathBuf,
        #[command(flatten)]
        args: HarvestArgs,
    },
    Check {
        #[arg(long)]
        data_dir: PathBuf,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cmd::parse() {
        Cmd::Simulate(args) => cli::simulate(args).await?,
        Cmd::Harvest { data_dir, args } => {
            let ctx = Ctx::open(Settings::with_data_dir(data_dir))?;
            ctx.sqlite()
                .migrate("streams", &StreamsDomain.migrations())?;
            let params = HarvestParams::resolve(&ctx, args.into())?;
            let (_job, running) = harvest::start(&ctx, params, None)?;
            let outcome = running.await??;
            println!("{}", serde_json::to_string(&outcome)?);
            if let Some(e) = outcome.error {
                anyhow::bail!("the harvest failed: {e}");
            }
        }
        Cmd::Check { data_dir } => {
            let ctx = Ctx::open(Settings::with_data_dir(data_dir))?;
            // Received = the run's contiguous arrival numbers; stored = both tables.
            let (events, malformed, received, total_ms): (i64, i64, i64, i64) =
                ctx.sqlite().read(|c| {
                    c.query_row(
                        "SELECT (SELECT count(*) FROM streams_events WHERE run_id = r.id),
                                (SELECT count(*) FROM streams_malformed WHERE run_id = r.id),
                                1 + max((SELECT coalesce(max(seq), -1) FROM streams_events WHERE run_id = r.id),
                                        (SELECT coalesce(max(seq), -1) FROM streams_malformed WHERE run_id = r.id)),
                                r.ms_total
                         FROM streams_runs r ORDER BY r.started_at DESC LIMIT 1",
                        [],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                    )
                    .map_err(sluice_core::DbError::from)
                })?;
            println!(
                "{}",
                serde_json::json!({
                    "events": events, "malformed": malformed, "received": received,
                    "lost": received - events - malformed, "total_ms": total_ms,
                    "events_per_s": (events + malformed) as f64 * 1000.0 / total_ms as f64,
                })
            );
        }
    }
    Ok(())
}
