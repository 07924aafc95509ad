//! Native routes under `/api/v1/uptime/…`: trigger a report (optional `now`, store filter,
//! coverage distance), list reports, a report's state, its rows as JSON pages or CSV, the
//! stores, and one store's timeline — the explanation of a number. Times are ISO 8601 `Z`.
//! Ingestion routes (`/ingest`, `/uploads`, `/files`) come from the platform.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sluice_core::http::{ApiQuery, ProblemDoc};
use sluice_core::{ApiError, Ctx, Job, JobId};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::compat::{csv_response, parse_report_id};
use crate::engine::{self, RelevantPolls};
use crate::parse::{Micros, Zone, DAY, DEFAULT_ZONE, HOUR, MINUTE};
use crate::report::{self, NativeRow, ReportRequest, ReportState, WindowRow};
use crate::store::{self, ReportRow};
use crate::UptimeError;

#[derive(OpenApi)]
#[openapi(
    paths(
        trigger,
        list_reports,
        get_report,
        report_rows,
        summary,
        list_stores,
        timeline
    ),
    components(schemas(
        Summary,
        TriggerBody,
        Triggered,
        ReportInfo,
        WindowBounds,
        RowsPage,
        NativeRow,
        WindowRow,
        StoreInfo,
        Timeline,
        IntervalLocal,
        Interval,
        PollView,
        SegmentView,
        ReportStatus,
        RowsFormat,
        Window,
        ProblemDoc
    ))
)]
pub struct ApiDoc;

pub fn router(ctx: Ctx) -> Router {
    Router::new()
        .route("/api/v1/uptime/reports", get(list_reports).post(trigger))
        .route("/api/v1/uptime/reports/{id}", get(get_report))
        .route("/api/v1/uptime/reports/{id}/rows", get(report_rows))
        .route("/api/v1/uptime/summary", get(summary))
        .route("/api/v1/uptime/stores", get(list_stores))
        .route("/api/v1/uptime/stores/{store_id}/timeline", get(timeline))
        .with_state(ctx)
}

async fn blocking<R: Send + 'static>(
    f: impl FnOnce() -> Result<R, UptimeError> + Send + 'static,
) -> Result<R, ApiError> {
    Ok(tokio::task::spawn_blocking(f)
        .await
        .map_err(ApiError::internal)??)
}

fn parse_now(now: Option<&str>) -> Result<Option<Micros>, ApiError> {
    now.map(|s| Micros::parse_request(s).map_err(|e| ApiError::bad_param("now", e)))
        .transpose()
}

/// The largest `offset` (SQLite's OFFSET is a signed 64-bit integer).
pub const MAX_OFFSET: i64 = i64::MAX;

/// An integer query parameter within `[min, max]`, the bounds the document declares; anything
/// else, including what does not fit in 64 bits, is a 400 naming the parameter.
fn int_param(name: &str, raw: Option<&str>, min: i64, max: i64) -> Result<Option<i64>, ApiError> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    match raw.parse::<i64>() {
        Ok(v) if (min..=max).contains(&v) => Ok(Some(v)),
        _ => Err(ApiError::bad_param(
            name,
            format!("{name} must be an integer from {min} to {max}, got `{raw}`"),
        )),
    }
}

/// `limit` (default `default`, 1..=`max`) and `offset` (0..=[`MAX_OFFSET`]) of a page.
fn page(
    limit: Option<&str>,
    offset: Option<&str>,
    default: u32,
    max: u32,
) -> Result<(u32, u64), ApiError> {
    let limit = int_param("limit", limit, 1, i64::from(max))?.map_or(default, |l| l as u32);
    let offset = int_param("offset", offset, 0, MAX_OFFSET)?.unwrap_or(0) as u64;
    Ok((limit, offset))
}

/// `coverage_minutes` bounds: at least a minute, at most what `u32` holds.
const MAX_COVERAGE_MINUTES: i64 = u32::MAX as i64;

