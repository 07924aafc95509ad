//! Conformance with the replaced system, iuryrosal/automated-ingestion-data (Flask +
//! Postgres): the requests its README shows, replayed against a real server loaded with its
//! sample file, answered as the README shows them (compat.md) — bytes where it shows bytes,
//! key by key and type by type elsewhere. Values the original got wrong (a dropped last
//! digit, 1-based ids in its index, the ISO year ignored) come right in the original's shape.

mod common;

use common::*;
use regex::Regex;
use serde_json::{json, Value};
use sluice_core::jobs::{JobState, NewJob};
use sluice_core::{Domain, FileIngest};
use sluice_server::testing::TestServer;
use sluice_trips::{TripsDomain, TripsIngest};

const STATUS: &str = "/vehicles/ingest-data/status";

/// Puts a file into the trips inbox at once (written aside, then renamed into place), as a
/// user of the original put files into `data/raw`.
fn drop_in_inbox(s: &TestServer, name: &str, bytes: &[u8]) {
    let inbox = s.data_dir().join("inbox/trips");
    std::fs::create_dir_all(&inbox).unwrap();
    let part = inbox.join(format!("{name}.part"));
    std::fs::write(&part, bytes).unwrap();
    std::fs::rename(part, inbox.join(name)).unwrap();
}

async fn status_stream(s: &TestServer) -> reqwest::Response {
    let resp = reqwest::Client::new()
        .get(s.url(STATUS))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("text/event-stream"), "{ct}");
    resp
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}

fn is_finished(v: &Value) -> bool {
    v["review"] == "Process Finished"
}

/// The original's "Process Finished" shape, every value typed as it printed them.
fn assert_finished_shape(v: &Value) {
    assert_eq!(
        keys(v),
        ["details", "end_time", "lead_time", "review", "start_time"],
        "{v}"
    );
    assert_eq!(v["review"], "Process Finished");
    let stamp = Regex::new(r"^\d{2}/\d{2}/\d{4}, \d{2}:\d{2}:\d{2}$").unwrap();
    let delta = Regex::new(r"^\d+:\d{2}:\d{2}(\.\d{6})?$").unwrap();
    assert!(stamp.is_match(v["start_time"].as_str().unwrap()), "{v}");
    assert!(stamp.is_match(v["end_time"].as_str().unwrap()), "{v}");
    assert!(delta.is_match(v["lead_time"].as_str().unwrap()), "{v}");
    for d in v["details"].as_array().unwrap() {
        assert_eq!(keys(d), ["file", "lead_time", "num_rows", "result"], "{d}");
        assert!(d["file"].is_string());
        assert!(delta.is_match(d["lead_time"].as_str().unwrap()), "{d}");
        assert!(d["num_rows"].is_u64(), "{d}");
        assert_eq!(d["result"], "Successful Data Ingestion");
    }
}

/// The original's "in progress" shape for `file`.
fn assert_running_shape(v: &Value, file: &str) {
    assert_eq!(keys(v), ["details", "review", "start_time"], "{v}");
    assert_eq!(v["review"], format!("{file}: In progress.."));
    let http_date = Regex::new(
        r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$",
    )
    .unwrap();
    assert!(http_date.is_match(v["start_time"].as_str().unwrap()), "{v}");
    assert!(v["details"].is_array());
}

async fn get_text(s: &TestServer, path: &str) -> (u16, String, String) {
    let resp = reqwest::get(s.url(path)).await.unwrap();
    let status = resp.status().as_u16();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, ct, resp.text().await.unwrap())
}

/// Loads the sample through the inbox and waits, on the status stream, for the end.
async fn loaded() -> TestServer {
    let s = server().await;
    let stream = status_stream(&s).await;
    let reader = tokio::spawn(read_sse(stream, |_, v| is_finished(v)));
    drop_in_inbox(&s, "trips.csv", &std::fs::read(SAMPLE).unwrap());
    let events = reader.await.unwrap();
    assert!(is_finished(&events.last().unwrap().1), "{events:?}");
    s
}

/// The second CSV row, `/vehicles/1` of the README, at full precision.
fn turin_row() -> Value {
    json!({
        "datasource": "baba_car",
        "datetime": "Mon, 21 May 2018 02:54:04 GMT",
        "destination_coord_point_x": "7.720368637535126",
        "destination_coord_point_y": "45.06782385393849",
        "id": 1,
        "origin_coord_point_x": "7.672837913286881",
        "origin_coord_point_y": "44.9957109242058",
        "region": "Turin"
    })
}

