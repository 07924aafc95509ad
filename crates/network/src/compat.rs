//! Routes of the two replaced systems, same shapes:
//! - Flask: `GET /kpi1`, `/kpi2` (with or without trailing slash), `from`/`to` as
//!   `YYYY-MM-DD_HH:MM:SS`, `interval` = `5-minute` | `1-hour`, times `YYYY-MM-DD HH:MM:SS`.
//! - Django REST: `GET /api/KPIs/`, `GET /api/KPIs/{id}/` with `interval_start_timestamp__gte`,
//!   `interval_end_timestamp__lte` (ISO 8601, empty = no filter) and `interval` = 1 | 2.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use sluice_core::http::ApiQuery;
use sluice_core::{ApiError, Ctx};

use crate::api::{granularity_param, run_query, time_param};
use crate::store::{Granularity, Kpi, KpiQuery, KpiRow};

/// The replaced systems showed the top 3.
const COMPAT_TOP: u32 = 3;

pub fn routes(ctx: Ctx) -> Router {
    Router::new()
        .route("/kpi1", get(flask_kpi1))
        .route("/kpi1/", get(flask_kpi1))
        .route("/kpi2", get(flask_kpi2))
        .route("/kpi2/", get(flask_kpi2))
        .route("/api/KPIs", get(django_list))
        .route("/api/KPIs/", get(django_list))
        .route("/api/KPIs/{id}", get(django_kpi))
        .route("/api/KPIs/{id}/", get(django_kpi))
        .with_state(ctx)
}

#[derive(Deserialize)]
struct FlaskParams {
    from: Option<String>,
    to: Option<String>,
    interval: Option<String>,
}

fn flask_time(ms: i64) -> String {
    sluice_core::time::from_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

fn flask_interval(g: Granularity) -> &'static str {
    match g {
        Granularity::FiveMinutes => "5-minute",
        Granularity::Hour => "1-hour",
    }
}

async fn flask(ctx: Ctx, kpi: Kpi, p: FlaskParams) -> Result<Json<Vec<Value>>, ApiError> {
    let granularity = granularity_param(
        p.interval.as_deref(),
        &["5-minute"],
        &["1-hour"],
        "`5-minute` or `1-hour`",
    )?;
    let from = time_param("from", p.from.as_deref())?;
    let to = time_param("to", p.to.as_deref())?;
    let rows = top3(&ctx, kpi, granularity, from, to).await?;
    Ok(Json(
        rows.iter()
            .map(|r| {
                let mut v = json!({
                    "interval_start_timestamp": flask_time(r.interval_start),
                    "interval_end_timestamp": flask_time(r.interval_end()),
                    "interval": flask_interval(r.granularity),
                });
                put_value(&mut v, kpi, r);
                v
            })
            .collect(),
    ))
}

/// The top 3 of every matching interval, as the replaced systems answered.
async fn top3(
    ctx: &Ctx,
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
    run_query(ctx, q).await
}

fn put_value(v: &mut Value, kpi: Kpi, r: &KpiRow) {
    let (id_key, value_key) = match kpi {
        Kpi::TopServices => ("service_id", "total_bytes"),
        Kpi::TopCells => ("cell_id", "number_of_unique_users"),
    };
    v[id_key] = r.item_id.into();
    v[value_key] = r.value.into();
}

async fn flask_kpi1(
    State(ctx): State<Ctx>,
    ApiQuery(p): ApiQuery<FlaskParams>,
) -> Result<Json<Vec<Value>>, ApiError> {
    flask(ctx, Kpi::TopServices, p).await
}

async fn flask_kpi2(
    State(ctx): State<Ctx>,
    ApiQuery(p): ApiQuery<FlaskParams>,
) -> Result<Json<Vec<Value>>, ApiError> {
    flask(ctx, Kpi::TopCells, p).await
}

async fn django_list() -> Json<Value> {
    Json(json!([
        {"id": 1, "name": "ServiceTrafficVolume"},
        {"id": 2, "name": "CellUniqueUsers"}
    ]))
}

#[derive(Deserialize)]
struct DjangoParams {
    #[serde(rename = "interval_start_timestamp__gte")]
    start_gte: Option<String>,
    #[serde(rename = "interval_end_timestamp__lte")]
    end_lte: Option<String>,
    interval: Option<String>,
}

async fn django_kpi(
    State(ctx): State<Ctx>,
    Path(id): Path<String>,
    ApiQuery(p): ApiQuery<DjangoParams>,
) -> Result<Json<Vec<Value>>, ApiError> {
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
    let from = time_param("interval_start_timestamp__gte", p.start_gte.as_deref())?;
    let to = time_param("interval_end_timestamp__lte", p.end_lte.as_deref())?;
    let rows = top3(&ctx, kpi, granularity, from, to).await?;
    Ok(Json(
        rows.iter()
            .map(|r| {
                let mut v = json!({
                    "id": r.id,
                    "interval_start_timestamp": crate::api::iso_ms(r.interval_start),
                    "interval_end_timestamp": crate::api::iso_ms(r.interval_end()),
                    "interval": r.granularity as i64,
                });
                put_value(&mut v, kpi, r);
                v
            })
            .collect(),
    ))
}
