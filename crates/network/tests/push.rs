//! Push-based job status over real HTTP: SSE for all jobs and for one job, WebSocket, signed
//! webhooks, bearer-token auth, and a job that survives a restart as a snapshot.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::post;
use futures::StreamExt;
use serde_json::{json, Value};
use sluice_network::generate::{generate, GenerateArgs};
use sluice_network::NetworkDomain;
use sluice_server::testing::TestServer;
use tokio_tungstenite::tungstenite::Message;

/// A file large enough that parsing it spans several progress intervals.
fn big_file(dir: &std::path::Path) -> std::path::PathBuf {
    let files = generate(&GenerateArgs {
        day: chrono::NaiveDate::from_ymd_opt(2017, 3, 1).unwrap(),
        rows_per_file: 150_000,
        parts: 1,
        periods: 1,
        malformed: 0.0,
        seed: 1,
        out: dir.to_owned(),
    })
    .unwrap();
    files[0].clone()
}

async fn sse_events(resp: reqwest::Response, job_id: &str) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut buf = String::new();
    let mut event = String::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(60), stream.next())
        .await
        .expect("events keep coming")
    {
        buf.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        while let Some(i) = buf.find('\n') {
            let line = buf[..i].to_owned();
            buf.drain(..=i);
            if let Some(e) = line.strip_prefix("event:") {
                event = e.trim().to_owned();
            } else if let Some(d) = line.strip_prefix("data:") {
                let v: Value = serde_json::from_str(d.trim()).unwrap();
                if v["job"]["id"] == job_id || job_id.is_empty() {
                    let terminal =
                        v["job"]["state"] == "succeeded" || v["job"]["state"] == "failed";
                    out.push((event.clone(), v));
                    if terminal {
                        return out;
                    }
                }
            }
        }
    }
    out
}

fn states(events: &[(String, Value)]) -> Vec<String> {
    let mut s: Vec<String> = Vec::new();
    for (_, v) in events {
        let st = v["job"]["state"].as_str().unwrap().to_owned();
        if s.last() != Some(&st) {
            s.push(st);
        }
    }
    s
}

