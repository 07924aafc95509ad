//! Conformance with the replaced system, addityeah/Aditya_17Oct2024 ("Uptime Monitoring
//! Backend", Flask + MySQL; its README is ../shared/originals/004_*): the session its README
//! shows, replayed against a real server loaded with the 2023 export it was written for
//! (../shared/seed-data/uptime/v1_2023):
//!
//! ```text
//! curl -X POST http://127.0.0.1:5000/trigger_report     → {"report_id": "<uuid>"}
//! curl http://127.0.0.1:5000/get_report/<report_id>      → {"status": "Running"} | the CSV
//! ```
//!
//! The CSV is the original's `csv.writer` output: header `store_id, uptime_last_hour,
//! downtime_last_hour, uptime_last_day, downtime_last_day, uptime_last_week,
//! downtime_last_week` (hour in minutes, day and week in hours), sent with `send_file(...,
//! as_attachment=True)` as `report_<report_id>.csv`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use sluice_core::{Domain, JobId, JobState};
use sluice_server::testing::TestServer;
use sluice_uptime::report::{self, ReportRequest};
use sluice_uptime::UptimeDomain;

const ORIGINAL_HEADER: &str = "store_id,uptime_last_hour,downtime_last_hour,uptime_last_day,downtime_last_day,uptime_last_week,downtime_last_week";

fn seed(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/seed-data/uptime/v1_2023")
        .join(rel)
}

/// Waits for a job to end (no timing assertion: it only bounds a hang).
async fn wait_job(ts: &TestServer, id: JobId) -> sluice_core::Job {
    for _ in 0..6000 {
        let job = ts.ctx.jobs.get(id).unwrap().unwrap();
        if job.state.is_terminal() {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("job {id} did not end");
}

/// The 2023 export's hours and zones, and the public poll subset holding an inactive poll,
/// uploaded as a client would.
async fn loaded_server() -> TestServer {
    let ts = TestServer::start(vec![Arc::new(UptimeDomain) as Arc<dyn Domain>]).await;
    for name in [
        "menu_hours.csv",
        "timezones.csv",
        "store_status.subset_madhvi_9999rows.csv",
    ] {
        let resp = reqwest::Client::new()
            .post(ts.url(&format!("/api/v1/uptime/uploads?name={name}")))
            .header("content-type", "text/csv")
            .body(std::fs::read(seed(name)).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 202, "{name}");
        let job: Value = resp.json().await.unwrap();
        let job = wait_job(&ts, job["id"].as_str().unwrap().parse().unwrap()).await;
        assert_eq!(job.state, JobState::Succeeded, "{name}: {:?}", job.error);
        assert_eq!(job.summary.rows_rejected, 0, "{name}");
    }
    ts
}

fn is_running(body: &Value) {
    // Key by key and type by type: one key, a string.
    assert_eq!(body, &json!({"status": "Running"}));
    assert!(body["status"].is_string());
}

#[tokio::test]
async fn readme_session_trigger_then_get_report() {
    let ts = loaded_server().await;

    // curl -X POST http://127.0.0.1:5000/trigger_report
    let resp = reqwest::Client::new()
        .post(ts.url("/trigger_report"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let body: Value = resp.json().await.unwrap();
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["report_id"]);
    let id = body["report_id"]
        .as_str()
        .expect("report_id is a string")
        .to_owned();
    let job: JobId = id.parse().expect("report_id is a UUID");

    // curl http://127.0.0.1:5000/get_report/<report_id>, as often as it takes.
    let url = ts.url(&format!("/get_report/{id}"));
    let done = loop {
        let resp = reqwest::get(&url).await.unwrap();
        assert_eq!(resp.status(), 200);
        let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
        if ct.starts_with("text/csv") {
            break resp;
        }
        assert_eq!(ct, "application/json");
        is_running(&resp.json().await.unwrap());
        // The next answer is the final one.
        wait_job(&ts, job).await;
    };
    assert_eq!(
        done.headers()["content-disposition"],
        format!("attachment; filename=\"report_{id}.csv\"").as_str()
    );
    let csv = done.text().await.unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some(ORIGINAL_HEADER));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();

    let summary: Value = reqwest::get(ts.url("/api/v1/uptime/summary"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rows.len() as u64, summary["stores"].as_u64().unwrap());

    // A positional reader of the original's columns reads the same numbers the native rows
    // name: uptime where uptime was, downtime where downtime was.
    let native: Value =
        reqwest::get(ts.url(&format!("/api/v1/uptime/reports/{id}/rows?limit=10000")))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let mut native_rows: Vec<&Value> = native["rows"].as_array().unwrap().iter().collect();
    let more: Value = reqwest::get(ts.url(&format!(
        "/api/v1/uptime/reports/{id}/rows?limit=10000&offset=10000"
    )))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    native_rows.extend(more["rows"].as_array().unwrap());
    assert_eq!(native_rows.len(), rows.len());
    let mut up_differs_from_down = 0;
    for (fields, n) in rows.iter().zip(&native_rows) {
        assert_eq!(fields.len(), 7, "{fields:?}");
        assert_eq!(fields[0], n["store_id"].as_str().unwrap());
        let v: Vec<f64> = fields[1..]
            .iter()
            .map(|x| x.parse::<f64>().expect("a number"))
            .collect();
        let named = [
            &n["last_hour"]["uptime"],
            &n["last_hour"]["downtime"],
            &n["last_day"]["uptime"],
            &n["last_day"]["downtime"],
            &n["last_week"]["uptime"],
            &n["last_week"]["downtime"],
        ];
        for (x, want) in v.iter().zip(named) {
            assert!(x.is_finite() && *x >= 0.0, "{fields:?}");
            assert!(
                (x - want.as_f64().unwrap()).abs() < 0.011,
                "{fields:?} vs {n}"
            );
        }
        if v[4] != v[5] {
            up_differs_from_down += 1;
        }
    }
    // Otherwise swapped columns would go unnoticed.
    assert!(up_differs_from_down > 0);

    // The query spelling answers the same file.
    let by_query = reqwest::get(ts.url(&format!("/get_report?report_id={id}")))
        .await
        .unwrap();
    assert_eq!(by_query.text().await.unwrap(), csv);
}

#[tokio::test]
async fn get_report_answers_running_while_the_report_runs() {
    let ts = loaded_server().await;
    // A registered report whose job has not run yet: what a client polling early sees.
    let req = ReportRequest::default();
    let job = report::create_job(&ts.ctx, &req).unwrap();
    let id = job.id().to_string();
    report::register(&ts.ctx, &req, job.id()).unwrap();
    let resp = reqwest::get(ts.url(&format!("/get_report/{id}")))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    is_running(&resp.json().await.unwrap());

    let ctx = ts.ctx.clone();
    tokio::task::spawn_blocking(move || report::run_job(&ctx, &req, job))
        .await
        .unwrap();
    let resp = reqwest::get(ts.url(&format!("/get_report/{id}")))
        .await
        .unwrap();
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    assert!(resp
        .text()
        .await
        .unwrap()
        .starts_with(&format!("{ORIGINAL_HEADER}\n")));
}

#[tokio::test]
async fn unknown_report_is_404() {
    let ts = TestServer::start(vec![Arc::new(UptimeDomain) as Arc<dyn Domain>]).await;
    let resp = reqwest::get(ts.url("/get_report/6f1c1f5e-0000-4000-8000-000000000000"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}
