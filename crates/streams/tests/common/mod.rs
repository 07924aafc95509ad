//! Helpers shared by the HTTP tests: a server with the streams domain, a simulator, and
//! waiting for a job's terminal event on the bus (no polling).
#![allow(dead_code)] // each test binary uses its own subset

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use sluice_core::jobs::JobEvent;
use sluice_core::Job;
use sluice_server::testing::{self, TestServer};
use sluice_streams::harvest::{DEFAULT_PASSWORD, DEFAULT_USER};
use sluice_streams::simulate::{ReplayTiming, SimConfig, SimMode, Simulator};
use sluice_streams::StreamsDomain;
use tokio::sync::broadcast;

pub const RAZI: &str = "razi-ahmad+Java-razi-ahmad-1/data-harvester/src/test/resources";
pub const ROSFRAN: &str = "rosfran+reactive-server-sent-events/src/test/resources/data";

pub fn seed(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/seed-data/streams")
        .join(rel)
}

/// A server on the backend the tests were asked for: the domain runs on both.
pub async fn server() -> TestServer {
    let server = TestServer::start(vec![Arc::new(StreamsDomain)]).await;
    assert_eq!(server.ctx.db.backend(), testing::backend());
    server
}

pub async fn simulator(addr: SocketAddr, mode: SimMode) -> Simulator {
    Simulator::start(
        addr,
        SimConfig {
            user: DEFAULT_USER.into(),
            password: DEFAULT_PASSWORD.into(),
            mode,
        },
    )
    .await
    .expect("simulator starts")
}

pub fn local() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Starts a harvest through the API; returns the run (= job) id.
pub async fn start_harvest(server: &TestServer, body: Value) -> String {
    let resp = reqwest::Client::new()
        .post(server.url("/api/v1/streams/harvests"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["job_id"], v["run_id"]);
    v["run_id"].as_str().unwrap().to_owned()
}

/// Starts a harvest and waits for its terminal job event.
pub async fn harvest(server: &TestServer, body: Value) -> (String, Job) {
    let mut rx = server.ctx.jobs.subscribe();
    let id = start_harvest(server, body).await;
    let job = wait_job(&mut rx, &id).await;
    (id, job)
}

/// Waits for the terminal event of job `id` on the bus.
pub async fn wait_job(rx: &mut broadcast::Receiver<JobEvent>, id: &str) -> Job {
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let ev = rx.recv().await.expect("bus open");
            if ev.job.id.to_string() == id && ev.job.state.is_terminal() {
                return ev.job;
            }
        }
    })
    .await
    .expect("the harvest ends within 60 s")
}

/// A simulator replaying one capture file, as fast as possible, as the given stream.
pub async fn replay_one_fast(capture: &str, stream: &str) -> (tempfile::TempDir, Simulator) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        seed(capture),
        dir.path().join(format!("{stream}-events.stream")),
    )
    .unwrap();
    let sim = simulator(
        local(),
        SimMode::Replay {
            dir: dir.path().to_owned(),
            timing: ReplayTiming::Fast,
        },
    )
    .await;
    (dir, sim)
}

pub async fn get(server: &TestServer, path: &str) -> (u16, Value) {
    let resp = reqwest::get(server.url(path)).await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}