/// All fields optional: a report of every store with "now" = the latest poll.
#[derive(Deserialize, Default, ToSchema)]
#[schema(as = UptimeTriggerBody)]
#[serde(deny_unknown_fields)]
pub struct TriggerBody {
    /// End of the windows: `YYYY-MM-DDTHH:MM:SS[.ffffff]` (or a space for `T`) with `Z`,
    /// ` UTC`, an offset `±HH:MM` or nothing (UTC).
    #[schema(
        pattern = r"^(?:[0-9]{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))|(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)-02-29)[T ](?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,6})?(?:Z| UTC|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])?$"
    )]
    pub now: Option<String>,
    /// Only these store ids; an unknown one is a 404.
    pub stores: Option<Vec<String>>,
    /// Distance within which a poll covers business time (default 120, or the
    /// `[uptime] coverage_minutes` setting).
    #[schema(minimum = 1, maximum = 4294967295i64)]
    #[serde(default, deserialize_with = "sluice_core::http::json_integer")]
    pub coverage_minutes: Option<u32>,
    /// URL that receives the final job as a POST.
    #[schema(schema_with = sluice_core::http::nullable_http_url_schema)]
    pub callback_url: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = UptimeTriggered)]
pub struct Triggered {
    pub report_id: String,
    /// Where the report's state is.
    pub status_url: String,
    /// The report's job (push events at `/api/v1/jobs/{id}/events`).
    pub job: Job,
}

/// Starts a report as a job. An empty body or `null` is the same as `{}`.
#[utoipa::path(post, path = "/api/v1/uptime/reports", tag = "uptime",
    request_body(content = Option<TriggerBody>, content_type = "application/json"),
    responses((status = 202, description = "Started", body = Triggered,
            headers(("location" = String, description = "The report's state"))),
        (status = 400, description = "Bad `now`, `coverage_minutes`, `callback_url` or body",
            body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "An unknown store in `stores`", body = ProblemDoc,
            content_type = "application/problem+json")))]
pub async fn trigger(State(ctx): State<Ctx>, body: Bytes) -> Result<Response, ApiError> {
    // `null` is the empty body too: the document's body schema is `TriggerBody | null`.
    let body: TriggerBody = sluice_core::http::optional_json_object(&body)?;
    if body.coverage_minutes == Some(0) {
        return Err(ApiError::bad_param(
            "coverage_minutes",
            "coverage_minutes must be at least 1",
        ));
    }
    let callback_url = body
        .callback_url
        .as_deref()
        .map(|u| sluice_core::http::http_url("callback_url", u))
        .transpose()?;
    let req = ReportRequest {
        now: parse_now(body.now.as_deref())?,
        stores: body.stores,
        coverage: body.coverage_minutes.map(|m| i64::from(m) * MINUTE),
        callback_url,
    };
    let c = ctx.clone();
    let id = blocking(move || report::spawn(&c, req)).await?;
    let job = ctx
        .jobs
        .get(id)?
        .ok_or_else(|| ApiError::internal("a created job vanished"))?;
    let status_url = format!("/api/v1/uptime/reports/{id}");
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, status_url.clone())],
        Json(Triggered {
            report_id: id.to_string(),
            status_url,
            job,
        }),
    )
        .into_response())
}

#[derive(Serialize, ToSchema)]
#[schema(as = UptimeWindowBounds)]
pub struct WindowBounds {
    pub from: String,
    pub to: String,
}

#[derive(Serialize, ToSchema, Clone, Copy, Debug, PartialEq, Eq)]
#[schema(as = UptimeReportStatus)]
#[serde(rename_all = "lowercase")]
pub enum ReportStatus {
    Running,
    Complete,
    Failed,
}

/// A report's registration and state.
#[derive(Serialize, ToSchema)]
#[schema(as = UptimeReportInfo)]
pub struct ReportInfo {
    pub report_id: String,
    pub status: ReportStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub created_at: String,
    /// End of the windows, once known.
    pub now: Option<String>,
    /// `[last_hour, last_day, last_week]`, once `now` is known.
    pub windows: Option<Vec<WindowBounds>>,
    pub stores: Option<Vec<String>>,
    pub coverage_minutes: i64,
    /// Rows of the complete report.
    pub rows: Option<i64>,
    pub csv_url: String,
    pub rows_url: String,
}

