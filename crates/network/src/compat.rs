//! Routes of the two replaced systems, in their shapes (specs/compat.md), as a thin mapping
//! over the native query ([`crate::api::run_query`]):
//! - Flask: `GET /kpi1`, `/kpi2` (with or without trailing slash), `from`/`to` as
//!   `YYYY-MM-DD_HH:MM:SS` read in `compat_time_zone`, `interval` = `5-minute` | `1-hour`,
//!   times printed `YYYY-MM-DD HH:MM:SS` in that zone, rows in the original's SQL order.
//! - Django REST: `GET /api/KPIs/`, `GET /api/KPIs/{id}/` with `interval_start_timestamp__gte`,
//!   `interval_end_timestamp__lte` (ISO 8601, naive = UTC, empty = no filter) and
//!   `interval` = 1 | 2; row ids are [`KpiRow::id`].

use std::cmp::Reverse;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use sluice_core::http::{ApiQuery, ProblemDoc};
use sluice_core::{ApiError, Ctx};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::api::{enum_schema, granularity_param, run_query};
use crate::index::KpiIndex;
use crate::settings::NetworkSettings;
use crate::store::{Granularity, Kpi, KpiQuery, KpiRow};

/// The replaced systems showed the top 3.
const COMPAT_TOP: u32 = 3;

#[derive(Clone)]
struct Compat {
    index: Arc<KpiIndex>,
    zone: Tz,
}

pub fn routes(ctx: &Ctx, index: Arc<KpiIndex>) -> Router {
    // The server checked the settings before starting (Domain::check_settings).
    let zone = NetworkSettings::from_settings(&ctx.settings)
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "invalid [network] settings; compat routes use UTC");
            NetworkSettings::default()
        })
        .compat_time_zone;
    Router::new()
        .route("/kpi1", get(flask_kpi1))
        .route("/kpi1/", get(flask_kpi1))
        .route("/kpi2", get(flask_kpi2))
        .route("/kpi2/", get(flask_kpi2))
        .route("/api/KPIs", get(django_list))
        .route("/api/KPIs/", get(django_list))
        .route("/api/KPIs/{id}", get(django_kpi))
        .route("/api/KPIs/{id}/", get(django_kpi))
        .with_state(Compat { index, zone })
}

/// The documented paths are the READMEs' (with a trailing slash); [`crate::NetworkDomain`]
/// adds each one without it.
#[derive(OpenApi)]
#[openapi(
    paths(flask_kpi1, flask_kpi2, django_list, django_kpi),
    components(schemas(ProblemDoc))
)]
pub struct CompatApi;

fn flask_interval_param() -> utoipa::openapi::Object {
    enum_schema(&["5-minute", "1-hour", ""])
}

fn django_interval_param() -> utoipa::openapi::Object {
    enum_schema(&["1", "2", ""])
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct FlaskParams {
    /// Intervals starting at or after this time, in the server's `compat_time_zone` unless
    /// it carries `Z` or an offset (e.g. `2017-03-01_10:00:00`); empty = no filter.
    #[param(schema_with = crate::time::schema)]
    from: Option<String>,
    /// Intervals ending at or before this time.
    #[param(schema_with = crate::time::schema)]
    to: Option<String>,
    /// `5-minute` or `1-hour`; both when absent or empty.
    #[param(schema_with = flask_interval_param)]
    interval: Option<String>,
}

#[derive(Clone, Copy, Serialize, ToSchema)]
enum FlaskInterval {
    #[serde(rename = "5-minute")]
    FiveMinute,
    #[serde(rename = "1-hour")]
    OneHour,
}

impl From<Granularity> for FlaskInterval {
    fn from(g: Granularity) -> Self {
        match g {
            Granularity::FiveMinutes => FlaskInterval::FiveMinute,
            Granularity::Hour => FlaskInterval::OneHour,
        }
    }
}

/// A time as the Flask routes print it, written straight into the response as it is
/// serialised (no string per row).
struct FlaskTime {
    ms: i64,
    zone: Tz,
}

impl std::fmt::Display for FlaskTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        crate::time::write_local(self.ms, self.zone, f)
    }
}

impl Serialize for FlaskTime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A `/kpi1` row; times `YYYY-MM-DD HH:MM:SS` in `compat_time_zone`.
#[derive(Serialize, ToSchema)]
struct FlaskServiceRow {
    #[schema(value_type = String)]
    interval_start_timestamp: FlaskTime,
    #[schema(value_type = String)]
    interval_end_timestamp: FlaskTime,
    service_id: i64,
    total_bytes: i64,
    interval: FlaskInterval,
}

/// A `/kpi2` row; times `YYYY-MM-DD HH:MM:SS` in `compat_time_zone`.
#[derive(Serialize, ToSchema)]
struct FlaskCellRow {
    #[schema(value_type = String)]
    interval_start_timestamp: FlaskTime,
    #[schema(value_type = String)]
    interval_end_timestamp: FlaskTime,
    cell_id: i64,
    number_of_unique_users: i64,
    interval: FlaskInterval,
}

