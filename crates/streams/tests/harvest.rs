//! Harvests over real HTTP: the simulator replaying the real captures or sending random
//! events, the sluice server on a random port, results read through its routes.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use sluice_core::JobState;
use sluice_streams::parse::Stream;
use sluice_streams::simulate::{RandomConfig, ReplayTiming, SimMode};
use sluice_streams::store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_of_the_razi_captures_gives_the_expected_report() {
    // Original timing: the third Sytac is the last event, 189 ms after the one before it.
    let sim = simulator(
        local(),
        SimMode::Replay {
            dir: seed(RAZI),
            timing: ReplayTiming::Original { speed: 1.0 },
        },
    )
    .await;
    let server = server().await;
    let (run, job) = harvest(&server, json!({ "source": sim.url() })).await;
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
    assert_eq!(job.summary.rows_accepted, 140);
    assert_eq!(job.summary.extra["stop_name_seen"], 3);

    let (status, r) = get(&server, &format!("/api/v1/streams/runs/{run}/report")).await;
    assert_eq!(status, 200);
    assert_eq!(r["events_total"], 140);
    assert_eq!(
        r["events_per_stream"],
        json!({"sytflix": 74, "sytazon": 56, "sysney": 10})
    );
    assert_eq!(r["malformed_total"], 0);
    assert_eq!(r["users_total"], 49);
    assert_eq!(r["recent_shows"], 15);
    assert_eq!(r["sytflix_start_rate"].as_f64(), Some(26.0 / 74.0 * 100.0));
    assert_eq!(r["successful_streams_total"], 0);
    assert_eq!(r["successful_streams"].as_array().unwrap().len(), 49);
    assert_eq!(r["stop_reason"], "Sytac seen 3 times");
    assert_eq!(r["state"], "succeeded");
    assert_eq!(
        r["events_per_type"],
        json!({"show-liked": 22, "stream-finished": 65, "stream-interrupted": 6, "stream-started": 47})
    );
    let ms = &r["consumption_ms"];
    let total = ms["total"].as_u64().unwrap();
    assert!(
        total >= 14_000,
        "the capture spans 14.4 s; consumed {total} ms"
    );
    for s in ["sytflix", "sytazon", "sysney"] {
        assert!(ms[s].as_u64().unwrap() <= total);
    }

    // The third Sytac event is kept, and it is the last one that arrived.
    let (_, last) = get(
        &server,
        &format!("/api/v1/streams/runs/{run}/events?offset=139"),
    )
    .await;
    let last = &last["events"][0];
    assert_eq!(last["seq"], 139);
    assert_eq!(last["stream"], "sytflix");
    assert_eq!(last["event"], "stream-finished");
    assert_eq!(last["data"]["user"]["id"], 22);
    assert_eq!(last["data"]["user"]["first_name"], "Sytac");
    assert_eq!(last["data"]["show"]["show_id"], "s5");

    // Compat routes, on the latest finished run, with the replaced system's string values.
    assert_eq!(
        get(&server, "/recent_shows").await.1,
        json!({"recent_shows": "15"})
    );
    assert_eq!(get(&server, "/successful_streams").await.1, json!([]));
    assert_eq!(
        get(&server, "/start_events").await.1,
        json!({"start_event_rate(%)": "35.13513513513514"})
    );

    // The user report has the original harvester's aggregate events, in time order (the
    // original kept arrival order for some users; it wrote "" for no first actor where we
    // write null).
    let (_, users) = get(&server, "/user_report").await;
    let want: Value = serde_json::from_slice(
        &std::fs::read(seed(&format!("{RAZI}/aggregate-result.json"))).unwrap(),
    )
    .unwrap();
    let want = want["usersData"].as_array().unwrap();
    let users = users.as_array().unwrap();
    assert_eq!(users.len(), want.len());
    for (got, want) in users.iter().zip(want) {
        assert_eq!(got["user"]["user_id"], want["userId"].to_string());
        assert_eq!(got["user"]["user_name"], want["userName"]);
        let mut got_events: Vec<Value> = got["event_list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                json!([
                    e["show_id"],
                    e["show_title"],
                    e["show_platform"],
                    e["first_actor"].as_str().unwrap_or(""),
                    e["event_date"]
                ])
            })
            .collect();
        let mut want_events: Vec<Value> = want["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                json!([
                    e["showId"],
                    e["title"],
                    e["platform"],
                    e["firstPersonOfCast"],
                    e["eventTime"]
                ])
            })
            .collect();
        // All events of the capture lie on one day, so the text orders like the time.
        let times: Vec<&Value> = got_events.iter().map(|e| &e[4]).collect();
        assert!(
            times.windows(2).all(|w| w[0].as_str() <= w[1].as_str()),
            "{times:?}"
        );
        let key = |e: &Value| e[4].as_str().unwrap().to_owned();
        got_events.sort_by_key(key);
        want_events.sort_by_key(key);
        assert_eq!(got_events, want_events, "user {}", want["userId"]);
    }
    // Sytac Blumson, born 07/04/1975: completed years at the run date.
    let sytac = users.iter().find(|u| u["user"]["user_id"] == "22").unwrap();
    let run_date =
        chrono::NaiveDate::parse_from_str(r["run_date"].as_str().unwrap(), "%Y-%m-%d").unwrap();
    let born = chrono::NaiveDate::from_ymd_opt(1975, 4, 7).unwrap();
    let age = sluice_streams::parse::age(born, run_date);
    assert_eq!(sytac["user"]["age"], age.to_string());
    assert!(age >= 49);
}

