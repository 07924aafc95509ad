//! Webhooks: the final job JSON is POSTed to the job's `callback_url`, signed with
//! `X-Sluice-Signature: sha256=<hex HMAC>` of the body when a secret is configured.
//!
//! One [`WebhookSender`] (one per [`Jobs`](crate::jobs::Jobs)) owns one HTTP client, so every
//! delivery shares its connection pool, and a worker task fed by a bounded queue:
//! - [`WebhookSender::send`] only enqueues, so finishing a job never waits on a receiver;
//! - at most [`Limits::in_flight`] deliveries run at once and at most [`Limits::queue`] wait;
//!   when the queue is full the oldest waiting delivery is dropped with a warning, so a dead
//!   endpoint cannot grow memory without bound;
//! - only what can succeed later is retried (transport errors, 408, 429, 5xx), with capped
//!   exponential back-off with jitter ([`RetryPolicy`]); a 429 or 503 with `Retry-After`
//!   seconds is not retried sooner than that, up to the cap. Any other answer is final.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use backon::{Backoff, BackoffBuilder, ExponentialBuilder, Retryable};
use bytes::Bytes;
use hmac::{Hmac, Mac};
use reqwest::header::{CONTENT_TYPE, RETRY_AFTER};
use reqwest::StatusCode;
use sha2::Sha256;
use tokio::runtime::Handle;
use tokio::sync::Notify;
use tokio::task::{JoinError, JoinHandle, JoinSet};

/// The signature header value for `body` under `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// One webhook call: where, the event headers, and the JSON body that is signed and sent.
#[derive(Clone, Debug)]
pub struct Delivery {
    pub url: String,
    /// `X-Sluice-Event`, e.g. `job.succeeded`.
    pub event: String,
    /// `X-Sluice-Job`.
    pub job_id: String,
    pub body: Bytes,
}

/// How often and how patiently a delivery is retried.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: usize,
    /// Back-off before the first retry; it doubles for each retry after.
    pub first_delay: Duration,
    /// No wait between attempts is longer, jitter and `Retry-After` included.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// Five attempts over at most about half a minute of back-off (jitter adds up to the
    /// delay again: 1–2 s, 2–4 s, 4–8 s, 8–16 s), long enough to ride out a receiver's restart.
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The waits before each retry: exponential, with jitter so that receivers failed by one
    /// outage are not hit by every sender at the same instants, capped at `max_delay`.
    fn backoff(&self) -> impl Backoff {
        let cap = self.max_delay;
        ExponentialBuilder::default()
            .with_min_delay(self.first_delay)
            .with_factor(2.0)
            .with_max_delay(cap)
            .with_max_times(self.attempts.saturating_sub(1))
            .with_jitter()
            .build()
            // backon caps the delay before adding its jitter (up to the delay again).
            .map(move |d| d.min(cap))
    }

    /// The wait before the next attempt after `failure`, given the back-off's next delay
    /// (`None`: attempts exhausted).
    fn next_delay(&self, backoff: Option<Duration>, failure: &Failure) -> Option<Duration> {
        let delay = backoff?;
        Some(match failure.retry_after() {
            Some(asked) => delay.max(asked.min(self.max_delay)),
            None => delay,
        })
    }
}

/// How many deliveries may be held at once.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Deliveries waiting for a slot; beyond it the oldest is dropped.
    pub queue: usize,
    /// Deliveries being attempted (or waiting between attempts) at once.
    pub in_flight: usize,
}

impl Default for Limits {
    /// A few slow endpoints do not hold up the others, and a burst of finished jobs (an inbox
    /// of a thousand files) is still delivered in full.
    fn default() -> Self {
        Limits {
            queue: 1024,
            in_flight: 16,
        }
    }
}

/// Longest one attempt may take, connection included; a hung receiver counts as a failure.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why one attempt failed.
#[derive(Debug)]
enum Failure {
    Status {
        status: StatusCode,
        retry_after: Option<Duration>,
    },
    Transport(reqwest::Error),
}

