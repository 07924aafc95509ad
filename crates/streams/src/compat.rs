//! The routes of the replaced system (a Flask service), same paths and shapes, on the latest
//! finished run. Real JSON types: numbers as numbers, null where the original said NaN.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use serde_json::{json, Value};
use sluice_core::{ApiError, Ctx};
use utoipa::ToSchema;

use crate::api::{report_or_404, RunRef};

pub fn router(ctx: Ctx) -> Router {
    Router::new()
        .route("/user_report", get(user_report))
        .route("/recent_shows", get(recent_shows))
        .route("/successful_streams", get(successful_streams))
        .route("/start_events", get(start_events))
        .with_state(ctx)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CompatUser {
    pub user_id: i64,
    pub user_name: String,
    pub age: Option<i32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CompatEvent {
    pub event: String,
    /// Europe/Amsterdam, `dd-MM-yyyy HH:mm:ss.SSS`.
    pub event_date: String,
    pub first_actor: Option<String>,
    pub show_id: String,
    pub show_platform: String,
    pub show_title: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CompatUserReport {
    pub user: CompatUser,
    pub event_list: Vec<CompatEvent>,
}

#[utoipa::path(get, path = "/user_report",
    responses((status = 200, description = "users with their time-ordered events, latest finished run", body = Vec<CompatUserReport>),
              (status = 404, description = "no finished run")))]
pub async fn user_report(State(ctx): State<Ctx>) -> Result<Json<Vec<CompatUserReport>>, ApiError> {
    let report = report_or_404(&ctx, RunRef::Latest).await?;
    Ok(Json(
        report
            .users
            .into_iter()
            .map(|u| CompatUserReport {
                user: CompatUser {
                    user_id: u.user_id,
                    user_name: u.user_name,
                    age: u.age,
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

#[utoipa::path(get, path = "/recent_shows",
    responses((status = 200, description = "{\"recent_shows\": N}: distinct shows released in 2020 or later"),
              (status = 404, description = "no finished run")))]
pub async fn recent_shows(State(ctx): State<Ctx>) -> Result<Json<Value>, ApiError> {
    let report = report_or_404(&ctx, RunRef::Latest).await?;
    Ok(Json(json!({ "recent_shows": report.recent_shows })))
}

#[utoipa::path(get, path = "/successful_streams",
    responses((status = 200, description = "[{\"user\": id, \"successful_streams\": n}] for users with at least one"),
              (status = 404, description = "no finished run")))]
pub async fn successful_streams(State(ctx): State<Ctx>) -> Result<Json<Value>, ApiError> {
    let report = report_or_404(&ctx, RunRef::Latest).await?;
    Ok(Json(Value::Array(
        report
            .successful_streams
            .into_iter()
            .filter(|s| s.successful_streams > 0)
            .map(|s| json!({"user": s.user_id, "successful_streams": s.successful_streams}))
            .collect(),
    )))
}

#[utoipa::path(get, path = "/start_events",
    responses((status = 200, description = "{\"start_event_rate(%)\": x}: stream-started share of Sytflix events, null without any"),
              (status = 404, description = "no finished run")))]
pub async fn start_events(State(ctx): State<Ctx>) -> Result<Json<Value>, ApiError> {
    let report = report_or_404(&ctx, RunRef::Latest).await?;
    Ok(Json(
        json!({ "start_event_rate(%)": report.sytflix_start_rate }),
    ))
}
