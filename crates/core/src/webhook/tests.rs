//! Deliveries against a scripted receiver on 127.0.0.1, on a paused clock: every back-off is
//! measured on tokio's clock, which jumps ahead whenever all tasks wait, so nothing sleeps.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{ConnectInfo, State};
use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use tokio::time::Instant;

use super::*;

#[derive(Clone, Copy, Debug)]
enum Answer {
    Status(u16),
    RetryAfter(u16, &'static str),
    /// Never answers (a hung receiver).
    Hang,
}

#[derive(Clone, Debug)]
struct Hit {
    at: Instant,
    peer: SocketAddr,
    headers: HeaderMap,
    body: Bytes,
}

#[derive(Clone)]
struct Script {
    answers: Arc<Vec<Answer>>,
    /// The answer once the script is spent.
    then: Answer,
    hits: Arc<Mutex<Vec<Hit>>>,
}

async fn answer(
    State(s): State<Script>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let n = {
        let mut hits = s.hits.lock().unwrap();
        hits.push(Hit {
            at: Instant::now(),
            peer,
            headers,
            body,
        });
        hits.len() - 1
    };
    match s.answers.get(n).copied().unwrap_or(s.then) {
        Answer::Status(code) => StatusCode::from_u16(code).unwrap().into_response(),
        Answer::RetryAfter(code, secs) => {
            (StatusCode::from_u16(code).unwrap(), [(RETRY_AFTER, secs)]).into_response()
        }
        Answer::Hang => std::future::pending().await,
    }
}

struct Receiver {
    url: String,
    hits: Arc<Mutex<Vec<Hit>>>,
}

impl Receiver {
    /// Answers `answers` in order, then `then` to every later request.
    async fn start(answers: Vec<Answer>, then: Answer) -> Receiver {
        let hits = Arc::<Mutex<Vec<Hit>>>::default();
        let script = Script {
            answers: Arc::new(answers),
            then,
            hits: hits.clone(),
        };
        let app = Router::new()
            .route("/hook", post(answer))
            .with_state(script);
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
        Receiver { url, hits }
    }

    fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }

    /// The waits between consecutive requests.
    fn gaps(&self) -> Vec<Duration> {
        let hits = self.hits();
        hits.windows(2).map(|w| w[1].at - w[0].at).collect()
    }
}

