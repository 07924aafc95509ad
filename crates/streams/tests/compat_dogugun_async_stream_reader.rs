//! Conformance with the replaced system, dogugun/async_stream_reader (Python + Flask): the
//! requests its README shows, replayed against a real server after a real harvest of the
//! simulator, answered as the README shows them — byte for byte where it shows bytes, key by
//! key and type by type elsewhere — and its runtime file, line by line.
//!
//! The captures are built here so that the harvest yields the README's own figures: 96
//! recent shows, 197 starts among 513 Sytflix events (`38.40155945419103`), users 4 and 10
//! with one successful stream each, and the README's user 9 with its one event.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::{json, Value};
use sluice_core::JobState;
use sluice_server::testing::TestServer;
use sluice_streams::compat::py_float_str;
use sluice_streams::simulate::{ReplayTiming, SimMode};

/// One event as the events server sends it.
struct Ev {
    kind: &'static str,
    /// `dd-MM-yyyy HH:mm:ss.SSS` in the user's zone (all users here are in PT, i.e. UTC).
    date: String,
    user: i64,
    first: &'static str,
    last: &'static str,
    born: &'static str,
    show: String,
    platform: &'static str,
    title: String,
    cast: &'static str,
    release_year: i64,
}

impl Ev {
    fn wire(&self, id: &str) -> String {
        let data = json!({
            "show": {
                "show_id": self.show, "cast": self.cast, "country": "United States",
                "date_added": "April 30, 2021", "description": "Kive onto the vuters.",
                "director": "Koe Jirnish", "duration": "2 Seasons", "listed_in": "Comedy",
                "rating": "TV-PG", "release_year": self.release_year, "title": self.title,
                "type": "Movie", "platform": self.platform,
            },
            "event_date": self.date,
            "user": {
                "id": self.user, "date_of_birth": self.born, "email": "u@example.com",
                "first_name": self.first, "gender": "Male", "ip_address": "34.50.137.193",
                "country": "PT", "last_name": self.last,
            },
        });
        format!("id:{id}\nevent:{}\ndata:{data}\n\n", self.kind)
    }
}

/// The `n`th second of 1 December 2023, as an `event_date`.
fn at(n: u32) -> String {
    format!(
        "01-12-2023 {:02}:{:02}:{:02}.250",
        n / 3600,
        n / 60 % 60,
        n % 60
    )
}

fn sytflix(kind: &'static str, n: u32, user: i64, show: String, release_year: i64) -> Ev {
    Ev {
        kind,
        date: at(n),
        user,
        first: "Barnie",
        last: "Brodeur",
        born: "02/07/1981",
        title: format!("Title of {show}"),
        show,
        platform: "Sytflix",
        cast: "Huy Pearce, Vadhir Cerbez",
        release_year,
    }
}

/// The README's user 9 and their one event, and users 4 (Sytflix) and 10 (Sysney) with one
/// successful stream each.
fn readme_users() -> (Vec<Ev>, Vec<Ev>) {
    let herculie = Ev {
        kind: "stream-finished",
        // PT is UTC; 15:04 UTC is 16:04 in Amsterdam in December, as the README prints it.
        date: "06-12-2023 15:04:56.339".into(),
        user: 9,
        first: "Herculie",
        last: "Eadon",
        born: "15/12/1983",
        show: "s10".into(),
        platform: "Sysney",
        title: "Jorld's Lost Hifgerous Xkark?".into(),
        cast: "Lill Kormer",
        release_year: 2020,
    };
    let sysney = |kind, n| Ev {
        kind,
        date: at(n),
        user: 10,
        first: "Danella",
        last: "Reinhard",
        born: "01/01/1990",
        show: "s10".into(),
        platform: "Sysney",
        title: "Jorld's Lost Hifgerous Xkark?".into(),
        cast: "Lill Kormer",
        release_year: 2020,
    };
    let sytflix_pair = vec![
        sytflix("stream-started", 10, 4, "old0".into(), 2019),
        sytflix("stream-finished", 11, 4, "old0".into(), 2019),
    ];
    let sysney_events = vec![
        herculie,
        sysney("stream-started", 20),
        sysney("stream-finished", 21),
    ];
    (sytflix_pair, sysney_events)
}

