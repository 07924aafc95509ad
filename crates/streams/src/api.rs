//! Native routes under `/api/v1/streams/…`: start a harvest (a job), list runs, a run, its
//! report, its events and its malformed messages (paginated).

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sluice_core::http::{ApiQuery, Page};
use sluice_core::{ApiError, Ctx, Db, DbError};
use utoipa::{IntoParams, ToSchema};

use crate::engine::{self, Report, Run};
use crate::harvest::{self, parse_duration, HarvestOverrides, HarvestParams};
use crate::parse::Stream;
use crate::store::{self, StoredEvent, StoredMalformed};

pub fn router(ctx: Ctx) -> Router {
    Router::new()
        .route("/api/v1/streams/harvests", post(start_harvest))
        .route("/api/v1/streams/runs", get(list_runs))
        .route("/api/v1/streams/runs/{run_id}", get(get_run))
        .route("/api/v1/streams/runs/{run_id}/report", get(get_report))
        .route("/api/v1/streams/runs/{run_id}/events", get(list_events))
        .route(
            "/api/v1/streams/runs/{run_id}/malformed",
            get(list_malformed),
        )
        .with_state(ctx)
}

/// A run named in a URL: its id, or `latest` (the latest finished run).
#[derive(Clone, Debug)]
pub enum RunRef {
    Id(String),
    Latest,
}

impl RunRef {
    pub fn parse(s: &str) -> Result<RunRef, ApiError> {
        if s == "latest" {
            return Ok(RunRef::Latest);
        }
        uuid::Uuid::parse_str(s)
            .map(|u| RunRef::Id(u.to_string()))
            .map_err(|_| {
                ApiError::bad_param(
                    "run_id",
                    format!("`{s}` is not a run id; expected a UUID or `latest`"),
                )
            })
    }

    fn load(&self, c: &rusqlite::Connection) -> Result<Option<(Run, engine::PerStream)>, DbError> {
        match self {
            RunRef::Id(id) => store::get_run(c, id),
            RunRef::Latest => store::latest_finished(c),
        }
    }

    fn missing(&self) -> ApiError {
        match self {
            RunRef::Id(id) => ApiError::not_found(format!("no harvest run `{id}`")),
            RunRef::Latest => ApiError::not_found(
                "no finished harvest yet; start one with POST /api/v1/streams/harvests or `sluice harvest`",
            ),
        }
    }
}

/// The report of a run, or `None` when there is no such run.
pub fn load_report(db: &Db, run: &RunRef) -> Result<Option<Report>, DbError> {
    db.read(|c| {
        let Some((run, malformed)) = run.load(c)? else {
            return Ok(None);
        };
        let events = store::report_events(c, &run.run_id)?;
        Ok(Some(engine::report(run, malformed, events)))
    })
}

/// The report of a run for a handler: 404 when there is none.
pub(crate) async fn report_or_404(ctx: &Ctx, run: RunRef) -> Result<Report, ApiError> {
    let db = ctx.db.clone();
    let r = run.clone();
    tokio::task::spawn_blocking(move || load_report(&db, &r))
        .await
        .map_err(ApiError::internal)??
        .ok_or_else(|| run.missing())
}

/// A duration as seconds (`20`) or text (`"20s"`, `"500ms"`, `"2m"`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum DurationInput {
    Seconds(f64),
    Text(String),
}

/// Starts a harvest; every field is optional (config file `[streams]`, then defaults).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HarvestRequest {
    /// Base URL of the events server, e.g. `http://localhost:8080`.
    pub source: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    /// Time limit (default 20 s).
    pub max_duration: Option<DurationInput>,
    /// First name whose events stop the run (default `Sytac`).
    pub stop_name: Option<String>,
    /// Stop at this many events of `stop_name` (default 3; 0 disables).
    pub stop_count: Option<u32>,
    /// Receives the final job JSON.
    pub callback_url: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct HarvestStarted {
    pub job_id: String,
    pub run_id: String,
    /// Snapshot of the job.
    pub job_url: String,
    /// Server-Sent Events of the job's progress.
    pub events_url: String,
    /// The run's report (complete once the job has succeeded).
    pub report_url: String,
}

#[utoipa::path(post, path = "/api/v1/streams/harvests", request_body = HarvestRequest,
    responses((status = 202, description = "harvest started as a job", body = HarvestStarted),
              (status = 400, description = "invalid parameter")))]
