//! received = persisted + malformed under load: the simulator at full speed with malformed
//! messages, every admitted message stored exactly once, as an event or as malformed.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use sluice_core::JobState;
use sluice_server::testing::TestServer;
use sluice_streams::simulate::{RandomConfig, SimMode};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_received_message_is_persisted_or_counted_malformed() {
    let sim = simulator(
        local(),
        SimMode::Random(RandomConfig {
            seed: 3,
            rate: None,
            malformed_share: 0.05,
        }),
    )
    .await;
    let server = server().await;
    let (run, job) = harvest(
        &server,
        json!({"source": sim.url(), "max_duration": "2s", "stop_count": 0}),
    )
    .await;
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
    let (_, r) = get(&server, &format!("/api/v1/streams/runs/{run}")).await;
    let events = r["events_total"].as_u64().unwrap();
    let malformed = r["malformed_total"].as_u64().unwrap();
    // A correctness test, not a speed test: enough traffic to interleave the three streams
    // and the writer's batches even in a debug build on a loaded machine.
    assert!(events > 1_000, "only {events} events in 2 s at full speed");
    assert!(malformed > 0);
    assert_eq!(job.summary.rows_accepted, events);
    assert_eq!(job.summary.rows_rejected, malformed);

    assert_stored_once(&server, &run, events + malformed);

    let (_, m) = get(
        &server,
        &format!("/api/v1/streams/runs/{run}/malformed?limit=5"),
    )
    .await;
    let first = &m["malformed"][0];
    assert!(!first["reason"].as_str().unwrap().is_empty());
    assert!(first["raw"].as_str().unwrap().starts_with("id:"));
}

/// Arrival numbers 0..n are contiguous and each is stored once, in one of the two tables,
/// and there are `received` of them.
fn assert_stored_once(server: &TestServer, run: &str, received: u64) {
    let (stored, distinct, max_seq): (i64, i64, i64) = server
        .ctx
        .sqlite()
        .read(|c| {
            c.query_row(
                "SELECT count(*), count(DISTINCT seq), max(seq) FROM (
                   SELECT seq FROM streams_events WHERE run_id = ?1
                   UNION ALL SELECT seq FROM streams_malformed WHERE run_id = ?1)",
                [run],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .map_err(sluice_core::DbError::from)
        })
        .unwrap();
    assert_eq!(stored as u64, received);
    assert_eq!(distinct, stored);
    assert_eq!(max_seq + 1, stored);
}

/// A writer that cannot keep up (here: blocked outright) holds the source back through TCP
/// instead of letting a queue grow, and the run still keeps every message it admitted, with
/// the time limit passing while the consumers wait for room.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_writer_holds_the_source_back_and_loses_nothing() {
    let sim = simulator(
        local(),
        SimMode::Random(RandomConfig {
            seed: 4,
            rate: None,
            malformed_share: 0.05,
        }),
    )
    .await;
    let server = server().await;
    let mut jobs = server.ctx.jobs.subscribe();
    let limit = Duration::from_secs(6);
    let started = tokio::time::Instant::now();
    let run = start_harvest(
        &server,
        json!({"source": sim.url(), "max_duration": "6s", "stop_count": 0}),
    )
    .await;
    // The writer connection, held by a thread until `release` is dropped.
    let (release, released) = std::sync::mpsc::channel::<()>();
    let (held, holding) = tokio::sync::oneshot::channel();
    let db = server.ctx.sqlite().clone();
    let stall = std::thread::spawn(move || {
        let _writer = db.writer();
        let _ = held.send(());
        let _ = released.recv();
    });
    holding.await.unwrap();
    // Held back: what the source sent stops growing (three readings in a row) while nothing
    // is written, before the time limit stops the reading. An unbounded queue would take all
    // the source sends until then.
    let (mut last, mut same) = (sim.sent(), 0);
    while same < 3 {
        assert!(
            started.elapsed() < limit,
            "the source was not held back while the writer was stalled ({last} messages sent)"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = sim.sent();
        same = if now == last && now > 0 { same + 1 } else { 0 };
        last = now;
    }
    tokio::time::sleep_until(started + limit + Duration::from_millis(500)).await;
    drop(release);
    stall.join().unwrap();

    let job = wait_job(&mut jobs, &run).await;
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
    assert_eq!(
        job.summary.extra["stop_reason"],
        "time limit of 6 s reached"
    );
    let (events, malformed) = (job.summary.rows_accepted, job.summary.rows_rejected);
    assert!(events > 0 && malformed > 0);
    assert!(events + malformed <= sim.sent());
    assert_stored_once(&server, &run, events + malformed);
}
