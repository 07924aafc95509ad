//! Several instances on one PostgreSQL database, as behind a load balancer: jobs run by one
//! are pushed to clients of another, a file seen by two is ingested once, files for the same
//! intervals ingested on two instances at once give the KPIs of a serial run, a dead
//! instance's job is failed by another once its lease expires, one instance's commit empties
//! another's response cache, and reads from a streaming replica equal the primary's after
//! replay (and show the lag before it).
//!
//! They need the test PostgreSQL server (`SLUICE_TEST_POSTGRES`, started by
//! `.ci/postgres.sh`); without it they are skipped, except under CI, where that fails.

mod common;

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use sluice_core::{Backend, Domain};
use sluice_network::generate::{generate, GenerateArgs};
use sluice_network::NetworkDomain;
use sluice_server::testing::{have_postgres, TestServer};

fn domains() -> Vec<Arc<dyn Domain>> {
    vec![Arc::new(NetworkDomain)]
}

/// Whether the test PostgreSQL server is there; under CI its absence fails the test.
async fn pair() -> (TestServer, TestServer) {
    let a = TestServer::start_on(Backend::Postgres, domains(), |_| {}).await;
    let b = a.beside(domains(), |_| {}).await;
    (a, b)
}

/// The generated files of `periods` 5-minute periods, `parts` files each.
fn files(dir: &std::path::Path, periods: u32, parts: u32, seed: u64) -> Vec<(String, Vec<u8>)> {
    generate(&GenerateArgs {
        day: chrono::NaiveDate::from_ymd_opt(2017, 3, 1).unwrap(),
        rows_per_file: 400,
        parts,
        periods,
        malformed: 0.0,
        seed,
        out: dir.to_owned(),
    })
    .unwrap()
    .into_iter()
    .map(|p| {
        let name = p.file_name().unwrap().to_str().unwrap().to_owned();
        (name, std::fs::read(&p).unwrap())
    })
    .collect()
}

/// Uploads a file and returns its job (not waited for).
async fn start_upload(s: &TestServer, name: &str, body: Vec<u8>) -> Value {
    let resp = reqwest::Client::new()
        .post(s.url(&format!("/api/v1/network/uploads?name={name}")))
        .header("content-type", "text/csv")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202, "{:?}", resp.text().await);
    resp.json().await.unwrap()
}

async fn upload_all(s: &TestServer, files: Vec<(String, Vec<u8>)>) {
    for (name, body) in files {
        common::upload(s, &name, body).await;
    }
}

/// The answers a client reads: both KPIs at both granularities, every rank, and the files.
const ROUTES: [&str; 5] = [
    "/api/v1/network/kpis/top_services?interval=5m&limit=20",
    "/api/v1/network/kpis/top_cells?interval=5m&limit=20",
    "/api/v1/network/kpis/top_services?interval=1h&limit=20",
    "/api/v1/network/kpis/top_cells?interval=1h&limit=20",
    "/kpi1?interval=5-minute",
];

async fn answers(s: &TestServer) -> Vec<String> {
    let mut out = Vec::new();
    for r in ROUTES {
        out.push(common::get_ok(s, r).await);
    }
    out
}

#[tokio::test]
async fn a_client_of_one_instance_sees_jobs_run_by_another_pushed() {
    if !have_postgres() {
        return;
    }
    let (a, b) = pair().await;
    let events = reqwest::get(b.url("/api/v1/events?domain=network"))
        .await
        .unwrap();
    assert_eq!(events.headers()["content-type"], "text/event-stream");
    let dir = tempfile::tempdir().unwrap();
    let (name, body) = files(dir.path(), 1, 1, 1).remove(0);
    let job = start_upload(&a, &name, body).await;
    let id = job["id"].as_str().unwrap().to_owned();
    let seen = common::read_sse(events, |_, v| {
        v["job"]["id"] == id.as_str() && v["job"]["state"] == "succeeded"
    })
    .await;
    let states: Vec<&str> = seen
        .iter()
        .filter(|(_, v)| v["job"]["id"] == id.as_str())
        .map(|(_, v)| v["job"]["state"].as_str().unwrap())
        .collect();
    assert!(states.contains(&"running"), "{states:?}");
    assert_eq!(states.last(), Some(&"succeeded"), "{states:?}");
    // And B answers for A's job, its files and its KPIs.
    let snap: Value = reqwest::get(b.url(&format!("/api/v1/jobs/{id}")))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(snap["state"], "succeeded");
    assert_eq!(answers(&a).await, answers(&b).await);
}

