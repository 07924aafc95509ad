//! Webhooks of finished jobs, through the public platform: a job with a `callback_url` is
//! POSTed, signed, to a receiver on 127.0.0.1, on a paused clock (no real sleeping).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use serde_json::Value;
use sluice_core::jobs::NewJob;
use sluice_core::{webhook, Ctx, Settings, Summary};

type Hits = Arc<Mutex<Vec<(SocketAddr, HeaderMap, Bytes)>>>;

/// A receiver answering `status` to every request.
async fn receiver(status: StatusCode) -> (String, Hits) {
    let hits = Hits::default();
    let app = Router::new()
        .route(
            "/hook",
            post(
                move |State(hits): State<Hits>,
                      ConnectInfo(peer): ConnectInfo<SocketAddr>,
                      headers: HeaderMap,
                      body: Bytes| async move {
                    hits.lock().unwrap().push((peer, headers, body));
                    status
                },
            ),
        )
        .with_state(hits.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap()
    });
    (url, hits)
}

fn ctx(dir: &tempfile::TempDir) -> Ctx {
    let mut settings = Settings::with_data_dir(dir.path());
    settings.webhook_secret = Some("s3cret".into());
    Ctx::open(settings).unwrap()
}

#[tokio::test(start_paused = true)]
async fn finished_jobs_are_delivered_signed_over_one_client() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = ctx(&dir);
    let (url, hits) = receiver(StatusCode::OK).await;

    let first = ctx
        .jobs
        .create(NewJob::new("test", "ingest", "rows").callback(Some(url.clone())))
        .unwrap();
    first.start().unwrap();
    let first = first.succeed(Summary::default()).unwrap();
    assert!(
        hits.lock().unwrap().is_empty(),
        "finishing a job does not wait for its webhook"
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    let second = ctx
        .jobs
        .create(NewJob::new("test", "ingest", "rows").callback(Some(url)))
        .unwrap();
    let second = second.fail(Summary::default(), "bad input").unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;

    let hits = hits.lock().unwrap().clone();
    assert_eq!(hits.len(), 2);
    for ((_, headers, body), (job, event)) in hits
        .iter()
        .zip([(&first, "job.succeeded"), (&second, "job.failed")])
    {
        assert_eq!(
            headers["x-sluice-signature"],
            webhook::signature("s3cret", body).as_str()
        );
        assert_eq!(headers["x-sluice-event"], event);
        assert_eq!(headers["x-sluice-job"], job.id.to_string().as_str());
        let json: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(json["id"], job.id.to_string());
    }
    // The platform holds one client: its second delivery reuses the first one's connection.
    assert_eq!(hits[0].0, hits[1].0, "one pooled connection for both jobs");
}

#[tokio::test(start_paused = true)]
async fn a_job_whose_receiver_answers_404_is_delivered_once() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = ctx(&dir);
    let (url, hits) = receiver(StatusCode::NOT_FOUND).await;
    let job = ctx
        .jobs
        .create(NewJob::new("test", "ingest", "rows").callback(Some(url)))
        .unwrap();
    job.succeed(Summary::default()).unwrap();
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert_eq!(hits.lock().unwrap().len(), 1, "a 404 is final, not retried");
}
