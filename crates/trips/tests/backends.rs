//! The same inputs on SQLite and on PostgreSQL give the same answers, byte for byte, trip
//! and group ids included: generated trips in many small batches with rollup spills, a
//! replacement under the same name, a duplicate; then two instances on one PostgreSQL
//! database ingesting different files at once give the rollups of a serial run (ids then
//! depend on the interleaving, so only id-free answers are compared). Needs the test
//! PostgreSQL server (`SLUICE_TEST_POSTGRES`, see `.ci/postgres.sh`); without it the test is
//! skipped, except under CI, where that fails.

mod common;

use std::sync::Arc;

use serde_json::Value;
use sluice_core::{Backend, Domain};
use sluice_server::testing::{have_postgres, TestServer};
use sluice_trips::generate::{write_csv, Generator};
use sluice_trips::ingest::Limits;
use sluice_trips::TripsDomain;

fn domains() -> Vec<Arc<dyn Domain>> {
    vec![Arc::new(TripsDomain) as Arc<dyn Domain>]
}

fn csv(seed: u64, rows: u64) -> Vec<u8> {
    let mut out = Vec::new();
    write_csv(&mut Generator::new(seed, 0.0), rows, &mut out).unwrap();
    out
}

/// Small batches and spills, so that ids, blocks and rollup merges cross many transactions.
const SMALL: Limits = Limits {
    batch_rows: 700,
    spill_keys: 3_000,
};

fn ingest(ts: &TestServer, name: &str, data: &[u8]) -> String {
    let s = common::ingest_stream_with(&ts.ctx, name, data, SMALL);
    serde_json::to_string(&s.files).unwrap()
}

/// Status, content type and body.
async fn body(ts: &TestServer, path: &str) -> String {
    let resp = reqwest::get(ts.url(path)).await.unwrap();
    let head = format!(
        "{} {:?}\n",
        resp.status(),
        resp.headers().get("content-type")
    );
    head + &resp.text().await.unwrap()
}

const BOXES: [&str; 3] = [
    "-180,-90,180,90",
    "14.2,49.9,14.7,50.25",
    "14.42,50.07,14.44,50.09",
];

/// Answers that do not name trip or group ids.
async fn id_free(ts: &TestServer) -> Vec<String> {
    let mut out = vec![
        body(ts, "/api/v1/trips/counts?by=region").await,
        body(ts, "/api/v1/trips/counts?by=datasource").await,
        body(ts, "/vehicles/weekly_trips/region").await,
        body(ts, "/vehicles/weekly_avg_trips/region").await,
        body(ts, "/api/v1/trips/density?level=4").await,
        body(ts, "/api/v1/trips/density?level=2&end=destination").await,
    ];
    for b in BOXES {
        for m in ["origin", "destination", "both", "either"] {
            out.push(
                body(
                    ts,
                    &format!("/api/v1/trips/weekly-average?bbox={b}&match={m}"),
                )
                .await,
            );
        }
    }
    // All groups of two trips or more (fewer than a page): which ones a truncated page holds
    // among equal sizes depends on their ids.
    let groups: Value = reqwest::get(ts.url("/api/v1/trips/groups?limit=1000&min_size=2"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let n = groups.as_array().unwrap().len();
    assert!((1..1000).contains(&n), "{n} groups of 2 or more trips");
    let mut sizes: Vec<String> = groups
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            let mut g = g.clone();
            g.as_object_mut().unwrap().remove("id");
            g.to_string()
        })
        .collect();
    sizes.sort();
    out.push(sizes.join("\n"));
    out
}

/// Everything compared between the backends.
async fn answers(ts: &TestServer) -> Vec<String> {
    let mut out = id_free(ts).await;
    out.push(body(ts, "/api/v1/trips/groups?limit=50").await);
    out.push(body(ts, "/api/v1/trips/trips?limit=1000").await);
    out.push(body(ts, "/api/v1/trips/trips?limit=100&after=1500&region=Prague").await);
    out.push(body(ts, "/vehicles").await);
    out.push(body(ts, "/vehicles/1").await);
    out.push(body(ts, "/api/v1/trips/trips/2222").await);
    out.push(body(ts, "/vehicles/region/count").await);
    let first: Value = reqwest::get(ts.url("/api/v1/trips/groups?limit=1"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    if let Some(id) = first
        .as_array()
        .and_then(|g| g.first())
        .and_then(|g| g["id"].as_i64())
    {
        out.push(body(ts, &format!("/api/v1/trips/groups/{id}/trips?limit=100")).await);
    }
    out
}

fn same(a: &[String], b: &[String]) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(x == y, "answer {i} differs:\nSQLite: {x}\nPostgreSQL: {y}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn both_backends_give_the_same_bytes() {
    if !have_postgres() {
        return;
    }
    let sqlite = TestServer::start_on(Backend::Sqlite, domains(), |_| {}).await;
    let pg = TestServer::start_on(Backend::Postgres, domains(), |_| {}).await;
    let (a, b, c) = (csv(1, 3_000), csv(2, 2_000), csv(3, 2_500));
    let sample = std::fs::read(common::SAMPLE).unwrap();
    let steps: [(&str, &[u8]); 5] = [
        ("a.csv", &a),
        ("sample.csv", &sample),
        ("b.csv", &b),
        // A replacement of a.csv, and b again under another name (a duplicate).
        ("a.csv", &c),
        ("b-again.csv", &b),
    ];
    let mut before: Option<Vec<String>> = None;
    for (name, data) in steps {
        let (x, y) = (ingest(&sqlite, name, data), ingest(&pg, name, data));
        assert_eq!(x, y, "{name}");
        let (x, y) = (answers(&sqlite).await, answers(&pg).await);
        assert!(
            x[0].starts_with("200 ") && x[0].contains("trips"),
            "{}",
            x[0]
        );
        same(&x, &y);
        before = Some(x);
    }
    let last = before.unwrap();
    // The group listing, a trip listing and a group's trips all answered with trips.
    for (i, key) in [(8, "origin_cell"), (7, "\"origin\""), (1, "\"origin\"")] {
        let a = &last[last.len() - i];
        assert!(a.starts_with("200 ") && a.contains(key), "{a}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_instances_ingesting_at_once_give_the_serial_rollups() {
    if !have_postgres() {
        return;
    }
    let serial = TestServer::start_on(Backend::Sqlite, domains(), |_| {}).await;
    let pg_a = TestServer::start_on(Backend::Postgres, domains(), |_| {}).await;
    let pg_b = pg_a.beside(domains(), |_| {}).await;
    let files: Vec<(String, Vec<u8>)> = (0..4)
        .map(|i| (format!("part{i}.csv"), csv(10 + i, 2_000)))
        .collect();
    for (name, data) in &files {
        ingest(&serial, name, data);
    }
    std::thread::scope(|s| {
        let (left, right) = files.split_at(2);
        for (ts, part) in [(&pg_a, left), (&pg_b, right)] {
            s.spawn(move || {
                for (name, data) in part {
                    ingest(ts, name, data);
                }
            });
        }
    });
    same(&id_free(&serial).await, &id_free(&pg_a).await);
    same(&id_free(&serial).await, &id_free(&pg_b).await);
}