#[tokio::test]
async fn the_same_file_on_two_instances_at_once_is_ingested_once() {
    if !have_postgres() {
        return;
    }
    let (a, b) = pair().await;
    let dir = tempfile::tempdir().unwrap();
    let (name, body) = files(dir.path(), 1, 1, 2).remove(0);
    let (ja, jb) = tokio::join!(
        start_upload(&a, &name, body.clone()),
        start_upload(&b, &name, body)
    );
    let (ja, jb) = tokio::join!(common::finish(&a, &ja), common::finish(&b, &jb));
    let mut statuses: Vec<String> = [&ja, &jb]
        .iter()
        .map(|j| {
            j["summary"]["files"][0]["status"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    statuses.sort();
    assert_eq!(statuses, ["duplicate", "ingested"], "{ja}\n{jb}");
    let listed: Value =
        serde_json::from_str(&common::get_ok(&b, "/api/v1/network/files").await).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    let rows: u64 = [&ja, &jb]
        .iter()
        .map(|j| j["summary"]["rows_accepted"].as_u64().unwrap())
        .sum();
    assert_eq!(rows, 400, "the file's rows are counted once");
}

#[tokio::test]
async fn files_of_the_same_intervals_on_two_instances_give_the_serial_kpis() {
    if !have_postgres() {
        return;
    }
    let (a, b) = pair().await;
    let dir = tempfile::tempdir().unwrap();
    // 3 periods × 4 parts: every 5-minute interval and the hour get files from both.
    let all = files(dir.path(), 3, 4, 3);
    let serial = TestServer::start_on(Backend::Sqlite, domains(), |_| {}).await;
    for (name, body) in &all {
        common::upload(&serial, name, body.clone()).await;
    }
    let (even, odd): (Vec<_>, Vec<_>) = all.into_iter().enumerate().partition(|(i, _)| i % 2 == 0);
    let strip = |v: Vec<(usize, (String, Vec<u8>))>| v.into_iter().map(|(_, f)| f).collect();
    tokio::join!(upload_all(&a, strip(even)), upload_all(&b, strip(odd)));
    let expected = answers(&serial).await;
    assert_eq!(answers(&a).await, expected);
    assert_eq!(answers(&b).await, expected);
}

#[tokio::test]
async fn a_dead_instances_job_is_failed_by_another_once_its_lease_expires() {
    if !have_postgres() {
        return;
    }
    let (a, b) = pair().await;
    let events = reqwest::get(b.url("/api/v1/events?domain=network"))
        .await
        .unwrap();
    // What SIGKILL leaves of an instance: its lease, no longer renewed, and its job running.
    let db = a.database().unwrap().url.clone();
    let dead = "0123456789abcdef0123456789abcdef";
    let id = "6f1f5c1e-0000-4000-8000-000000000001";
    std::thread::spawn(move || {
        let mut c = postgres::Client::connect(&db, postgres::NoTls).unwrap();
        c.execute(
            "INSERT INTO core_owner_lease (id, expires_at) VALUES ($1, now() + interval '1 second')",
            &[&dead],
        )
        .unwrap();
        c.execute(
            "INSERT INTO core_jobs (id, domain, kind, state, progress_unit, created_at,
               started_at, summary, owner)
             VALUES ($1, 'network', 'ingest', 'running', 'bytes', $2, $2, '{}', $3)",
            &[&id, &chrono::Utc::now().to_rfc3339(), &dead],
        )
        .unwrap();
    })
    .join()
    .unwrap();
    let seen = common::read_sse(events, |_, v| {
        v["job"]["id"] == id && v["job"]["state"] == "failed"
    })
    .await;
    let job = &seen.last().unwrap().1["job"];
    assert!(
        job["error"].as_str().unwrap().contains("interrupted"),
        "{job}"
    );
    // Live instances' jobs are never taken: A's own upload succeeds meanwhile.
    let dir = tempfile::tempdir().unwrap();
    let (name, body) = files(dir.path(), 1, 1, 4).remove(0);
    common::upload(&a, &name, body).await;
}

#[tokio::test]
async fn a_commit_on_one_instance_empties_the_cache_of_another() {
    if !have_postgres() {
        return;
    }
    let (a, b) = pair().await;
    let dir = tempfile::tempdir().unwrap();
    let mut all = files(dir.path(), 2, 1, 5);
    let (n1, f1) = all.remove(0);
    common::upload(&a, &n1, f1).await;
    let before = answers(&b).await;
    assert_eq!(before, answers(&b).await, "answered from B's cache");
    let (n2, f2) = all.remove(0);
    common::upload(&a, &n2, f2).await;
    let now = answers(&a).await;
    assert_ne!(now, before);
    // B hears of A's commit by notification: its next answers follow within moments.
    let mut seen = answers(&b).await;
    for _ in 0..100 {
        if seen == now {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        seen = answers(&b).await;
    }
    assert_eq!(seen, now, "B kept answering from a stale cache");
}

/// The replica server's replay position has reached the primary's current WAL insert
/// position (server-wide, so asked of any database there). Not `pg_current_wal_lsn()`, the
/// write position: with `synchronous_commit = off` (the test cluster) a commit returns while
/// its record may still be in the WAL buffers, before that position.
fn wait_for_replay(primary: &str, replica: &str) {
    let (primary, replica) = (primary.to_owned(), replica.to_owned());
    std::thread::spawn(move || {
        let mut p = postgres::Client::connect(&primary, postgres::NoTls).unwrap();
        let mut r = postgres::Client::connect(&replica, postgres::NoTls).unwrap();
        let lsn: String = p
            .query_one("SELECT pg_current_wal_insert_lsn()::text", &[])
            .unwrap()
            .get(0);
        for _ in 0..600 {
            let done: bool = r
                .query_one(
                    "SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn",
                    &[&lsn],
                )
                .unwrap()
                .get(0);
            if done {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the replica did not replay up to {lsn} in 30 s");
    })
    .join()
    .unwrap();
}

fn replay(replica: &str, pause: bool) {
    let (replica, sql) = (
        replica.to_owned(),
        if pause {
            "SELECT pg_wal_replay_pause()"
        } else {
            "SELECT pg_wal_replay_resume()"
        },
    );
    std::thread::spawn(move || {
        let mut r = postgres::Client::connect(&replica, postgres::NoTls).unwrap();
        r.batch_execute(sql).unwrap();
    })
    .join()
    .unwrap();
}

#[tokio::test]
async fn reads_from_a_replica_equal_the_primary_after_replay() {
    if !have_postgres() {
        return;
    }
    let Ok(replica_server) = std::env::var("SLUICE_TEST_POSTGRES_REPLICA") else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI runs this with a replica"
        );
        return;
    };
    let primary_only = TestServer::start_on(Backend::Postgres, domains(), |_| {}).await;
    let db = primary_only.database().unwrap().clone();
    let replica = db.url_on(&replica_server);
    wait_for_replay(&db.url, &replica_server); // the new database itself
    let reader = primary_only
        .beside(domains(), |s| s.database_replica = Some(replica.clone()))
        .await;
    let dir = tempfile::tempdir().unwrap();
    let mut all = files(dir.path(), 2, 2, 6);
    let (n1, f1) = all.remove(0);
    common::upload(&primary_only, &n1, f1).await;
    wait_for_replay(&db.url, &replica_server);
    assert_eq!(answers(&reader).await, answers(&primary_only).await);
    // While the replica does not replay, its readers see the state before: what a client
    // that reads right after its job succeeded may see (README, "Scaling out").
    replay(&replica_server, true);
    let before = answers(&reader).await;
    let (n2, f2) = all.remove(0);
    let job = common::upload(&primary_only, &n2, f2).await;
    assert_eq!(job["state"], "succeeded");
    let lagging = answers(&reader).await;
    replay(&replica_server, false);
    assert_eq!(lagging, before, "the reader did not read from the replica");
    assert_ne!(answers(&primary_only).await, before);
    wait_for_replay(&db.url, &replica_server);
    assert_eq!(answers(&reader).await, answers(&primary_only).await);
}
