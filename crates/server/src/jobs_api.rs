//! Job snapshots (`GET /api/v1/jobs`, `GET /api/v1/jobs/{id}`) and the push channels:
//! SSE for one job (snapshot first, then changes, heartbeat every 15 s, ends after the
//! terminal event), SSE for all jobs, and a WebSocket carrying the same events as JSON.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use futures::Stream;
use serde::Deserialize;
use sluice_core::http::{ApiQuery, BadRequest, NotFound, ProblemDoc, SseEvent};
use sluice_core::jobs::{JobEvent, JobFilter};
use sluice_core::{ApiError, Ctx, Job, JobId, JobState};
use tokio::sync::broadcast::error::RecvError;

const HEARTBEAT: Duration = Duration::from_secs(15);
/// A job run by another process (`sluice ingest` beside the server) is not on this bus; its
/// stored state is re-read this often so its stream still ends.
const FOREIGN_REFRESH: Duration = Duration::from_secs(1);

pub fn routes(ctx: Ctx) -> Router {
    Router::new()
        .route("/api/v1/jobs", get(list_jobs))
        .route("/api/v1/jobs/{id}", get(get_job))
        .route("/api/v1/jobs/{id}/events", get(job_events))
        .route("/api/v1/events", get(all_events))
        .route("/api/v1/ws", get(ws))
        .with_state(ctx)
}

fn parse_id(id: &str) -> Result<JobId, ApiError> {
    id.parse()
        .map_err(|_| ApiError::bad_param("id", format!("`{id}` is not a job id (a UUID)")))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only jobs of this domain.
    domain: Option<String>,
    /// Only jobs of this kind (ingest, harvest, report).
    kind: Option<String>,
    /// Only jobs in this state.
    #[param(value_type = Option<JobState>)]
    state: Option<String>,
    /// At most this many (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
    /// Cursor: only jobs created before this job id.
    #[param(format = Uuid)]
    before: Option<String>,
}

/// Jobs, newest first. Their summaries carry the counts but not the per-file results and
/// rejections (`files` and `rejections` are empty here): `GET /api/v1/jobs/{id}` has them.
#[utoipa::path(get, path = "/api/v1/jobs", tag = "jobs", params(ListParams),
    responses((status = 200, body = [Job]), BadRequest))]
pub async fn list_jobs(
    State(ctx): State<Ctx>,
    ApiQuery(p): ApiQuery<ListParams>,
) -> Result<Json<Vec<Job>>, ApiError> {
    let limit = sluice_core::http::Page {
        limit: p.limit,
        offset: None,
    }
    .limit(50, 500)?;
    let state = p
        .state
        .as_deref()
        .map(|s| {
            s.parse::<JobState>()
                .map_err(|e| ApiError::bad_param("state", e))
        })
        .transpose()?;
    let before = p.before.as_deref().map(parse_id).transpose()?;
    let filter = JobFilter {
        domain: p.domain,
        kind: p.kind,
        state,
        limit,
        before,
    };
    let mut jobs = tokio::task::spawn_blocking(move || ctx.jobs.list(&filter))
        .await
        .map_err(ApiError::internal)??;
    // A demo's inbox job lists hundreds of files: the list stays small whatever jobs hold.
    for job in &mut jobs {
        job.summary.files = Vec::new();
        job.summary.rejections = Vec::new();
    }
    Ok(Json(jobs))
}

async fn load(ctx: &Ctx, id: JobId) -> Result<Job, ApiError> {
    let ctx = ctx.clone();
    tokio::task::spawn_blocking(move || ctx.jobs.get(id))
        .await
        .map_err(ApiError::internal)??
        .ok_or_else(|| ApiError::not_found(format!("no job {id}")))
}

/// One job's snapshot.
#[utoipa::path(get, path = "/api/v1/jobs/{id}", tag = "jobs", params(JobPath),
    responses((status = 200, body = Job), BadRequest, NotFound))]
pub async fn get_job(
    State(ctx): State<Ctx>,
    Path(id): Path<String>,
) -> Result<Json<Job>, ApiError> {
    Ok(Json(load(&ctx, parse_id(&id)?).await?))
}

fn sse_event(ev: &JobEvent) -> Event {
    Event::default()
        .event(ev.kind.clone())
        .data(serde_json::to_string(ev).expect("events serialize"))
}

fn snapshot_event(job: Job) -> JobEvent {
    JobEvent {
        kind: "job.snapshot".to_owned(),
        job,
    }
}

/// The event stream of one job: `job.snapshot` first, then `job.<state>` and `job.progress`
/// events; the stream ends after the terminal event. Used by every push route of a job.
pub fn job_stream(ctx: Ctx, id: JobId, first: Job) -> impl Stream<Item = JobEvent> + Send {
    // Subscribe first, then re-read the job: no change between the caller's snapshot and the
    // subscription is missed.
    let mut rx = ctx.jobs.subscribe();
    async_stream(move |tx| async move {
        let mut current = match ctx.jobs.get(id) {
            Ok(Some(j)) => j,
            _ => first,
        };
        if tx.send(snapshot_event(current.clone())).await.is_err() {
            return;
        }
        while !current.state.is_terminal() {
            let next = tokio::time::timeout(FOREIGN_REFRESH, rx.recv()).await;
            let event = match next {
                Ok(Ok(ev)) if ev.job.id == id => ev,
                Ok(Ok(_)) => continue,
                Ok(Err(RecvError::Lagged(_))) | Err(_) => {
                    // Missed events, or quiet: re-read the stored state (also covers jobs of
                    // other processes) and send it only if it changed.
                    match ctx.jobs.get(id) {
                        Ok(Some(j)) if j != current => JobEvent {
                            kind: if j.state.is_terminal() {
                                format!("job.{}", j.state.as_str())
                            } else {
                                "job.progress".to_owned()
                            },
                            job: j,
                        },
                        _ => continue,
                    }
                }
                Ok(Err(RecvError::Closed)) => return,
            };
            current = event.job.clone();
            if tx.send(event).await.is_err() {
                return;
            }
        }
    })
}

