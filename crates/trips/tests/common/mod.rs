//! Helpers shared by the trips tests: a real server, SSE reading, in-process ingestion.
#![allow(dead_code)]

use std::sync::Arc;

use futures::StreamExt;
use serde_json::Value;
use sluice_core::jobs::NewJob;
use sluice_core::{Ctx, Domain, FileIngest, Settings, Summary};
use sluice_server::testing::TestServer;
use sluice_trips::{TripsDomain, TripsIngest};

pub const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/trips.csv");

pub async fn server() -> TestServer {
    TestServer::start(vec![Arc::new(TripsDomain) as Arc<dyn Domain>]).await
}

/// Reads an SSE response until `stop` says so; returns the (event, data JSON) pairs.
pub async fn read_sse(
    resp: reqwest::Response,
    mut stop: impl FnMut(&str, &Value) -> bool,
) -> Vec<(String, Value)> {
    let mut stream = resp.bytes_stream();
    let mut buf = String::new();
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        buf.push_str(&String::from_utf8_lossy(&chunk.expect("sse chunk")));
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let mut event = String::from("message");
            let mut data = String::new();
            for line in block.lines() {
                if let Some(e) = line.strip_prefix("event:") {
                    event = e.trim().to_owned();
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push_str(d.trim_start());
                }
            }
            if data.is_empty() {
                continue;
            }
            let v: Value = serde_json::from_str(&data).expect("sse json");
            let done = stop(&event, &v);
            out.push((event, v));
            if done {
                return out;
            }
        }
    }
    out
}

/// Follows a job's SSE stream to its terminal event; returns the final job.
pub async fn wait_job(s: &TestServer, id: &str) -> Value {
    let resp = reqwest::Client::new()
        .get(s.url(&format!("/api/v1/jobs/{id}/events")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let events = read_sse(resp, |_, v| {
        matches!(
            v["job"]["state"].as_str(),
            Some("succeeded" | "failed" | "cancelled")
        )
    })
    .await;
    events.last().expect("a terminal event").1["job"].clone()
}

/// Uploads `body` as a raw file named `name` and waits for its job.
pub async fn upload(s: &TestServer, name: &str, body: Vec<u8>) -> Value {
    let resp = reqwest::Client::new()
        .post(s.url(&format!("/api/v1/trips/uploads?name={name}")))
        .header("content-type", "text/csv")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let job: Value = resp.json().await.unwrap();
    wait_job(s, job["id"].as_str().unwrap()).await
}

pub async fn get(s: &TestServer, path: &str) -> (u16, Value) {
    let resp = reqwest::get(s.url(path)).await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// A migrated context on a fresh folder (no server).
pub fn ctx(dir: &std::path::Path) -> Ctx {
    let ctx = Ctx::open(Settings::with_data_dir(dir)).unwrap();
    ctx.sqlite()
        .migrate("trips", &TripsDomain.migrations())
        .unwrap();
    ctx
}

/// Ingests a stream in-process as a job, cut into transactions by `limits`.
pub fn ingest_stream_with(
    ctx: &Ctx,
    name: &str,
    data: &[u8],
    limits: sluice_trips::ingest::Limits,
) -> Summary {
    let job = ctx
        .jobs
        .create(NewJob::new("trips", "ingest", "bytes"))
        .unwrap();
    job.start().unwrap();
    let cfg = sluice_trips::group_config(ctx).unwrap();
    let s = sluice_trips::ingest::ingest_stream(
        ctx,
        cfg,
        name,
        &mut std::io::BufReader::new(data),
        &job,
        limits,
    )
    .unwrap();
    job.succeed(s.clone()).unwrap();
    s
}

/// Ingests one file in-process as a job.
pub fn ingest_file(ctx: &Ctx, path: &std::path::Path) -> Summary {
    let job = ctx
        .jobs
        .create(NewJob::new("trips", "ingest", "bytes"))
        .unwrap();
    job.start().unwrap();
    let s = TripsIngest.ingest(ctx, &[path.to_owned()], &job).unwrap();
    job.succeed(s.clone()).unwrap();
    s
}

/// A single number from SQL.
pub fn count(ctx: &Ctx, sql: &str) -> i64 {
    ctx.sqlite()
        .read(|c| {
            c.query_row(sql, [], |r| r.get(0))
                .map_err(sluice_core::DbError::from)
        })
        .unwrap()
}

/// Ingests a stream in-process as a job.
pub fn ingest_stream(ctx: &Ctx, name: &str, data: &[u8]) -> Summary {
    let job = ctx
        .jobs
        .create(NewJob::new("trips", "ingest", "bytes"))
        .unwrap();
    job.start().unwrap();
    let s = TripsIngest
        .ingest_reader(ctx, name, &mut std::io::BufReader::new(data), &job)
        .unwrap();
    job.succeed(s.clone()).unwrap();
    s
}
