//! The replaced system's routes, same shapes: `POST /trigger_report` answers
//! `{"report_id": "…"}` at once; `GET /get_report/{report_id}` (or `?report_id=`) answers
//! `{"status": "Running"}`, then the CSV (`text/csv`, `X-Report-Status: Complete`, file name
//! `report_<id>.csv`) with the original's column order, or 404.
//!
//! The CSV is the native report's file with its columns picked by name into the original's
//! order ([`compat_csv`]): one computation, two layouts.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sluice_core::http::{ApiQuery, ProblemDoc};
use sluice_core::{ApiError, Ctx, JobId};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::report::{self, ReportRequest, ReportState};
use crate::UptimeError;

#[derive(OpenApi)]
#[openapi(
    paths(trigger_report, get_report_path, get_report_query),
    components(schemas(TriggerResponse, StatusResponse, CompatStatus, ProblemDoc))
)]
pub struct CompatDoc;

pub fn router(ctx: Ctx) -> Router {
    Router::new()
        .route("/trigger_report", post(trigger_report))
        .route("/get_report/{report_id}", get(get_report_path))
        .route("/get_report", get(get_report_query))
        .with_state(ctx)
}

/// The replaced system's report columns, in its order (a positional reader depends on it).
pub const COMPAT_COLUMNS: [&str; 7] = [
    "store_id",
    "uptime_last_hour",
    "downtime_last_hour",
    "uptime_last_day",
    "downtime_last_day",
    "uptime_last_week",
    "downtime_last_week",
];

/// A report id as the routes accept it: the hyphenated UUID `/trigger_report` returns.
pub const REPORT_ID_PATTERN: &str =
    "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";

#[derive(Serialize, Deserialize, ToSchema)]
#[schema(as = UptimeTriggerResponse)]
pub struct TriggerResponse {
    /// A UUID, as a string.
    pub report_id: String,
}

/// The original knew only `Running`; `Failed` is what a report that cannot complete answers.
#[derive(Serialize, Deserialize, ToSchema, Debug, Clone, Copy, PartialEq, Eq)]
#[schema(as = UptimeCompatStatus)]
pub enum CompatStatus {
    Running,
    Failed,
}

#[derive(Serialize, Deserialize, ToSchema)]
#[schema(as = UptimeStatusResponse)]
pub struct StatusResponse {
    pub status: CompatStatus,
    /// Why the report failed; only with `Failed`.
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
#[into_params(parameter_in = Query)]
pub struct ReportIdQuery {
    /// The id returned by `/trigger_report`.
    #[param(required = true, value_type = String, pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")]
    pub report_id: Option<String>,
}

/// The report's state, or its CSV once complete.
#[utoipa::path(get, path = "/get_report/{report_id}", tag = "uptime (compat)",
    params(("report_id" = String, Path, description = "The id returned by /trigger_report",
        pattern = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")),
    responses(
        (status = 200, description = "`{\"status\": \"Running\"}` while the report runs (or \
            `Failed`), then the CSV with header `store_id,uptime_last_hour,downtime_last_hour,\
            uptime_last_day,downtime_last_day,uptime_last_week,downtime_last_week`",
            content((StatusResponse = "application/json"), (String = "text/csv"))),
        (status = 400, description = "The id is not a UUID", body = ProblemDoc,
            content_type = "application/problem+json"),
        (status = 404, description = "Unknown report id", body = ProblemDoc,
            content_type = "application/problem+json")))]
pub async fn get_report_path(
    State(ctx): State<Ctx>,
    Path(report_id): Path<String>,
) -> Result<Response, ApiError> {
    answer(ctx, &report_id).await
}

/// The same as `/get_report/{report_id}`, with the id as a query parameter.
#[utoipa::path(get, path = "/get_report", tag = "uptime (compat)", params(ReportIdQuery),
    responses(
        (status = 200, description = "`{\"status\": \"Running\"}` (or `Failed`), then the CSV",
            content((StatusResponse = "application/json"), (String = "text/csv"))),
        (status = 400, description = "Missing or malformed report_id", body = ProblemDoc,
            content_type = "application/problem+json"),
        (status = 404, description = "Unknown report id", body = ProblemDoc,
            content_type = "application/problem+json")))]
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
    answer(ctx, &id).await
}