fn info(row: ReportRow, state: &ReportState) -> ReportInfo {
    let (status, error) = match state {
        ReportState::Running => (ReportStatus::Running, None),
        ReportState::Complete => (ReportStatus::Complete, None),
        ReportState::Failed(e) => (ReportStatus::Failed, Some(e.clone())),
    };
    let now = row.now.map(Micros);
    ReportInfo {
        csv_url: format!("/api/v1/uptime/reports/{}/rows?format=csv", row.id),
        rows_url: format!("/api/v1/uptime/reports/{}/rows", row.id),
        status,
        error,
        created_at: row.created_at,
        now: now.map(Micros::iso),
        windows: now.map(|n| {
            engine::report_windows(n.0)
                .iter()
                .map(|&s| WindowBounds {
                    from: Micros(s).iso(),
                    to: n.iso(),
                })
                .collect()
        }),
        stores: row.stores,
        coverage_minutes: row.coverage / MINUTE,
        rows: row.rows,
        report_id: row.id,
    }
}

async fn find(ctx: &Ctx, id: &str) -> Result<(JobId, ReportRow, ReportState), ApiError> {
    let job = parse_report_id(id)?;
    let c = ctx.clone();
    let found = blocking(move || report::state(&c, job)).await?;
    let (row, state) =
        found.ok_or_else(|| ApiError::not_found(format!("no report with id {id}")))?;
    Ok((job, row, state))
}

/// A page of reports: the bounds here are the ones [`list_reports`] enforces.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportsPage {
    /// Reports per page (default 50).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 500)]
    pub limit: Option<String>,
    /// Reports to skip.
    #[param(value_type = Option<i64>, minimum = 0, maximum = 9223372036854775807i64)]
    pub offset: Option<String>,
}

/// Reports, newest first.
#[utoipa::path(get, path = "/api/v1/uptime/reports", tag = "uptime", params(ReportsPage),
    responses((status = 200, description = "Reports", body = [ReportInfo]),
        (status = 400, description = "Bad `limit` or `offset`", body = ProblemDoc,
            content_type = "application/problem+json")))]
pub async fn list_reports(
    State(ctx): State<Ctx>,
    ApiQuery(q): ApiQuery<ReportsPage>,
) -> Result<Json<Vec<ReportInfo>>, ApiError> {
    let (limit, offset) = page(q.limit.as_deref(), q.offset.as_deref(), 50, 500)?;
    let c = ctx.clone();
    let rows = blocking(move || {
        store::read_primary(&c.db, |r| Ok::<_, UptimeError>(r.reports(limit, offset)?))
    })
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let id = parse_report_id(&row.id)?;
        let c = ctx.clone();
        let state = blocking(move || report::state(&c, id)).await?;
        if let Some((row, state)) = state {
            out.push(info(row, &state));
        }
    }
    Ok(Json(out))
}

/// One report's state.
#[utoipa::path(get, path = "/api/v1/uptime/reports/{id}", tag = "uptime",
    params(("id" = String, Path, description = "Report id",
        pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")),
    responses((status = 200, description = "The report", body = ReportInfo),
        (status = 400, description = "The id is not a UUID", body = ProblemDoc,
            content_type = "application/problem+json"),
        (status = 404, description = "Unknown report", body = ProblemDoc,
            content_type = "application/problem+json")))]
pub async fn get_report(
    State(ctx): State<Ctx>,
    Path(id): Path<String>,
) -> Result<Json<ReportInfo>, ApiError> {
    let (_, row, state) = find(&ctx, &id).await?;
    Ok(Json(info(row, &state)))
}

#[derive(Serialize, ToSchema, Clone, Copy, Debug, PartialEq, Eq)]
#[schema(as = UptimeRowsFormat)]
#[serde(rename_all = "lowercase")]
pub enum RowsFormat {
    Json,
    Csv,
}

