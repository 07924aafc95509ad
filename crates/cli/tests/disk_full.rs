//! A full disk, played without root by capping the database (`max_db_bytes`, SQLite's
//! `max_page_count`): every domain's job fails with the one message, nothing of the input is
//! kept or claimed, the database still answers reads, and an upload that cannot be recorded
//! is a 507 problem+json.

use std::fmt::Write;
use std::sync::Arc;

use serde_json::Value;
use sluice_core::db::STORAGE_FULL;
use sluice_core::jobs::NewJob;
use sluice_core::{Domain, JobId};
use sluice_server::testing::TestServer;

fn domains() -> Vec<Arc<dyn Domain>> {
    vec![
        Arc::new(sluice_network::NetworkDomain),
        Arc::new(sluice_trips::TripsDomain),
    ]
}

/// Room above the freshly migrated database: enough for the jobs' own rows, far less than
/// what the generated inputs store.
const MARGIN: u64 = 64 << 10;

/// The size of a freshly migrated database with these domains, in bytes.
async fn migrated_size() -> u64 {
    let server = TestServer::start(domains()).await;
    server
        .ctx
        .sqlite()
        .read(|c| {
            c.query_row(
                "SELECT page_count * page_size FROM pragma_page_count, pragma_page_size",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map_err(sluice_core::DbError::from)
        })
        .unwrap() as u64
}

/// A server whose database may grow `MARGIN` past its migrated size.
async fn capped_server() -> TestServer {
    let cap = migrated_size().await + MARGIN;
    TestServer::start_with(domains(), |s| s.max_db_bytes = Some(cap)).await
}

/// A network file of `rows` flows, each of another subscriber in another cell, so that the
/// stored per-cell state grows with every row.
fn network_file(rows: u64) -> String {
    let mut s = String::from("interval_start_timestamp,interval_end_timestamp,msisdn,bytes_uplink,bytes_downlink,service_id,cell_id\n");
    for i in 0..rows {
        writeln!(
            s,
            "1488355200000,1488355500000,{},{},{},{},{}",
            31_600_000_000 + i,
            100 + i,
            200 + i,
            i % 7,
            1000 + i
        )
        .unwrap();
    }
    s
}

/// A trips file of `rows` trips spread over a few degrees and weeks.
fn trips_file(rows: u64) -> String {
    let mut s = String::from("region,origin_coord,destination_coord,datetime,datasource\n");
    for i in 0..rows {
        let (x, y) = (
            14.0 + (i % 997) as f64 * 0.003,
            50.0 + (i % 991) as f64 * 0.002,
        );
        writeln!(
            s,
            "Prague,POINT ({x} {y}),POINT ({} {}),2018-05-{:02} {:02}:{:02}:{:02},source_{}",
            y - 36.0,
            x + 36.0,
            1 + i % 28,
            i % 24,
            i % 60,
            (i / 60) % 60,
            i % 5
        )
        .unwrap();
    }
    s
}

/// Uploads `body` as a raw CSV under `name` and answers the queued job's id.
async fn upload(server: &TestServer, domain: &str, name: &str, body: String) -> JobId {
    let resp = reqwest::Client::new()
        .post(server.url(&format!("/api/v1/{domain}/uploads?name={name}")))
        .header("content-type", "text/csv")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202, "{}", resp.text().await.unwrap());
    let job: Value = resp.json().await.unwrap();
    job["id"].as_str().unwrap().parse().unwrap()
}

/// GETs `path` and answers its JSON body, asserting a 200.
async fn get_json(server: &TestServer, path: &str) -> Value {
    let resp = reqwest::get(server.url(path)).await.unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    resp.json().await.unwrap()
}

/// Uploads a file too big for the cap, checks the failed job's error and that nothing of the
/// file is visible, and answers the stored job.
async fn fails_whole(server: &TestServer, domain: &str, name: &str, body: String) -> Value {
    // Subscribed before the upload, so the job's end cannot be missed.
    let mut events = server.ctx.jobs.subscribe();
    let id = upload(server, domain, name, body).await;
    loop {
        let ev = events.recv().await.unwrap();
        if ev.job.id == id && ev.job.state.is_terminal() {
            break;
        }
    }
    // The stored job, as clients read it.
    let job = get_json(server, &format!("/api/v1/jobs/{id}")).await;
    assert_eq!(job["state"], "failed", "{domain}: {job}");
    assert_eq!(job["error"], STORAGE_FULL, "{domain}: {job}");
    // Read from the database, which still answers.
    let files = get_json(server, &format!("/api/v1/{domain}/files")).await;
    assert_eq!(files, Value::Array(vec![]), "{domain}");
    job
}

#[tokio::test]
async fn a_network_file_past_the_cap_fails_with_the_one_message_and_keeps_nothing() {
    let server = capped_server().await;
    let job = fails_whole(
        &server,
        "network",
        "ipflow_data.ts-1488355500000.1.txt",
        network_file(50_000),
    )
    .await;
    // Nothing of the input was kept, so the summary claims nothing of it either.
    assert_eq!(job["summary"]["rows_accepted"], 0, "{job}");
}

#[tokio::test]
async fn a_trips_file_past_the_cap_fails_with_the_one_message_and_keeps_nothing() {
    let server = capped_server().await;
    fails_whole(&server, "trips", "trips.csv", trips_file(50_000)).await;
    // The database still answers reads, and no trip of the file is visible.
    let counts = get_json(&server, "/api/v1/trips/counts").await;
    assert_eq!(counts, Value::Array(vec![]));
}

// The live summary counts the rows of the file in flight; a failed file is invisible, so the
// failed job must go back to what had landed (it claimed 50 000 rows before).
#[tokio::test]
async fn a_failed_trips_job_claims_no_rows_that_are_not_visible() {
    let server = capped_server().await;
    let job = fails_whole(&server, "trips", "trips.csv", trips_file(50_000)).await;
    assert_eq!(job["summary"]["rows_accepted"], 0, "{job}");
}

#[tokio::test]
async fn an_upload_that_cannot_be_recorded_is_507_problem_json() {
    let server = capped_server().await;
    // Fill the margin with jobs until the database refuses one more.
    let full = loop {
        match server
            .ctx
            .jobs
            .create(NewJob::new("network", "ingest", "bytes"))
        {
            Ok(job) => {
                job.cancel(Default::default(), "filler").unwrap();
            }
            Err(e) => break e,
        }
    };
    assert!(sluice_core::db::is_storage_full(&full), "{full}");
    let resp = reqwest::Client::new()
        .post(server.url("/api/v1/network/uploads?name=ipflow_data.ts-1488355500000.1.txt"))
        .header("content-type", "text/csv")
        .body(network_file(10))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 507);
    assert_eq!(
        resp.headers()["content-type"],
        sluice_core::http::PROBLEM_JSON
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["detail"], STORAGE_FULL, "{body}");
    // Reads still work, and the refused upload left no job behind.
    let jobs = get_json(&server, "/api/v1/jobs?state=queued").await;
    assert_eq!(jobs, Value::Array(vec![]), "{jobs}");
}
