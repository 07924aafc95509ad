//! The replaced system's routes, same shapes: `POST /trigger_report` answers
//! `{"report_id": …}` at once; `GET /get_report/{report_id}` (or `?report_id=`) answers
//! `{"status": "Running"}`, then the CSV (`text/csv`, `X-Report-Status: Complete`), or 404.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sluice_core::http::ApiQuery;
use sluice_core::{ApiError, Ctx, JobId};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::report::{self, ReportRequest, ReportState};

#[derive(OpenApi)]
#[openapi(
    paths(trigger_report, get_report_path, get_report_query),
    components(schemas(TriggerResponse, StatusResponse))
)]
pub struct CompatDoc;

pub fn router(ctx: Ctx) -> Router {
    Router::new()
        .route("/trigger_report", post(trigger_report))
        .route("/get_report/{report_id}", get(get_report_path))
        .route("/get_report", get(get_report_query))
        .with_state(ctx)
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct TriggerResponse {
    pub report_id: String,
}

/// `Running` while the report is computed; `Failed` (with `error`) when it cannot complete.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct StatusResponse {
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Starts a report of every store, "now" being the latest poll.
#[utoipa::path(post, path = "/trigger_report", tag = "uptime (compat)",
    responses((status = 200, description = "The report was started", body = TriggerResponse)))]
pub async fn trigger_report(State(ctx): State<Ctx>) -> Result<Json<TriggerResponse>, ApiError> {
    let id = tokio::task::spawn_blocking(move || report::spawn(&ctx, ReportRequest::default()))
        .await
        .map_err(ApiError::internal)??;
    Ok(Json(TriggerResponse {
        report_id: id.to_string(),
    }))
}

#[derive(Deserialize, IntoParams)]
pub struct ReportIdQuery {
    /// The id returned by `/trigger_report`.
    pub report_id: Option<String>,
}

/// The report's state, or its CSV once complete.
#[utoipa::path(get, path = "/get_report/{report_id}", tag = "uptime (compat)",
    params(("report_id" = String, Path, description = "The id returned by /trigger_report")),
    responses(
        (status = 200, description = "`{\"status\":\"Running\"}` or the CSV (text/csv)", body = StatusResponse),
        (status = 404, description = "Unknown report id")))]
pub async fn get_report_path(
    State(ctx): State<Ctx>,
    Path(report_id): Path<String>,
) -> Result<Response, ApiError> {
    answer(ctx, report_id).await
}

/// The same as `/get_report/{report_id}`, with the id as a query parameter.
#[utoipa::path(get, path = "/get_report", tag = "uptime (compat)", params(ReportIdQuery),
    responses(
        (status = 200, description = "`{\"status\":\"Running\"}` or the CSV (text/csv)", body = StatusResponse),
        (status = 404, description = "Unknown report id")))]
pub async fn get_report_query(
    State(ctx): State<Ctx>,
    ApiQuery(q): ApiQuery<ReportIdQuery>,
) -> Result<Response, ApiError> {
    let id = q.report_id.ok_or_else(|| {
        ApiError::bad_param(
            "report_id",
            "missing report_id (the id returned by /trigger_report)",
        )
    })?;
    answer(ctx, id).await
}

/// Parses a report id from a URL: a UUID, or a 400 naming the parameter.
pub fn parse_report_id(s: &str) -> Result<JobId, ApiError> {
    s.parse().map_err(|_| {
        ApiError::bad_param(
            "report_id",
            format!("`{s}` is not a report id (expected a UUID as returned by /trigger_report)"),
        )
    })
}

async fn answer(ctx: Ctx, report_id: String) -> Result<Response, ApiError> {
    let id = parse_report_id(&report_id)?;
    let c = ctx.clone();
    let found = tokio::task::spawn_blocking(move || report::state(&c, id))
        .await
        .map_err(ApiError::internal)??;
    let status = |status: &str, error: Option<String>| {
        Json(StatusResponse {
            status: status.to_owned(),
            error,
        })
        .into_response()
    };
    match found {
        None => Err(ApiError::not_found(format!(
            "no report with id {report_id}"
        ))),
        Some((_, ReportState::Running)) => Ok(status("Running", None)),
        Some((_, ReportState::Failed(e))) => Ok(status("Failed", Some(e))),
        Some((_, ReportState::Complete)) => {
            let path = report::csv_path(&ctx, &report_id);
            let body = tokio::fs::read(&path).await.map_err(ApiError::internal)?;
            Ok(csv_response(&report_id, body))
        }
    }
}

/// A complete report's CSV as a download.
pub fn csv_response(report_id: &str, body: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"report-{report_id}.csv\""),
            ),
            (
                header::HeaderName::from_static("x-report-status"),
                "Complete".to_owned(),
            ),
        ],
        body,
    )
        .into_response()
}
