//! The real extracts of ../shared/seed-data/uptime: both exports' hours and zones, the public
//! subsets of their polls (one with a byte-order mark), and the business time of the 2024
//! export against a report a third party computed on the full data.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use common::env;
use sluice_uptime::parse::Micros;
use sluice_uptime::store;

fn seed(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/seed-data/uptime")
        .join(rel)
}

#[test]
fn v1_export_merges_overlapping_poll_subsets() {
    let e = env();
    let s = e.ingest_paths(&[
        seed("v1_2023/store_status.subset_neelpatel_5032rows.csv"),
        seed("v1_2023/store_status.subset_madhvi_9999rows.csv"),
        seed("v1_2023/menu_hours.csv"),
        seed("v1_2023/timezones.csv"),
    ]);
    assert_eq!(s.rows_accepted, 5032 + 9999 + 86_198 + 13_559);
    assert_eq!(s.rows_rejected, 0);
    let stored = store::read(&e.ctx.db, |r| r.stored()).unwrap();
    // The subsets share 999 polls (the head of the original file): each counts once.
    assert_eq!(stored.polls, 14_032);
    assert_eq!(stored.stores, 13_966);
    assert_eq!(stored.stores_with_zone, 13_559);
    assert_eq!(
        stored.latest_poll,
        Some(Micros::parse("2023-01-25 18:13:18.647069 UTC").unwrap().0)
    );
    let (csv, rows) = e.report(None, &[]);
    assert_eq!(rows.len(), 13_966);
    assert_eq!(csv.lines().count(), 13_967);
}

#[test]
fn v2_business_time_matches_a_third_party_report() {
    let e = env();
    let s = e.ingest_paths(&[
        seed("v2_2024/store_status.subset_anup_364rows.csv"),
        seed("v2_2024/menu_hours.csv"),
        seed("v2_2024/timezones.csv"),
    ]);
    assert_eq!(s.rows_accepted, 364 + 35_457 + 4559);
    assert_eq!(s.rows_rejected, 0);
    let (_, rows) = e.report(Some("2024-10-14 23:55:18.727055 UTC"), &[]);
    assert_eq!(rows.len(), 4560);
    let ours: HashMap<&str, _> = rows.iter().map(|r| (r.store_id.as_str(), r)).collect();
    // Their uptime + downtime is the business time of every window: up to 2 minutes apart
    // in the hour (they truncate both parts to whole minutes), up to 0.02 h in day and week
    // (both parts rounded to 2 decimals).
    let theirs = std::fs::read_to_string(seed(
        "reports_third_party/v2_report_VanshMotiramani_Store-Monitoring-Service.csv",
    ))
    .unwrap();
    let mut compared = 0;
    for line in theirs.lines().skip(1) {
        let f: Vec<&str> = line.trim_end().split(',').collect();
        let v: Vec<f64> = f[1..7].iter().map(|x| x.parse().unwrap()).collect();
        let r = ours[f[0]];
        assert!((v[0] + v[3] - r.last_hour.business).abs() <= 2.0, "{line}");
        assert!((v[1] + v[4] - r.last_day.business).abs() <= 0.02, "{line}");
        assert!((v[2] + v[5] - r.last_week.business).abs() <= 0.02, "{line}");
        compared += 1;
    }
    assert_eq!(compared, 3678);
}
