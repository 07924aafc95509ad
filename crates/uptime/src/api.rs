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
use sluice_core::http::{ApiQuery, Page};
use sluice_core::{ApiError, Ctx, Job, JobId};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::compat::{csv_response, parse_report_id};
use crate::engine::{self, RelevantPolls};
use crate::parse::{Micros, StoreId, Zone, DAY, DEFAULT_ZONE, HOUR, MINUTE};
use crate::report::{self, NativeRow, ReportRequest, ReportState, WindowRow};
use crate::store::{self, PollReader, ReportRow};
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
        SegmentView
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
    now.map(|s| Micros::parse(s).map_err(|e| ApiError::bad_param("now", e)))
        .transpose()
}

/// All fields optional: a report of every store with "now" = the latest poll.
#[derive(Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TriggerBody {
    /// End of the windows (ISO 8601 or `YYYY-MM-DD HH:MM:SS[.ffffff] UTC`).
    pub now: Option<String>,
    /// Only these store ids.
    pub stores: Option<Vec<String>>,
    /// Distance within which a poll covers business time (default 120, or the
    /// `[uptime] coverage_minutes` setting).
    pub coverage_minutes: Option<u32>,
    /// URL that receives the final job as a POST.
    pub callback_url: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Triggered {
    pub report_id: String,
    /// Where the report's state is.
    pub status_url: String,
    /// The report's job (push events at `/api/v1/jobs/{id}/events`).
    pub job: Job,
}

/// Starts a report as a job.
#[utoipa::path(post, path = "/api/v1/uptime/reports", tag = "uptime", request_body = TriggerBody,
    responses((status = 202, description = "Started", body = Triggered),
        (status = 400, description = "Bad `now`, unknown store or bad body")))]
pub async fn trigger(State(ctx): State<Ctx>, body: Bytes) -> Result<Response, ApiError> {
    let body: TriggerBody = if body.iter().all(u8::is_ascii_whitespace) {
        TriggerBody::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?
    };
    if let Some(stores) = &body.stores {
        for s in stores {
            StoreId::parse(s).map_err(|e| ApiError::bad_param("stores", e))?;
        }
    }
    if body.coverage_minutes == Some(0) {
        return Err(ApiError::bad_param(
            "coverage_minutes",
            "coverage_minutes must be at least 1",
        ));
    }
    let req = ReportRequest {
        now: parse_now(body.now.as_deref())?,
        stores: body.stores,
        coverage: body.coverage_minutes.map(|m| i64::from(m) * MINUTE),
        callback_url: body.callback_url,
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
pub struct WindowBounds {
    pub from: String,
    pub to: String,
}

/// A report's registration and state.
#[derive(Serialize, ToSchema)]
pub struct ReportInfo {
    pub report_id: String,
    /// `running`, `complete` or `failed`.
    pub status: String,
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
        ReportState::Running => ("running", None),
        ReportState::Complete => ("complete", None),
        ReportState::Failed(e) => ("failed", Some(e.clone())),
    };
    let now = row.now.map(Micros);
    ReportInfo {
        csv_url: format!("/api/v1/uptime/reports/{}/rows?format=csv", row.id),
        rows_url: format!("/api/v1/uptime/reports/{}/rows", row.id),
        status: status.to_owned(),
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

/// Reports, newest first.
#[utoipa::path(get, path = "/api/v1/uptime/reports", tag = "uptime", params(Page),
    responses((status = 200, description = "Reports", body = [ReportInfo])))]
pub async fn list_reports(
    State(ctx): State<Ctx>,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<Vec<ReportInfo>>, ApiError> {
    let limit = page.limit(50, 500)?;
    let offset = page.offset();
    let c = ctx.clone();
    let rows = blocking(move || Ok(c.db.read(|conn| store::reports(conn, limit, offset))?)).await?;
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
    params(("id" = String, Path, description = "Report id")),
    responses((status = 200, description = "The report", body = ReportInfo),
        (status = 404, description = "Unknown report")))]
pub async fn get_report(
    State(ctx): State<Ctx>,
    Path(id): Path<String>,
) -> Result<Json<ReportInfo>, ApiError> {
    let (_, row, state) = find(&ctx, &id).await?;
    Ok(Json(info(row, &state)))
}

#[derive(Deserialize, IntoParams)]
pub struct RowsQuery {
    /// `json` (default, paginated) or `csv` (the whole report, compat columns).
    pub format: Option<String>,
    pub limit: Option<u32>,
    pub offset: Option<u64>,
}

#[derive(Serialize, ToSchema)]
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
    params(("id" = String, Path, description = "Report id"), RowsQuery),
    responses((status = 200, description = "Rows", body = RowsPage),
        (status = 404, description = "Unknown report"),
        (status = 409, description = "The report is running or failed")))]
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
    let page = Page {
        limit: q.limit,
        offset: q.offset,
    };
    let limit = page.limit(1000, 10_000)?;
    let (_, row, state) = find(&ctx, &id).await?;
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
        return Ok(csv_response(&id, body));
    }
    let offset = page.offset();
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
    let stored = blocking(move || Ok(ctx.db.read(store::stored)?)).await?;
    Ok(Json(Summary {
        latest_poll: stored.latest_poll.map(|t| Micros(t).iso()),
        stored,
    }))
}