#[tokio::test]
async fn rosfran_sample_comes_out_in_amsterdam_summer_time() {
    let (_dir, sim) = replay_one_fast(&format!("{ROSFRAN}/events_sample.txt"), "sytflix").await;
    let server = server().await;
    let (run, job) = harvest(&server, json!({"source": sim.url(), "max_duration": "1s"})).await;
    assert_eq!(job.state, JobState::Succeeded);
    let (_, r) = get(&server, &format!("/api/v1/streams/runs/{run}/report")).await;
    assert_eq!(r["stop_reason"], "time limit of 1 s reached");
    let mut times: Vec<String> = r["users"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|u| u["events"].as_array().unwrap().clone())
        .map(|e| e["event_date"].as_str().unwrap().to_owned())
        .collect();
    times.sort();
    assert_eq!(times.len(), 9);
    assert_eq!(times[0], "19-05-2023 14:58:26.624");
    assert_eq!(times[8], "19-05-2023 14:58:27.432");
    // User 39 (RU, Moscow) has two events, 92 ms apart, in time order.
    let u39 = r["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["user_id"] == 39)
        .unwrap();
    let t: Vec<&str> = u39["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_date"].as_str().unwrap())
        .collect();
    assert_eq!(t, ["19-05-2023 14:58:27.152", "19-05-2023 14:58:27.244"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_source_mid_run_reconnects_and_continues() {
    let mode = || {
        SimMode::Random(RandomConfig {
            seed: 9,
            rate: Some(100.0),
            malformed_share: 0.0,
        })
    };
    let sim = simulator(local(), mode()).await;
    let addr = sim.addr;
    let server = server().await;
    let mut rx = server.ctx.jobs.subscribe();
    let run = start_harvest(
        &server,
        json!({"source": sim.url(), "max_duration": 4, "stop_count": 0}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    sim.stop().await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let restarted_ms = chrono::Utc::now().timestamp_millis();
    let _sim = simulator(addr, mode()).await;
    let job = wait_job(&mut rx, &run).await;
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
    assert_eq!(
        job.summary.extra["stop_reason"],
        "time limit of 4 s reached"
    );
    for s in ["sytflix", "sytazon", "sysney"] {
        assert!(
            job.summary.extra["reconnects_per_stream"][s]
                .as_u64()
                .unwrap()
                >= 1,
            "{s}"
        );
    }
    // Events were harvested from the restarted source, on every stream.
    let events = store::read(&server.ctx.db, |c| c.report_events(&run)).unwrap();
    let after: Vec<usize> = Stream::ALL
        .iter()
        .map(|&s| {
            events
                .iter()
                .filter(|e| e.stream == s && e.at.timestamp_millis() > restarted_ms)
                .count()
        })
        .collect();
    assert!(
        after.iter().all(|&n| n > 20),
        "events after the restart: {after:?}"
    );
}

#[tokio::test]
async fn wrong_credentials_fail_the_run_with_a_clear_message() {
    let sim = simulator(
        local(),
        SimMode::Random(RandomConfig {
            seed: 1,
            rate: Some(10.0),
            malformed_share: 0.0,
        }),
    )
    .await;
    let server = server().await;
    let (run, job) = harvest(
        &server,
        json!({"source": sim.url(), "password": "wrong", "max_duration": "10s"}),
    )
    .await;
    assert_eq!(job.state, JobState::Failed);
    let error = job.error.unwrap();
    assert!(error.contains("refused the credentials"), "{error}");
    assert!(error.contains("HTTP 401"), "{error}");
    let (_, r) = get(&server, &format!("/api/v1/streams/runs/{run}")).await;
    assert_eq!(r["state"], "failed");
    assert_eq!(r["error"], error.as_str());
    // A failed run is not the latest finished one.
    let (status, p) = get(&server, "/user_report").await;
    assert_eq!(status, 404);
    assert!(p["detail"]
        .as_str()
        .unwrap()
        .contains("no finished harvest"));

    // The CLI says the same.
    let err = sluice_streams::cli::harvest(
        &server.ctx,
        sluice_streams::cli::HarvestArgs {
            source: Some(sim.url()),
            password: Some("wrong".into()),
            ..Default::default()
        },
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("refused the credentials"), "{err}");
}

#[tokio::test]
async fn bad_requests_are_problems_naming_the_parameter() {
    let server = server().await;
    let client = reqwest::Client::new();
    let post = |body: &'static str| {
        client
            .post(server.url("/api/v1/streams/harvests"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    for (body, param) in [
        (r#"{"source": "ftp://x"}"#, "source"),
        (r#"{"max_duration": "soon"}"#, "max_duration"),
        (r#"{"max_duration": -3}"#, "max_duration"),
        (r#"{"max_duration": 1e300}"#, "max_duration"),
        (r#"{"max_duration": 3600.5}"#, "max_duration"),
        (r#"{"max_duration": "61m"}"#, "max_duration"),
        (r#"{"source": "http://a:99999"}"#, "source"),
        (r#"{"callback_url": "nope"}"#, "callback_url"),
    ] {
        let resp = post(body).await.unwrap();
        assert_eq!(resp.status(), 400, "{body}");
        assert_eq!(resp.headers()["content-type"], "application/problem+json");
        let p: Value = resp.json().await.unwrap();
        assert_eq!(p["param"], param, "{body}");
    }
    for body in [
        r#"{"stop_count": 3.5}"#,
        r#"{"stop_count": -1}"#,
        r#"{"stop_count": 4294967296}"#,
    ] {
        assert_eq!(post(body).await.unwrap().status(), 400, "{body}");
    }
    assert_eq!(post("{not json").await.unwrap().status(), 400);
    assert_eq!(post(r#"{"sauce": 1}"#).await.unwrap().status(), 400);

    let (status, p) = get(&server, "/api/v1/streams/runs/nope/report").await;
    assert_eq!((status, p["param"].as_str()), (400, Some("run_id")));
    let (status, _) = get(
        &server,
        "/api/v1/streams/runs/6f1c1a5e-8a4b-4c43-9d7e-1f0e2a3b4c5d",
    )
    .await;
    assert_eq!(status, 404);
    let (status, p) = get(&server, "/api/v1/streams/runs?limit=100000").await;
    assert_eq!((status, p["param"].as_str()), (400, Some("limit")));
    let (status, _) = get(&server, "/api/v1/streams/runs/latest/events").await;
    assert_eq!(status, 404);
    assert_eq!(
        get(&server, "/api/v1/streams/runs").await.1["runs"],
        json!([])
    );
    for path in ["/recent_shows", "/successful_streams", "/start_events"] {
        assert_eq!(get(&server, path).await.0, 404, "{path}");
    }
}

#[tokio::test]
async fn cli_harvest_prints_a_summary_and_writes_the_json_report() {
    let (dir, sim) = replay_one_fast(&format!("{RAZI}/sysney-events.stream"), "sysney").await;
    let server = server().await;
    let json_path = dir.path().join("report.json");
    let text = sluice_streams::cli::harvest(
        &server.ctx,
        sluice_streams::cli::HarvestArgs {
            source: Some(sim.url()),
            max_duration: Some(Duration::from_millis(800)),
            json: Some(json_path.clone()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(text.contains("time limit of 800 ms reached"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.split_whitespace().take(3).eq(["sysney", "10", "events"])),
        "{text}"
    );
    let report: Value = serde_json::from_slice(&std::fs::read(&json_path).unwrap()).unwrap();
    assert_eq!(report["events_total"], 10);
    assert_eq!(report["events_per_stream"]["sysney"], 10);
    assert_eq!(report["sytflix_start_rate"], Value::Null);
    // The run is the latest finished one for the compat routes.
    assert_eq!(
        get(&server, "/start_events").await.1,
        json!({"start_event_rate(%)": null})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_harvests_the_built_in_simulator() {
    let server = server().await;
    let sim = sluice_streams::cli::demo_simulator().await.unwrap();
    let lines = sluice_streams::cli::demo(&server.ctx, &sim).await.unwrap();
    assert!(lines[0].starts_with("streams: harvested "), "{lines:?}");
    assert!(lines.iter().any(|l| l == "GET /user_report"));
    let (status, users) = get(&server, "/user_report").await;
    assert_eq!(status, 200);
    assert!(!users.as_array().unwrap().is_empty());
    let (_, runs) = get(&server, "/api/v1/streams/runs").await;
    assert_eq!(runs["runs"].as_array().unwrap().len(), 1);
    assert_eq!(runs["runs"][0]["state"], "succeeded");
}

#[tokio::test]
async fn an_unreachable_source_fails_the_run_at_once_not_at_its_time_limit() {
    // A port nothing listens on: the connection is refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = server().await;
    // With the hour-long limit, only failing at the first refused connection ends the run
    // before `harvest` gives up waiting.
    let (run, job) = harvest(
        &server,
        json!({"source": format!("http://127.0.0.1:{port}"), "max_duration": "1h"}),
    )
    .await;
    assert_eq!(job.state, JobState::Failed);
    let error = job.error.unwrap();
    assert!(error.contains("cannot reach the source"), "{error}");
    assert!(error.contains(&format!("127.0.0.1:{port}")), "{error}");
    let (_, r) = get(&server, &format!("/api/v1/streams/runs/{run}")).await;
    assert_eq!(r["state"], "failed");
    assert_eq!(job.summary.extra["runtime_file"], Value::Null);
}

/// Text the source chose may hold NUL (a JSON `\u0000` in a name, a raw NUL byte in a
/// malformed message): it is stored and answered as received, on either backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_in_the_source_text_is_kept_as_received() {
    let data = r#"{"show":{"show_id":"s\u00005","cast":"Q\u0000L, W","platform":"Sytflix","release_year":2020,"title":"T\u0000"},"event_date":"19-05-2023 08:58:26.754","user":{"id":22,"date_of_birth":"07/04/1975","first_name":"N\u0000","country":"CA","last_name":"B\u0000"}}"#;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("sytflix-events.stream"),
        format!(
            "id: 1\nevent: stream-started\ndata: {data}\n\nid: 2\nevent: pa\0used\ndata: {data}\n\n"
        ),
    )
    .unwrap();
    let sim = simulator(
        local(),
        SimMode::Replay {
            dir: dir.path().to_owned(),
            timing: ReplayTiming::Fast,
        },
    )
    .await;
    let server = server().await;
    let (run, job) = harvest(&server, json!({"source": sim.url(), "max_duration": "1s"})).await;
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
    assert_eq!(
        (job.summary.rows_accepted, job.summary.rows_rejected),
        (1, 1)
    );

    let events = store::read(&server.ctx.db, |c| c.report_events(&run)).unwrap();
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e.first_name.as_deref(), Some("N\0"));
    assert_eq!(e.last_name.as_deref(), Some("B\0"));
    assert_eq!(e.show_id, "s\x005");
    assert_eq!(e.title.as_deref(), Some("T\0"));
    assert_eq!(e.first_actor.as_deref(), Some("Q\0L"));

    let (_, m) = get(&server, &format!("/api/v1/streams/runs/{run}/malformed")).await;
    let bad = &m["malformed"][0];
    assert_eq!(bad["seq"], 1);
    assert_eq!(bad["raw"], format!("id: 2\nevent: pa\0used\ndata: {data}"));
    assert!(
        bad["reason"]
            .as_str()
            .unwrap()
            .starts_with("unknown event type `pa\0used`"),
        "{bad}"
    );
    let (_, ev) = get(&server, &format!("/api/v1/streams/runs/{run}/events")).await;
    assert_eq!(ev["events"][0]["data"]["user"]["first_name"], "N\0");
}
