//! The routes of the replaced system (a Python + Flask service), same paths, keys and value
//! types, on the latest finished run: a thin mapping of the native report. The original sent
//! counts, ids and ages as strings, the start rate as Python's `str(float)` and successful
//! streams as pandas floats; so do these routes. Keys come out sorted, as Flask sorted them.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use sluice_core::http::ProblemDoc;
use sluice_core::{ApiError, Ctx};
use utoipa::{OpenApi, ToSchema};

use crate::api::{report_or_404, RunRef};

#[derive(OpenApi)]
#[openapi(
    paths(user_report, recent_shows, successful_streams, start_events),
    components(schemas(
        CompatUserReport,
        CompatUser,
        CompatEvent,
        RecentShows,
        SuccessfulStreams,
        StartEvents,
        ProblemDoc
    ))
)]
pub struct CompatApi;

pub fn router(ctx: Ctx) -> Router {
    Router::new()
        .route("/user_report", get(user_report))
        .route("/recent_shows", get(recent_shows))
        .route("/successful_streams", get(successful_streams))
        .route("/start_events", get(start_events))
        .with_state(ctx)
}

/// Python's `str(float)`: the shortest text that reads back as the same float (as Rust's
/// formatting), but with Python's layout: `100.0`, `1e-05`, `1e+16`, `inf`, `nan`.
pub fn py_float_str(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    let sign = if x.is_sign_negative() { "-" } else { "" };
    // `{:e}` gives the shortest round-trip digits as `d[.ddd]e<exp>`.
    let sci = format!("{:e}", x.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    // Python writes 0.d1d2… × 10^point in fixed notation while -4 < point <= 16.
    let point = exp + 1;
    if point <= -4 || point > 16 {
        let e_sign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{mantissa}e{e_sign}{:02}", exp.unsigned_abs());
    }
    let n = digits.len() as i32;
    let body = if point <= 0 {
        format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
    } else if point >= n {
        format!("{digits}{}.0", "0".repeat((point - n) as usize))
    } else {
        let (int, frac) = digits.split_at(point as usize);
        format!("{int}.{frac}")
    };
    format!("{sign}{body}")
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CompatUser {
    /// Completed years at the run's date, as a string; null without a date of birth.
    #[schema(required = true)]
    pub age: Option<String>,
    /// The user id as a string, e.g. `"9"`.
    pub user_id: String,
    /// "first last".
    pub user_name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CompatEvent {
    pub event: String,
    /// Europe/Amsterdam, `dd-MM-yyyy HH:mm:ss.SSS`.
    pub event_date: String,
    #[schema(required = true)]
    pub first_actor: Option<String>,
    pub show_id: String,
    pub show_platform: String,
    #[schema(required = true)]
    pub show_title: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CompatUserReport {
    /// The user's events in time order.
    pub event_list: Vec<CompatEvent>,
    pub user: CompatUser,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecentShows {
    /// Distinct shows released in 2020 or later, as a string, e.g. `"96"`.
    pub recent_shows: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SuccessfulStreams {
    /// A count, as the float pandas gave, e.g. `1.0`.
    pub successful_streams: f64,
    /// The user id, as the float pandas gave, e.g. `4.0`.
    pub user: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StartEvents {
    /// Python's `str()` of `starts / events * 100` over Sytflix events, e.g.
    /// `"33.33333333333333"`; null when the run has no Sytflix event.
    #[schema(required = true)]
    #[serde(rename = "start_event_rate(%)")]
    pub start_event_rate: Option<String>,
}

#[utoipa::path(get, path = "/user_report", tag = "streams",
    responses((status = 200, description = "every user of the latest finished run with their time-ordered events", body = Vec<CompatUserReport>),
              (status = 404, description = "no finished run", body = ProblemDoc, content_type = "application/problem+json")))]
pub async fn user_report(State(ctx): State<Ctx>) -> Result<Json<Vec<CompatUserReport>>, ApiError> {
    let report = report_or_404(&ctx, RunRef::Latest).await?;
    Ok(Json(
        report
            .users
            .into_iter()
            .map(|u| CompatUserReport {
                user: CompatUser {
                    age: u.age.map(|a| a.to_string()),
                    user_id: u.user_id.to_string(),
                    user_name: u.user_name,
                },
                event_list: u
                    .events
                    .into_iter()
                    .map(|e| CompatEvent {
                        event: e.event,
                        event_date: e.event_date,
                        first_actor: e.first_actor,
                        show_id: e.show_id,
                        show_platform: e.platform,
                        show_title: e.show_title,
                    })
                    .collect(),
            })
            .collect(),
    ))
}

#[utoipa::path(get, path = "/recent_shows", tag = "streams",
    responses((status = 200, description = "distinct shows released in 2020 or later, latest finished run", body = RecentShows),
              (status = 404, description = "no finished run", body = ProblemDoc, content_type = "application/problem+json")))]
pub async fn recent_shows(State(ctx): State<Ctx>) -> Result<Json<RecentShows>, ApiError> {
    let report = report_or_404(&ctx, RunRef::Latest).await?;
    Ok(Json(RecentShows {
        recent_shows: report.recent_shows.to_string(),
    }))
}

#[utoipa::path(get, path = "/successful_streams", tag = "streams",
    responses((status = 200, description = "users with at least one successful stream, by user id, latest finished run", body = Vec<SuccessfulStreams>),
              (status = 404, description = "no finished run", body = ProblemDoc, content_type = "application/problem+json")))]
pub async fn successful_streams(
    State(ctx): State<Ctx>,
) -> Result<Json<Vec<SuccessfulStreams>>, ApiError> {
    let report = report_or_404(&ctx, RunRef::Latest).await?;
    Ok(Json(
        report
            .successful_streams
            .into_iter()
            .filter(|s| s.successful_streams > 0)
            .map(|s| SuccessfulStreams {
                successful_streams: s.successful_streams as f64,
                user: s.user_id as f64,
            })
            .collect(),
    ))
}

#[utoipa::path(get, path = "/start_events", tag = "streams",
    responses((status = 200, description = "share of `stream-started` among Sytflix events in percent, latest finished run", body = StartEvents),
              (status = 404, description = "no finished run", body = ProblemDoc, content_type = "application/problem+json")))]
pub async fn start_events(State(ctx): State<Ctx>) -> Result<Json<StartEvents>, ApiError> {
    let report = report_or_404(&ctx, RunRef::Latest).await?;
    Ok(Json(StartEvents {
        start_event_rate: report.sytflix_start_rate.map(py_float_str),
    }))
}

#[cfg(test)]
mod tests {
    use super::py_float_str;

    #[test]
    fn floats_print_as_python_prints_them() {
        // Each right-hand side is Python 3's str() of the left-hand side.
        let cases: [(f64, &str); 20] = [
            (4.0 / 12.0 * 100.0, "33.33333333333333"),
            (26.0 / 74.0 * 100.0, "35.13513513513514"),
            (100.0, "100.0"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (1e15, "1000000000000000.0"),
            (9999999999999998.0, "9999999999999998.0"),
            (123456789012345678.0, "1.2345678901234568e+17"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (0.1 + 0.2, "0.30000000000000004"),
            (12345.678, "12345.678"),
            (-2.5e-7, "-2.5e-07"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (19.69577193260193, "19.69577193260193"),
        ];
        for (x, want) in cases {
            assert_eq!(py_float_str(x), want, "{x:e}");
        }
        assert_eq!(py_float_str(f64::NAN), "nan");
    }
}