#[tokio::test]
async fn status_before_any_ingestion_is_nothing_being_processed() {
    let s = server().await;
    let (st, ct, body) = get_text(&s, STATUS).await;
    assert_eq!(st, 200);
    assert_eq!(ct, "application/json");
    assert_eq!(
        body,
        r#"{"details":[],"review":"Nothing is being processed"}"#
    );
}

#[tokio::test]
async fn list_of_trips_shows_the_readme_rows() {
    let s = loaded().await;
    let (st, ct, body) = get_text(&s, "/vehicles?region=Turin").await;
    assert_eq!((st, ct.as_str()), (200, "application/json"));
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(keys(&v), ["data"]);
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 10, "default limit");
    assert_eq!(data[0], turin_row());
    assert_eq!(
        data[1],
        json!({
            "datasource": "bad_diesel_vehicles",
            "datetime": "Sun, 06 May 2018 09:49:16 GMT",
            "destination_coord_point_x": "7.74528653441973",
            "destination_coord_point_y": "45.02628598341506",
            "id": 3,
            "origin_coord_point_x": "7.541509189114433",
            "origin_coord_point_y": "45.09160503827746",
            "region": "Turin"
        })
    );
    // The README's values lost their last digit; each is a prefix of the full value.
    let readme = [
        ("destination_coord_point_x", "7.72036863753512"),
        ("destination_coord_point_y", "45.0678238539384"),
        ("origin_coord_point_x", "7.67283791328688"),
        ("origin_coord_point_y", "44.995710924205"),
    ];
    for (k, shown) in readme {
        assert!(data[0][k].as_str().unwrap().starts_with(shown), "{k}");
    }
    // Keys in Flask's sorted order, on the wire.
    let first = &body[body.find('{').unwrap() + 1..];
    let row = &first[first.find('{').unwrap()..first.find('}').unwrap()];
    let order: Vec<&str> = row
        .split(&['{', ',', '"', ':'][..])
        .filter(|t| turin_row().get(*t).is_some())
        .collect();
    let mut sorted = order.clone();
    sorted.sort_unstable();
    assert_eq!(order, sorted);
}

#[tokio::test]
async fn one_vehicle_by_its_zero_based_id() {
    let s = loaded().await;
    let (st, v) = get(&s, "/vehicles/1").await;
    assert_eq!(st, 200);
    assert_eq!(v, turin_row());
    let (st, v) = get(&s, "/vehicles/0").await;
    assert_eq!(st, 200);
    assert_eq!(v["id"], 0);
    assert_eq!(v["region"], "Prague");
    assert_eq!(v["datasource"], "funny_car");
    assert_eq!(v["datetime"], "Mon, 28 May 2018 09:03:40 GMT");
    assert_eq!(v["origin_coord_point_x"], "14.4973794438195");
    assert_eq!(get(&s, "/vehicles/99").await.0, 200);
    for missing in ["/vehicles/100", "/vehicles/18446744073709551616"] {
        let resp = reqwest::get(s.url(missing)).await.unwrap();
        assert_eq!(resp.status(), 404, "{missing}");
        assert_eq!(resp.headers()["content-type"], "application/problem+json");
    }
    assert_eq!(get(&s, "/vehicles/-1").await.0, 400);
}

#[tokio::test]
async fn coordinate_filters_match_as_like_prefix() {
    let s = loaded().await;
    let ids = |v: &Value| -> Vec<i64> {
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_i64().unwrap())
            .collect()
    };
    // The truncated values the original printed still find their trip, in both spellings.
    for q in [
        "origin_coord_x=7.67283791328688&origin_coord_y=44.995710924205",
        "origin_coord_point_x=7.67283791328688&origin_coord_point_y=44.995710924205",
        "destination_coord_x=7.72036863753512&destination_coord_y=45.0678238539384",
        "destination_coord_point_x=7.720368637535126&destination_coord_point_y=45.06782385393849",
        "origin_coord_x=7.6728&origin_coord_point_x=7.67283791",
    ] {
        let (st, v) = get(&s, &format!("/vehicles?{q}")).await;
        assert_eq!(st, 200, "{q}");
        assert_eq!(ids(&v), [1], "{q}");
    }
    // A prefix is a prefix of the text: `7` finds every Turin trip (lon 7.x) and no other.
    let (_, v) = get(&s, "/vehicles?origin_coord_x=7&limit=1000").await;
    assert_eq!(ids(&v).len(), 38);
    // Contradicting spellings find nothing; empty values filter nothing, as in Flask.
    let (_, v) = get(&s, "/vehicles?origin_coord_x=7.1&origin_coord_point_x=7.2").await;
    assert_eq!(ids(&v), Vec::<i64>::new());
    let (_, v) = get(&s, "/vehicles?origin_coord_x=&region=&limit=1000").await;
    assert_eq!(ids(&v).len(), 100);
    assert_eq!(get(&s, "/vehicles?origin_coord_x=7,6").await.0, 400);
}

