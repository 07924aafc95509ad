//! Native routes under `/api/v1/network/`: the KPI catalogue and KPI queries with time range,
//! interval, `limit` (ranks per interval, up to 20) and pagination over intervals. Ingestion
//! routes (`/api/v1/network/ingest`, `/uploads`, `/files`) are the platform's generic ones.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sluice_core::http::{csv_response, ApiQuery, Format, ProblemDoc};
use sluice_core::ApiError;
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::index::KpiIndex;
use crate::store::{Granularity, Kpi, KpiQuery, KpiRow, TOP_N};

pub fn routes(index: Arc<KpiIndex>) -> Router {
    Router::new()
        .route("/api/v1/network/kpis", get(list_kpis))
        .route("/api/v1/network/kpis/{kpi}", get(query_kpi))
        .with_state(index)
}

#[derive(OpenApi)]
#[openapi(
    paths(list_kpis, query_kpi),
    components(schemas(KpiPage, IntervalKpi, TopEntry, KpiInfo, ProblemDoc))
)]
pub struct NetworkApi;

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

pub(crate) async fn run_query(index: &KpiIndex, q: KpiQuery) -> Result<Vec<KpiRow>, ApiError> {
    index.kpi_rows(&q).await.map_err(ApiError::internal)
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

#[derive(Serialize, ToSchema)]
struct KpiInfo {
    #[schema(schema_with = kpi_name_schema)]
    id: &'static str,
    /// The KPI's number in the replaced systems (KPI1, KPI2).
    #[schema(minimum = 1, maximum = 2)]
    number: u8,
    name: &'static str,
    description: &'static str,
    /// Key of the ranked item in `top` entries.
    item: &'static str,
    /// Key of the ranked value in `top` entries.
    value: &'static str,
}

fn kpi_name_schema() -> utoipa::openapi::Object {
    enum_schema(&["top_services", "top_cells"])
}

fn kpi_path_schema() -> utoipa::openapi::Object {
    enum_schema(&["top_services", "top_cells", "1", "2"])
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
struct KpiPath {
    /// `top_services` (or `1`), `top_cells` (or `2`); another one is a 404.
    #[param(schema_with = kpi_path_schema)]
    kpi: String,
}

fn interval_schema() -> utoipa::openapi::Object {
    enum_schema(&["5m", "1h", "5-minute", "1-hour", "1", "2", ""])
}

pub(crate) fn enum_schema(values: &[&str]) -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(values.iter().copied()))
        .build()
}

/// The KPIs.
#[utoipa::path(get, path = "/api/v1/network/kpis", tag = "network",
    responses((status = 200, body = Vec<KpiInfo>, description = "the KPI catalogue")))]
async fn list_kpis() -> Json<[KpiInfo; 2]> {
    Json([
        KpiInfo {
            id: "top_services",
            number: 1,
            name: "ServiceTrafficVolume",
            description: "services with the largest total bytes (uplink + downlink)",
            item: "service_id",
            value: "total_bytes",
        },
        KpiInfo {
            id: "top_cells",
            number: 2,
            name: "CellUniqueUsers",
            description: "cells with the most distinct subscribers (msisdn)",
            item: "cell_id",
            value: "unique_users",
        },
    ])
}

/// Intervals per page at most.
const MAX_PAGE: u32 = 1000;
/// Largest `offset` (2^53 - 1): offsets stay exact integers in every client.
const MAX_OFFSET: u64 = (1 << 53) - 1;
// The bounds of `limit` and `page_size` documented in KpiParams.
const _: () = assert!(TOP_N == 20 && MAX_PAGE == 1000);

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct KpiParams {
    /// Intervals starting at or after this time (ISO 8601 or YYYY-MM-DD HH:MM:SS; naive =
    /// UTC); empty = no filter.
    #[param(schema_with = crate::time::schema)]
    from: Option<String>,
    /// Intervals ending at or before this time.
    #[param(schema_with = crate::time::schema)]
    to: Option<String>,
    /// `5m` or `1h` (also `5-minute`/`1-hour`, `1`/`2`); both when absent or empty.
    #[param(schema_with = interval_schema)]
    interval: Option<String>,
    /// Ranks per interval (default 3).
    #[param(minimum = 1, maximum = 20)]
    limit: Option<u32>,
    /// Intervals per page (default 100).
    #[param(minimum = 1, maximum = 1000)]
    page_size: Option<u32>,
    /// Intervals to skip.
    #[param(minimum = 0, maximum = 9_007_199_254_740_991_u64)]
    offset: Option<u64>,
    /// `json` (default) or `csv`: the same page, one row per ranked entry. Without it,
    /// `Accept: text/csv` asks for CSV.
    #[param(value_type = Option<Format>, inline)]
    format: Option<String>,
}