impl Failure {
    /// Whether the same request may succeed later. Any other 4xx (and a 3xx left after
    /// redirects) says the request itself is wrong: sending it again gets the same answer.
    fn retryable(&self) -> bool {
        match self {
            Failure::Status { status, .. } => {
                *status == StatusCode::REQUEST_TIMEOUT
                    || *status == StatusCode::TOO_MANY_REQUESTS
                    || status.is_server_error()
            }
            // A request that cannot be built (a malformed URL) fails the same way every time.
            Failure::Transport(e) => !e.is_builder(),
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Failure::Status { retry_after, .. } => *retry_after,
            Failure::Transport(_) => None,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Status { status, .. } => write!(f, "answered {status}"),
            Failure::Transport(e) => write!(f, "{e}"),
        }
    }
}

/// `Retry-After` in seconds of a 429 or 503 (the answers that define it as a wait); an HTTP
/// date or garbage is ignored and the back-off applies.
fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    if !matches!(
        resp.status(),
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
    ) {
        return None;
    }
    let secs = resp.headers().get(RETRY_AFTER)?.to_str().ok()?.trim();
    secs.parse::<u64>().ok().map(Duration::from_secs)
}

/// What became of a delivery.
#[derive(Debug)]
enum Outcome {
    Delivered { attempts: usize },
    Refused(Failure),
    GaveUp { attempts: usize, last: Failure },
}

/// What the sender and its worker share.
struct Shared {
    client: reqwest::Client,
    secret: Option<String>,
    policy: RetryPolicy,
    limits: Limits,
    queue: Mutex<VecDeque<Delivery>>,
    wake: Notify,
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, VecDeque<Delivery>> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn attempt(&self, d: &Delivery) -> Result<(), Failure> {
        let mut req = self
            .client
            .post(&d.url)
            .header(CONTENT_TYPE, "application/json")
            .header("x-sluice-event", &d.event)
            .header("x-sluice-job", &d.job_id)
            .body(d.body.clone());
        if let Some(secret) = &self.secret {
            req = req.header("x-sluice-signature", signature(secret, &d.body));
        }
        let resp = req.send().await.map_err(Failure::Transport)?;
        if resp.status().is_success() {
            return Ok(());
        }
        Err(Failure::Status {
            status: resp.status(),
            retry_after: retry_after(&resp),
        })
    }

    async fn deliver(&self, d: &Delivery) -> Outcome {
        let attempts = AtomicUsize::new(0);
        let result = (|| {
            attempts.fetch_add(1, Ordering::Relaxed);
            self.attempt(d)
        })
        .retry(self.policy.backoff())
        .sleep(tokio::time::sleep)
        .when(Failure::retryable)
        .adjust(|failure, next| self.policy.next_delay(next, failure))
        .notify(|failure, wait| {
            tracing::warn!(
                url = %d.url, job = %d.job_id, attempt = attempts.load(Ordering::Relaxed),
                error = %failure, retry_in = ?wait, "webhook attempt failed"
            );
        })
        .await;
        let attempts = attempts.into_inner();
        match result {
            Ok(()) => Outcome::Delivered { attempts },
            Err(last) if last.retryable() => Outcome::GaveUp { attempts, last },
            Err(last) => Outcome::Refused(last),
        }
    }
}

fn report(d: &Delivery, outcome: &Outcome) {
    match outcome {
        Outcome::Delivered { attempts } => {
            tracing::debug!(url = %d.url, job = %d.job_id, attempts, "webhook delivered")
        }
        Outcome::Refused(failure) => tracing::warn!(
            url = %d.url, job = %d.job_id, error = %failure,
            "webhook refused; not retried, the same request would get the same answer"
        ),
        Outcome::GaveUp { attempts, last } => tracing::error!(
            url = %d.url, job = %d.job_id, error = %last,
            "webhook given up after {attempts} attempts"
        ),
    }
}

