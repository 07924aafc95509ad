//! The same inputs on SQLite and on PostgreSQL give the same answers, byte for byte:
//! generated sources, then a file re-delivering part of the polls with other statuses, that
//! file replaced by another, then one re-delivering all polls; reports (full and filtered, CSV and native rows), the
//! compat CSV, the summary, the store list and a timeline. Needs the test PostgreSQL server
//! (`SLUICE_TEST_POSTGRES`, see `.ci/postgres.sh`); without it the test is skipped, except
//! under CI, where that fails.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sluice_core::jobs::NewJob;
use sluice_core::{ingest, Backend, Domain, JobState, Summary};
use sluice_server::testing::{have_postgres, TestServer};
use sluice_uptime::cli::{self, ReportArgs};
use sluice_uptime::generate::{self, Config, POLLS_FILE};
use sluice_uptime::ingest::UptimeIngest;
use sluice_uptime::{report, UptimeDomain};

/// Every `step`-th poll row of `polls` with its status inverted, as a file of its own.
fn redelivery(polls: &Path, dir: &Path, name: &str, step: usize) -> PathBuf {
    let text = std::fs::read_to_string(polls).unwrap();
    let mut lines = text.lines();
    let mut out = format!("{}\n", lines.next().unwrap());
    for line in lines.step_by(step) {
        let flipped = if line.contains(",active,") {
            line.replace(",active,", ",inactive,")
        } else {
            line.replace(",inactive,", ",active,")
        };
        out.push_str(&flipped);
        out.push('\n');
    }
    let dir = dir.join(format!("step{step}"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, out).unwrap();
    path
}

fn ingest_all(ts: &TestServer, paths: &[PathBuf]) {
    let job = ingest::new_job(&ts.ctx, &UptimeIngest, paths, None).unwrap();
    let done = ingest::run(&ts.ctx, &UptimeIngest, paths, job).unwrap();
    assert_eq!(done.state, JobState::Succeeded, "{:?}", done.error);
}

/// A report's CSV, native rows and compat CSV.
async fn report_of(ts: &TestServer, stores: &[&str]) -> (String, String, String) {
    let ctx = ts.ctx.clone();
    let stores: Vec<String> = stores.iter().map(|s| s.to_string()).collect();
    let (id, csv) = tokio::task::spawn_blocking(move || {
        let job = ctx
            .jobs
            .create(NewJob::new("uptime", "report", "stores"))
            .unwrap();
        job.start().unwrap();
        let args = ReportArgs {
            out: None,
            now: None,
            stores,
        };
        let csv = cli::report(&ctx, &args, &job).unwrap();
        let id = job.id().to_string();
        job.succeed(Summary::default()).unwrap();
        (id, std::fs::read_to_string(csv).unwrap())
    })
    .await
    .unwrap();
    let rows = report::native_rows(&ts.ctx, &id, 0, 1_000_000).unwrap();
    let compat = reqwest::get(ts.url(&format!("/get_report/{id}")))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    (csv, serde_json::to_string(&rows).unwrap(), compat)
}

async fn body(ts: &TestServer, path: &str) -> String {
    let resp = reqwest::get(ts.url(path)).await.unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    resp.text().await.unwrap()
}

/// Everything the test compares, after each step.
async fn answers(ts: &TestServer, some: &[&str]) -> Vec<String> {
    let (csv, rows, compat) = report_of(ts, &[]).await;
    let (fcsv, frows, _) = report_of(ts, some).await;
    let mut out = vec![csv, rows, compat, fcsv, frows];
    out.push(body(ts, "/api/v1/uptime/summary").await);
    out.push(body(ts, "/api/v1/uptime/stores?limit=1000").await);
    out.push(body(ts, "/api/v1/uptime/stores?limit=7&offset=3").await);
    for s in some {
        out.push(
            body(
                ts,
                &format!("/api/v1/uptime/stores/{s}/timeline?window=week"),
            )
            .await,
        );
    }
    out
}

#[tokio::test]
async fn both_backends_give_the_same_bytes() {
    if !have_postgres() {
        return;
    }
    let domains = || vec![Arc::new(UptimeDomain) as Arc<dyn Domain>];
    let sqlite = TestServer::start_on(Backend::Sqlite, domains(), |_| {}).await;
    let pg = TestServer::start_on(Backend::Postgres, domains(), |_| {}).await;
    assert!(pg.database().is_some());
    let dir = tempfile::tempdir().unwrap();
    let files = generate::write(dir.path(), &Config::new(60, 9, 11)).unwrap();
    let polls = files
        .iter()
        .find(|p| p.file_name().unwrap() == POLLS_FILE)
        .unwrap()
        .clone();
    let again = redelivery(&polls, dir.path(), "again.csv", 3);
    // Every poll again: whole blocks of the first file move to this one's.
    let all = redelivery(&polls, dir.path(), "all.csv", 1);
    let replacement = redelivery(&polls, dir.path(), "again.csv", 5);
    let stores: Vec<String> = {
        let text = std::fs::read_to_string(&polls).unwrap();
        let mut ids: Vec<String> = text
            .lines()
            .skip(1)
            .map(|l| l.split(',').next().unwrap().to_owned())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    };
    let some = [stores[0].as_str(), stores[stores.len() / 2].as_str()];
    let mut before: Option<Vec<String>> = None;
    for step in [files.clone(), vec![again], vec![replacement], vec![all]] {
        ingest_all(&sqlite, &step);
        ingest_all(&pg, &step);
        let (a, b) = (answers(&sqlite, &some).await, answers(&pg, &some).await);
        assert!(a[0].lines().count() > 50, "{}", a[0]);
        // Each step changes the figures (the statuses it delivers are other ones).
        assert!(before.as_ref().is_none_or(|p| p[0] != a[0]));
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert!(x == y, "answer {i} differs:\nSQLite: {x}\nPostgreSQL: {y}");
        }
        before = Some(a);
    }
}