/// One ranked entry of an interval.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
enum TopEntry {
    Service {
        rank: u32,
        service_id: i64,
        total_bytes: i64,
    },
    Cell {
        rank: u32,
        cell_id: i64,
        unique_users: i64,
    },
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
    top: Vec<TopEntry>,
}

#[derive(Serialize, ToSchema)]
struct KpiPage {
    kpi: &'static str,
    items: Vec<IntervalKpi>,
    /// Offset of the next page, absent on the last page.
    next_offset: Option<u64>,
}

/// A KPI per interval, paginated over intervals.
#[utoipa::path(get, path = "/api/v1/network/kpis/{kpi}", tag = "network",
    params(KpiPath, KpiParams),
    responses(
        (status = 200, description = "a page of intervals (JSON), or its entries as CSV",
            content((KpiPage = "application/json"), (String = "text/csv"))),
        (status = 400, body = ProblemDoc, content_type = "application/problem+json", description = "bad parameter"),
        (status = 404, body = ProblemDoc, content_type = "application/problem+json", description = "unknown KPI")))]
async fn query_kpi(
    State(index): State<Arc<KpiIndex>>,
    Path(KpiPath { kpi }): Path<KpiPath>,
    headers: HeaderMap,
    ApiQuery(p): ApiQuery<KpiParams>,
) -> Result<Response, ApiError> {
    let kpi = parse_kpi(&kpi)?;
    let format = Format::negotiate(p.format.as_deref(), &headers)?;
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
        Some(n @ 1..=MAX_PAGE) => n,
        Some(n) => {
            return Err(ApiError::bad_param(
                "page_size",
                format!("page_size must be 1 to {MAX_PAGE}, got {n}"),
            ))
        }
    };
    let offset = match p.offset {
        None => 0,
        Some(n @ 0..=MAX_OFFSET) => n,
        Some(n) => {
            return Err(ApiError::bad_param(
                "offset",
                format!("offset must be at most {MAX_OFFSET}, got {n}"),
            ))
        }
    };
    let q = KpiQuery {
        kpi,
        granularity,
        from: crate::time::param("from", p.from.as_deref(), chrono_tz::Tz::UTC)?,
        to: crate::time::param("to", p.to.as_deref(), chrono_tz::Tz::UTC)?,
        max_rank: ranks,
        offset,
        // One more interval than a page tells whether a next page exists.
        limit: Some(u64::from(page_size) + 1),
    };
    let rows = run_query(&index, q).await?;
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
            Kpi::TopServices => TopEntry::Service {
                rank: r.rank,
                service_id: r.item_id,
                total_bytes: r.value,
            },
            Kpi::TopCells => TopEntry::Cell {
                rank: r.rank,
                cell_id: r.item_id,
                unique_users: r.value,
            },
        };
        items.last_mut().expect("pushed above").top.push(entry);
    }
    let next_offset = (items.len() > page_size as usize).then(|| {
        items.truncate(page_size as usize);
        offset + u64::from(page_size)
    });
    let name = match kpi {
        Kpi::TopServices => "top_services",
        Kpi::TopCells => "top_cells",
    };
    if format == Format::Csv {
        return Ok(kpi_csv(kpi, name, &items));
    }
    Ok(Json(KpiPage {
        kpi: name,
        items,
        next_offset,
    })
    .into_response())
}

/// One row per ranked entry, the interval's fields repeated.
fn kpi_csv(kpi: Kpi, name: &str, items: &[IntervalKpi]) -> Response {
    let (item, value) = match kpi {
        Kpi::TopServices => ("service_id", "total_bytes"),
        Kpi::TopCells => ("cell_id", "unique_users"),
    };
    let header = [
        "interval_start",
        "interval_end",
        "interval",
        "rows",
        "coverage",
        "rank",
        item,
        value,
    ];
    let rows = items.iter().flat_map(|i| {
        i.top.iter().map(move |e| {
            let (rank, id, v) = match *e {
                TopEntry::Service {
                    rank,
                    service_id,
                    total_bytes,
                } => (rank, service_id, total_bytes),
                TopEntry::Cell {
                    rank,
                    cell_id,
                    unique_users,
                } => (rank, cell_id, unique_users),
            };
            vec![
                i.interval_start.clone(),
                i.interval_end.clone(),
                i.interval.to_owned(),
                i.rows.to_string(),
                i.coverage.to_string(),
                rank.to_string(),
                id.to_string(),
                v.to_string(),
            ]
        })
    });
    csv_response(&format!("{name}.csv"), &header, rows)
}

fn label(g: Granularity) -> &'static str {
    match g {
        Granularity::FiveMinutes => "5m",
        Granularity::Hour => "1h",
    }
}