/// Takes deliveries off the queue while fewer than `in_flight` are running.
async fn run(shared: Arc<Shared>) {
    let mut running = JoinSet::new();
    loop {
        while let Some(done) = running.try_join_next() {
            reaped(done);
        }
        if running.len() >= shared.limits.in_flight {
            if let Some(done) = running.join_next().await {
                reaped(done);
            }
            continue;
        }
        let next = shared.queue().pop_front();
        match next {
            Some(d) => {
                let shared = shared.clone();
                running.spawn(async move { report(&d, &shared.deliver(&d).await) });
            }
            // `send` pushes before it notifies, and a notification given while no one waits
            // is kept for the next wait: nothing enqueued is left unseen.
            None => shared.wake.notified().await,
        }
    }
}

fn reaped(done: Result<(), JoinError>) {
    if let Err(e) = done {
        tracing::error!(error = %e, "webhook delivery task failed");
    }
}

/// Delivers webhooks in the background. Dropping it stops its worker and every delivery
/// still queued or being attempted.
pub struct WebhookSender {
    shared: Arc<Shared>,
    worker: Mutex<Worker>,
}

struct Worker {
    /// The runtime to start the worker on when `send` is called from outside any (a job
    /// finished on a plain thread); the one current when the sender was built, or at the
    /// first `send` from inside one.
    runtime: Option<Handle>,
    task: Option<JoinHandle<()>>,
}

impl WebhookSender {
    /// The sender of a process, signing with `secret` when there is one.
    pub fn new(secret: Option<String>) -> WebhookSender {
        WebhookSender::with(secret, RetryPolicy::default(), Limits::default())
    }

    /// A sender with its own retry policy and bounds.
    pub fn with(secret: Option<String>, policy: RetryPolicy, limits: Limits) -> WebhookSender {
        let client = reqwest::Client::builder()
            .timeout(ATTEMPT_TIMEOUT)
            // The URL was checked (`http::http_url`); a redirect would lead to one that was not.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect(
                "the HTTP client builds: rustls with bundled roots needs nothing from the system",
            );
        WebhookSender {
            shared: Arc::new(Shared {
                client,
                secret,
                policy,
                limits,
                queue: Mutex::new(VecDeque::new()),
                wake: Notify::new(),
            }),
            worker: Mutex::new(Worker {
                runtime: Handle::try_current().ok(),
                task: None,
            }),
        }
    }

    /// Queues `d` and returns at once. Without any async runtime to deliver on (a CLI run
    /// that never had one) the delivery is logged as skipped.
    pub fn send(&self, d: Delivery) {
        let mut worker = self.worker.lock().unwrap_or_else(|p| p.into_inner());
        if let Ok(current) = Handle::try_current() {
            worker.runtime = Some(current);
        }
        let alive = worker.task.as_ref().is_some_and(|t| !t.is_finished());
        let runtime = match (&worker.runtime, alive) {
            (_, true) => None,
            (Some(rt), false) => Some(rt.clone()),
            (None, false) => {
                tracing::warn!(url = %d.url, job = %d.job_id, "no async runtime: webhook not delivered");
                return;
            }
        };
        let dropped = {
            let mut queue = self.shared.queue();
            queue.push_back(d);
            if queue.len() > self.shared.limits.queue {
                queue.pop_front()
            } else {
                None
            }
        };
        if let Some(old) = dropped {
            tracing::warn!(
                url = %old.url, job = %old.job_id, queue = self.shared.limits.queue,
                "webhook queue full: the oldest waiting delivery is dropped"
            );
        }
        self.shared.wake.notify_one();
        if let Some(rt) = runtime {
            worker.task = Some(rt.spawn(run(self.shared.clone())));
        }
    }
}

impl Drop for WebhookSender {
    fn drop(&mut self) {
        let worker = self.worker.get_mut().unwrap_or_else(|p| p.into_inner());
        if let Some(task) = worker.task.take() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests;
