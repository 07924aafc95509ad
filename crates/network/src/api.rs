//! Native routes under `/api/v1/network/`: the KPI catalogue and KPI queries with time range,
//! interval, `limit` (ranks per interval, up to 20) and pagination over intervals. Ingestion
//! routes (`/api/v1/network/ingest`, `/uploads`, `/files`) are the platform's generic ones.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sluice_core::http::ApiQuery;
use sluice_core::{ApiError, Ctx};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::store::{self, Granularity, Kpi, KpiQuery, KpiRow, TOP_N};

pub fn routes(ctx: Ctx) -> Router {
    Router::new()
        .route("/api/v1/network/kpis", get(list_kpis))
        .route("/api/v1/network/kpis/{kpi}", get(query_kpi))
        .with_state(ctx)
}

#[derive(OpenApi)]
#[openapi(paths(list_kpis, query_kpi), components(schemas(KpiPage, IntervalKpi)))]
pub struct NetworkApi;

/// Parses an optional time parameter (empty = absent) to epoch ms.
pub(crate) fn time_param(name: &str, v: Option<&str>) -> Result<Option<i64>, ApiError> {
    match v {
        None => Ok(None),
        Some(s) if s.trim().is_empty() => Ok(None),
        Some(s) => sluice_core::time::parse_utc(s)
            .map(|t| Some(t.timestamp_millis()))
            .map_err(|e| ApiError::bad_param(name, e)),
    }
}

/// Parses an optional `interval` (empty = absent) against a system's spellings of five
/// minutes and one hour; `expected` names them in the error.
pub(crate) fn granularity_param(
    v: Option<&str>,
    five_minutes: &[&str],
    hour: &[&str],
    expected: &str,
) -> Result<Option<Granularity>, ApiError> {
    match v {
        None | Some("") => Ok(None),
        Some(s) if five_minutes.contains(&s) => Ok(Some(Granularity::FiveMinutes)),
        Some(s) if hour.contains(&s) => Ok(Some(Granularity::Hour)),
        Some(other) => Err(ApiError::bad_param(
            "interval",
            format!("unknown interval `{other}`; expected {expected}"),
        )),
    }
}

pub(crate) fn iso_ms(ms: i64) -> String {
    sluice_core::time::from_millis(ms)
        .map(sluice_core::time::iso)
        .unwrap_or_default()
}

pub(crate) async fn run_query(ctx: &Ctx, q: KpiQuery) -> Result<Vec<KpiRow>, ApiError> {
    ctx.db
        .read_async(move |c| store::kpi_rows(c, &q).map_err(ApiError::internal))
        .await
}

fn parse_kpi(s: &str) -> Result<Kpi, ApiError> {
    match s {
        "top_services" | "1" => Ok(Kpi::TopServices),
        "top_cells" | "2" => Ok(Kpi::TopCells),
        other => Err(ApiError::not_found(format!(
            "no KPI `{other}`; KPIs are top_services and top_cells"
        ))),
    }
}

/// The KPIs.
#[utoipa::path(get, path = "/api/v1/network/kpis", responses((status = 200, description = "the KPI catalogue")))]
async fn list_kpis() -> Json<Value> {
    Json(json!([
        {"id": "top_services", "number": 1, "name": "ServiceTrafficVolume",
         "description": "services with the largest total bytes (uplink + downlink)",
         "item": "service_id", "value": "total_bytes"},
        {"id": "top_cells", "number": 2, "name": "CellUniqueUsers",
         "description": "cells with the most distinct subscribers (msisdn)",
         "item": "cell_id", "value": "unique_users"}
    ]))
}

#[derive(Deserialize, IntoParams)]
struct KpiParams {
    /// Intervals starting at or after this time (ISO 8601 or YYYY-MM-DD HH:MM:SS, UTC).
    from: Option<String>,
    /// Intervals ending at or before this time.
    to: Option<String>,
    /// `5m` or `1h`; both when absent.
    interval: Option<String>,
    /// Ranks per interval, 1 to 20 (default 3).
    limit: Option<u32>,
    /// Intervals per page, 1 to 1000 (default 100).
    page_size: Option<u32>,
    /// Intervals to skip.
    offset: Option<u64>,
}

