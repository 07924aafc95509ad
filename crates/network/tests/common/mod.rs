//! What the compat and id tests share: a server with `[network]` settings, uploads that run
//! to their end in a chosen order, raw response bodies, and README snippets as bytes.

#![allow(dead_code)] // each test file uses its own part

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;
use sluice_core::ledger::{ContentHash, InputMeta};
use sluice_network::engine::fold_file;
use sluice_network::parse::FlowFileName;
use sluice_network::settings::PeriodFrom;
use sluice_network::NetworkDomain;
use sluice_server::testing::TestServer;

/// The sample files of a replaced system, as its repository holds them (copied from
/// shared/seed-data/network/).
pub fn seed(system: &str, name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/data/{system}/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// A server whose `[network]` table holds `settings`.
/// Commits one file's partial state with its ledger entry, as an ingestion does, without
/// recomputing the KPIs of its intervals (which stay dirty).
pub fn commit_file(s: &TestServer, name: &str, bytes: &[u8]) {
    let period_end = FlowFileName::parse(name).map(|n| n.period_end);
    let mut state = fold_file(name, bytes, period_end, PeriodFrom::Rows, |_| {}).unwrap();
    let meta = InputMeta {
        name: name.to_owned(),
        hash: ContentHash(blake3::hash(bytes).to_hex().to_string()),
        size: bytes.len() as u64,
    };
    sluice_network::ingest::store_file(&s.ctx.db, &meta, None, &mut state).unwrap();
}

pub async fn server(settings: &[(&str, &str)]) -> TestServer {
    let table: toml::Table = settings
        .iter()
        .map(|(k, v)| ((*k).to_owned(), toml::Value::String((*v).to_owned())))
        .collect();
    TestServer::start_with(vec![Arc::new(NetworkDomain)], |s| {
        s.domains.insert("network".into(), table);
    })
    .await
}

/// Reads an SSE response until `stop` says so; returns (event, data) pairs.
pub async fn read_sse(
    resp: reqwest::Response,
    mut stop: impl FnMut(&str, &Value) -> bool,
) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut buf = String::new();
    let mut stream = resp.bytes_stream();
    let mut event = String::new();
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(60), stream.next())
        .await
        .expect("an event within 60 s")
    {
        buf.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        while let Some(i) = buf.find('\n') {
            let line = buf[..i].trim_end_matches('\r').to_owned();
            buf.drain(..=i);
            if let Some(e) = line.strip_prefix("event:") {
                event = e.trim().to_owned();
            } else if let Some(d) = line.strip_prefix("data:") {
                let v: Value = serde_json::from_str(d.trim()).unwrap();
                let done = stop(&event, &v);
                out.push((event.clone(), v));
                if done {
                    return out;
                }
            }
        }
    }
    out
}

/// Follows a job's SSE stream to its end and returns the final job.
pub async fn finish(s: &TestServer, job: &Value) -> Value {
    let id = job["id"].as_str().unwrap();
    let resp = reqwest::get(s.url(&format!("/api/v1/jobs/{id}/events")))
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let events = read_sse(resp, |_, v| {
        matches!(
            v["job"]["state"].as_str(),
            Some("succeeded" | "failed" | "cancelled")
        )
    })
    .await;
    events.last().unwrap().1["job"].clone()
}

/// Uploads one file and waits for its ingestion job to end.
pub async fn upload(s: &TestServer, name: &str, body: Vec<u8>) -> Value {
    let resp = reqwest::Client::new()
        .post(s.url(&format!("/api/v1/network/uploads?name={name}")))
        .header("content-type", "text/csv")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202, "{:?}", resp.text().await);
    let job = finish(s, &resp.json().await.unwrap()).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    job
}

/// Status, content type and body of a GET.
pub async fn get_raw(s: &TestServer, path: &str) -> (u16, String, String) {
    let resp = reqwest::get(s.url(path)).await.unwrap();
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, ct, resp.text().await.unwrap())
}

/// The body of a GET that must answer 200 with JSON.
pub async fn get_ok(s: &TestServer, path: &str) -> String {
    let (status, ct, body) = get_raw(s, path).await;
    assert_eq!(status, 200, "{path}: {body}");
    assert_eq!(ct, "application/json", "{path}");
    body
}

/// A README's pretty-printed JSON without the whitespace between tokens: the bytes a
/// compact JSON writer sends for the same document, keys in the README's order.
pub fn compact(pretty: &str) -> String {
    let mut out = String::new();
    let mut in_string = false;
    let mut escaped = false;
    for c in pretty.chars() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}