fn delivery(url: &str, job: &str) -> Delivery {
    Delivery {
        url: url.to_owned(),
        event: "job.succeeded".into(),
        job_id: job.to_owned(),
        body: Bytes::from(format!(r#"{{"id":"{job}"}}"#)),
    }
}

fn sender() -> WebhookSender {
    WebhookSender::new(Some("s3cret".into()))
}

/// Longer than any delivery with the default policy takes, timeouts included; instant on the
/// paused clock.
async fn settle() {
    tokio::time::sleep(Duration::from_secs(600)).await;
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn within(d: Duration, lo: f64, hi: f64) -> bool {
    (secs(lo)..=secs(hi)).contains(&d)
}

/// Log lines written while a test runs (the test's thread only).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn capture(&self) -> tracing::subscriber::DefaultGuard {
        let logs = self.clone();
        tracing::subscriber::set_default(
            tracing_subscriber::fmt()
                .with_writer(move || logs.clone())
                .with_ansi(false)
                .finish(),
        )
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[test]
fn signature_is_hmac_sha256_hex() {
    // RFC 4231 test case 2.
    assert_eq!(
        signature("Jefe", b"what do ya want for nothing?"),
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

#[test]
fn only_408_429_and_5xx_are_retryable() {
    for (code, retry) in [
        (408, true),
        (429, true),
        (500, true),
        (502, true),
        (503, true),
        (504, true),
        (301, false),
        (400, false),
        (401, false),
        (403, false),
        (404, false),
        (409, false),
        (410, false),
        (413, false),
        (422, false),
    ] {
        let failure = Failure::Status {
            status: StatusCode::from_u16(code).unwrap(),
            retry_after: None,
        };
        assert_eq!(failure.retryable(), retry, "{code}");
    }
}

#[test]
fn backoff_doubles_with_jitter_and_stops_at_the_cap() {
    let policy = RetryPolicy::default();
    let mut firsts = Vec::new();
    for _ in 0..200 {
        let delays: Vec<Duration> = policy.backoff().collect();
        assert_eq!(delays.len(), 4, "one wait before each of the 4 retries");
        for (i, d) in delays.iter().enumerate() {
            let base = f64::from(1u32 << i);
            assert!(within(*d, base, 2.0 * base), "retry {i}: {d:?}");
        }
        firsts.push(delays[0]);
    }
    firsts.sort();
    firsts.dedup();
    assert!(firsts.len() > 100, "jittered, not fixed: {firsts:?}");

    let capped = RetryPolicy {
        attempts: 10,
        first_delay: secs(1.0),
        max_delay: secs(5.0),
    };
    for _ in 0..200 {
        let delays: Vec<Duration> = capped.backoff().collect();
        assert_eq!(delays.len(), 9);
        assert!(delays.iter().all(|d| *d <= secs(5.0)), "{delays:?}");
        assert!(delays[3..].iter().all(|d| *d == secs(5.0)), "{delays:?}");
    }
}

#[test]
fn retry_after_raises_the_wait_up_to_the_cap() {
    let policy = RetryPolicy::default();
    let asked = |s| Failure::Status {
        status: StatusCode::TOO_MANY_REQUESTS,
        retry_after: Some(secs(s)),
    };
    assert_eq!(
        policy.next_delay(Some(secs(1.5)), &asked(7.0)),
        Some(secs(7.0))
    );
    assert_eq!(
        policy.next_delay(Some(secs(9.0)), &asked(7.0)),
        Some(secs(9.0))
    );
    assert_eq!(
        policy.next_delay(Some(secs(1.5)), &asked(3600.0)),
        Some(secs(60.0))
    );
    assert_eq!(
        policy.next_delay(None, &asked(7.0)),
        None,
        "attempts exhausted"
    );
}

#[tokio::test(start_paused = true)]
async fn server_errors_are_retried_with_capped_jittered_backoff() {
    let r = Receiver::start(
        vec![Answer::Status(503), Answer::Status(500)],
        Answer::Status(200),
    )
    .await;
    let s = sender();
    s.send(delivery(&r.url, "j1"));
    settle().await;

    let hits = r.hits();
    assert_eq!(hits.len(), 3, "two server errors, then the accepted retry");
    let gaps = r.gaps();
    assert!(within(gaps[0], 1.0, 2.0), "first back-off {:?}", gaps[0]);
    assert!(within(gaps[1], 2.0, 4.0), "second back-off {:?}", gaps[1]);
    for hit in &hits {
        assert_eq!(
            hit.body, r#"{"id":"j1"}"#,
            "every attempt carries the same body"
        );
        assert_eq!(
            hit.headers["x-sluice-signature"],
            signature("s3cret", &hit.body).as_str()
        );
        assert_eq!(hit.headers["x-sluice-event"], "job.succeeded");
        assert_eq!(hit.headers["x-sluice-job"], "j1");
        assert_eq!(hit.headers["content-type"], "application/json");
    }
}

#[tokio::test(start_paused = true)]
async fn client_errors_are_not_retried() {
    let s = sender();
    let mut receivers = Vec::new();
    for code in [400, 401, 403, 404, 410, 422] {
        let r = Receiver::start(vec![], Answer::Status(code)).await;
        s.send(delivery(&r.url, &code.to_string()));
        receivers.push((code, r));
    }
    settle().await;
    for (code, r) in receivers {
        assert_eq!(r.hits().len(), 1, "a {code} is final");
    }
}

#[tokio::test(start_paused = true)]
async fn retry_after_seconds_are_waited_up_to_the_cap() {
    let s = sender();
    let asks_7 = Receiver::start(vec![Answer::RetryAfter(429, "7")], Answer::Status(200)).await;
    let asks_an_hour =
        Receiver::start(vec![Answer::RetryAfter(503, "3600")], Answer::Status(200)).await;
    s.send(delivery(&asks_7.url, "j1"));
    s.send(delivery(&asks_an_hour.url, "j2"));
    settle().await;

    assert_eq!(asks_7.hits().len(), 2);
    let gap = asks_7.gaps()[0];
    assert!(within(gap, 7.0, 7.5), "429 Retry-After: 7 waited {gap:?}");
    assert_eq!(asks_an_hour.hits().len(), 2);
    let gap = asks_an_hour.gaps()[0];
    assert!(
        within(gap, 60.0, 60.5),
        "Retry-After: 3600 is capped at 60 s, waited {gap:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_refused_connection_is_retried_then_given_up_with_an_error() {
    let logs = Logs::default();
    let _capture = logs.capture();
    // A port that was just free: nothing listens there, so every connect is refused.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", closed.local_addr().unwrap());
    drop(closed);

    let s = sender();
    let start = Instant::now();
    s.send(delivery(&url, "j1"));
    while !logs.text().contains("given up") {
        assert!(
            start.elapsed() < secs(600.0),
            "never given up:\n{}",
            logs.text()
        );
        tokio::time::sleep(secs(0.01)).await;
    }
    let took = start.elapsed();
    // Four back-offs of 1–2, 2–4, 4–8 and 8–16 s.
    assert!(within(took, 15.0, 30.1), "gave up after {took:?}");
    let text = logs.text();
    assert_eq!(text.matches("webhook attempt failed").count(), 4, "{text}");
    let given_up = text.lines().find(|l| l.contains("given up")).unwrap();
    assert!(given_up.contains("ERROR"), "{given_up}");
    assert!(
        given_up.contains("webhook given up after 5 attempts"),
        "{given_up}"
    );
    assert!(given_up.contains("job=j1"), "{given_up}");
}

#[tokio::test(start_paused = true)]
async fn a_receiver_that_never_answers_times_out_and_is_retried() {
    let r = Receiver::start(vec![], Answer::Hang).await;
    let s = sender();
    s.send(delivery(&r.url, "j1"));
    settle().await;

    assert_eq!(r.hits().len(), 5);
    // Each gap is the 10 s attempt timeout plus the back-off.
    for (i, gap) in r.gaps().into_iter().enumerate() {
        let base = f64::from(1u32 << i);
        assert!(
            within(gap, 10.0 + base, 10.0 + 2.0 * base),
            "gap {i}: {gap:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn every_delivery_shares_one_client_and_its_connections() {
    let r = Receiver::start(vec![], Answer::Status(200)).await;
    let s = sender();
    for job in ["j1", "j2", "j3"] {
        s.send(delivery(&r.url, job));
        // Well within the pool's 90 s idle timeout.
        tokio::time::sleep(secs(5.0)).await;
    }
    let hits = r.hits();
    assert_eq!(hits.len(), 3);
    // A client per delivery would open a connection per delivery.
    assert!(
        hits.iter().all(|h| h.peer == hits[0].peer),
        "one pooled connection: {:?}",
        hits.iter().map(|h| h.peer).collect::<Vec<_>>()
    );
}

#[tokio::test(start_paused = true)]
async fn a_full_queue_drops_the_oldest_waiting_delivery() {
    let logs = Logs::default();
    let _capture = logs.capture();
    let dead = Receiver::start(vec![], Answer::Status(503)).await;
    let s = WebhookSender::with(
        None,
        RetryPolicy::default(),
        Limits {
            queue: 2,
            in_flight: 1,
        },
    );
    s.send(delivery(&dead.url, "j1"));
    // Let the worker take j1 in flight; it then waits out its back-off.
    tokio::time::sleep(secs(0.1)).await;
    for job in ["j2", "j3", "j4", "j5"] {
        s.send(delivery(&dead.url, job));
    }
    settle().await;

    let mut order: Vec<String> = dead
        .hits()
        .iter()
        .map(|h| h.headers["x-sluice-job"].to_str().unwrap().to_owned())
        .collect();
    assert_eq!(order.len(), 15, "three deliveries of five attempts each");
    order.dedup();
    assert_eq!(
        order,
        ["j1", "j4", "j5"],
        "one at a time; j2 and j3 dropped"
    );
    let text = logs.text();
    assert_eq!(text.matches("webhook queue full").count(), 2, "{text}");
    assert!(text.contains("job=j2") && text.contains("job=j3"), "{text}");
}

#[tokio::test(start_paused = true)]
async fn a_job_finished_on_a_plain_thread_is_still_delivered() {
    let r = Receiver::start(vec![], Answer::Status(200)).await;
    let s = Arc::new(sender());
    let on_thread = s.clone();
    let url = r.url.clone();
    std::thread::spawn(move || on_thread.send(delivery(&url, "j1")))
        .join()
        .unwrap();
    settle().await;
    assert_eq!(r.hits().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn dropping_the_sender_stops_its_deliveries() {
    let dead = Receiver::start(vec![], Answer::Status(503)).await;
    let s = sender();
    s.send(delivery(&dead.url, "j1"));
    tokio::time::sleep(secs(0.1)).await;
    assert_eq!(dead.hits().len(), 1);
    drop(s);
    settle().await;
    assert_eq!(dead.hits().len(), 1, "no retry after the sender is gone");
}