#[derive(Serialize, ToSchema)]
struct IntervalKpi {
    interval_start: String,
    interval_end: String,
    /// `5m` or `1h`.
    interval: &'static str,
    /// Accepted rows in the interval.
    rows: u64,
    /// How many of the interval's 5-minute intervals had data (1 for 5m, up to 12 for 1h).
    coverage: u32,
    #[schema(value_type = Vec<Object>)]
    top: Vec<Value>,
}

#[derive(Serialize, ToSchema)]
struct KpiPage {
    kpi: &'static str,
    items: Vec<IntervalKpi>,
    /// Offset of the next page, absent on the last page.
    next_offset: Option<u64>,
}

/// A KPI per interval, paginated over intervals.
#[utoipa::path(get, path = "/api/v1/network/kpis/{kpi}",
    params(("kpi" = String, Path, description = "top_services or top_cells"), KpiParams),
    responses((status = 200, body = KpiPage), (status = 400, description = "bad parameter"), (status = 404, description = "unknown KPI")))]
async fn query_kpi(
    State(ctx): State<Ctx>,
    Path(kpi): Path<String>,
    ApiQuery(p): ApiQuery<KpiParams>,
) -> Result<Json<KpiPage>, ApiError> {
    let kpi = parse_kpi(&kpi)?;
    let granularity = granularity_param(
        p.interval.as_deref(),
        &["5m", "5-minute", "1"],
        &["1h", "1-hour", "2"],
        "`5m` or `1h`",
    )?;
    let ranks = sluice_core::http::Page {
        limit: p.limit,
        offset: None,
    }
    .limit(3, TOP_N as u32)?;
    let page_size = match p.page_size {
        None => 100,
        Some(n @ 1..=1000) => n,
        Some(n) => {
            return Err(ApiError::bad_param(
                "page_size",
                format!("page_size must be 1 to 1000, got {n}"),
            ))
        }
    };
    let offset = p.offset.unwrap_or(0);
    let q = KpiQuery {
        kpi,
        granularity,
        from: time_param("from", p.from.as_deref())?,
        to: time_param("to", p.to.as_deref())?,
        max_rank: ranks,
        offset,
        // One more interval than a page tells whether a next page exists.
        limit: Some(u64::from(page_size) + 1),
    };
    let rows = run_query(&ctx, q).await?;
    let mut items: Vec<IntervalKpi> = Vec::new();
    for r in rows {
        let same = items.last().is_some_and(|l| {
            l.interval_start == iso_ms(r.interval_start) && l.interval == label(r.granularity)
        });
        if !same {
            items.push(IntervalKpi {
                interval_start: iso_ms(r.interval_start),
                interval_end: iso_ms(r.interval_end()),
                interval: label(r.granularity),
                rows: r.rows,
                coverage: r.coverage,
                top: Vec::new(),
            });
        }
        let entry = match kpi {
            Kpi::TopServices => {
                json!({"rank": r.rank, "service_id": r.item_id, "total_bytes": r.value})
            }
            Kpi::TopCells => json!({"rank": r.rank, "cell_id": r.item_id, "unique_users": r.value}),
        };
        items.last_mut().expect("pushed above").top.push(entry);
    }
    let next_offset = (items.len() > page_size as usize).then(|| {
        items.truncate(page_size as usize);
        offset + u64::from(page_size)
    });
    Ok(Json(KpiPage {
        kpi: match kpi {
            Kpi::TopServices => "top_services",
            Kpi::TopCells => "top_cells",
        },
        items,
        next_offset,
    }))
}

fn label(g: Granularity) -> &'static str {
    match g {
        Granularity::FiveMinutes => "5m",
        Granularity::Hour => "1h",
    }
}