#[derive(Serialize, ToSchema)]
pub struct StoreInfo {
    pub store_id: String,
    pub zone: String,
    pub zone_given: bool,
}

/// Stores by id.
#[utoipa::path(get, path = "/api/v1/uptime/stores", tag = "uptime", params(Page),
    responses((status = 200, description = "Stores", body = [StoreInfo])))]
pub async fn list_stores(
    State(ctx): State<Ctx>,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<Vec<StoreInfo>>, ApiError> {
    let limit = page.limit(100, 1000)?;
    let offset = page.offset();
    let rows = blocking(move || Ok(ctx.db.read(|c| store::stores_page(c, limit, offset))?)).await?;
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

#[derive(Deserialize, IntoParams)]
pub struct TimelineQuery {
    /// `hour`, `day` (default) or `week`: the window ending at `now`.
    pub window: Option<String>,
    /// End of the window; the latest poll of all stores when absent.
    pub now: Option<String>,
    /// Coverage distance (default 120 or the configured one).
    pub coverage_minutes: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct IntervalLocal {
    /// 0 = Monday … 6 = Sunday.
    pub day: u8,
    pub start: String,
    pub end: String,
}

#[derive(Serialize, ToSchema)]
pub struct Interval {
    pub from: String,
    pub to: String,
}

#[derive(Serialize, ToSchema)]
pub struct PollView {
    pub at: String,
    pub status: String,
}

#[derive(Serialize, ToSchema)]
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
        (status = 400, description = "Bad window or now"),
        (status = 404, description = "Unknown store")))]
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
    if q.coverage_minutes == Some(0) {
        return Err(ApiError::bad_param(
            "coverage_minutes",
            "coverage_minutes must be at least 1",
        ));
    }
    let coverage = q.coverage_minutes.map_or_else(
        || report::configured_coverage(&ctx),
        |m| i64::from(m) * MINUTE,
    );
    let sid = store_id.clone();
    let found = blocking(move || {
        ctx.db.read(|c| {
            let Some(s) = store::store(c, &sid)? else {
                return Ok::<_, UptimeError>(None);
            };
            let now = match now {
                Some(n) => n.0,
                None => store::latest_poll(c)?
                    .unwrap_or_else(|| Micros::from_datetime(chrono::Utc::now()).0),
            };
            let from = now - len;
            let given = s.zone.as_deref().and_then(|z| Zone::parse(z).ok());
            let zone = given.unwrap_or(DEFAULT_ZONE);
            let intervals = store::store_intervals(c, s.key)?;
            let hours = engine::BusinessHours::from_intervals(intervals.iter().copied());
            let mut business = Vec::new();
            engine::business_spans(
                &hours,
                &engine::offset_spans(zone.0, from, now),
                &mut business,
            );
            let mut relevant = RelevantPolls::new(from, now);
            PollReader::new(c)?.read(s.key, from, |p| relevant.push(p))?;
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
