//! The answers do not depend on the backend: the same harvest on SQLite and on the backend
//! the tests run on (PostgreSQL under `SLUICE_TEST_BACKEND=postgres`) gives the same bytes,
//! and runs started at the same instant list in the order they were created on both.

mod common;

use std::sync::Arc;

use common::*;
use serde_json::{json, Value};
use sluice_core::{Backend, JobState};
use sluice_server::testing::TestServer;
use sluice_streams::simulate::{ReplayTiming, SimMode};
use sluice_streams::store::{self, NewRun, RunEnd};
use sluice_streams::StreamsDomain;

/// The Sytflix capture, then a malformed message with a NUL in its event type, as Sytflix.
async fn capture_simulator() -> (tempfile::TempDir, sluice_streams::simulate::Simulator) {
    let dir = tempfile::tempdir().unwrap();
    let mut capture = std::fs::read(seed(&format!("{RAZI}/sytflix-events.stream"))).unwrap();
    capture.extend_from_slice(b"\n\nid: x\nevent: pa\0used\ndata: {}\n\n");
    std::fs::write(dir.path().join("sytflix-events.stream"), capture).unwrap();
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

async fn body(server: &TestServer, path: &str) -> Vec<u8> {
    let resp = reqwest::get(server.url(path)).await.unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    resp.bytes().await.unwrap().to_vec()
}

/// The run's answers that do not name the run itself: its events (all, a page of one
/// stream, none of another), its malformed messages, and its report without the run's id,
/// source, times and date.
async fn answers(server: &TestServer) -> (Vec<Vec<u8>>, Value) {
    let (_dir, sim) = capture_simulator().await;
    let (run, job) = harvest(
        server,
        json!({"source": sim.url(), "max_duration": "1s", "stop_count": 0}),
    )
    .await;
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
    assert_eq!(job.summary.rows_rejected, 1);
    let mut pages = Vec::new();
    for query in [
        "events?limit=1000",
        "events?stream=sytflix&limit=5&offset=3",
        "events?stream=sysney",
        "malformed",
    ] {
        pages.push(body(server, &format!("/api/v1/streams/runs/{run}/{query}")).await);
    }
    let mut report: Value =
        serde_json::from_slice(&body(server, &format!("/api/v1/streams/runs/{run}/report")).await)
            .unwrap();
    for run_specific in [
        "run_id",
        "source",
        "started_at",
        "finished_at",
        "consumption_ms",
        "run_date",
    ] {
        report.as_object_mut().unwrap().remove(run_specific);
    }
    (pages, report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_harvest_answers_the_same_bytes_on_sqlite_and_on_the_tested_backend() {
    let sqlite = TestServer::start_on(Backend::Sqlite, vec![Arc::new(StreamsDomain)], |_| {}).await;
    let tested = server().await;
    let (pages, report) = answers(&sqlite).await;
    assert_eq!(report["events_total"], 74);
    let page: Value = serde_json::from_slice(&pages[1]).unwrap();
    let seqs: Vec<&Value> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["seq"])
        .collect();
    assert_eq!(seqs, [3, 4, 5, 6, 7]);
    let none: Value = serde_json::from_slice(&pages[2]).unwrap();
    assert_eq!(none["events"], json!([]));
    assert!(std::str::from_utf8(&pages[3])
        .unwrap()
        .contains("pa\\u0000used"));
    let (pages_t, report_t) = answers(&tested).await;
    for (i, (a, b)) in pages.iter().zip(&pages_t).enumerate() {
        assert!(a == b, "page {i} differs");
    }
    assert_eq!(report, report_t);
}

#[tokio::test]
async fn runs_started_at_the_same_instant_list_newest_created_first() {
    let server = server().await;
    let ids = [
        "00000000-0000-4000-8000-000000000002",
        "00000000-0000-4000-8000-000000000001",
        "00000000-0000-4000-8000-000000000003",
    ];
    for id in ids {
        let run = NewRun {
            run_id: id,
            source: "http://127.0.0.1:1",
            params_json: "{}",
            started_at: "2026-01-01T00:00:00Z",
        };
        store::insert_run(&server.ctx.db, &run).unwrap();
        let end = RunEnd {
            succeeded: true,
            finished_at: "2026-01-01T00:00:01Z",
            stop_reason: Some("time limit of 1 s reached"),
            error: None,
            stream_ms: [Some(1000); 3],
            total_ms: 1000,
        };
        store::finish_run(&server.ctx.db, id, &end).unwrap();
    }
    let (_, list) = get(&server, "/api/v1/streams/runs").await;
    let listed: Vec<&str> = list["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run_id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [ids[2], ids[1], ids[0]]);
    let (_, page) = get(&server, "/api/v1/streams/runs?limit=1&offset=1").await;
    assert_eq!(page["runs"][0]["run_id"], ids[1]);
    let (_, latest) = get(&server, "/api/v1/streams/runs/latest").await;
    assert_eq!(latest["run_id"], ids[2]);
}