/// Sytflix events besides user 4's pair: `starts` starts and `others` likes, spread over
/// users 100.. with no finish, so that no other stream is successful; 95 distinct recent
/// shows among them (with Sysney's `s10`, 96 in all).
fn sytflix_bulk(starts: u32, others: u32) -> Vec<Ev> {
    (0..starts + others)
        .map(|i| {
            let kind = if i < starts {
                "stream-started"
            } else {
                "show-liked"
            };
            let (show, year) = if i % 2 == 0 {
                (format!("r{}", i / 2 % 95), 2021)
            } else {
                (format!("old{}", i % 7), 2018)
            };
            sytflix(kind, 100 + i, 100 + i64::from(i % 37), show, year)
        })
        .collect()
}

fn write_capture(dir: &Path, stream: &str, events: &[Ev]) {
    let text: String = events
        .iter()
        .enumerate()
        .map(|(i, e)| e.wire(&format!("{stream}-{i}")))
        .collect();
    std::fs::write(dir.join(format!("{stream}-events.stream")), text).unwrap();
}

/// Harvests captures of the given events for 2 s of fast replay; returns the run id and the
/// runtime file the job reports.
async fn harvest_captures(
    server: &TestServer,
    sytflix_events: Vec<Ev>,
    sysney_events: Vec<Ev>,
) -> (String, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let sytazon = vec![Ev {
        platform: "Sytazon",
        ..sytflix("show-liked", 5, 11, "old0".into(), 2018)
    }];
    let total = (sytflix_events.len() + sysney_events.len() + sytazon.len()) as u64;
    write_capture(dir.path(), "sytflix", &sytflix_events);
    write_capture(dir.path(), "sysney", &sysney_events);
    write_capture(dir.path(), "sytazon", &sytazon);
    let sim = simulator(
        local(),
        SimMode::Replay {
            dir: dir.path().to_owned(),
            timing: ReplayTiming::Fast,
        },
    )
    .await;
    let (run, job) = harvest(server, json!({"source": sim.url(), "max_duration": "2s"})).await;
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.error);
    assert_eq!(
        job.summary.rows_accepted, total,
        "every captured event harvested"
    );
    let file = job.summary.extra["runtime_file"]
        .as_str()
        .expect("a succeeded run names its runtime file");
    (run, PathBuf::from(file))
}

