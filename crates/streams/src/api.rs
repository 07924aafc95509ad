//! Native routes under `/api/v1/streams/…`: start a harvest (a job), list runs, a run, its
//! report, its events and its malformed messages (paginated).

// Imported under another name so that utoipa infers no second, unconstrained `run_id`
// parameter beside the documented one.
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sluice_core::http::{ApiQuery, Page, ProblemDoc};
use sluice_core::{ApiError, Ctx};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::engine::{self, Report, Run};
use crate::harvest::{self, HarvestOverrides, HarvestParams};
use crate::parse::Stream;
use crate::store::{self, Reads, StoreError, StoredEvent, StoredMalformed};

#[derive(OpenApi)]
#[openapi(
    paths(
        start_harvest,
        list_runs,
        get_run,
        get_report,
        list_events,
        list_malformed
    ),
    components(schemas(
        HarvestRequest,
        HarvestStarted,
        RunList,
        Run,
        Report,
        EventList,
        MalformedList,
        Stream,
        ProblemDoc
    ))
)]
pub struct NativeApi;

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
        // Only the hyphenated form (36 characters), as the documented pattern says.
        Some(s)
            .filter(|s| s.len() == 36)
            .and_then(|s| uuid::Uuid::parse_str(s).ok())
            .map(|u| RunRef::Id(u.to_string()))
            .ok_or_else(|| {
                ApiError::bad_param(
                    "run_id",
                    format!("`{s}` is not a run id; expected a hyphenated UUID or `latest`"),
                )
            })
    }

    fn load(&self, c: &mut dyn Reads) -> Result<Option<(Run, engine::PerStream)>, StoreError> {
        match self {
            RunRef::Id(id) => c.get_run(id),
            RunRef::Latest => c.latest_finished(),
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
pub fn load_report(c: &mut dyn Reads, run: &RunRef) -> Result<Option<Report>, StoreError> {
    let Some((run, malformed)) = run.load(c)? else {
        return Ok(None);
    };
    let events = c.report_events(&run.run_id)?;
    Ok(Some(engine::report(run, malformed, events)))
}

/// The report of a run for a handler: 404 when there is none.
pub(crate) async fn report_or_404(ctx: &Ctx, run: RunRef) -> Result<Report, ApiError> {
    let r = run.clone();
    store::read_async(&ctx.db, move |c| load_report(c, &r))
        .await?
        .ok_or_else(|| run.missing())
}

/// The most a harvest started over HTTP may last: long enough for any real run, short
/// enough that a stray request cannot hold a harvest for a day.
pub const MAX_API_DURATION_S: f64 = 3600.0;
/// The least: one millisecond, the resolution of the run's clock.
pub const MIN_API_DURATION_S: f64 = 0.001;

/// The text forms of `max_duration`: a whole number without leading zeros and a unit (`ms`,
/// `s`, `m`, `h`, none for seconds), from 1 ms to one hour. [`api_duration_text`] accepts
/// exactly this language.
pub const DURATION_PATTERN: &str = "^(?:(?:[1-9][0-9]{0,5}|[1-2][0-9]{6}|3[0-5][0-9]{5}|3600000)ms|(?:[1-9][0-9]{0,2}|[1-2][0-9]{3}|3[0-5][0-9]{2}|3600)s?|(?:[1-9]|[1-5][0-9]|60)m|1h)$";

/// A `max_duration` text per [`DURATION_PATTERN`].
pub fn api_duration_text(s: &str) -> Option<std::time::Duration> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    if digits.is_empty() || digits.starts_with('0') || digits.len() > 7 {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    let (max, ms_per_unit) = match unit {
        "ms" => (3_600_000, 1),
        "s" | "" => (3_600, 1_000),
        "m" => (60, 60_000),
        "h" => (1, 3_600_000),
        _ => return None,
    };
    (n <= max).then(|| std::time::Duration::from_millis(n * ms_per_unit))
}

/// A `max_duration` number of seconds from [`MIN_API_DURATION_S`] to [`MAX_API_DURATION_S`].
pub fn api_duration_seconds(s: f64) -> Option<std::time::Duration> {
    (MIN_API_DURATION_S..=MAX_API_DURATION_S)
        .contains(&s)
        .then(|| std::time::Duration::from_secs_f64(s))
}

/// A duration as seconds (`20`, `1.5`) or text (`"20s"`, `"500ms"`, `"2m"`, `"1h"`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum DurationInput {
    Seconds(f64),
    Text(String),
}

fn max_duration_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
    OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Number)
                .minimum(Some(MIN_API_DURATION_S))
                .maximum(Some(MAX_API_DURATION_S))
                .description(Some("seconds")),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(DURATION_PATTERN))
                .description(Some("a whole number with a unit: ms, s (or none), m, h")),
        )
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .description(Some(
            "Time limit, 1 ms to 1 h (default 20 s): seconds (`20`, `1.5`) or text (`\"500ms\"`, `\"20s\"`, `\"2m\"`, `\"1h\"`).",
        ))
        .into()
}

