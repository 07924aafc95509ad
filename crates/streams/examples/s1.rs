//! Driver of benchmark S1 (bench/streams/run.sh) until the `sluice` binary has the
//! `simulate` and `harvest` commands: the same library functions, as two processes.
//!
//! `s1 simulate [SimulateArgs]` serves until Ctrl-C (SIGINT).
//! `s1 harvest --data-dir DIR [--database URL] [HarvestArgs]` harvests (the harvest of `sluice harvest`,
//! without the report figures the command adds after a run of at most 500 000 events, which
//! a loaded machine's slower runs would reach) and prints the outcome as JSON.
//! `s1 check --data-dir DIR [--database URL]` prints one JSON line of figures of the latest run, read from the
//! database: a separate process, so that the harvest's peak RSS is the harvest's alone (a
//! count over a run's tables maps up to the database handle's 256 MiB of file into memory).

use std::path::PathBuf;

use clap::Parser;
use sluice_core::{Ctx, Database, DatabaseUrl, DbError, Domain, Settings};
use sluice_streams::cli::{self, HarvestArgs, SimulateArgs};
use sluice_streams::harvest::{self, HarvestParams};
use sluice_streams::StreamsDomain;

#[derive(Parser)]
enum Cmd {
    Simulate(SimulateArgs),
    Harvest {
        #[command(flatten)]
        store: Store,
        #[command(flatten)]
        args: HarvestArgs,
    },
    Check {
        #[command(flatten)]
        store: Store,
    },
}

#[derive(clap::Args)]
struct Store {
    #[arg(long)]
    data_dir: PathBuf,
    /// The database (`postgres://…`); the SQLite file in the data directory by default.
    #[arg(long, default_value = "")]
    database: DatabaseUrl,
}

impl Store {
    fn open(self) -> anyhow::Result<Ctx> {
        let mut settings = Settings::with_data_dir(self.data_dir);
        settings.database = self.database;
        Ok(Ctx::open(settings)?)
    }
}

/// The latest run's events, malformed messages, received messages (its contiguous arrival
/// numbers) and duration; the same SQL on both backends.
const CHECK_SQL: &str = "SELECT (SELECT count(*) FROM streams_events WHERE run_id = r.id),
        (SELECT count(*) FROM streams_malformed WHERE run_id = r.id),
        1 + (SELECT coalesce(max(seq), -1) FROM (
               SELECT seq FROM streams_events WHERE run_id = r.id
               UNION ALL SELECT seq FROM streams_malformed WHERE run_id = r.id) AS s),
        r.ms_total
     FROM streams_runs r ORDER BY r.started_at DESC LIMIT 1";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cmd::parse() {
        Cmd::Simulate(args) => cli::simulate(args).await?,
        Cmd::Harvest { store, args } => {
            let ctx = store.open()?;
            ctx.db.migrate(
                "streams",
                &StreamsDomain.migrations(),
                StreamsDomain.postgres_migrations().as_deref(),
            )?;
            let params = HarvestParams::resolve(&ctx, args.into())?;
            let (_job, running) = harvest::start(&ctx, params, None)?;
            let outcome = running.await??;
            println!("{}", serde_json::to_string(&outcome)?);
            if let Some(e) = outcome.error {
                anyhow::bail!("the harvest failed: {e}");
            }
        }
        Cmd::Check { store } => {
            let ctx = store.open()?;
            let (events, malformed, received, total_ms): (i64, i64, i64, i64) = match &ctx.db {
                Database::Sqlite(db) => db.read(|c| {
                    c.query_row(CHECK_SQL, [], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                    })
                    .map_err(DbError::from)
                })?,
                Database::Postgres(pg) => pg.read(|tx| {
                    let r = tx.query_one(CHECK_SQL, &[]).map_err(DbError::from)?;
                    Ok::<_, DbError>((r.get(0), r.get(1), r.get(2), r.get(3)))
                })?,
            };
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
