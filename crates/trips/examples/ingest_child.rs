//! A process that ingests generated trips into a data folder, for the kill -9 test:
//! `ingest_child <data_dir> stream|file <rows> <batch_rows>`. It prints `started` once its
//! job runs; the test kills it while it writes.

use std::io::{BufReader, Write};

use sluice_core::jobs::NewJob;
use sluice_core::{Ctx, Domain, Settings};
use sluice_trips::cli::GeneratedReader;
use sluice_trips::generate::Generator;
use sluice_trips::{ingest, TripsDomain};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, dir, mode, rows, chunk] = &args[..] else {
        anyhow::bail!("usage: ingest_child <data_dir> stream|file <rows> <batch_rows>");
    };
    let (rows, chunk): (u64, u64) = (rows.parse()?, chunk.parse()?);
    let ctx = Ctx::open(Settings::with_data_dir(dir))?;
    ctx.sqlite().migrate("trips", &TripsDomain.migrations())?;
    let job = ctx.jobs.create(NewJob::new("trips", "ingest", "bytes"))?;
    job.start()?;
    println!("started");
    std::io::stdout().flush()?;
    let reader = GeneratedReader::new(Generator::new(5, 0.01), rows);
    let summary = match mode.as_str() {
        // Every batch is added to the rollups at once, so a kill leaves visible batches
        // of a staging load behind as well.
        "stream" => ingest::ingest_stream(
            &ctx,
            sluice_trips::group_config(&ctx)?,
            "stream.csv",
            &mut BufReader::new(reader),
            &job,
            ingest::Limits {
                batch_rows: chunk as usize,
                spill_keys: 0,
            },
        )?,
        // Small batches make the file's one transaction grow its WAL steadily.
        _ => {
            let path = std::path::Path::new(dir).join("big.csv");
            let limits = ingest::Limits {
                batch_rows: chunk as usize,
                ..Default::default()
            };
            ingest::ingest_files(
                &ctx,
                sluice_trips::group_config(&ctx)?,
                &[path],
                &job,
                limits,
            )?
        }
    };
    job.succeed(summary)?;
    Ok(())
}