/// Starts a harvest; every field is optional (config file `[streams]`, then defaults).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HarvestRequest {
    /// Base URL of the events server [default: `[streams] source` of the config, else
    /// `http://127.0.0.1:8090`, where `sluice simulate` listens; in `sluice demo`, its simulator].
    #[schema(schema_with = sluice_core::http::nullable_http_url_schema)]
    pub source: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    #[schema(schema_with = max_duration_schema)]
    pub max_duration: Option<DurationInput>,
    /// First name whose events stop the run (default `Sytac`).
    pub stop_name: Option<String>,
    /// Stop at this many events of `stop_name` (default 3; 0 disables).
    #[schema(minimum = 0, maximum = 4294967295u32)]
    #[serde(default, deserialize_with = "sluice_core::http::json_integer")]
    pub stop_count: Option<u32>,
    /// An http(s) URL that receives the final job JSON.
    #[schema(schema_with = sluice_core::http::nullable_http_url_schema)]
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

#[utoipa::path(post, path = "/api/v1/streams/harvests", tag = "streams",
    request_body(content = Option<HarvestRequest>, content_type = "application/json",
        description = "optional; an empty body or `null` takes every default"),
    responses((status = 202, description = "harvest started as a job", body = HarvestStarted,
                  headers(("Location" = String, description = "the job's URL"))),
              (status = 400, description = "invalid body or parameter", body = ProblemDoc, content_type = "application/problem+json")))]
pub async fn start_harvest(
    State(ctx): State<Ctx>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    // An empty body, like `null`, means all defaults.
    let req: HarvestRequest = if body.iter().all(u8::is_ascii_whitespace) {
        HarvestRequest::default()
    } else {
        serde_json::from_slice::<Option<HarvestRequest>>(&body)
            .map_err(|e| {
                ApiError::bad_request(format!("invalid harvest request body: {e}; expected a JSON object with optional source, user, password, max_duration, stop_name, stop_count, callback_url"))
            })?
            .unwrap_or_default()
    };
    let max_duration = match req.max_duration {
        None => None,
        Some(DurationInput::Seconds(s)) => Some(api_duration_seconds(s).ok_or_else(|| {
            ApiError::bad_param(
                "max_duration",
                format!("{s} is out of range; expected seconds from {MIN_API_DURATION_S} to {MAX_API_DURATION_S}"),
            )
        })?),
        Some(DurationInput::Text(t)) => Some(api_duration_text(&t).ok_or_else(|| {
            ApiError::bad_param(
                "max_duration",
                format!("`{t}` is not a duration from 1ms to 1h; expected e.g. 500ms, 20s, 2m, 1h"),
            )
        })?),
    };
    for (param, value) in [("source", &req.source), ("callback_url", &req.callback_url)] {
        if let Some(url) = value.as_deref() {
            sluice_core::http::http_url(param, url)?;
        }
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

/// The largest `offset` of any list: the largest integer every JSON client reads exactly.
pub const MAX_OFFSET: u64 = (1 << 53) - 1;

/// A page of a list, as the routes check it.
fn page(
    limit: Option<u32>,
    offset: Option<u64>,
    default: u32,
    max: u32,
) -> Result<(u32, u64), ApiError> {
    let limit = Page { limit, offset }.limit(default, max)?;
    match offset.unwrap_or(0) {
        o if o > MAX_OFFSET => Err(ApiError::bad_param(
            "offset",
            format!("offset must be at most {MAX_OFFSET}, got {o}"),
        )),
        o => Ok((limit, o)),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunsQuery {
    /// Runs per page (default 50).
    #[param(minimum = 1, maximum = 500, nullable = false)]
    pub limit: Option<u32>,
    /// Runs to skip (default 0).
    #[param(minimum = 0, maximum = 9007199254740991u64, nullable = false)]
    pub offset: Option<u64>,
}

#[utoipa::path(get, path = "/api/v1/streams/runs", tag = "streams", params(RunsQuery),
    responses((status = 200, description = "runs, newest first", body = RunList),
              (status = 400, description = "invalid query parameter", body = ProblemDoc, content_type = "application/problem+json")))]
pub async fn list_runs(
    State(ctx): State<Ctx>,
    ApiQuery(q): ApiQuery<RunsQuery>,
) -> Result<Json<RunList>, ApiError> {
    let (limit, offset) = page(q.limit, q.offset, 50, 500)?;
    let runs = store::read_async(&ctx.db, move |c| c.list_runs(limit, offset)).await?;
    Ok(Json(RunList {
        runs,
        limit,
        offset,
    }))
}

/// A run id as URLs carry it: a hyphenated UUID or `latest`. [`RunRef::parse`] accepts
/// exactly this language.
pub const RUN_ID_PATTERN: &str =
    "^(?:latest|[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})$";

#[utoipa::path(get, path = "/api/v1/streams/runs/{run_id}", tag = "streams", params(("run_id" = String, Path, description = "run id (a hyphenated UUID) or `latest`, the latest finished run", pattern = "^(?:latest|[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})$")),
    responses((status = 200, description = "the run", body = Run),
              (status = 400, description = "invalid run id", body = ProblemDoc, content_type = "application/problem+json"),
              (status = 404, description = "no such run", body = ProblemDoc, content_type = "application/problem+json")))]
