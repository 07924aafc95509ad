//! received = persisted + malformed under load: the simulator at full speed with malformed
//! messages, every admitted message stored exactly once, as an event or as malformed.

mod common;

use common::*;
use serde_json::json;
use sluice_core::JobState;
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

    // Arrival numbers 0..n are contiguous and each is stored once, in one of the two tables.
    let (stored, distinct, max_seq): (i64, i64, i64) = server
        .ctx
        .db
        .read(|c| {
            c.query_row(
                "SELECT count(*), count(DISTINCT seq), max(seq) FROM (
                   SELECT seq FROM streams_events WHERE run_id = ?1
                   UNION ALL SELECT seq FROM streams_malformed WHERE run_id = ?1)",
                [&run],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .map_err(sluice_core::DbError::from)
        })
        .unwrap();
    assert_eq!(stored as u64, events + malformed);
    assert_eq!(distinct, stored);
    assert_eq!(max_seq + 1, stored);

    let (_, m) = get(
        &server,
        &format!("/api/v1/streams/runs/{run}/malformed?limit=5"),
    )
    .await;
    let first = &m["malformed"][0];
    assert!(!first["reason"].as_str().unwrap().is_empty());
    assert!(first["raw"].as_str().unwrap().starts_with("id:"));
}