#[tokio::test]
async fn sse_and_websocket_clients_see_every_state_without_polling() {
    let s = TestServer::start(vec![Arc::new(NetworkDomain)]).await;
    let file = big_file(s.scratch());
    // Both clients subscribe before the job exists.
    let all = reqwest::get(s.url("/api/v1/events?domain=network"))
        .await
        .unwrap();
    assert_eq!(all.status(), 200);
    let ws_url = s.url("/api/v1/ws").replace("http://", "ws://");
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
    // Give the server a moment to register both subscriptions (they subscribe on connect).
    tokio::time::sleep(Duration::from_millis(100)).await;

    let name = file.file_name().unwrap().to_str().unwrap().to_owned();
    let job: Value = reqwest::Client::new()
        .post(s.url(&format!("/api/v1/network/uploads?name={name}")))
        .header("content-type", "text/csv")
        .body(std::fs::read(&file).unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = job["id"].as_str().unwrap().to_owned();
    assert_eq!(job["state"], "queued");

    // The per-job stream: a snapshot first, then changes, closed by the server at the end.
    let one = reqwest::get(s.url(&format!("/api/v1/jobs/{id}/events")))
        .await
        .unwrap();
    let one_events = sse_events(one, &id).await;
    assert_eq!(one_events[0].0, "job.snapshot");
    assert_eq!(one_events.last().unwrap().0, "job.succeeded");

    let events = sse_events(all, &id).await;
    assert_eq!(
        states(&events),
        vec!["queued", "running", "succeeded"],
        "{events:?}"
    );
    assert!(
        events.iter().any(|(e, v)| e == "job.progress"
            && v["job"]["progress"]["done"].as_u64().unwrap() > 0
            && v["job"]["progress"]["done"].as_u64() < v["job"]["progress"]["total"].as_u64()),
        "no intermediate progress: {events:?}"
    );
    let last = &events.last().unwrap().1["job"];
    assert_eq!(last["summary"]["rows_accepted"], 150_000);

    let mut ws_events = Vec::new();
    while let Some(msg) = tokio::time::timeout(Duration::from_secs(30), ws.next())
        .await
        .unwrap()
    {
        if let Message::Text(t) = msg.unwrap() {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["job"]["id"] == id.as_str() {
                let done = v["job"]["state"] == "succeeded";
                ws_events.push((v["type"].as_str().unwrap().to_owned(), v));
                if done {
                    break;
                }
            }
        }
    }
    assert_eq!(states(&ws_events), vec!["queued", "running", "succeeded"]);

    // Snapshots for reconnecting clients.
    let snap: Value = reqwest::get(s.url(&format!("/api/v1/jobs/{id}")))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(snap["state"], "succeeded");
    let list: Value = reqwest::get(s.url("/api/v1/jobs?domain=network&state=succeeded"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list[0]["id"], id.as_str());
    // After a restart the finished job is still there, and its stream is a snapshot that ends.
    let s = s.restart(vec![Arc::new(NetworkDomain)]).await;
    let again = reqwest::get(s.url(&format!("/api/v1/jobs/{id}/events")))
        .await
        .unwrap();
    let replay = sse_events(again, &id).await;
    assert_eq!(replay.len(), 1);
    assert_eq!(replay[0].1["job"]["state"], "succeeded");
}

/// A webhook delivery: its signature header and body.
type Delivery = (Option<String>, Value);

#[tokio::test]
async fn webhook_gets_the_final_job_signed() {
    let received: Arc<Mutex<Vec<Delivery>>> = Arc::default();
    let sink = received.clone();
    // The receiver fails the first delivery: the webhook is retried with back-off.
    let app = axum::Router::new().route(
        "/hook",
        post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let sink = sink.clone();
                async move {
                    let sig = headers
                        .get("x-sluice-signature")
                        .map(|v| v.to_str().unwrap().to_owned());
                    let want = sluice_core::webhook::signature("s3cret", &body);
                    assert_eq!(sig.as_deref(), Some(want.as_str()));
                    let mut got = sink.lock().unwrap();
                    got.push((sig, serde_json::from_slice(&body).unwrap()));
                    if got.len() == 1 {
                        axum::http::StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        axum::http::StatusCode::OK
                    }
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let s = TestServer::start_with(vec![Arc::new(NetworkDomain)], |st| {
        st.webhook_secret = Some("s3cret".into());
    })
    .await;
    let body = "interval_start_timestamp,interval_end_timestamp,msisdn,bytes_uplink,bytes_downlink,service_id,cell_id\n1488355200000,1488355500000,1,2,3,4,5\n";
    let resp = reqwest::Client::new()
        .post(s.url(&format!(
            "/api/v1/network/uploads?name=ipflow_data.ts-1488355500000.1.txt&callback_url={hook}"
        )))
        .header("content-type", "text/csv")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let id = resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..100 {
        if received.lock().unwrap().len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let got = received.lock().unwrap().clone();
    assert_eq!(
        got.len(),
        2,
        "one refused delivery, then one accepted retry"
    );
    assert_eq!(got[0].1, got[1].1, "the retry carries the same body");
    assert_eq!(got[1].1["id"], id.as_str());
    assert_eq!(got[1].1["state"], "succeeded");
    assert_eq!(got[1].1["summary"]["rows_accepted"], 1);
}

#[tokio::test]
async fn a_token_guards_mutating_routes_only() {
    let s = TestServer::start_with(vec![Arc::new(NetworkDomain)], |st| {
        st.token = Some("t0ken".into());
    })
    .await;
    let c = reqwest::Client::new();
    let denied = c
        .post(s.url("/api/v1/network/ingest"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 401);
    assert_eq!(denied.headers()["content-type"], "application/problem+json");
    let wrong = c
        .post(s.url("/api/v1/network/ingest"))
        .bearer_auth("nope")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let ok = c
        .post(s.url("/api/v1/network/ingest"))
        .bearer_auth("t0ken")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 202);
    assert_eq!(c.get(s.url("/kpi1")).send().await.unwrap().status(), 200);
    assert_eq!(c.get(s.url("/health")).send().await.unwrap().status(), 200);
    let metrics = c
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("sluice_http_requests_total"), "{metrics}");
    let doc: Value = c
        .get(s.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["paths"]["/api/v1/network/kpis/{kpi}"].is_object());
    assert!(doc["paths"]["/api/v1/jobs/{id}/events"].is_object());
}

#[tokio::test]
async fn files_dropped_in_the_inbox_are_picked_up() {
    let s = TestServer::start(vec![Arc::new(NetworkDomain)]).await;
    let inbox = s.ctx.settings.inbox_dir("network");
    std::fs::create_dir_all(&inbox).unwrap();
    let mut events = s.ctx.jobs.subscribe();
    let src = format!(
        "{}/tests/data/sgioldasis-python-analysis-api/ipflow_data.ts-1488355500000.1.txt",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::copy(&src, inbox.join("ipflow_data.ts-1488355500000.1.txt")).unwrap();
    std::fs::write(inbox.join("notes.txt"), "not a flow file").unwrap();
    let job = loop {
        let ev = tokio::time::timeout(Duration::from_secs(30), events.recv())
            .await
            .unwrap()
            .unwrap();
        if ev.job.state.is_terminal() {
            break ev.job;
        }
    };
    assert_eq!(job.summary.files.len(), 1);
    assert_eq!(
        job.summary.files[0].name,
        "ipflow_data.ts-1488355500000.1.txt"
    );
    let kpi: Value = reqwest::get(s.url("/kpi1?interval=5-minute"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(kpi.as_array().unwrap().len(), 3);
}