pub async fn start_harvest(
    State(ctx): State<Ctx>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    // An empty body means all defaults.
    let req: HarvestRequest = if body.iter().all(u8::is_ascii_whitespace) {
        HarvestRequest::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::bad_request(format!("invalid harvest request body: {e}; expected a JSON object with optional source, user, password, max_duration, stop_name, stop_count, callback_url"))
        })?
    };
    let max_duration = match req.max_duration {
        None => None,
        Some(DurationInput::Seconds(s)) if s > 0.0 && s.is_finite() => {
            Some(std::time::Duration::from_secs_f64(s))
        }
        Some(DurationInput::Seconds(_)) => {
            return Err(ApiError::bad_param(
                "max_duration",
                "expected seconds above 0",
            ))
        }
        Some(DurationInput::Text(t)) => {
            Some(parse_duration(&t).map_err(|e| ApiError::bad_param("max_duration", e))?)
        }
    };
    if let Some(url) = &req.callback_url {
        reqwest::Url::parse(url)
            .map_err(|_| ApiError::bad_param("callback_url", format!("`{url}` is not a URL")))?;
    }
    let params = HarvestParams::resolve(
        &ctx,
        HarvestOverrides {
            source: req.source,
            user: req.user,
            password: req.password,
            max_duration,
            stop_name: req.stop_name,
            stop_count: req.stop_count,
        },
    )?;
    let (job_id, _running) = harvest::start(&ctx, params, req.callback_url)?;
    let started = HarvestStarted {
        job_id: job_id.to_string(),
        run_id: job_id.to_string(),
        job_url: format!("/api/v1/jobs/{job_id}"),
        events_url: format!("/api/v1/jobs/{job_id}/events"),
        report_url: format!("/api/v1/streams/runs/{job_id}/report"),
    };
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, started.job_url.clone())],
        Json(started),
    )
        .into_response())
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RunList {
    pub runs: Vec<Run>,
    pub limit: u32,
    pub offset: u64,
}

#[utoipa::path(get, path = "/api/v1/streams/runs", params(Page),
    responses((status = 200, description = "runs, newest first", body = RunList)))]
pub async fn list_runs(
    State(ctx): State<Ctx>,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<RunList>, ApiError> {
    let (limit, offset) = (page.limit(50, 500)?, page.offset());
    let runs = ctx
        .db
        .read_async(move |c| store::list_runs(c, limit, offset))
        .await?;
    Ok(Json(RunList {
        runs,
        limit,
        offset,
    }))
}

#[utoipa::path(get, path = "/api/v1/streams/runs/{run_id}",
    params(("run_id" = String, Path, description = "run id (UUID) or `latest`")),
    responses((status = 200, description = "the run", body = Run), (status = 404, description = "no such run")))]
pub async fn get_run(
    State(ctx): State<Ctx>,
    Path(run_id): Path<String>,
) -> Result<Json<Run>, ApiError> {
    let run = RunRef::parse(&run_id)?;
    let r = run.clone();
    ctx.db
        .read_async(move |c| r.load(c))
        .await?
        .map(|(run, _)| Json(run))
        .ok_or_else(|| run.missing())
}

#[utoipa::path(get, path = "/api/v1/streams/runs/{run_id}/report",
    params(("run_id" = String, Path, description = "run id (UUID) or `latest`")),
    responses((status = 200, description = "the run's report", body = Report), (status = 404, description = "no such run")))]
pub async fn get_report(
    State(ctx): State<Ctx>,
    Path(run_id): Path<String>,
) -> Result<Json<Report>, ApiError> {
    Ok(Json(report_or_404(&ctx, RunRef::parse(&run_id)?).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct EventQuery {
    pub limit: Option<u32>,
    pub offset: Option<u64>,
    /// Only events of this stream: sytflix, sytazon or sysney.
    pub stream: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventList {
    pub events: Vec<StoredEvent>,
    pub limit: u32,
    pub offset: u64,
}

/// The run id of a run reference, 404 when there is no such run.
async fn resolve(ctx: &Ctx, run_id: &str) -> Result<String, ApiError> {
    let run = RunRef::parse(run_id)?;
    let r = run.clone();
    ctx.db
        .read_async(move |c| r.load(c))
        .await?
        .map(|(run, _)| run.run_id)
        .ok_or_else(|| run.missing())
}

#[utoipa::path(get, path = "/api/v1/streams/runs/{run_id}/events",
    params(("run_id" = String, Path, description = "run id (UUID) or `latest`"), EventQuery),
    responses((status = 200, description = "events in arrival order", body = EventList), (status = 404, description = "no such run")))]
pub async fn list_events(
    State(ctx): State<Ctx>,
    Path(run_id): Path<String>,
    ApiQuery(q): ApiQuery<EventQuery>,
) -> Result<Json<EventList>, ApiError> {
    let page = Page {
        limit: q.limit,
        offset: q.offset,
    };
    let (limit, offset) = (page.limit(100, 1000)?, page.offset());
    let stream = q
        .stream
        .map(|s| s.parse::<Stream>())
        .transpose()
        .map_err(|e| ApiError::bad_param("stream", e))?;
    let id = resolve(&ctx, &run_id).await?;
    let events = ctx
        .db
        .read_async(move |c| store::events_page(c, &id, stream, limit, offset))
        .await?;
    Ok(Json(EventList {
        events,
        limit,
        offset,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MalformedList {
    pub malformed: Vec<StoredMalformed>,
    pub limit: u32,
    pub offset: u64,
}

#[utoipa::path(get, path = "/api/v1/streams/runs/{run_id}/malformed",
    params(("run_id" = String, Path, description = "run id (UUID) or `latest`"), Page),
    responses((status = 200, description = "malformed messages in arrival order", body = MalformedList), (status = 404, description = "no such run")))]
pub async fn list_malformed(
    State(ctx): State<Ctx>,
    Path(run_id): Path<String>,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<MalformedList>, ApiError> {
    let (limit, offset) = (page.limit(100, 1000)?, page.offset());
    let id = resolve(&ctx, &run_id).await?;
    let malformed = ctx
        .db
        .read_async(move |c| store::malformed_page(c, &id, limit, offset))
        .await?;
    Ok(Json(MalformedList {
        malformed,
        limit,
        offset,
    }))
}