/// Parses a report id from a URL: a hyphenated UUID (what [`REPORT_ID_PATTERN`] documents),
/// or a 400 naming the parameter.
pub fn parse_report_id(s: &str) -> Result<JobId, ApiError> {
    // The other spellings `Uuid::parse_str` takes (braced, urn, simple) have other lengths.
    let parsed = (s.len() == 36).then(|| s.parse().ok()).flatten();
    parsed.ok_or_else(|| {
        ApiError::bad_param(
            "report_id",
            format!("`{s}` is not a report id (expected a UUID as returned by /trigger_report)"),
        )
    })
}

async fn answer(ctx: Ctx, report_id: &str) -> Result<Response, ApiError> {
    let id = parse_report_id(report_id)?;
    let c = ctx.clone();
    let found = tokio::task::spawn_blocking(move || report::state(&c, id))
        .await
        .map_err(ApiError::internal)??;
    let status = |status, error| Json(StatusResponse { status, error }).into_response();
    match found {
        None => Err(ApiError::not_found(format!(
            "no report with id {report_id}"
        ))),
        Some((_, ReportState::Running)) => Ok(status(CompatStatus::Running, None)),
        Some((_, ReportState::Failed(e))) => Ok(status(CompatStatus::Failed, Some(e))),
        Some((_, ReportState::Complete)) => {
            let id = id.to_string();
            let native = tokio::fs::read(report::csv_path(&ctx, &id))
                .await
                .map_err(ApiError::internal)?;
            let body = compat_csv(&native)?;
            Ok(csv_response(&format!("report_{id}.csv"), body))
        }
    }
}

/// The native report CSV with its columns in the original's order, picked by header name so
/// that the mapping does not depend on the native order; values pass through as written.
pub fn compat_csv(native: &[u8]) -> Result<Vec<u8>, UptimeError> {
    let bad = |e: csv::Error| UptimeError::Internal(format!("report CSV: {e}"));
    let mut reader = csv::Reader::from_reader(native);
    let header = reader.headers().map_err(bad)?.clone();
    let picks = COMPAT_COLUMNS
        .iter()
        .map(|name| {
            header
                .iter()
                .position(|h| h == *name)
                .ok_or_else(|| UptimeError::Internal(format!("report CSV has no column {name}")))
        })
        .collect::<Result<Vec<usize>, UptimeError>>()?;
    let mut out = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::with_capacity(native.len()));
    out.write_record(COMPAT_COLUMNS).map_err(bad)?;
    for record in reader.records() {
        let record = record.map_err(bad)?;
        out.write_record(picks.iter().map(|&i| &record[i]))
            .map_err(bad)?;
    }
    out.into_inner()
        .map_err(|e| UptimeError::Internal(format!("report CSV: {e}")))
}

/// A complete report's CSV as a download named `file_name`.
pub fn csv_response(file_name: &str, body: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file_name}\""),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compat_csv_reorders_by_name_and_keeps_values() {
        let native = format!(
            "{}\n\"a,b\",1.00,2.00,3.00,4.00,5.00,6.00\n",
            report::CSV_HEADER
        );
        let out = String::from_utf8(compat_csv(native.as_bytes()).unwrap()).unwrap();
        assert_eq!(
            out,
            format!(
                "{}\n\"a,b\",1.00,4.00,2.00,5.00,3.00,6.00\n",
                COMPAT_COLUMNS.join(",")
            )
        );
    }

    #[test]
    fn report_ids_are_hyphenated_uuids_only() {
        let id = "6f1c1f5e-0000-4000-8000-00000000000A";
        assert_eq!(parse_report_id(id).unwrap().to_string(), id.to_lowercase());
        for bad in [
            "6f1c1f5e000040008000000000000000",
            "{6f1c1f5e-0000-4000-8000-000000000000}",
            "not-a-report",
        ] {
            assert_eq!(
                parse_report_id(bad).unwrap_err().param.as_deref(),
                Some("report_id")
            );
        }
    }
}