/// The bounds here are the ones [`report_rows`] enforces.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RowsQuery {
    /// `json` (default, paginated) or `csv` (the whole report, native columns: uptime of the
    /// hour, day, week, then downtime of the hour, day, week).
    #[param(value_type = Option<RowsFormat>, inline)]
    pub format: Option<String>,
    /// Rows per page (default 1000; JSON only).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 10000)]
    pub limit: Option<String>,
    /// Rows to skip (JSON only).
    #[param(value_type = Option<i64>, minimum = 0, maximum = 9223372036854775807i64)]
    pub offset: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = UptimeRowsPage)]
pub struct RowsPage {
    pub report_id: String,
    pub now: Option<String>,
    pub offset: u64,
    pub limit: u32,
    pub total: Option<i64>,
    pub rows: Vec<NativeRow>,
}

/// A complete report's rows: JSON pages with business and covered time, or the CSV.
#[utoipa::path(get, path = "/api/v1/uptime/reports/{id}/rows", tag = "uptime",
    params(("id" = String, Path, description = "Report id",
        pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"),
        RowsQuery),
    responses((status = 200, description = "A page of rows (`format=json`) or the CSV (`format=csv`)",
            content((RowsPage = "application/json"), (String = "text/csv"))),
        (status = 400, description = "Bad id, `format`, `limit` or `offset`", body = ProblemDoc,
            content_type = "application/problem+json"),
        (status = 404, description = "Unknown report", body = ProblemDoc,
            content_type = "application/problem+json"),
        (status = 409, description = "The report is running or failed", body = ProblemDoc,
            content_type = "application/problem+json")))]
pub async fn report_rows(
    State(ctx): State<Ctx>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<RowsQuery>,
) -> Result<Response, ApiError> {
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(ApiError::bad_param(
                "format",
                format!("unknown format `{other}` (expected json or csv)"),
            ))
        }
    };
    let (limit, offset) = page(q.limit.as_deref(), q.offset.as_deref(), 1000, 10_000)?;
    let (job, row, state) = find(&ctx, &id).await?;
    // The canonical spelling names the files (the URL may spell the UUID in capitals).
    let id = job.to_string();
    match state {
        ReportState::Complete => {}
        ReportState::Running => return Err(ApiError::conflict(format!("report {id} is running"))),
        ReportState::Failed(e) => {
            return Err(ApiError::conflict(format!("report {id} failed: {e}")))
        }
    }
    if csv {
        let body = tokio::fs::read(report::csv_path(&ctx, &id))
            .await
            .map_err(ApiError::internal)?;
        return Ok(csv_response(&format!("report-{id}.csv"), body));
    }
    let (c, rid) = (ctx.clone(), id.clone());
    let rows = blocking(move || report::native_rows(&c, &rid, offset, limit)).await?;
    Ok(Json(RowsPage {
        report_id: id,
        now: row.now.map(|n| Micros(n).iso()),
        offset,
        limit,
        total: row.rows,
        rows,
    })
    .into_response())
}

/// What is stored.
#[derive(Serialize, ToSchema)]
#[schema(as = UptimeSummary)]
pub struct Summary {
    #[serde(flatten)]
    pub stored: store::Stored,
    /// The default "now" of reports.
    pub latest_poll: Option<String>,
}

/// Counts of stores, hours, zones and polls, and the latest poll.
#[utoipa::path(get, path = "/api/v1/uptime/summary", tag = "uptime",
    responses((status = 200, description = "What is stored", body = Summary)))]
pub async fn summary(State(ctx): State<Ctx>) -> Result<Json<Summary>, ApiError> {
    let stored =
        blocking(move || store::read(&ctx.db, |r| Ok::<_, UptimeError>(r.stored()?))).await?;
    Ok(Json(Summary {
        latest_poll: stored.latest_poll.map(|t| Micros(t).iso()),
        stored,
    }))
}

