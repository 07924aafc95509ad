//! The functions the `sluice` binary calls: generate, demo, and ingestion from a stream.

mod common;

use std::io::Cursor;

use common::env;
use sluice_core::jobs::NewJob;
use sluice_core::FileIngest;
use sluice_uptime::cli::{self, GenerateArgs};
use sluice_uptime::ingest::UptimeIngest;
use sluice_uptime::report::{self, ReportState};
use sluice_uptime::store;

#[test]
fn generate_writes_the_three_sources_deterministically() {
    let e = env();
    let args = GenerateArgs {
        stores: 50,
        days: 3,
        seed: 11,
        out: e.dir.path().join("gen"),
    };
    let files = cli::generate(&args).unwrap();
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        ["store_status.csv", "menu_hours.csv", "timezones.csv"]
    );
    let first = std::fs::read(&files[0]).unwrap();
    cli::generate(&args).unwrap();
    assert_eq!(std::fs::read(&files[0]).unwrap(), first);
    let s = e.ingest_paths(&files);
    assert_eq!(s.rows_rejected, 0);
    let stored = store::read(&e.ctx.db, |r| r.stored()).unwrap();
    assert_eq!(stored.stores, 50);
    // About 20% of stores have no hours and 8% no zone.
    assert!(stored.stores_with_hours < 50 && stored.stores_with_zone < 50);
}

#[test]
fn demo_ingests_and_reports() {
    let e = env();
    let lines = cli::demo(&e.ctx).unwrap();
    let id = lines[0]
        .split_whitespace()
        .nth(1)
        .unwrap()
        .trim_start_matches("/get_report/")
        .to_owned();
    let state = report::state(&e.ctx, id.parse().unwrap()).unwrap().unwrap();
    assert!(matches!(state.1, ReportState::Complete));
    assert_eq!(state.0.rows, Some(500));
    assert!(lines.iter().any(|l| l.contains("/timeline")));
    // A second demo on the same data directory finds the data already there.
    assert_eq!(cli::demo(&e.ctx).unwrap().len(), lines.len());
    assert_eq!(store::read(&e.ctx.db, |r| r.stored()).unwrap().stores, 500);
}

#[test]
fn ingest_from_a_stream_under_a_name() {
    let e = env();
    let job = e
        .ctx
        .jobs
        .create(NewJob::new("uptime", "ingest", "bytes"))
        .unwrap();
    let csv = "store_id,timezone_str\na,Asia/Beirut\nb,Nowhere/Land\n";
    let s = UptimeIngest
        .ingest_reader(&e.ctx, "stdin.csv", &mut Cursor::new(csv), &job)
        .unwrap();
    assert_eq!((s.rows_accepted, s.rows_rejected), (1, 1));
    assert_eq!(s.rejections[0].file, "stdin.csv");
    assert_eq!(s.rejections[0].line, 3);
    let again = UptimeIngest
        .ingest_reader(&e.ctx, "other.csv", &mut Cursor::new(csv), &job)
        .unwrap();
    assert_eq!(
        again.files[0].status,
        sluice_core::jobs::FileStatus::Duplicate
    );
    job.succeed(s).unwrap();
    // The spooled copy is gone.
    let spool = e.ctx.settings.spool_dir("uptime");
    assert_eq!(std::fs::read_dir(spool).unwrap().count(), 0);
}