fn flask_time(ms: i64, zone: Tz) -> FlaskTime {
    FlaskTime { ms, zone }
}

/// The top 3 of every matching interval in the original's `ORDER BY interval,
/// interval_start_timestamp, interval_end_timestamp, <metric> DESC, <id> DESC`, where
/// `interval` is compared as text: every `1-hour` row comes before the `5-minute` rows.
async fn flask_rows(
    c: &Compat,
    kpi: Kpi,
    p: FlaskParams,
) -> Result<Vec<(KpiRow, FlaskInterval)>, ApiError> {
    let granularity = granularity_param(
        p.interval.as_deref(),
        &["5-minute"],
        &["1-hour"],
        "`5-minute` or `1-hour`",
    )?;
    let from = crate::time::param("from", p.from.as_deref(), c.zone)?;
    let to = crate::time::param("to", p.to.as_deref(), c.zone)?;
    let mut rows = top3(&c.index, kpi, granularity, from, to).await?;
    let label = |g: Granularity| match g {
        Granularity::FiveMinutes => "5-minute",
        Granularity::Hour => "1-hour",
    };
    rows.sort_by_key(|r| {
        (
            label(r.granularity),
            r.interval_start,
            r.interval_end(),
            Reverse(r.value),
            Reverse(r.item_id),
        )
    });
    Ok(rows
        .into_iter()
        .map(|r| {
            let interval = r.granularity.into();
            (r, interval)
        })
        .collect())
}

/// The top 3 of every matching interval, as the replaced systems answered.
async fn top3(
    index: &KpiIndex,
    kpi: Kpi,
    granularity: Option<Granularity>,
    from: Option<i64>,
    to: Option<i64>,
) -> Result<Vec<KpiRow>, ApiError> {
    let q = KpiQuery {
        kpi,
        granularity,
        from,
        to,
        max_rank: COMPAT_TOP,
        offset: 0,
        limit: None,
    };
    run_query(index, q).await
}

/// KPI1 of the Flask system: top 3 services by bytes per interval.
#[utoipa::path(get, path = "/kpi1/", params(FlaskParams), tag = "network compat (Flask)",
    responses(
        (status = 200, body = Vec<FlaskServiceRow>, description = "rows in the original's order"),
        (status = 400, body = ProblemDoc, content_type = "application/problem+json", description = "bad time or interval")))]
async fn flask_kpi1(
    State(c): State<Compat>,
    ApiQuery(p): ApiQuery<FlaskParams>,
) -> Result<Json<Vec<FlaskServiceRow>>, ApiError> {
    let zone = c.zone;
    Ok(Json(
        flask_rows(&c, Kpi::TopServices, p)
            .await?
            .into_iter()
            .map(|(r, interval)| FlaskServiceRow {
                interval_start_timestamp: flask_time(r.interval_start, zone),
                interval_end_timestamp: flask_time(r.interval_end(), zone),
                service_id: r.item_id,
                total_bytes: r.value,
                interval,
            })
            .collect(),
    ))
}

/// KPI2 of the Flask system: top 3 cells by unique users per interval.
#[utoipa::path(get, path = "/kpi2/", params(FlaskParams), tag = "network compat (Flask)",
    responses(
        (status = 200, body = Vec<FlaskCellRow>, description = "rows in the original's order"),
        (status = 400, body = ProblemDoc, content_type = "application/problem+json", description = "bad time or interval")))]
async fn flask_kpi2(
    State(c): State<Compat>,
    ApiQuery(p): ApiQuery<FlaskParams>,
) -> Result<Json<Vec<FlaskCellRow>>, ApiError> {
    let zone = c.zone;
    Ok(Json(
        flask_rows(&c, Kpi::TopCells, p)
            .await?
            .into_iter()
            .map(|(r, interval)| FlaskCellRow {
                interval_start_timestamp: flask_time(r.interval_start, zone),
                interval_end_timestamp: flask_time(r.interval_end(), zone),
                cell_id: r.item_id,
                number_of_unique_users: r.value,
                interval,
            })
            .collect(),
    ))
}

#[derive(Serialize, ToSchema)]
struct DjangoKpi {
    #[schema(minimum = 1, maximum = 2)]
    id: u8,
    #[schema(schema_with = django_kpi_name)]
    name: &'static str,
}

fn django_kpi_name() -> utoipa::openapi::Object {
    enum_schema(&["ServiceTrafficVolume", "CellUniqueUsers"])
}

/// The KPIs of the Django system.
#[utoipa::path(get, path = "/api/KPIs/", tag = "network compat (Django REST)",
    responses((status = 200, body = Vec<DjangoKpi>, description = "the two KPIs")))]
