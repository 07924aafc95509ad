//! What `sluice serve` says and keeps about jobs: one log line when a job starts and one when
//! it ends (nothing per inbox scan), a job list without per-file details, and finished jobs
//! pruned after `job_retention_days`.

mod common;

use std::path::Path;
use std::process::Command;

use common::{Serving, BIN};
use serde_json::Value;

struct Server(Serving);

impl Server {
    /// `sluice serve` with the default log filter, on a free port.
    fn start(data: &Path) -> Server {
        Server(Serving::start(
            data,
            &["serve", "--inbox-rescan-secs", "1"],
            None,
        ))
    }

    /// Log lines up to and including the first that contains `what`.
    fn log_until(&mut self, what: &str) -> Vec<String> {
        let mut seen = Vec::new();
        for line in self.0.log.by_ref() {
            let line = line.unwrap();
            let done = line.contains(what);
            seen.push(line);
            if done {
                return seen;
            }
        }
        panic!("the server ended before logging `{what}`: {seen:#?}");
    }

    fn get(&self, path: &str) -> (u16, Value) {
        let url = format!("{}{path}", self.0.base);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let resp = reqwest::get(url).await.unwrap();
            (
                resp.status().as_u16(),
                resp.json().await.unwrap_or(Value::Null),
            )
        })
    }
}

/// A valid network file named as the inbox expects.
fn network_file(dir: &Path) -> std::path::PathBuf {
    let out = dir.join("gen");
    let status = Command::new(BIN)
        .args(["generate", "network", "--periods", "1", "--parts", "1"])
        .args(["--rows-per-file", "200", "--out", out.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::read_dir(&out)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
}

#[test]
fn one_line_per_job_start_and_end_and_a_list_without_files() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let file = network_file(tmp.path());
    let mut server = Server::start(&data);
    let inbox = data.join("inbox/network");
    std::fs::create_dir_all(&inbox).unwrap();
    std::fs::rename(&file, inbox.join(file.file_name().unwrap())).unwrap();
    let lines = server.log_until("job ended");
    let count = |what: &str| lines.iter().filter(|l| l.contains(what)).count();
    assert_eq!(count("job started"), 1, "{lines:#?}");
    assert_eq!(count("job ended"), 1, "{lines:#?}");
    assert_eq!(count("inbox files complete"), 0, "{lines:#?}");
    let end = lines.last().unwrap();
    assert!(
        end.contains("state=\"succeeded\"") || end.contains("state=succeeded"),
        "{end}"
    );
    assert!(end.contains("rows_accepted=200"), "{end}");

    let (_, list) = server.get("/api/v1/jobs");
    let job = &list[0];
    assert_eq!(job["summary"]["rows_accepted"], 200);
    assert_eq!(job["summary"]["files"], serde_json::json!([]));
    let (status, full) = server.get(&format!("/api/v1/jobs/{}", job["id"].as_str().unwrap()));
    assert_eq!(status, 200);
    assert_eq!(full["summary"]["files"].as_array().unwrap().len(), 1);
}

#[test]
fn finished_jobs_past_the_retention_are_pruned_at_start() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let file = network_file(tmp.path());
    let out = Command::new(BIN)
        .arg("--data-dir")
        .arg(&data)
        .args(["ingest", "network", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let db = rusqlite::Connection::open(data.join("sluice.db")).unwrap();
    let id: String = db
        .query_row("SELECT id FROM core_jobs", [], |r| r.get(0))
        .unwrap();
    db.execute(
        "UPDATE core_jobs SET finished_at = '2001-01-01T00:00:00+00:00'",
        [],
    )
    .unwrap();
    drop(db);
    let mut server = Server::start(&data);
    let lines = server.log_until("pruned finished jobs");
    assert!(lines.last().unwrap().contains("jobs=1"), "{lines:#?}");
    assert_eq!(server.get(&format!("/api/v1/jobs/{id}")).0, 404);
}