/// Status, content type and body bytes of a GET.
async fn get_bytes(server: &TestServer, path: &str) -> (u16, String, String) {
    let resp = reqwest::get(server.url(path)).await.unwrap();
    let status = resp.status().as_u16();
    let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
    (status, ct, resp.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_requests_get_the_readme_answers() {
    let server = server().await;

    // Before any harvest the original answered 404 (its HTML error page); sluice a problem.
    for path in [
        "/user_report",
        "/recent_shows",
        "/successful_streams",
        "/start_events",
    ] {
        let (status, ct, _) = get_bytes(&server, path).await;
        assert_eq!(
            (status, ct.as_str()),
            (404, "application/problem+json"),
            "{path}"
        );
    }

    let (mut sytflix_events, sysney_events) = readme_users();
    sytflix_events.extend(sytflix_bulk(196, 315));
    assert_eq!(sytflix_events.len(), 513);
    let (run, runtime_file) = harvest_captures(&server, sytflix_events, sysney_events).await;

    // The README's bytes.
    for (path, body) in [
        ("/recent_shows", r#"{"recent_shows":"96"}"#),
        (
            "/start_events",
            r#"{"start_event_rate(%)":"38.40155945419103"}"#,
        ),
        (
            "/successful_streams",
            r#"[{"successful_streams":1.0,"user":4.0},{"successful_streams":1.0,"user":10.0}]"#,
        ),
    ] {
        assert_eq!(
            get_bytes(&server, path).await,
            (200, "application/json".to_owned(), body.to_owned()),
            "{path}"
        );
    }

    // `/user_report`: the README's user 9, key by key, with the age at this run's date
    // (the README's "39" was at its run, December 2023).
    let (_, report) = get(&server, &format!("/api/v1/streams/runs/{run}/report")).await;
    let run_date =
        chrono::NaiveDate::parse_from_str(report["run_date"].as_str().unwrap(), "%Y-%m-%d")
            .unwrap();
    let born = chrono::NaiveDate::from_ymd_opt(1983, 12, 15).unwrap();
    let age = sluice_streams::parse::age(born, run_date).to_string();
    let (status, ct, body) = get_bytes(&server, "/user_report").await;
    assert_eq!((status, ct.as_str()), (200, "application/json"));
    let herculie = format!(
        r#"{{"event_list":[{{"event":"stream-finished","event_date":"06-12-2023 16:04:56.339","first_actor":"Lill Kormer","show_id":"s10","show_platform":"Sysney","show_title":"Jorld's Lost Hifgerous Xkark?"}}],"user":{{"age":"{age}","user_id":"9","user_name":"Herculie Eadon"}}}}"#
    );
    assert!(body.contains(&herculie), "{herculie} in {body}");
    let users: Vec<Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(
        users.len(),
        report["users_total"].as_u64().unwrap() as usize
    );
    for u in &users {
        let keys: Vec<&String> = u.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["event_list", "user"]);
        let user = u["user"].as_object().unwrap();
        assert_eq!(
            user.keys().collect::<Vec<_>>(),
            ["age", "user_id", "user_name"]
        );
        assert!(user.values().all(Value::is_string), "{u}");
        assert!(user["user_id"].as_str().unwrap().parse::<i64>().is_ok());
        assert!(user["age"].as_str().unwrap().parse::<u32>().is_ok());
        for e in u["event_list"].as_array().unwrap() {
            let e = e.as_object().unwrap();
            assert_eq!(
                e.keys().collect::<Vec<_>>(),
                [
                    "event",
                    "event_date",
                    "first_actor",
                    "show_id",
                    "show_platform",
                    "show_title"
                ]
            );
            assert!(e.values().all(Value::is_string), "{u}");
        }
    }
    let ids: Vec<i64> = users
        .iter()
        .map(|u| u["user"]["user_id"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");

    // The runtime file: named after the run's local start time, the original's lines.
    let started = chrono::DateTime::parse_from_rfc3339(report["started_at"].as_str().unwrap())
        .unwrap()
        .with_timezone(&chrono::Local);
    let stamp = started.format("%Y%m%d_%H%M%S").to_string();
    assert_eq!(
        runtime_file,
        server
            .ctx
            .settings
            .reports_dir("streams")
            .join(format!("exec_report_{stamp}.txt"))
    );
    let text = std::fs::read_to_string(&runtime_file).unwrap();
    assert!(text.ends_with(" \n") && !text.ends_with("\n\n"), "{text:?}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text:?}");
    assert_eq!(lines[0], format!("EXECUTION TIME FOR RUN {stamp} "));
    for (line, stream) in lines[1..].iter().zip(["sytflix", "sytazon", "sysney"]) {
        let seconds = line
            .strip_prefix(&format!("{stream} was listened for "))
            .and_then(|l| l.strip_suffix(" seconds. "))
            .unwrap_or_else(|| panic!("{line:?}"));
        let value: f64 = seconds.parse().unwrap();
        assert_eq!(py_float_str(value), seconds, "a float as Python prints it");
        // Every stream is listened to until the run's 2 s time limit.
        assert!(value >= 2.0, "{line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_start_rate_divides_before_it_multiplies() {
    // 4 starts of 12 Sytflix events: Python's 4 / 12 * 100 is 33.33333333333333, where
    // 4 * 100 / 12 would give 33.333333333333336. The latest finished run answers.
    let server = server().await;
    let (pair, sysney) = readme_users();
    harvest_captures(&server, pair, Vec::new()).await;
    harvest_captures(&server, sytflix_bulk(4, 8), sysney).await;
    assert_eq!(
        get_bytes(&server, "/start_events").await.2,
        r#"{"start_event_rate(%)":"33.33333333333333"}"#
    );
    assert_eq!(
        get_bytes(&server, "/successful_streams").await.2,
        r#"[{"successful_streams":1.0,"user":10.0}]"#
    );
}
