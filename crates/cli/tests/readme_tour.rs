//! The README's tour, command by command, against a fresh `sluice demo` on a free port: each
//! `curl` (run here with reqwest, from the repository root as the README says) answers
//! 2xx, each `sluice` line exits 0, the 08:00 network query has rows, and a harvest with no
//! source reads the demo's own simulator instead of failing.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::BIN;
use serde_json::Value;
const README: &str = include_str!("../../../README.md");
const README_BASE: &str = "http://127.0.0.1:8080";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The README's shell commands: lines of its `sh` blocks, continuations joined.
fn shell_commands() -> Vec<String> {
    let mut out = Vec::new();
    let mut in_sh = false;
    let mut pending = String::new();
    for line in README.lines() {
        if line.starts_with("```") {
            in_sh = line == "```sh";
            continue;
        }
        if !in_sh {
            continue;
        }
        let line = line.trim();
        if let Some(head) = line.strip_suffix('\\') {
            pending.push_str(head);
            continue;
        }
        pending.push_str(line);
        let cmd = std::mem::take(&mut pending);
        if !cmd.is_empty() && !cmd.starts_with('#') {
            out.push(cmd);
        }
    }
    out
}

/// Shell words of a command (plain and single-quoted words), up to a `#` comment.
fn words(cmd: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in cmd.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                any = true;
            }
            ' ' if !quoted => {
                if any {
                    words.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            '#' if !quoted && !any => break,
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        words.push(cur);
    }
    words
}

/// The parts of a `curl` command the README uses.
#[derive(Default, Debug)]
struct Curl {
    method: Option<String>,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    form_file: Option<(String, PathBuf)>,
    stream: bool,
    url: String,
}

fn parse_curl(words: &[String]) -> Curl {
    let mut c = Curl::default();
    let mut it = words[1..].iter();
    while let Some(w) = it.next() {
        match w.as_str() {
            "-X" => c.method = it.next().cloned(),
            "-H" => {
                let (k, v) = it.next().unwrap().split_once(':').unwrap();
                c.headers.push((k.trim().into(), v.trim().into()));
            }
            "-d" => c.body = Some(it.next().unwrap().as_bytes().to_vec()),
            "--data-binary" => {
                let file = it.next().unwrap().strip_prefix('@').unwrap();
                c.body = Some(std::fs::read(repo_root().join(file)).unwrap());
            }
            "-F" => {
                let (field, file) = it.next().unwrap().split_once("=@").unwrap();
                c.form_file = Some((field.into(), repo_root().join(file)));
            }
            "-N" => c.stream = true,
            url => c.url = url.to_owned(),
        }
    }
    c
}

