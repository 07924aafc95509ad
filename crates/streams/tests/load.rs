//! received = persisted + malformed under load: the simulator at full speed with malformed
//! messages, every admitted message stored exactly once, as an event or as malformed.

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use sluice_core::{Database, JobState};
use sluice_server::testing::TestServer;
use sluice_streams::simulate::{RandomConfig, SimMode};
use sluice_streams::store;

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
    let mut seqs: Vec<i64> = store::read(&server.ctx.db, |c| {
        let events = c.events_page(run, None, u32::MAX, 0)?;
        let malformed = c.malformed_page(run, u32::MAX, 0)?;
        Ok(events
            .iter()
            .map(|e| e.seq)
            .chain(malformed.iter().map(|m| m.seq))
            .collect())
    })
    .unwrap();
    seqs.sort_unstable();
    assert_eq!(seqs.len() as u64, received);
    assert!(
        seqs.iter().copied().eq(0..received as i64),
        "arrival numbers are not 0..{received}, each once"
    );
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
    // The writer stalled by a thread until `release` is dropped: on SQLite it holds the one
    // writer connection, on PostgreSQL a lock on the run's row, which every batch updates.
    let (release, released) = std::sync::mpsc::channel::<()>();
    let (held, holding) = tokio::sync::oneshot::channel();
    let db = server.ctx.db.clone();
    let locked = run.clone();
    let stall = std::thread::spawn(move || match db {
        Database::Sqlite(db) => {
            let _writer = db.writer();
            let _ = held.send(());
            let _ = released.recv();
        }
        Database::Postgres(pg) => pg
            .with_client(move |c| {
                let mut tx = c.transaction()?;
                tx.execute(
                    "SELECT 1 FROM streams_runs WHERE id = $1 FOR UPDATE",
                    &[&locked],
                )?;
                let _ = held.send(());
                let _ = released.recv();
                Ok::<_, sluice_core::DbError>(())
            })
            .unwrap(),
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
