//! Crash safety of the real binary: `sluice ingest` killed with SIGKILL in the middle of a
//! large file, then run again, leaves exactly what an uninterrupted run leaves.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_sluice");

fn sluice(data: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.arg("--data-dir")
        .arg(data)
        .args(args)
        .env("SLUICE_LOG", "warn");
    c
}

fn run_ok(mut c: Command) {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A stored KPI row and an interval row.
type KpiRow = (i64, i64, i64, i64, i64, i64);
type IntervalRow = (i64, i64, i64, i64);

/// Every stored KPI and interval, and the ledger's names, in a stable order.
fn dump(data: &Path) -> (Vec<KpiRow>, Vec<IntervalRow>, Vec<String>) {
    let c = rusqlite::Connection::open(data.join("sluice.db")).unwrap();
    let kpis = c
        .prepare("SELECT kpi, granularity, interval_start, rank, item_id, value FROM network_kpi ORDER BY 1,2,3,4")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let intervals = c
        .prepare(
            "SELECT granularity, interval_start, rows, coverage FROM network_interval ORDER BY 1,2",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let names = c
        .prepare("SELECT name FROM core_ledger WHERE domain = 'network' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<Vec<String>, _>>()
        .unwrap();
    (kpis, intervals, names)
}

#[test]
fn sigkill_mid_file_then_restart_equals_an_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    // Two small files, then one large one (the generator writes one period per file).
    run_ok(sluice(
        tmp.path(),
        &[
            "generate",
            "network",
            "--periods",
            "2",
            "--parts",
            "1",
            "--rows-per-file",
            "2000",
            "--seed",
            "3",
            "--out",
            input.to_str().unwrap(),
        ],
    ));
    let big = tmp.path().join("big");
    run_ok(sluice(
        tmp.path(),
        &[
            "generate",
            "network",
            "--periods",
            "3",
            "--parts",
            "1",
            "--rows-per-file",
            "400000",
            "--seed",
            "4",
            "--out",
            big.to_str().unwrap(),
        ],
    ));
    let last = std::fs::read_dir(&big)
        .unwrap()
        .map(|e| e.unwrap().path())
        .max()
        .unwrap();
    std::fs::rename(&last, input.join(last.file_name().unwrap())).unwrap();

    let reference = tmp.path().join("reference");
    run_ok(sluice(
        &reference,
        &["ingest", "network", input.to_str().unwrap()],
    ));

    let crashed = tmp.path().join("crashed");
    let mut child = sluice(&crashed, &["ingest", "network", input.to_str().unwrap()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut killed_at = None;
    for line in stderr.lines() {
        let line = line.unwrap();
        // "job <id> running: <done>/<total> bytes"
        if let Some(rest) = line.split("running: ").nth(1) {
            let (done, total) = rest.split_once('/').unwrap();
            let done: u64 = done.parse().unwrap();
            let total: u64 = total.split_whitespace().next().unwrap().parse().unwrap();
            // Past the small files, inside the large one.
            if done > 300_000 && done < total {
                child.kill().unwrap(); // SIGKILL
                killed_at = Some((done, total));
                break;
            }
        }
    }
    let status = child.wait().unwrap();
    let (done, total) = killed_at.expect("the ingest was killed mid-way");
    assert!(!status.success(), "killed at {done}/{total}");

    run_ok(sluice(
        &crashed,
        &["ingest", "network", input.to_str().unwrap()],
    ));
    let (a, b) = (dump(&reference), dump(&crashed));
    assert!(!a.0.is_empty());
    assert_eq!(a.2.len(), 3);
    assert_eq!(a, b);

    // The killed job is not left running.
    let out = sluice(&crashed, &["jobs", "list", "--state", "running"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).trim().is_empty());
    let out = sluice(&crashed, &["jobs", "list", "--state", "failed"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
}