#[tokio::test(flavor = "multi_thread")]
async fn every_command_of_the_readme_tour_works_against_a_fresh_demo() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("sluice-data");
    let (base, _demo) = tokio::task::spawn_blocking({
        let data = data.clone();
        move || common::Serving::start(&data, &["demo"], Some("warn")).drain()
    })
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let jobs: Value = http
        .get(format!("{base}/api/v1/jobs"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let job_id = jobs[0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("the demo ran jobs: {jobs}"))
        .to_owned();
    let mut report_id: Option<String> = None;
    let mut ran = 0;
    for cmd in shell_commands() {
        let cmd = cmd
            .replace(README_BASE, &base)
            .replace("<id>", &job_id)
            .replace("1c2d", &job_id[..6]);
        let w = words(&cmd);
        match w[0].as_str() {
            "websocat" => continue, // the same events as /api/v1/events, over a WebSocket
            // The two commands: the demo is what this test runs against, `.ci/run` runs it.
            "cargo" | "./.ci/run" => continue,
            "curl" => {
                let mut c = parse_curl(&w);
                if let Some(id) = &report_id {
                    c.url = c.url.replace("<report_id>", id);
                }
                let method = c.method.clone().unwrap_or_else(|| {
                    if c.body.is_some() || c.form_file.is_some() {
                        "POST".into()
                    } else {
                        "GET".into()
                    }
                });
                let mut req = http.request(method.parse().unwrap(), &c.url);
                for (k, v) in &c.headers {
                    req = req.header(k, v);
                }
                if let Some(body) = c.body.take() {
                    req = req.body(body);
                }
                if let Some((field, path)) = &c.form_file {
                    let part = reqwest::multipart::Part::bytes(std::fs::read(path).unwrap())
                        .file_name(path.file_name().unwrap().to_string_lossy().into_owned());
                    req = req.multipart(reqwest::multipart::Form::new().part(field.clone(), part));
                }
                let resp = req.send().await.unwrap();
                let status = resp.status();
                assert!(status.is_success(), "{cmd}: {status}");
                if c.stream {
                    // An endless push channel: it answered, and that is all a tour shows.
                    continue;
                }
                let body = resp.text().await.unwrap();
                if c.url.contains("/kpi1?from=2017-03-01_08:00:00") {
                    let rows: Vec<Value> = serde_json::from_str(&body).unwrap();
                    assert!(!rows.is_empty(), "{cmd}: no rows at 08:00");
                }
                if c.url.ends_with("/trigger_report") {
                    let v: Value = serde_json::from_str(&body).unwrap();
                    report_id = Some(v["report_id"].as_str().unwrap().to_owned());
                }
                if c.url.ends_with("/api/v1/streams/harvests") {
                    let v: Value = serde_json::from_str(&body).unwrap();
                    let id = v["job_id"]
                        .as_str()
                        .unwrap_or_else(|| panic!("{body}"))
                        .to_owned();
                    harvest_reads_events(&http, &base, &id).await;
                }
            }
            "sluice" => {
                let dir = tmp.path().to_owned();
                let data = data.clone();
                let cmd2 = cmd.clone();
                let out = tokio::task::spawn_blocking(move || {
                    let bin_dir = Path::new(BIN).parent().unwrap().to_owned();
                    let path = format!(
                        "{}:{}",
                        bin_dir.display(),
                        std::env::var("PATH").unwrap_or_default()
                    );
                    Command::new("sh")
                        .args(["-c", &cmd2])
                        .current_dir(dir)
                        .env("PATH", path)
                        .env("SLUICE_DATA_DIR", data)
                        .env("SLUICE_LOG", "warn")
                        .output()
                        .unwrap()
                })
                .await
                .unwrap();
                assert!(
                    out.status.success(),
                    "{cmd}: {}\n{}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            other => panic!("the tour test does not know `{other}`: {cmd}"),
        }
        ran += 1;
    }
    // The tour has 18 commands that run here: fewer means the parser lost some.
    assert!(ran >= 18, "only {ran} commands ran");
}

/// Follows a harvest's job until it has stored events: started with no source, it must
/// read the demo's simulator, not fail.
async fn harvest_reads_events(http: &reqwest::Client, base: &str, id: &str) {
    use futures::StreamExt;
    let resp = http
        .get(format!("{base}/api/v1/jobs/{id}/events"))
        .send()
        .await
        .unwrap();
    let mut stream = resp.bytes_stream();
    let mut buf = String::new();
    let read = async {
        while let Some(chunk) = stream.next().await {
            buf.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
            for line in buf.lines() {
                let Some(data) = line.strip_prefix("data:") else {
                    continue;
                };
                let Ok(ev) = serde_json::from_str::<Value>(data.trim()) else {
                    continue;
                };
                let job = &ev["job"];
                assert_ne!(job["state"], "failed", "the harvest failed: {job}");
                if job["progress"]["done"].as_u64().unwrap_or(0) > 0 {
                    return;
                }
            }
        }
        panic!("the harvest's events ended without progress: {buf}");
    };
    // A safety bound on a hang, not a timing assertion: events arrive at 50/s.
    tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("the harvest stored no event within 60 s");
}