/// A stream fed by a task through a small channel.
fn async_stream<F, Fut>(f: F) -> impl Stream<Item = JobEvent> + Send
where
    F: FnOnce(tokio::sync::mpsc::Sender<JobEvent>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(f(tx));
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// Server-Sent Events of one job: a snapshot, then changes; ends after the terminal event.
/// Each event's `data` is a [`JobEvent`] whose `type` is also the SSE event name.
#[utoipa::path(get, path = "/api/v1/jobs/{id}/events", tag = "jobs", params(JobPath),
    responses((status = 200, content_type = "text/event-stream", body = SseEvent,
                description = "`job.snapshot`, then `job.progress` and `job.<state>` events (JSON JobEvent each)"),
              BadRequest, NotFound))]
pub async fn job_events(
    State(ctx): State<Ctx>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let id = parse_id(&id)?;
    let first = load(&ctx, id).await?;
    Ok(sse_response(job_stream(ctx, id, first)))
}

/// Wraps job events as an SSE response with a heartbeat comment every 15 s.
pub fn sse_response(
    events: impl Stream<Item = JobEvent> + Send + 'static,
) -> Sse<impl Stream<Item = Result<Event, Infallible>> + Send> {
    use futures::StreamExt;
    Sse::new(events.map(|ev| Ok(sse_event(&ev))))
        .keep_alive(KeepAlive::new().interval(HEARTBEAT).text("heartbeat"))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventParams {
    /// Only events of this domain's jobs.
    domain: Option<String>,
}

/// The `{id}` of the job routes.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
pub struct JobPath {
    /// The job's id.
    #[param(format = Uuid)]
    #[allow(dead_code)]
    id: String,
}

fn bus_stream(ctx: Ctx, domain: Option<String>) -> impl Stream<Item = JobEvent> + Send {
    let rx = ctx.jobs.subscribe();
    use futures::StreamExt;
    tokio_stream::wrappers::BroadcastStream::new(rx).filter_map(move |r| {
        let keep = match r {
            Ok(ev) if domain.as_deref().is_none_or(|d| d == ev.job.domain) => Some(ev),
            _ => None,
        };
        std::future::ready(keep)
    })
}

/// Server-Sent Events of all jobs (optionally of one domain); never ends.
#[utoipa::path(get, path = "/api/v1/events", tag = "jobs", params(EventParams),
    responses((status = 200, content_type = "text/event-stream", body = SseEvent,
        description = "`job.progress` and `job.<state>` events (JSON JobEvent each), heartbeat comments every 15 s"),
        BadRequest))]
pub async fn all_events(
    State(ctx): State<Ctx>,
    ApiQuery(p): ApiQuery<EventParams>,
) -> impl IntoResponse {
    sse_response(bus_stream(ctx, p.domain))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct WsParams {
    /// Only events of this domain's jobs.
    domain: Option<String>,
    /// Follow this one job: its snapshot first; the socket closes after its terminal event.
    #[param(format = Uuid)]
    job: Option<String>,
}

/// WebSocket: the same events as `/api/v1/events`, one JSON JobEvent per text message.
#[utoipa::path(get, path = "/api/v1/ws", tag = "jobs", params(WsParams),
    responses((status = 101, description = "switching to the WebSocket protocol"),
        (status = 400, description = "not a WebSocket handshake, or a bad parameter",
            body = ProblemDoc, content_type = "application/problem+json"),
        NotFound,
        (status = 426, description = "the connection cannot be upgraded",
            body = ProblemDoc, content_type = "application/problem+json")))]
pub async fn ws(
    State(ctx): State<Ctx>,
    ApiQuery(p): ApiQuery<WsParams>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let upgrade = upgrade.map_err(|e| ApiError::new(e.status(), e.body_text()))?;
    let events: std::pin::Pin<Box<dyn Stream<Item = JobEvent> + Send>> = match p.job {
        Some(id) => {
            let id = parse_id(&id)?;
            let first = load(&ctx, id).await?;
            Box::pin(job_stream(ctx, id, first))
        }
        None => Box::pin(bus_stream(ctx, p.domain)),
    };
    Ok(upgrade.on_upgrade(move |socket| pump(socket, events)))
}

async fn pump(
    mut socket: WebSocket,
    mut events: std::pin::Pin<Box<dyn Stream<Item = JobEvent> + Send>>,
) {
    use futures::StreamExt;
    loop {
        tokio::select! {
            ev = events.next() => match ev {
                Some(ev) => {
                    let text = serde_json::to_string(&ev).expect("events serialize");
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        return;
                    }
                }
                None => {
                    let _ = socket.send(Message::Close(None)).await;
                    return;
                }
            },
            msg = socket.recv() => match msg {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(_)) => {}
            },
        }
    }
}