#[tokio::test]
async fn limit_and_date_filters() {
    let s = loaded().await;
    let len = |v: &Value| v["data"].as_array().unwrap().len();
    for (q, n) in [
        ("limit=1000000", 100),
        ("limit=99999999999999999999999", 100),
        ("limit=0", 0),
        ("limit=3", 3),
        ("region=Prague&limit=100", 34),
    ] {
        let (st, v) = get(&s, &format!("/vehicles?{q}")).await;
        assert_eq!(st, 200, "{q}");
        assert_eq!(len(&v), n, "{q}");
    }
    let (_, v) = get(&s, "/vehicles?date=2018-05-21&limit=1000").await;
    assert!(len(&v) > 0);
    assert!(v["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["datetime"].as_str().unwrap().contains(" 21 May 2018 ")));
    assert_eq!(get(&s, "/vehicles?date=2018-02-30").await.0, 400);
}

#[tokio::test]
async fn count_by_region_and_datasource() {
    let s = loaded().await;
    let (st, v) = get(&s, "/vehicles/region/count").await;
    assert_eq!(st, 200);
    assert_eq!(
        v,
        json!({"data": [
            {"count": 28, "region": "Hamburg"},
            {"count": 34, "region": "Prague"},
            {"count": 38, "region": "Turin"}
        ]})
    );
    let (_, v) = get(&s, "/vehicles/datasource/count").await;
    let rows = v["data"].as_array().unwrap();
    assert!(rows.iter().all(|r| keys(r) == ["count", "datasource"]));
    let total: u64 = rows.iter().map(|r| r["count"].as_u64().unwrap()).sum();
    assert_eq!(total, 100);
    let resp = reqwest::get(s.url("/vehicles/datetime/count"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn weekly_trips_by_week_then_region() {
    let s = loaded().await;
    let (st, v) = get(&s, "/vehicles/weekly_trips/region").await;
    assert_eq!(st, 200);
    let rows = v["data"].as_array().unwrap();
    assert_eq!(
        rows[..3],
        [
            json!({"freq_trip": 5, "region": "Hamburg", "week_number": 18, "year": 2018}),
            json!({"freq_trip": 10, "region": "Prague", "week_number": 18, "year": 2018}),
            json!({"freq_trip": 8, "region": "Turin", "week_number": 18, "year": 2018}),
        ]
    );
    let order: Vec<(u64, u64, String)> = rows
        .iter()
        .map(|r| {
            (
                r["year"].as_u64().unwrap(),
                r["week_number"].as_u64().unwrap(),
                r["region"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted);
    let total: u64 = rows.iter().map(|r| r["freq_trip"].as_u64().unwrap()).sum();
    assert_eq!(total, 100);
}

#[tokio::test]
async fn weekly_average_as_postgres_printed_it() {
    let s = loaded().await;
    let (_, ct, body) = get_text(&s, "/vehicles/weekly_avg_trips/region").await;
    assert_eq!(ct, "application/json");
    for (region, avg) in [
        ("Turin", "7.6000000000000000"),
        ("Hamburg", "5.6000000000000000"),
        ("Prague", "6.8000000000000000"),
    ] {
        let row = format!(r#"{{"freq_avg_weekly_trips":"{avg}","region":"{region}"}}"#);
        assert!(body.contains(&row), "{row} in {body}");
    }
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn post_vehicles_answers_ingestion_started() {
    let s = loaded().await;
    let resp = reqwest::Client::new()
        .post(s.url("/vehicles"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("text/html"), "{ct}");
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(resp.bytes().await.unwrap().as_ref(), b"Ingestion Started");
    let id = location.strip_prefix("/api/v1/jobs/").unwrap();
    let job = wait_job(&s, id).await;
    assert_eq!(job["state"], "succeeded");
    // The same file again appends nothing (the original appended a second copy).
    let (_, v) = get(&s, STATUS).await;
    assert_finished_shape(&v);
    assert_eq!(v["details"][0]["file"], "trips.csv");
    assert_eq!(v["details"][0]["num_rows"], 0);
    let (_, v) = get(&s, "/vehicles/region/count").await;
    assert_eq!(v["data"][2], json!({"count": 38, "region": "Turin"}));
}

#[tokio::test]
async fn status_finished_after_the_sample() {
    let s = loaded().await;
    let (st, v) = get(&s, STATUS).await;
    assert_eq!(st, 200);
    assert_finished_shape(&v);
    let d = &v["details"][0];
    assert_eq!(d["file"], "trips.csv");
    assert_eq!(d["num_rows"], 100);
    assert_eq!(v["details"].as_array().unwrap().len(), 1);
}

/// A reader of `buf`, then of the bytes a test sends, blocking until they come; it says once
/// on `starved` that it has run out of bytes (everything given so far is consumed) and the
/// input ends when the test drops the sender. While the test holds it, the ingestion cannot
/// finish.
struct Fed {
    buf: Vec<u8>,
    at: usize,
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
    starved: Option<tokio::sync::oneshot::Sender<()>>,
}

impl std::io::Read for Fed {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.buf.len() {
            if let Some(starved) = self.starved.take() {
                let _ = starved.send(());
            }
            match self.rx.recv() {
                Ok(bytes) => (self.buf, self.at) = (bytes, 0),
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len() - self.at);
        out[..n].copy_from_slice(&self.buf[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[tokio::test]
async fn status_goes_nothing_running_finished_as_snapshot_and_stream() {
    // No inbox watcher: the only ingestion is the one this test feeds.
    let s = TestServer::start_unwatched(
        vec![std::sync::Arc::new(TripsDomain) as std::sync::Arc<dyn Domain>],
        |_| {},
    )
    .await;
    let (_, nothing) = get(&s, STATUS).await;
    assert_eq!(
        nothing,
        json!({"details": [], "review": "Nothing is being processed"})
    );

    let stream = status_stream(&s).await;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let reader = tokio::spawn(read_sse(stream, move |_, v| {
        let _ = tx.send(v.clone());
        is_finished(v)
    }));
    // The sample in two parts: the header and 60 rows first, the other 40 only once the
    // running status was read.
    let sample = std::fs::read(SAMPLE).unwrap();
    let split = sample
        .iter()
        .enumerate()
        .filter(|(_, &b)| b == b'\n')
        .nth(60)
        .unwrap()
        .0
        + 1;
    let (feed, fed) = std::sync::mpsc::channel();
    let (starved_tx, starved) = tokio::sync::oneshot::channel();
    let mut input = std::io::BufReader::new(Fed {
        buf: sample[..split].to_vec(),
        at: 0,
        rx: fed,
        starved: Some(starved_tx),
    });
    // The ingestion of the library on the server's own jobs and bus, as an upload runs.
    let ctx = s.ctx.clone();
    let job = ctx
        .jobs
        .create(NewJob::new("trips", "ingest", "bytes"))
        .unwrap();
    let ingestion = tokio::task::spawn_blocking(move || {
        job.run(|job| TripsIngest.ingest_reader(&ctx, "fed.csv", &mut input, job))
    });

    // The first part is read and the ingestion waits for more: it is running, reading
    // fed.csv, and stays so until the rest comes.
    starved.await.unwrap();
    let (st, running) = get(&s, STATUS).await;
    assert_eq!(st, 200);
    assert_running_shape(&running, "fed.csv");
    assert_eq!(running["details"], json!([]));
    // The rest, and the end of the input with the sender dropped.
    feed.send(sample[split..].to_vec()).unwrap();
    drop(feed);

    let mut pushed = Vec::new();
    while let Some(v) = rx.recv().await {
        pushed.push(v);
    }
    reader.await.unwrap();
    let job = ingestion.await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Succeeded, "{job:?}");

    assert_eq!(pushed[0], nothing);
    // The running status read as a snapshot was pushed too.
    assert!(pushed.contains(&running), "{pushed:?}");
    let last = pushed.last().unwrap();
    assert_finished_shape(last);
    assert_eq!(last["details"][0]["file"], "fed.csv");
    assert_eq!(last["details"][0]["num_rows"], 100);
    // In order: nothing, then running ones (the original's start words, then the file),
    // then finished; each pushed only when it changed.
    let reviews: Vec<&str> = pushed
        .iter()
        .map(|v| v["review"].as_str().unwrap())
        .collect();
    let first_file = reviews
        .iter()
        .position(|r| *r == "fed.csv: In progress..")
        .unwrap();
    assert!(reviews[1..first_file]
        .iter()
        .all(|r| *r == "Data Ingestion in Progress."));
    assert!(reviews[first_file..reviews.len() - 1]
        .iter()
        .all(|r| *r == "fed.csv: In progress.."));
    assert!(pushed.windows(2).all(|w| w[0] != w[1]));
    let (_, snap) = get(&s, STATUS).await;
    assert_eq!(&snap, last);
}
