//! What the `sluice` binary calls for this domain.

use std::path::PathBuf;

use sluice_core::Ctx;

pub use crate::generate::{generate, generate_periods, GenerateArgs, GenerateError};

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Generate(#[from] GenerateError),
    #[error(transparent)]
    Ingest(#[from] sluice_core::IngestError),
    #[error(transparent)]
    Db(#[from] sluice_core::DbError),
}

/// Demo data: 2017-03-01 00:00–09:00 ingested now, and a background writer that drops the
/// next 5-minute period into the inbox every 5 seconds while the demo runs (picked up live by
/// `serve`).
pub fn demo(ctx: &Ctx) -> Result<Vec<String>, DemoError> {
    let inbox = ctx.settings.inbox_dir(crate::ingest::DOMAIN);
    let day = chrono::NaiveDate::from_ymd_opt(2017, 3, 1).expect("valid date");
    let args = GenerateArgs {
        day,
        rows_per_file: 5_000,
        parts: 2,
        periods: DEMO_PERIODS,
        malformed: 0.001,
        seed: 42,
        out: inbox.clone(),
    };
    let files = generate(&args)?;
    let ingest = crate::ingest::NetworkIngest;
    let job = sluice_core::ingest::new_job(ctx, &ingest, &files, None)?;
    let done = sluice_core::ingest::run(ctx, &ingest, &files, job)?;
    if let Some(e) = done.error {
        return Err(sluice_core::IngestError::Invalid(e).into());
    }
    std::thread::spawn(move || trickle(args));
    Ok(vec![
        "GET /kpi1?from=2017-03-01_08:00:00&to=2017-03-01_09:00:00&interval=5-minute".into(),
        "GET /api/KPIs/2/?interval=2".into(),
        "GET /api/v1/network/kpis/top_cells?interval=1h&limit=10".into(),
        format!(
            "drop files named ipflow_data.ts-<end ms>.<part>.txt into {} (new periods arrive every 5 s)",
            inbox.display()
        ),
    ])
}

/// 2017-03-01 from midnight to 09:00, so the README's 08:00 queries have data.
const DEMO_PERIODS: u32 = 108;

/// The live part of the demo: the next period's files every 5 s for as long as it runs.
fn trickle(args: GenerateArgs) {
    // Generated in a hidden folder, then moved into the inbox: it never sees half a file.
    let tmp: PathBuf = args.out.join(".demo-next");
    let next = GenerateArgs {
        out: tmp.clone(),
        ..args.clone()
    };
    for period in DEMO_PERIODS.. {
        std::thread::sleep(std::time::Duration::from_secs(5));
        let files = match generate_periods(&next, period..period + 1) {
            Ok(files) => files,
            Err(e) => {
                tracing::warn!(error = %e, "the demo's live network feed stopped");
                return;
            }
        };
        for f in files {
            if let Some(name) = f.file_name() {
                let _ = std::fs::rename(&f, args.out.join(name));
            }
        }
    }
}