#[derive(Serialize, ToSchema)]
#[schema(as = UptimeStoreInfo)]
pub struct StoreInfo {
    pub store_id: String,
    pub zone: String,
    pub zone_given: bool,
}

/// A page of stores: the bounds here are the ones [`list_stores`] enforces.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StoresPage {
    /// Stores per page (default 100).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 1000)]
    pub limit: Option<String>,
    /// Stores to skip.
    #[param(value_type = Option<i64>, minimum = 0, maximum = 9223372036854775807i64)]
    pub offset: Option<String>,
}

/// Stores by id.
#[utoipa::path(get, path = "/api/v1/uptime/stores", tag = "uptime", params(StoresPage),
    responses((status = 200, description = "Stores", body = [StoreInfo]),
        (status = 400, description = "Bad `limit` or `offset`", body = ProblemDoc,
            content_type = "application/problem+json")))]
pub async fn list_stores(
    State(ctx): State<Ctx>,
    ApiQuery(q): ApiQuery<StoresPage>,
) -> Result<Json<Vec<StoreInfo>>, ApiError> {
    let (limit, offset) = page(q.limit.as_deref(), q.offset.as_deref(), 100, 1000)?;
    let rows = blocking(move || {
        store::read(&ctx.db, |r| {
            Ok::<_, UptimeError>(r.stores_page(limit, offset)?)
        })
    })
    .await?;
    Ok(Json(
        rows.into_iter()
            .map(|s| StoreInfo {
                zone_given: s.zone.is_some(),
                zone: s.zone.unwrap_or_else(|| DEFAULT_ZONE.name().to_owned()),
                store_id: s.store_id,
            })
            .collect(),
    ))
}

#[derive(Serialize, ToSchema, Clone, Copy, Debug, PartialEq, Eq)]
#[schema(as = UptimeWindow)]
#[serde(rename_all = "lowercase")]
pub enum Window {
    Hour,
    Day,
    Week,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TimelineQuery {
    /// `hour`, `day` (default) or `week`: the window ending at `now`.
    #[param(value_type = Option<Window>, inline)]
    pub window: Option<String>,
    /// End of the window (as `now` of a report); the latest poll of all stores when absent.
    #[param(
        pattern = r"^(?:[0-9]{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))|(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)-02-29)[T ](?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,6})?(?:Z| UTC|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])?$"
    )]
    pub now: Option<String>,
    /// Coverage distance in minutes (default 120 or the configured one).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 4294967295i64)]
    pub coverage_minutes: Option<String>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = UptimeIntervalLocal)]
pub struct IntervalLocal {
    /// 0 = Monday … 6 = Sunday.
    pub day: u8,
    pub start: String,
    pub end: String,
}

#[derive(Serialize, ToSchema)]
#[schema(as = UptimeInterval)]
pub struct Interval {
    pub from: String,
    pub to: String,
}

#[derive(Serialize, ToSchema)]
#[schema(as = UptimePollView)]
pub struct PollView {
    pub at: String,
    pub status: String,
}

#[derive(Serialize, ToSchema)]
#[schema(as = UptimeSegmentView)]
pub struct SegmentView {
    pub from: String,
    pub to: String,
    /// `active` or `inactive`.
    pub status: String,
    /// The poll this status is taken from (the nearest one).
    pub poll_at: String,
}

/// One store over one window: what the report's number is made of.
#[derive(Serialize, ToSchema)]
#[schema(as = UptimeTimeline)]
pub struct Timeline {
    pub store_id: String,
    pub zone: String,
    pub zone_given: bool,
    /// Weekly hours in local time; empty means open 24×7.
    pub hours: Vec<IntervalLocal>,
    pub window: Interval,
    /// `minutes` for the hour window, else `hours`.
    pub unit: String,
    /// The polls that decide the window: the last one before, all inside, the first after.
    pub polls: Vec<PollView>,
    /// Business time inside the window, in UTC.
    pub business: Vec<Interval>,
    /// Nearest-poll status over the window (switching half-way between polls).
    pub segments: Vec<SegmentView>,
    pub totals: WindowRow,
    pub coverage_minutes: i64,
}

