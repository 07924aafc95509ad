//! `GET /api/v1/trips/density`: trips per grid cell of one trip end, over all weeks, read from
//! the per-cell weekly rollups (levels 2..=8: cells of 1/64° to 64°), so a map can draw where
//! trips start or end at any scale without reading trips. Exact: a cell's count is every
//! visible trip whose end lies in it (rollups change only with the batches they count).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sluice_core::http::{ApiQuery, ProblemDoc};
use sluice_core::{ApiError, Ctx};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::batch::End;
use crate::engine::{self, BBox};
use crate::store;

/// Most cells one answer holds; a finer level over a wider box is refused (400).
pub const MAX_CELLS: usize = 50_000;

#[derive(OpenApi)]
#[openapi(
    paths(density),
    components(schemas(DensityOut, DensityCell, DensityEnd, ProblemDoc))
)]
pub struct DensityApi;

pub fn routes(ctx: Ctx) -> Router {
    Router::new()
        .route("/api/v1/trips/density", get(density))
        .with_state(ctx)
}

/// Which end of a trip is counted.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DensityEnd {
    Origin,
    Destination,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DensityQuery {
    /// `origin` (default) or `destination`.
    #[param(value_type = Option<DensityEnd>)]
    pub end: Option<String>,
    /// Grid level: cells of 4^level / 1024 degrees (2: 1/64°, 3: 1/16°, 4: 1/4°, 5: 1°, …
    /// 8: 64°); default 4.
    #[param(minimum = 2, maximum = 8)]
    pub level: Option<u32>,
    /// Only cells that meet this box, `minLon,minLat,maxLon,maxLat` (inclusive, plain decimal
    /// degrees, corners in either order); each cell keeps all its trips.
    #[param(
        pattern = r"^-?(180(\.0+)?|(1[0-7][0-9]|[1-9]?[0-9])(\.[0-9]+)?),-?(90(\.0+)?|[1-8]?[0-9](\.[0-9]+)?),-?(180(\.0+)?|(1[0-7][0-9]|[1-9]?[0-9])(\.[0-9]+)?),-?(90(\.0+)?|[1-8]?[0-9](\.[0-9]+)?)$"
    )]
    pub bbox: Option<String>,
}

/// One grid cell and its trips.
#[derive(Serialize, ToSchema)]
pub struct DensityCell {
    /// West edge, degrees.
    pub lon: f64,
    /// South edge, degrees.
    pub lat: f64,
    pub trips: u64,
}

#[derive(Serialize, ToSchema)]
pub struct DensityOut {
    #[schema(value_type = DensityEnd)]
    pub end: &'static str,
    pub level: u32,
    /// The side of a cell, degrees.
    pub cell_degrees: f64,
    pub bbox: Option<BBox>,
    /// Trips in all the cells.
    pub trips: u64,
    /// Cells with at least one trip, in Morton (Z) order.
    pub cells: Vec<DensityCell>,
}

/// Trips per grid cell of one end (all weeks), from the rollups: for a map.
#[utoipa::path(get, path = "/api/v1/trips/density", tag = "trips", params(DensityQuery),
    responses((status = 200, body = DensityOut),
        (status = 400, body = ProblemDoc, content_type = "application/problem+json",
            description = "a malformed parameter, or more than 50 000 cells: named in `param`")))]
async fn density(
    State(ctx): State<Ctx>,
    ApiQuery(q): ApiQuery<DensityQuery>,
) -> Result<Json<DensityOut>, ApiError> {
    let (end, end_name) = match q.end.as_deref().unwrap_or("origin") {
        "origin" => (End::Origin, "origin"),
        "destination" => (End::Destination, "destination"),
        o => {
            return Err(ApiError::bad_param(
                "end",
                format!("`{}`: expected origin or destination", o.escape_debug()),
            ))
        }
    };
    let level = q.level.unwrap_or(4);
    if !engine::COARSE_LEVELS.contains(&level) {
        return Err(ApiError::bad_param(
            "level",
            format!("{level}: expected a level from 2 (1/64°) to 8 (64°)"),
        ));
    }
    let bbox = q
        .bbox
        .as_deref()
        .map(|b| BBox::parse(b).map_err(|e| ApiError::bad_param("bbox", e)))
        .transpose()?;
    let cells = store::read_async(&ctx.db, move |c| {
        store::density(c, end, level, bbox.as_ref(), MAX_CELLS + 1)
    })
    .await?;
    if cells.len() > MAX_CELLS {
        return Err(ApiError::bad_param(
            "level",
            format!("more than {MAX_CELLS} cells at level {level}: take a coarser level or a smaller bbox"),
        ));
    }
    let side = f64::from(1u32 << (2 * level)) / 1024.0;
    let out: Vec<DensityCell> = cells
        .into_iter()
        .map(|(x, y, trips)| DensityCell {
            lon: -180.0 + f64::from(x) * side,
            lat: -90.0 + f64::from(y) * side,
            trips,
        })
        .collect();
    Ok(Json(DensityOut {
        end: end_name,
        level,
        cell_degrees: side,
        bbox,
        trips: out.iter().map(|c| c.trips).sum(),
        cells: out,
    }))
}
