//! The replaced Flask system's routes, same shapes (`{"data": [...]}`), so its clients keep
//! working: `/vehicles` (filters), `/vehicles/{id}`, `/vehicles/{column}/count`, weekly
//! trips and averages per region, `POST /vehicles` (now a job, answered at once with 202) and
//! the ingestion status (a snapshot, or a stream with `Accept: text/event-stream`).
//! Times keep the replaced system's `YYYY-MM-DD HH:MM:SS` form.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sluice_core::http::ApiQuery;
use sluice_core::jobs::{JobEvent, JobFilter};
use sluice_core::{ApiError, Ctx, FileIngest, Job, JobId};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::api::{count_by, trip_id};
use crate::engine::{self, WeeksMode};
use crate::ingest::DOMAIN;
use crate::parse::Timestamp;
use crate::store::{self, TripFilter, TripOut, WeekRange};

#[derive(OpenApi)]
#[openapi(
    paths(
        vehicles,
        vehicle,
        column_count,
        weekly_trips,
        weekly_avg,
        start_ingest,
        ingest_status
    ),
    components(schemas(Vehicle))
)]
pub struct CompatApi;

#[derive(Clone)]
struct CompatState {
    ctx: Ctx,
    ingest: Arc<dyn FileIngest>,
}

pub fn routes(ctx: Ctx, ingest: Arc<dyn FileIngest>) -> Router {
    Router::new()
        .route("/vehicles", get(vehicles).post(start_ingest))
        .route("/vehicles/ingest-data/status", get(ingest_status))
        .route("/vehicles/weekly_trips/region", get(weekly_trips))
        .route("/vehicles/weekly_avg_trips/region", get(weekly_avg))
        .route("/vehicles/{id}", get(vehicle))
        .route("/vehicles/{column}/count", get(column_count))
        .with_state(CompatState { ctx, ingest })
}

/// A trip as the replaced system showed it.
#[derive(Serialize, ToSchema)]
pub struct Vehicle {
    pub id: i64,
    pub region: String,
    pub datasource: String,
    /// `YYYY-MM-DD HH:MM:SS` (UTC).
    pub datetime: String,
    pub origin_coord_point_x: f64,
    pub origin_coord_point_y: f64,
    pub destination_coord_point_x: f64,
    pub destination_coord_point_y: f64,
}

impl From<TripOut> for Vehicle {
    fn from(t: TripOut) -> Self {
        Vehicle {
            id: t.id,
            region: t.region,
            datasource: t.datasource,
            datetime: t.ts.to_string(),
            origin_coord_point_x: t.origin_lon,
            origin_coord_point_y: t.origin_lat,
            destination_coord_point_x: t.destination_lon,
            destination_coord_point_y: t.destination_lat,
        }
    }
}

#[derive(Deserialize, IntoParams)]
pub struct VehiclesQuery {
    pub region: Option<String>,
    pub datasource: Option<String>,
    /// Origin longitude (exact); `origin_coord_point_x` is accepted too.
    #[serde(alias = "origin_coord_point_x")]
    pub origin_coord_x: Option<f64>,
    #[serde(alias = "origin_coord_point_y")]
    pub origin_coord_y: Option<f64>,
    #[serde(alias = "destination_coord_point_x")]
    pub destination_coord_x: Option<f64>,
    #[serde(alias = "destination_coord_point_y")]
    pub destination_coord_y: Option<f64>,
    /// `YYYY-MM-DD` (UTC day).
    pub date: Option<String>,
    /// Default 10, at most 1000.
    pub limit: Option<u32>,
}

/// Trips with the replaced system's filters.
#[utoipa::path(get, path = "/vehicles", params(VehiclesQuery),
    responses((status = 200, description = "`{\"data\": [Vehicle]}`")))]
async fn vehicles(
    State(s): State<CompatState>,
    ApiQuery(q): ApiQuery<VehiclesQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let limit = match q.limit {
        None => 10,
        Some(l) if (1..=1000).contains(&l) => l,
        Some(l) => {
            return Err(ApiError::bad_param(
                "limit",
                format!("limit must be 1..1000, got {l}"),
            ))
        }
    };
    let (from, to) = match q.date.as_deref() {
        None => (None, None),
        Some(d) => {
            let day = chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").map_err(|_| {
                ApiError::bad_param("date", format!("`{d}` is not a date; expected YYYY-MM-DD"))
            })?;
            let start = day
                .and_hms_opt(0, 0, 0)
                .expect("midnight")
                .and_utc()
                .timestamp();
            (
                Some(Timestamp::from_secs(start)),
                Some(Timestamp::from_secs(start + 86_400)),
            )
        }
    };
    let f = TripFilter {
        region: q.region,
        datasource: q.datasource,
        origin: (q.origin_coord_x, q.origin_coord_y),
        destination: (q.destination_coord_x, q.destination_coord_y),
        from,
        to,
        after: None,
        limit,
    };
    let rows = s.ctx.db.read_async(move |c| store::trips(c, &f)).await?;
    let data: Vec<Vehicle> = rows.into_iter().map(Vehicle::from).collect();
    Ok(Json(json!({ "data": data })))
}

/// One trip, or 404.
#[utoipa::path(get, path = "/vehicles/{id}", params(("id" = i64, Path)),
    responses((status = 200, body = Vehicle), (status = 404, description = "no such trip")))]
async fn vehicle(
    State(s): State<CompatState>,
    Path(id): Path<String>,
) -> Result<Json<Vehicle>, ApiError> {
    let id = trip_id(&id)?;
    let t = s.ctx.db.read_async(move |c| store::trip(c, id)).await?;
    t.map(|t| Json(t.into()))
        .ok_or_else(|| ApiError::not_found(format!("no vehicle trip with id {id}")))
}

