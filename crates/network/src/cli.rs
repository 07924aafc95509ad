//! What the `sluice` binary calls for this domain.

use std::path::PathBuf;

use sluice_core::Ctx;

pub use crate::generate::{generate, GenerateArgs, GenerateError};

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Generate(#[from] GenerateError),
    #[error(transparent)]
    Ingest(#[from] sluice_core::IngestError),
    #[error(transparent)]
    Db(#[from] sluice_core::DbError),
}

/// Demo data: three hours of 2017-03-01 ingested now, and a background writer that drops one
/// more 5-minute period into the inbox every 5 seconds (picked up live by `serve`).
pub fn demo(ctx: &Ctx) -> Result<Vec<String>, DemoError> {
    let inbox = ctx.settings.inbox_dir(crate::ingest::DOMAIN);
    let day = chrono::NaiveDate::from_ymd_opt(2017, 3, 1).expect("valid date");
    let args = GenerateArgs {
        day,
        rows_per_file: 5_000,
        parts: 2,
        periods: 36,
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
        "GET /kpi1?from=2017-03-01_00:00:00&to=2017-03-01_01:00:00&interval=5-minute".into(),
        "GET /api/KPIs/2/?interval=2".into(),
        "GET /api/v1/network/kpis/top_cells?interval=1h&limit=10".into(),
        format!(
            "drop files named ipflow_data.ts-<end ms>.<part>.txt into {} (new periods arrive every 5 s)",
            inbox.display()
        ),
    ])
}

fn trickle(args: GenerateArgs) {
    let tmp: PathBuf = args.out.join(".demo-next");
    for periods in 37..=72 {
        std::thread::sleep(std::time::Duration::from_secs(5));
        // Generate into a hidden folder, then move only the newest period into the inbox.
        let next = GenerateArgs {
            periods,
            out: tmp.clone(),
            ..args.clone()
        };
        let Ok(files) = generate(&next) else { return };
        for f in files.iter().rev().take(args.parts as usize) {
            if let Some(name) = f.file_name() {
                let _ = std::fs::rename(f, args.out.join(name));
            }
        }
    }
    let _ = std::fs::remove_dir_all(tmp);
}