pub async fn get_run(
    State(ctx): State<Ctx>,
    UrlPath(run_id): UrlPath<String>,
) -> Result<Json<Run>, ApiError> {
    let run = RunRef::parse(&run_id)?;
    let r = run.clone();
    store::read_async(&ctx.db, move |c| r.load(c))
        .await?
        .map(|(run, _)| Json(run))
        .ok_or_else(|| run.missing())
}

#[utoipa::path(get, path = "/api/v1/streams/runs/{run_id}/report", tag = "streams", params(("run_id" = String, Path, description = "run id (a hyphenated UUID) or `latest`, the latest finished run", pattern = "^(?:latest|[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})$")),
    responses((status = 200, description = "the run's report", body = Report),
              (status = 400, description = "invalid run id", body = ProblemDoc, content_type = "application/problem+json"),
              (status = 404, description = "no such run", body = ProblemDoc, content_type = "application/problem+json")))]
pub async fn get_report(
    State(ctx): State<Ctx>,
    UrlPath(run_id): UrlPath<String>,
) -> Result<Json<Report>, ApiError> {
    Ok(Json(report_or_404(&ctx, RunRef::parse(&run_id)?).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventQuery {
    /// Events per page (default 100).
    #[param(minimum = 1, maximum = 1000, nullable = false)]
    pub limit: Option<u32>,
    /// Events to skip (default 0).
    #[param(minimum = 0, maximum = 9007199254740991u64, nullable = false)]
    pub offset: Option<u64>,
    /// Only events of this stream.
    #[param(value_type = Option<Stream>, nullable = false)]
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
    store::read_async(&ctx.db, move |c| r.load(c))
        .await?
        .map(|(run, _)| run.run_id)
        .ok_or_else(|| run.missing())
}

#[utoipa::path(get, path = "/api/v1/streams/runs/{run_id}/events", tag = "streams",
    params(("run_id" = String, Path, description = "run id (a hyphenated UUID) or `latest`, the latest finished run", pattern = "^(?:latest|[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})$"), EventQuery),
    responses((status = 200, description = "events in arrival order", body = EventList),
              (status = 400, description = "invalid run id or query parameter", body = ProblemDoc, content_type = "application/problem+json"),
              (status = 404, description = "no such run", body = ProblemDoc, content_type = "application/problem+json")))]
pub async fn list_events(
    State(ctx): State<Ctx>,
    UrlPath(run_id): UrlPath<String>,
    ApiQuery(q): ApiQuery<EventQuery>,
) -> Result<Json<EventList>, ApiError> {
    let (limit, offset) = page(q.limit, q.offset, 100, 1000)?;
    let stream = q
        .stream
        .map(|s| s.parse::<Stream>())
        .transpose()
        .map_err(|e| ApiError::bad_param("stream", e))?;
    let id = resolve(&ctx, &run_id).await?;
    let events =
        store::read_async(&ctx.db, move |c| c.events_page(&id, stream, limit, offset)).await?;
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

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MalformedQuery {
    /// Messages per page (default 100).
    #[param(minimum = 1, maximum = 1000, nullable = false)]
    pub limit: Option<u32>,
    /// Messages to skip (default 0).
    #[param(minimum = 0, maximum = 9007199254740991u64, nullable = false)]
    pub offset: Option<u64>,
}

#[utoipa::path(get, path = "/api/v1/streams/runs/{run_id}/malformed", tag = "streams",
    params(("run_id" = String, Path, description = "run id (a hyphenated UUID) or `latest`, the latest finished run", pattern = "^(?:latest|[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})$"), MalformedQuery),
    responses((status = 200, description = "malformed messages in arrival order", body = MalformedList),
              (status = 400, description = "invalid run id or query parameter", body = ProblemDoc, content_type = "application/problem+json"),
              (status = 404, description = "no such run", body = ProblemDoc, content_type = "application/problem+json")))]