/// Trip counts by `region` or `datasource` (no other column).
#[utoipa::path(get, path = "/vehicles/{column}/count", params(("column" = String, Path)),
    responses((status = 200, description = "`{\"data\": [{\"count\": N, \"region\": \"…\"}]}`"),
              (status = 400, description = "column not allowed")))]
async fn column_count(
    State(s): State<CompatState>,
    Path(column): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let by = count_by("column", &column)?;
    let rows = s.ctx.db.read_async(move |c| store::counts(c, by)).await?;
    let data: Vec<serde_json::Value> = rows
        .into_iter()
        .map(|(name, n)| json!({ "count": n, column.as_str(): name }))
        .collect();
    Ok(Json(json!({ "data": data })))
}

/// Trips per region and ISO week.
#[utoipa::path(get, path = "/vehicles/weekly_trips/region",
    responses((status = 200, description = "`{\"data\": [{\"freq_trip\", \"region\", \"week_number\", \"year\"}]}`")))]
async fn weekly_trips(State(s): State<CompatState>) -> Result<Json<serde_json::Value>, ApiError> {
    let rows = s.ctx.db.read_async(store::region_weeks).await?;
    let data: Vec<serde_json::Value> = rows
        .into_iter()
        .map(|(region, w, n)| {
            let (year, week) = w.iso();
            json!({ "freq_trip": n, "region": region, "week_number": week, "year": year })
        })
        .collect();
    Ok(Json(json!({ "data": data })))
}

/// Average trips per active week, per region.
#[utoipa::path(get, path = "/vehicles/weekly_avg_trips/region",
    responses((status = 200, description = "`{\"data\": [{\"freq_avg_weekly_trips\", \"region\"}]}`")))]
async fn weekly_avg(State(s): State<CompatState>) -> Result<Json<serde_json::Value>, ApiError> {
    let data = s
        .ctx
        .db
        .read_async(|c| {
            let mut data = Vec::new();
            for (region, _) in store::counts(c, store::CountBy::Region)? {
                let weeks = store::weekly_region(c, Some(&region), WeekRange::default())?;
                let avg = engine::weekly_average(&weeks, WeeksMode::Active, None);
                data.push(json!({ "freq_avg_weekly_trips": avg.average, "region": region }));
            }
            Ok::<_, ApiError>(data)
        })
        .await?;
    Ok(Json(json!({ "data": data })))
}

/// Starts ingesting the CSV files of the trips inbox; answers at once with the job.
#[utoipa::path(post, path = "/vehicles",
    responses((status = 202, body = Job, description = "the queued ingestion job")))]
async fn start_ingest(State(s): State<CompatState>) -> Result<Response, ApiError> {
    let job = sluice_core::ingest::start_inbox_job(&s.ctx, s.ingest.clone(), None, None).await?;
    let location = format!("/api/v1/jobs/{}", job.id);
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(job),
    )
        .into_response())
}

fn latest_job(ctx: &Ctx) -> Result<Option<Job>, ApiError> {
    Ok(ctx
        .jobs
        .list(&JobFilter {
            domain: Some(DOMAIN.into()),
            kind: Some("ingest".into()),
            limit: 1,
            ..JobFilter::default()
        })?
        .pop())
}

/// The current or last ingestion job. With `Accept: text/event-stream`: its snapshot, then
/// the events of the running (or next) ingestion until it ends.
#[utoipa::path(get, path = "/vehicles/ingest-data/status",
    responses((status = 200, body = Job, description = "snapshot, or an SSE stream of job events"),
              (status = 404, description = "no ingestion yet (snapshot form)")))]
async fn ingest_status(
    State(s): State<CompatState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let wants_stream = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    // Subscribe before the snapshot so that nothing between the two is missed.
    let rx = s.ctx.jobs.subscribe();
    let latest = latest_job(&s.ctx)?;
    if !wants_stream {
        return match latest {
            Some(job) => Ok(Json(job).into_response()),
            None => Err(ApiError::not_found("no trips ingestion has run yet")),
        };
    }
    let followed: Option<JobId> = latest
        .as_ref()
        .filter(|j| !j.state.is_terminal())
        .map(|j| j.id);
    let first = latest.map(|job| {
        Ok::<_, Infallible>(event(&JobEvent {
            kind: "snapshot".into(),
            job,
        }))
    });
    let ours = tokio_stream::wrappers::BroadcastStream::new(rx)
        .filter_map(|e| async move { e.ok() })
        .filter(|e| {
            let ours = e.job.domain == DOMAIN && e.job.kind == "ingest";
            async move { ours }
        });
    // Follow one job (the running one, else the next to appear) and end after its end.
    let events = futures::stream::unfold(
        (Box::pin(ours), followed, false),
        |(mut st, mut followed, done)| async move {
            if done {
                return None;
            }
            loop {
                let e = st.next().await?;
                if e.job.id != *followed.get_or_insert(e.job.id) {
                    continue;
                }
                let terminal = e.job.state.is_terminal();
                return Some((Ok::<_, Infallible>(event(&e)), (st, followed, terminal)));
            }
        },
    );
    let stream = futures::stream::iter(first).chain(events);
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(std::time::Duration::from_secs(15)))
        .into_response())
}

fn event(e: &JobEvent) -> Event {
    Event::default()
        .event(e.kind.clone())
        .json_data(e)
        .unwrap_or_else(|_| Event::default().comment("unserializable job"))
}
