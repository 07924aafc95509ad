//! An instance killed with SIGKILL in the middle of a job, on a PostgreSQL database shared
//! with another instance: the survivor marks the job failed once the dead one's lease
//! expires, pushes that to its clients, serves nothing of the killed file, and re-ingesting
//! on it gives exactly the answers of a clean run.
//!
//! Needs the test PostgreSQL server (`SLUICE_TEST_POSTGRES`, `.ci/postgres.sh`): skipped
//! without it, except under CI, where that fails.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

use futures::StreamExt;
use serde_json::Value;
use sluice_core::{Backend, Domain};
use sluice_server::testing::{postgres_admin, TestServer};

const BIN: &str = env!("CARGO_BIN_EXE_sluice");

fn sluice(data: &Path, database: Option<&str>, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.arg("--data-dir").arg(data);
    if let Some(url) = database {
        c.arg("--database").arg(url);
    }
    c.args(args).env("SLUICE_LOG", "warn");
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

fn domains() -> Vec<Arc<dyn Domain>> {
    vec![Arc::new(sluice_network::NetworkDomain)]
}

async fn get(s: &TestServer, path: &str) -> String {
    let resp = reqwest::get(s.url(path)).await.unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    resp.text().await.unwrap()
}

/// Every KPI answer a client reads, and the ingested files' names and sizes.
async fn answers(s: &TestServer) -> Vec<String> {
    let mut out = Vec::new();
    for kpi in ["top_services", "top_cells"] {
        for interval in ["5m", "1h"] {
            out.push(
                get(
                    s,
                    &format!("/api/v1/network/kpis/{kpi}?interval={interval}&limit=20"),
                )
                .await,
            );
        }
    }
    let files: Value = serde_json::from_str(&get(s, "/api/v1/network/files").await).unwrap();
    let mut names: Vec<String> = files
        .as_array()
        .unwrap()
        .iter()
        .map(|f| format!("{} {}", f["name"], f["size"]))
        .collect();
    names.sort();
    out.push(names.join("\n"));
    out
}

/// Reads `/api/v1/events` until a job reaches `state`; returns that job.
async fn until_state(resp: reqwest::Response, state: &str) -> Value {
    let mut buf = String::new();
    let mut stream = resp.bytes_stream();
    loop {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(60), stream.next())
            .await
            .expect("an event within 60 s")
            .expect("the stream stays open")
            .unwrap();
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(i) = buf.find('\n') {
            let line = buf[..i].trim_end().to_owned();
            buf.drain(..=i);
            if let Some(d) = line.strip_prefix("data:") {
                let v: Value = serde_json::from_str(d.trim()).unwrap();
                if v["job"]["state"] == state {
                    return v["job"].clone();
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_instance_killed_mid_job_is_failed_by_another_and_reingesting_equals_a_clean_run() {
    if postgres_admin().is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs this: SLUICE_TEST_POSTGRES must name the test server"
        );
        eprintln!("skipped: SLUICE_TEST_POSTGRES is not set");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("in");
    let gen = |out: &Path, periods: &str, rows: &str, seed: &str| {
        run_ok(sluice(
            tmp.path(),
            None,
            &[
                "generate",
                "network",
                "--periods",
                periods,
                "--parts",
                "1",
                "--rows-per-file",
                rows,
                "--seed",
                seed,
                "--out",
                out.to_str().unwrap(),
            ],
        ))
    };
    gen(&input, "2", "2000", "3");
    let big_dir = tmp.path().join("big");
    gen(&big_dir, "3", "200000", "4");
    let big = std::fs::read_dir(&big_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .max()
        .unwrap();
    let big_name = big.file_name().unwrap().to_owned();
    let big_bytes = std::fs::read(&big).unwrap();
    std::fs::rename(&big, input.join(&big_name)).unwrap();
    let mut files: Vec<String> = std::fs::read_dir(&input)
        .unwrap()
        .map(|e| e.unwrap().path().to_str().unwrap().to_owned())
        .collect();
    files.sort();
    let ingest_args: Vec<&str> = ["ingest", "network"]
        .into_iter()
        .chain(files.iter().map(String::as_str))
        .collect();

    // The reference: a clean run on SQLite, served.
    let reference = TestServer::start_on(Backend::Sqlite, domains(), |_| {}).await;
    for f in &files {
        let name = Path::new(f).file_name().unwrap().to_str().unwrap();
        let resp = reqwest::Client::new()
            .post(reference.url(&format!("/api/v1/network/uploads?name={name}")))
            .header("content-type", "text/csv")
            .body(std::fs::read(f).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 202);
    }

    // The survivor serves the shared database; the other instance ingests into it.
    let survivor = TestServer::start_on(Backend::Postgres, domains(), |_| {}).await;
    let url = survivor.database().unwrap().url.clone();
    let events = reqwest::get(survivor.url("/api/v1/events?domain=network"))
        .await
        .unwrap();

    // The killed run reads the large file through a named pipe: SIGKILL once it read half.
    let fifo = input.join(&big_name);
    std::fs::remove_file(&fifo).unwrap();
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let other = tmp.path().join("other");
    let mut child = sluice(&other, Some(&url), &ingest_args)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let first_half = big_bytes[..big_bytes.len() / 2].to_vec();
    let writer_fifo = fifo.clone();
    std::thread::spawn(move || {
        use std::io::Write;
        let mut w = std::fs::OpenOptions::new()
            .write(true)
            .open(&writer_fifo)
            .unwrap();
        w.write_all(&first_half).unwrap();
        tx.send(()).unwrap();
        std::thread::sleep(std::time::Duration::from_secs(60));
    });
    tokio::task::spawn_blocking(move || {
        rx.recv_timeout(std::time::Duration::from_secs(120))
            .expect("the ingest read half of the large file")
    })
    .await
    .unwrap();
    child.kill().unwrap(); // SIGKILL
    assert!(!child.wait().unwrap().success());

    // The survivor fails the dead instance's job once its lease expires, and pushes it.
    let failed = until_state(events, "failed").await;
    assert!(
        failed["error"].as_str().unwrap().contains("interrupted"),
        "{failed}"
    );
    let running: Value =
        serde_json::from_str(&get(&survivor, "/api/v1/jobs?state=running").await).unwrap();
    assert_eq!(running.as_array().map(Vec::len), Some(0), "{running}");
    // Of the killed file nothing is visible: only the small files committed before it.
    let listed: Value =
        serde_json::from_str(&get(&survivor, "/api/v1/network/files").await).unwrap();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert!(!names.contains(&big_name.to_str().unwrap()), "{names:?}");

    // Re-ingesting (the whole file in place of the pipe) gives the clean run's answers.
    std::fs::remove_file(&fifo).unwrap();
    std::fs::write(&fifo, &big_bytes).unwrap();
    run_ok(sluice(&other, Some(&url), &ingest_args));
    // The reference's uploads ran meanwhile; wait for the last (bounded, not timed).
    for _ in 0..600 {
        let done: Value =
            serde_json::from_str(&get(&reference, "/api/v1/jobs?state=succeeded").await).unwrap();
        if done.as_array().unwrap().len() == files.len() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(answers(&survivor).await, answers(&reference).await);
}