fn status_name(up: bool) -> String {
    if up { "active" } else { "inactive" }.to_owned()
}

/// One store's explained timeline for a window.
#[utoipa::path(get, path = "/api/v1/uptime/stores/{store_id}/timeline", tag = "uptime",
    params(("store_id" = String, Path, description = "Store id"), TimelineQuery),
    responses((status = 200, description = "Timeline", body = Timeline),
        (status = 400, description = "Bad `window`, `now` or `coverage_minutes`",
            body = ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "Unknown store", body = ProblemDoc,
            content_type = "application/problem+json")))]
pub async fn timeline(
    State(ctx): State<Ctx>,
    Path(store_id): Path<String>,
    ApiQuery(q): ApiQuery<TimelineQuery>,
) -> Result<Json<Timeline>, ApiError> {
    let (len, unit, to_unit): (i64, &str, fn(i64) -> f64) = match q.window.as_deref() {
        Some("hour") => (HOUR, "minutes", engine::minutes),
        None | Some("day") => (DAY, "hours", engine::hours),
        Some("week") => (7 * DAY, "hours", engine::hours),
        Some(other) => {
            return Err(ApiError::bad_param(
                "window",
                format!("unknown window `{other}` (expected hour, day or week)"),
            ))
        }
    };
    let now = parse_now(q.now.as_deref())?;
    let coverage = int_param(
        "coverage_minutes",
        q.coverage_minutes.as_deref(),
        1,
        MAX_COVERAGE_MINUTES,
    )?
    .map_or_else(|| report::configured_coverage(&ctx), |m| m * MINUTE);
    let sid = store_id.clone();
    let found = blocking(move || {
        store::read(&ctx.db, |c| {
            let Some(s) = c.store(&sid)? else {
                return Ok::<_, UptimeError>(None);
            };
            let now = match now {
                Some(n) => n.0,
                None => c
                    .latest_poll()?
                    .unwrap_or_else(|| Micros::from_datetime(chrono::Utc::now()).0),
            };
            let from = now - len;
            let given = s.zone.as_deref().and_then(|z| Zone::parse(z).ok());
            let zone = given.unwrap_or(DEFAULT_ZONE);
            let intervals = c.store_intervals(s.key)?;
            let hours = engine::BusinessHours::from_intervals(intervals.iter().copied());
            let mut business = Vec::new();
            engine::business_spans(
                &hours,
                &engine::offset_spans(zone.0, from, now),
                &mut business,
            );
            let mut relevant = RelevantPolls::new(from, now);
            c.store_polls(s.key, from, &mut |p| relevant.push(p))?;
            let polls = relevant.polls();
            let [totals] = engine::compute([from], now, &business, polls, coverage);
            let iso = |t: i64| Micros(t).iso();
            Ok(Some(Timeline {
                store_id: s.store_id,
                zone: zone.name().to_owned(),
                zone_given: given.is_some(),
                hours: intervals
                    .iter()
                    .map(|(d, s, e)| IntervalLocal {
                        day: d.index() as u8,
                        start: s.to_string(),
                        end: e.to_string(),
                    })
                    .collect(),
                window: Interval {
                    from: iso(from),
                    to: iso(now),
                },
                unit: unit.to_owned(),
                polls: polls
                    .iter()
                    .map(|p| PollView {
                        at: iso(p.at),
                        status: status_name(p.up),
                    })
                    .collect(),
                business: business
                    .iter()
                    .map(|&(a, b)| Interval {
                        from: iso(a),
                        to: iso(b),
                    })
                    .collect(),
                segments: engine::segments(polls, from, now)
                    .into_iter()
                    .map(|s| SegmentView {
                        from: iso(s.start),
                        to: iso(s.end),
                        status: status_name(s.up),
                        poll_at: iso(s.poll_at),
                    })
                    .collect(),
                totals: report::window_row(&totals, to_unit),
                coverage_minutes: coverage / MINUTE,
            }))
        })
    })
    .await?;
    found
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no store with id {store_id}")))
}