pub async fn list_malformed(
    State(ctx): State<Ctx>,
    UrlPath(run_id): UrlPath<String>,
    ApiQuery(q): ApiQuery<MalformedQuery>,
) -> Result<Json<MalformedList>, ApiError> {
    let (limit, offset) = page(q.limit, q.offset, 100, 1000)?;
    let id = resolve(&ctx, &run_id).await?;
    let malformed =
        store::read_async(&ctx.db, move |c| c.malformed_page(&id, limit, offset)).await?;
    Ok(Json(MalformedList {
        malformed,
        limit,
        offset,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn duration_text_is_the_documented_language() {
        let ok = [
            ("1ms", 1),
            ("3600000ms", 3_600_000),
            ("20s", 20_000),
            ("20", 20_000),
            ("3600", 3_600_000),
            ("2m", 120_000),
            ("60m", 3_600_000),
            ("1h", 3_600_000),
        ];
        for (t, ms) in ok {
            assert_eq!(api_duration_text(t), Some(Duration::from_millis(ms)), "{t}");
        }
        for t in [
            "",
            "0",
            "0s",
            "05s",
            "3601",
            "3600001ms",
            "61m",
            "2h",
            "1.5s",
            " 1s",
            "1s ",
            "1 s",
            "1min",
            "+1s",
            "-1s",
            "1S",
            "99999999999999999999s",
            "s",
        ] {
            assert_eq!(api_duration_text(t), None, "{t:?}");
        }
    }

    #[test]
    fn duration_seconds_are_range_checked() {
        assert_eq!(api_duration_seconds(0.001), Some(Duration::from_millis(1)));
        assert_eq!(
            api_duration_seconds(3600.0),
            Some(Duration::from_secs(3600))
        );
        for s in [0.0, 0.000_9, -1.0, 3600.001, 1e300, f64::NAN, f64::INFINITY] {
            assert_eq!(api_duration_seconds(s), None, "{s}");
        }
    }

    #[test]
    fn stop_count_is_any_whole_json_number_in_range() {
        let count = |body: &str| {
            serde_json::from_str::<HarvestRequest>(body)
                .map(|r| r.stop_count)
                .map_err(|_| ())
        };
        assert_eq!(count(r#"{"stop_count": 3}"#), Ok(Some(3)));
        assert_eq!(count(r#"{"stop_count": 3.0}"#), Ok(Some(3)));
        assert_eq!(count(r#"{"stop_count": 4294967295}"#), Ok(Some(u32::MAX)));
        assert_eq!(count(r#"{"stop_count": null}"#), Ok(None));
        assert_eq!(count("{}"), Ok(None));
        for bad in ["3.5", "-1", "4294967296", "1e400", "\"3\""] {
            assert_eq!(
                count(&format!(r#"{{"stop_count": {bad}}}"#)),
                Err(()),
                "{bad}"
            );
        }
    }

    #[test]
    fn run_ids_are_hyphenated_uuids_or_latest() {
        assert!(matches!(RunRef::parse("latest"), Ok(RunRef::Latest)));
        assert!(matches!(
            RunRef::parse("6F1C1A5E-8A4B-4C43-9D7E-1F0E2A3B4C5D"),
            Ok(RunRef::Id(id)) if id == "6f1c1a5e-8a4b-4c43-9d7e-1f0e2a3b4c5d"
        ));
        for s in [
            "6f1c1a5e8a4b4c439d7e1f0e2a3b4c5d",
            "{6f1c1a5e-8a4b-4c43-9d7e-1f0e2a3b4c5d}",
            "urn:uuid:6f1c1a5e-8a4b-4c43-9d7e-1f0e2a3b4c5d",
            "Latest",
            "",
        ] {
            assert!(RunRef::parse(s).is_err(), "{s}");
        }
    }

    #[test]
    fn documented_patterns_are_the_checked_ones() {
        let doc = serde_json::to_value(NativeApi::openapi()).unwrap();
        let schemas = &doc["components"]["schemas"];
        let req = &schemas["HarvestRequest"]["properties"];
        assert_eq!(
            req["source"]["pattern"],
            sluice_core::http::HTTP_URL_PATTERN
        );
        assert_eq!(
            req["callback_url"]["pattern"],
            sluice_core::http::HTTP_URL_PATTERN
        );
        assert_eq!(req["max_duration"]["oneOf"][1]["pattern"], DURATION_PATTERN);
        let run = &doc["paths"]["/api/v1/streams/runs/{run_id}"]["get"]["parameters"][0];
        assert_eq!(run["schema"]["pattern"], RUN_ID_PATTERN);
    }
}
