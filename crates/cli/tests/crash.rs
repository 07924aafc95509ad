//! Crash safety of the real binary: `sluice ingest` killed with SIGKILL in the middle of a
//! large file, then run again, leaves exactly what an uninterrupted run leaves.

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
    let big_dir = tmp.path().join("big");
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
            "200000",
            "--seed",
            "4",
            "--out",
            big_dir.to_str().unwrap(),
        ],
    ));
    let big = std::fs::read_dir(&big_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .max()
        .unwrap();
    let big_name = big.file_name().unwrap().to_owned();
    let big_bytes = std::fs::read(&big).unwrap();
    std::fs::rename(&big, input.join(&big_name)).unwrap();

    // Explicit paths (a folder would skip the named pipe below: it is not a regular file).
    let mut files: Vec<String> = std::fs::read_dir(&input)
        .unwrap()
        .map(|e| e.unwrap().path().to_str().unwrap().to_owned())
        .collect();
    files.sort();
    assert!(files.last().unwrap().ends_with(big_name.to_str().unwrap()));
    let ingest_args: Vec<&str> = ["ingest", "network"]
        .into_iter()
        .chain(files.iter().map(String::as_str))
        .collect();

    let reference = tmp.path().join("reference");
    run_ok(sluice(&reference, &ingest_args));

    // The crashed run reads the large file through a named pipe, so the test knows exactly
    // how far it got: once more than a pipe buffer (64 KiB) past half the file has been
    // written, the ingest is in the middle of it. Then SIGKILL.
    let fifo = input.join(&big_name);
    std::fs::remove_file(&fifo).unwrap();
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let crashed = tmp.path().join("crashed");
    let mut child = sluice(&crashed, &ingest_args)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let half = big_bytes.len() / 2;
    let (tx, rx) = std::sync::mpsc::channel();
    let writer_fifo = fifo.clone();
    let first_half = big_bytes[..half].to_vec();
    std::thread::spawn(move || {
        use std::io::Write;
        // Blocks until the ingest opens the pipe, then until it has read all but a buffer.
        let mut w = std::fs::OpenOptions::new()
            .write(true)
            .open(&writer_fifo)
            .unwrap();
        w.write_all(&first_half).unwrap();
        tx.send(()).unwrap();
        // Held open (not at end of file) until the process is killed.
        std::thread::sleep(std::time::Duration::from_secs(60));
    });
    rx.recv_timeout(std::time::Duration::from_secs(120))
        .expect("the ingest read half of the large file");
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(!status.success());

    // Restart with the complete file in place of the pipe.
    std::fs::remove_file(&fifo).unwrap();
    std::fs::write(&fifo, &big_bytes).unwrap();
    run_ok(sluice(&crashed, &ingest_args));
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