async fn django_list() -> Json<[DjangoKpi; 2]> {
    Json([
        DjangoKpi {
            id: 1,
            name: "ServiceTrafficVolume",
        },
        DjangoKpi {
            id: 2,
            name: "CellUniqueUsers",
        },
    ])
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct DjangoParams {
    /// Intervals starting at or after this time (ISO 8601; naive = UTC; date only allowed);
    /// empty = no filter.
    #[serde(rename = "interval_start_timestamp__gte")]
    #[param(rename = "interval_start_timestamp__gte", schema_with = crate::time::schema)]
    start_gte: Option<String>,
    /// Intervals ending at or before this time; empty = no filter.
    #[serde(rename = "interval_end_timestamp__lte")]
    #[param(rename = "interval_end_timestamp__lte", schema_with = crate::time::schema)]
    end_lte: Option<String>,
    /// `1` five minutes, `2` one hour; both when absent or empty.
    #[param(schema_with = django_interval_param)]
    interval: Option<String>,
}

/// A row of KPI 1 of the Django system.
#[derive(Serialize, ToSchema)]
struct DjangoServiceRow {
    /// Stable: derived from the row's KPI, interval and rank.
    id: i64,
    interval_start_timestamp: String,
    interval_end_timestamp: String,
    /// 1 five minutes, 2 one hour.
    #[schema(minimum = 1, maximum = 2)]
    interval: u8,
    service_id: i64,
    total_bytes: i64,
}

/// A row of KPI 2 of the Django system.
#[derive(Serialize, ToSchema)]
struct DjangoCellRow {
    /// Stable: derived from the row's KPI, interval and rank.
    id: i64,
    interval_start_timestamp: String,
    interval_end_timestamp: String,
    /// 1 five minutes, 2 one hour.
    #[schema(minimum = 1, maximum = 2)]
    interval: u8,
    cell_id: i64,
    number_of_unique_users: i64,
}

/// A row of KPI 1 or of KPI 2, as the id in the path says (told apart by their keys).
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
enum DjangoRow {
    Service(DjangoServiceRow),
    Cell(DjangoCellRow),
}

fn django_id_param() -> utoipa::openapi::Object {
    enum_schema(&["1", "2"])
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
struct DjangoPath {
    /// 1 ServiceTrafficVolume, 2 CellUniqueUsers; another id is a 404.
    #[param(schema_with = django_id_param)]
    id: String,
}

/// One KPI of the Django system: its top 3 per interval, ordered by id.
#[utoipa::path(get, path = "/api/KPIs/{id}/", tag = "network compat (Django REST)",
    params(DjangoPath, DjangoParams),
    responses(
        (status = 200, body = Vec<DjangoRow>, description = "the KPI's rows"),
        (status = 400, body = ProblemDoc, content_type = "application/problem+json", description = "bad time or interval"),
        (status = 404, body = ProblemDoc, content_type = "application/problem+json", description = "no KPI with this id")))]
async fn django_kpi(
    State(c): State<Compat>,
    Path(DjangoPath { id }): Path<DjangoPath>,
    ApiQuery(p): ApiQuery<DjangoParams>,
) -> Result<Json<Vec<DjangoRow>>, ApiError> {
    let kpi = match id.as_str() {
        "1" => Kpi::TopServices,
        "2" => Kpi::TopCells,
        _ => {
            return Err(ApiError::not_found(format!(
                "no KPI with id `{id}` (ids: 1, 2)"
            )))
        }
    };
    let granularity = granularity_param(
        p.interval.as_deref(),
        &["1"],
        &["2"],
        "1 (five minutes) or 2 (one hour)",
    )?;
    let from = crate::time::param(
        "interval_start_timestamp__gte",
        p.start_gte.as_deref(),
        Tz::UTC,
    )?;
    let to = crate::time::param("interval_end_timestamp__lte", p.end_lte.as_deref(), Tz::UTC)?;
    let rows = top3(&c.index, kpi, granularity, from, to).await?;
    let iso = crate::api::iso_ms;
    Ok(Json(
        rows.iter()
            .map(|r| match kpi {
                Kpi::TopServices => DjangoRow::Service(DjangoServiceRow {
                    id: r.id(),
                    interval_start_timestamp: iso(r.interval_start),
                    interval_end_timestamp: iso(r.interval_end()),
                    interval: r.granularity as u8,
                    service_id: r.item_id,
                    total_bytes: r.value,
                }),
                Kpi::TopCells => DjangoRow::Cell(DjangoCellRow {
                    id: r.id(),
                    interval_start_timestamp: iso(r.interval_start),
                    interval_end_timestamp: iso(r.interval_end()),
                    interval: r.granularity as u8,
                    cell_id: r.item_id,
                    number_of_unique_users: r.value,
                }),
            })
            .collect(),
    ))
}
