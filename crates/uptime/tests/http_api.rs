//! HTTP sessions against a real server on a random port: compat and native report routes,
//! uploads with bad rows, re-delivery, concurrency and restart.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use sluice_core::{Database, DbError, Domain, JobId, JobState};
use sluice_server::testing::TestServer;
use sluice_uptime::report::{self, ReportRequest};
use sluice_uptime::{store, UptimeDomain};

/// The replaced system's columns, what `/get_report` answers.
const HEADER: &str = "store_id,uptime_last_hour,downtime_last_hour,uptime_last_day,downtime_last_day,uptime_last_week,downtime_last_week";
/// The native CSV's columns: uptime of the three windows, then downtime.
const NATIVE_HEADER: &str = "store_id,uptime_last_hour,uptime_last_day,uptime_last_week,downtime_last_hour,downtime_last_day,downtime_last_week";

fn domains() -> Vec<Arc<dyn Domain>> {
    vec![Arc::new(UptimeDomain)]
}

async fn server() -> TestServer {
    TestServer::start(domains()).await
}

/// Waits for a job to end (no timing assertion: it only bounds a hang).
async fn wait_job(ts: &TestServer, id: &str) -> sluice_core::Job {
    let id: JobId = id.parse().unwrap();
    for _ in 0..3000 {
        let job = ts.ctx.jobs.get(id).unwrap().unwrap();
        if job.state.is_terminal() {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("job {id} did not end");
}

/// Uploads one file and waits for its ingestion job.
async fn upload(ts: &TestServer, name: &str, body: &str) -> sluice_core::Job {
    let resp = reqwest::Client::new()
        .post(ts.url(&format!("/api/v1/uptime/uploads?name={name}")))
        .header("content-type", "text/csv")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let job: Value = resp.json().await.unwrap();
    let job = wait_job(ts, job["id"].as_str().unwrap()).await;
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
    job
}

/// The worked example's Monday store and a 24×7 store in Los Angeles.
async fn load(ts: &TestServer) {
    upload(
        ts,
        "polls.csv",
        "store_id,status,timestamp_utc\ns1,active,2023-01-23 16:14:00 UTC\ns1,inactive,2023-01-23 17:15:00 UTC\nla,inactive,2023-01-23 17:00:00 UTC\n",
    )
    .await;
    upload(
        ts,
        "hours.csv",
        "store_id,day,start_time_local,end_time_local\ns1,0,09:00:00,12:00:00\n",
    )
    .await;
    upload(
        ts,
        "zones.csv",
        "timezone_str,store_id\nAmerica/Chicago,s1\nAmerica/Los_Angeles,la\n",
    )
    .await;
}

async fn get(ts: &TestServer, path: &str) -> reqwest::Response {
    reqwest::get(ts.url(path)).await.unwrap()
}

/// Polls `/get_report/{id}` until it is no longer running; returns the final response.
async fn final_report(ts: &TestServer, id: &str) -> reqwest::Response {
    wait_job(ts, id).await;
    get(ts, &format!("/get_report/{id}")).await
}

#[tokio::test]
async fn compat_trigger_then_csv_and_404() {
    let ts = server().await;
    load(&ts).await;
    let resp = reqwest::Client::new()
        .post(ts.url("/trigger_report"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let id = body["report_id"].as_str().unwrap().to_owned();
    assert_eq!(body.as_object().unwrap().len(), 1);

    let resp = final_report(&ts, &id).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    assert_eq!(resp.headers()["x-report-status"], "Complete");
    let csv = resp.text().await.unwrap();
    // now = the latest poll, 17:15 UTC (11:15 in Chicago): the last hour is 10:15–10:44:30
    // up, then down; the week also holds 11:15–12:00 of the previous Monday (up, like the
    // nearest poll). la is open 24×7 and down since its only poll.
    assert_eq!(
        csv,
        format!(
            "{HEADER}\nla,0.00,60.00,0.00,24.00,0.00,168.00\ns1,29.50,30.50,1.74,0.51,2.49,0.51\n"
        )
    );
    let by_query = get(&ts, &format!("/get_report?report_id={id}")).await;
    assert_eq!(by_query.text().await.unwrap(), csv);
    // The native CSV of the same report keeps its own columns; the file name differs too.
    let native = get(&ts, &format!("/api/v1/uptime/reports/{id}/rows?format=csv")).await;
    assert_eq!(
        native.headers()["content-disposition"],
        format!("attachment; filename=\"report-{id}.csv\"").as_str()
    );
    assert_eq!(
        native.text().await.unwrap(),
        format!(
            "{NATIVE_HEADER}\nla,0.00,0.00,0.00,60.00,24.00,168.00\ns1,29.50,1.74,2.49,30.50,0.51,0.51\n"
        )
    );
    // A UUID spelled in capitals is the same report.
    let upper = get(&ts, &format!("/get_report/{}", id.to_uppercase())).await;
    assert_eq!(upper.text().await.unwrap(), csv);

    let unknown = get(&ts, "/get_report/6f1c1f5e-0000-4000-8000-000000000000").await;
    assert_eq!(unknown.status(), 404);
    assert_eq!(
        unknown.headers()["content-type"],
        "application/problem+json"
    );
    let bad = get(&ts, "/get_report/not-a-report").await;
    assert_eq!(bad.status(), 400);
    assert_eq!(bad.json::<Value>().await.unwrap()["param"], "report_id");
    let missing = get(&ts, "/get_report").await;
    assert_eq!(missing.status(), 400);
    assert_eq!(missing.json::<Value>().await.unwrap()["param"], "report_id");
}

#[tokio::test]
async fn running_report_answers_running_until_done() {
    let ts = server().await;
    load(&ts).await;
    // A registered report whose job has not run yet.
    let req = ReportRequest::default();
    let job = report::create_job(&ts.ctx, &req).unwrap();
    let id = job.id().to_string();
    report::register(&ts.ctx, &req, job.id()).unwrap();
    let resp = get(&ts, &format!("/get_report/{id}")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<Value>().await.unwrap(),
        json!({"status": "Running"})
    );
    let native: Value = get(&ts, &format!("/api/v1/uptime/reports/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(native["status"], "running");
    let rows = get(&ts, &format!("/api/v1/uptime/reports/{id}/rows")).await;
    assert_eq!(rows.status(), 409);

    let ctx = ts.ctx.clone();
    tokio::task::spawn_blocking(move || report::run_job(&ctx, &req, job))
        .await
        .unwrap();
    let done = get(&ts, &format!("/get_report/{id}")).await;
    assert_eq!(done.headers()["x-report-status"], "Complete");
    let job = ts.ctx.jobs.get(id.parse().unwrap()).unwrap().unwrap();
    assert_eq!((job.progress.done, job.progress.total), (2, Some(2)));
    assert_eq!(job.progress.unit, "stores");
}

#[tokio::test]
async fn reports_survive_a_restart_as_failed_or_complete() {
    let ts = server().await;
    load(&ts).await;
    let body: Value = reqwest::Client::new()
        .post(ts.url("/trigger_report"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let done_id = body["report_id"].as_str().unwrap().to_owned();
    wait_job(&ts, &done_id).await;
    // A report whose process dies while it runs: the job is running and nobody ends it.
    let req = ReportRequest::default();
    let job = report::create_job(&ts.ctx, &req).unwrap();
    let stuck_id = job.id().to_string();
    report::register(&ts.ctx, &req, job.id()).unwrap();
    job.start().unwrap();
    // What SIGKILL leaves: the job running, its owner gone (its lock released). The handle is
    // leaked so that nothing ends the job; the job's owner is set to one whose lock nobody
    // holds, as the leaked handle still holds this process's.
    std::mem::forget(job);
    let dead = "0123456789abcdef0123456789abcdef";
    match &ts.ctx.db {
        Database::Sqlite(db) => db.write(|c| {
            c.execute(
                "UPDATE core_jobs SET owner = ?2 WHERE id = ?1",
                [&stuck_id, dead],
            )
            .map(drop)
            .map_err(DbError::from)
        }),
        Database::Postgres(pg) => pg.write(|tx| {
            tx.execute(
                "UPDATE core_jobs SET owner = $2 WHERE id = $1",
                &[&stuck_id, &dead],
            )
            .map(drop)
            .map_err(DbError::from)
        }),
    }
    .unwrap();
    assert_eq!(
        get(&ts, &format!("/get_report/{stuck_id}"))
            .await
            .json::<Value>()
            .await
            .unwrap(),
        json!({"status": "Running"})
    );

    let ts = ts.restart(domains()).await;
    let stuck: Value = get(&ts, &format!("/get_report/{stuck_id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(stuck["status"], "Failed");
    assert!(
        stuck["error"].as_str().unwrap().contains("interrupted"),
        "{stuck}"
    );
    let done = get(&ts, &format!("/get_report/{done_id}")).await;
    assert_eq!(done.headers()["x-report-status"], "Complete");
    assert!(done.text().await.unwrap().starts_with(HEADER));
}

async fn trigger(ts: &TestServer, body: Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(ts.url("/api/v1/uptime/reports"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn concurrent_reports_do_not_interfere() {
    let ts = server().await;
    load(&ts).await;
    let cases = [
        (
            "2023-01-23T18:00:00Z",
            "s1",
            "s1,0.00,60.00,1.74,1.26,1.74,1.26",
        ),
        (
            "2023-01-23T17:30:00Z",
            "s1",
            "s1,14.50,45.50,1.74,0.76,2.24,0.76",
        ),
        (
            "2023-01-23T17:30:00Z",
            "la",
            "la,0.00,60.00,0.00,24.00,0.00,168.00",
        ),
        (
            "2023-01-23 18:00:00 UTC",
            "s1",
            "s1,0.00,60.00,1.74,1.26,1.74,1.26",
        ),
    ];
    let started: Vec<_> = cases
        .iter()
        .map(|(now, store, _)| {
            let (url, body) = (
                ts.url("/api/v1/uptime/reports"),
                json!({"now": now, "stores": [store]}),
            );
            tokio::spawn(async move {
                reqwest::Client::new()
                    .post(url)
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut ids = Vec::new();
    for resp in started {
        let resp = resp.await.unwrap();
        assert_eq!(resp.status(), 202);
        let v: Value = resp.json().await.unwrap();
        ids.push(v["report_id"].as_str().unwrap().to_owned());
    }
    for (id, (_, _, line)) in ids.iter().zip(&cases) {
        let csv = final_report(&ts, id).await.text().await.unwrap();
        assert_eq!(csv, format!("{HEADER}\n{line}\n"));
    }
}

#[tokio::test]
async fn native_report_rows_and_errors() {
    let ts = server().await;
    load(&ts).await;
    let resp = trigger(
        &ts,
        json!({"now": "2023-01-23T18:00:00Z", "coverage_minutes": 30}),
    )
    .await;
    assert_eq!(resp.status(), 202);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let v: Value = resp.json().await.unwrap();
    let id = v["report_id"].as_str().unwrap().to_owned();
    assert_eq!(location, format!("/api/v1/uptime/reports/{id}"));
    wait_job(&ts, &id).await;
    let info: Value = get(&ts, &location).await.json().await.unwrap();
    assert_eq!(info["status"], "complete");
    assert_eq!(info["now"], "2023-01-23T18:00:00Z");
    assert_eq!(info["windows"][2]["from"], "2023-01-16T18:00:00Z");
    assert_eq!(info["rows"], 2);

    let page: Value = get(&ts, &format!("{location}/rows?limit=1&offset=1"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["total"], 2);
    let s1 = &page["rows"][0];
    assert_eq!(s1["store_id"], "s1");
    // Within 30 minutes of a poll (10:14 and 11:15): 09:44–10:44 and 10:45–11:45.
    assert_eq!(
        s1["last_day"],
        json!({"business": 3.0, "uptime": 1.74, "downtime": 1.26, "covered": 2.0})
    );
    assert_eq!(s1["zone_given"], true);
    assert_eq!(page["rows"].as_array().unwrap().len(), 1);
    let csv = get(&ts, &format!("{location}/rows?format=csv")).await;
    assert_eq!(csv.headers()["x-report-status"], "Complete");
    assert!(csv
        .text()
        .await
        .unwrap()
        .ends_with("s1,0.00,1.74,1.74,60.00,1.26,1.26\n"));

    let list: Value = get(&ts, "/api/v1/uptime/reports?limit=5")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list[0]["report_id"], id.as_str());

    for (resp, param) in [
        (
            get(&ts, &format!("{location}/rows?format=xml")).await,
            "format",
        ),
        (get(&ts, &format!("{location}/rows?limit=0")).await, "limit"),
        (trigger(&ts, json!({"now": "yesterday"})).await, "now"),
        (
            trigger(&ts, json!({"coverage_minutes": 0})).await,
            "coverage_minutes",
        ),
        (
            get(&ts, "/api/v1/uptime/stores/s1/timeline?window=month").await,
            "window",
        ),
        (
            get(&ts, "/api/v1/uptime/stores/s1/timeline?now=noon").await,
            "now",
        ),
    ] {
        assert_eq!(resp.status(), 400, "{param}");
        assert_eq!(resp.headers()["content-type"], "application/problem+json");
        let p: Value = resp.json().await.unwrap();
        assert_eq!(p["param"], param, "{p}");
    }
    let unknown_store = trigger(&ts, json!({"stores": ["nope"]})).await;
    assert_eq!(unknown_store.status(), 404);
    assert_eq!(
        unknown_store.json::<Value>().await.unwrap()["param"],
        "stores"
    );
    let bad_json = reqwest::Client::new()
        .post(ts.url("/api/v1/uptime/reports"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_json.status(), 400);
    assert_eq!(
        get(
            &ts,
            "/api/v1/uptime/reports/6f1c1f5e-0000-4000-8000-000000000000"
        )
        .await
        .status(),
        404
    );
    assert_eq!(
        get(&ts, "/api/v1/uptime/stores/nope/timeline")
            .await
            .status(),
        404
    );
}

#[tokio::test]
async fn timeline_explains_the_monday_store() {
    let ts = server().await;
    load(&ts).await;
    let t: Value = get(
        &ts,
        "/api/v1/uptime/stores/s1/timeline?window=day&now=2023-01-23T18:00:00Z",
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(t["zone"], "America/Chicago");
    assert_eq!(
        t["hours"],
        json!([{"day": 0, "start": "09:00:00", "end": "12:00:00"}])
    );
    assert_eq!(
        t["window"],
        json!({"from": "2023-01-22T18:00:00Z", "to": "2023-01-23T18:00:00Z"})
    );
    assert_eq!(
        t["business"],
        json!([{"from": "2023-01-23T15:00:00Z", "to": "2023-01-23T18:00:00Z"}])
    );
    assert_eq!(
        t["segments"],
        json!([
            {"from": "2023-01-22T18:00:00Z", "to": "2023-01-23T16:44:30Z", "status": "active", "poll_at": "2023-01-23T16:14:00Z"},
            {"from": "2023-01-23T16:44:30Z", "to": "2023-01-23T18:00:00Z", "status": "inactive", "poll_at": "2023-01-23T17:15:00Z"}
        ])
    );
    assert_eq!(t["unit"], "hours");
    assert_eq!(
        t["totals"],
        json!({"business": 3.0, "uptime": 1.74, "downtime": 1.26, "covered": 3.0})
    );
    let hour: Value = get(
        &ts,
        "/api/v1/uptime/stores/s1/timeline?window=hour&now=2023-01-23T17:30:00Z",
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(hour["unit"], "minutes");
    assert_eq!(hour["totals"]["uptime"], 14.5);
    assert_eq!(hour["totals"]["downtime"], 45.5);

    let summary: Value = get(&ts, "/api/v1/uptime/summary")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(summary["stores"], 2);
    assert_eq!(summary["polls"], 3);
    assert_eq!(summary["latest_poll"], "2023-01-23T17:15:00Z");
    let stores: Value = get(&ts, "/api/v1/uptime/stores?limit=1")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        stores,
        json!([{"store_id": "la", "zone": "America/Los_Angeles", "zone_given": true}])
    );
}

#[tokio::test]
async fn bad_rows_are_rejected_with_reasons_while_the_rest_lands() {
    let ts = server().await;
    let polls = upload(
        &ts,
        "polls.csv",
        "\u{feff}status,timestamp_utc,store_id\nactive,2023-01-23 16:14:00.5 UTC,a\nonline,2023-01-23 16:15:00 UTC,a\ninactive,2023-01-32 10:00:00 UTC,a\ninactive,2023-01-23T17:00:00Z,a\n",
    )
    .await;
    let hours = upload(
        &ts,
        "hours.csv",
        "store_id,dayOfWeek,start_time_local,end_time_local\na,7,09:00:00,10:00:00\na,1,9am,10:00:00\na,1,22:00:00,02:00:00\n,1,09:00:00,10:00:00\n",
    )
    .await;
    let zones = upload(
        &ts,
        "zones.csv",
        "store_id,timezone_str\na,Mars/Olympus\nb,Asia/Beirut\n",
    )
    .await;
    let reasons = |job: &sluice_core::Job| -> Vec<(String, u64, String)> {
        job.summary
            .rejections
            .iter()
            .map(|r| (r.file.clone(), r.line, r.reason.clone()))
            .collect()
    };
    assert_eq!(polls.summary.rows_accepted, 2);
    assert_eq!(
        reasons(&polls),
        vec![
            ("polls.csv".into(), 3, "unknown status `online` (expected active or inactive)".into()),
            ("polls.csv".into(), 4, "bad timestamp `2023-01-32 10:00:00 UTC` (expected YYYY-MM-DD HH:MM:SS[.ffffff] UTC or ISO 8601)".into()),
        ]
    );
    assert_eq!(hours.summary.rows_accepted, 1);
    assert_eq!(
        reasons(&hours),
        vec![
            (
                "hours.csv".into(),
                2,
                "bad day `7` (expected 0 = Monday … 6 = Sunday)".into()
            ),
            (
                "hours.csv".into(),
                3,
                "bad time `9am` (expected HH:MM:SS local time, 00:00:00 to 24:00:00)".into()
            ),
            ("hours.csv".into(), 5, "empty store_id".into()),
        ]
    );
    assert_eq!(zones.summary.rows_accepted, 1);
    assert_eq!(
        reasons(&zones),
        vec![(
            "zones.csv".into(),
            2,
            "unknown time zone `Mars/Olympus` (expected an IANA name such as America/Chicago)"
                .into()
        )]
    );
    let not_csv = upload(&ts, "notes.csv", "hello,world\n1,2\n").await;
    assert_eq!(
        not_csv.summary.files[0].status,
        sluice_core::jobs::FileStatus::Rejected
    );
    let stored = store::read(&ts.ctx.db, |r| r.stored()).unwrap();
    assert_eq!(
        (
            stored.stores,
            stored.polls,
            stored.stores_with_hours,
            stored.stores_with_zone
        ),
        (2, 2, 1, 1)
    );
}

#[tokio::test]
async fn redelivered_polls_count_once() {
    use sluice_core::jobs::FileStatus;
    let ts = server().await;
    let a = "store_id,status,timestamp_utc\nx,active,2023-01-23 08:00:00 UTC\nx,active,2023-01-23 10:00:00 UTC\nx,active,2023-01-23 11:00:00 UTC\n";
    upload(&ts, "a.csv", a).await;
    let polls = || store::read(&ts.ctx.db, |r| r.stored()).unwrap().polls;
    assert_eq!(polls(), 3);
    // Another extract repeating two polls (other column order, ISO times) and adding one.
    let b = upload(
        &ts,
        "b.csv",
        "timestamp_utc,status,store_id\n2023-01-23T10:00:00Z,active,x\n2023-01-23T11:00:00.000000Z,active,x\n2023-01-23T12:00:00Z,inactive,x\n",
    )
    .await;
    assert_eq!(b.summary.files[0].status, FileStatus::Ingested);
    assert_eq!(polls(), 4);
    let again = upload(&ts, "a-copy.csv", a).await;
    assert_eq!(again.summary.files[0].status, FileStatus::Duplicate);
    assert_eq!(polls(), 4);
    // a.csv re-delivered with other content replaces what only it delivered (08:00); the
    // polls b.csv delivered again stay.
    let a2 = upload(
        &ts,
        "a.csv",
        "store_id,status,timestamp_utc\nx,inactive,2023-01-23 09:00:00 UTC\n",
    )
    .await;
    assert_eq!(a2.summary.files[0].status, FileStatus::Replaced);
    assert_eq!(polls(), 4);
    let t: Value = get(
        &ts,
        "/api/v1/uptime/stores/x/timeline?window=day&now=2023-01-23T13:00:00Z",
    )
    .await
    .json()
    .await
    .unwrap();
    let ats: Vec<&str> = t["polls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["at"].as_str().unwrap())
        .collect();
    assert_eq!(
        ats,
        vec![
            "2023-01-23T09:00:00Z",
            "2023-01-23T10:00:00Z",
            "2023-01-23T11:00:00Z",
            "2023-01-23T12:00:00Z"
        ]
    );
    let latest = || store::read(&ts.ctx.db, |r| r.stored()).unwrap().latest_poll;
    assert_eq!(latest(), Some(1_674_475_200_000_000)); // 12:00
                                                       // b.csv re-delivered with only 09:30 takes back everything it delivered last, the latest
                                                       // poll included.
    upload(
        &ts,
        "b.csv",
        "store_id,status,timestamp_utc\nx,active,2023-01-23 09:30:00 UTC\n",
    )
    .await;
    assert_eq!(polls(), 2);
    assert_eq!(latest(), Some(1_674_466_200_000_000)); // 09:30
}
