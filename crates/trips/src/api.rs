//! Native routes under `/api/v1/trips/…`: trips (filters, cursor pagination), one trip,
//! groups and their trips, weekly averages (region or box), counts. Ingestion routes
//! (inbox, uploads, files) are the platform's generic ones for this domain.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use sluice_core::http::{ApiQuery, Page, ProblemDoc};
use sluice_core::{ApiError, Ctx};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::engine::{self, BBox, GroupConfig, Match, Week, WeeklyAverage, WeeksMode};
use crate::parse::Timestamp;
use crate::store::{self, CountBy, GroupOut, TripFilter, TripOut, WeekRange};

#[derive(OpenApi)]
#[openapi(
    paths(
        list_trips,
        get_trip,
        list_groups,
        get_group,
        group_trips,
        weekly_average,
        counts
    ),
    components(schemas(
        TripJson,
        TripPage,
        GroupOut,
        WeeklyOut,
        engine::WeekCount,
        CountJson,
        CountColumn,
        ProblemDoc
    ))
)]
pub struct TripsApi;

pub fn routes(ctx: Ctx) -> Router {
    Router::new()
        .route("/api/v1/trips/trips", get(list_trips))
        .route("/api/v1/trips/trips/{id}", get(get_trip))
        .route("/api/v1/trips/groups", get(list_groups))
        .route("/api/v1/trips/groups/{id}", get(get_group))
        .route("/api/v1/trips/groups/{id}/trips", get(group_trips))
        .route("/api/v1/trips/weekly-average", get(weekly_average))
        .route("/api/v1/trips/counts", get(counts))
        .with_state(ctx)
}

/// A trip in the native API.
#[derive(Serialize, ToSchema)]
pub struct TripJson {
    pub id: i64,
    pub region: String,
    pub datasource: String,
    /// ISO 8601, UTC.
    pub datetime: String,
    /// [lon, lat], full precision.
    pub origin: [f64; 2],
    pub destination: [f64; 2],
}

impl From<TripOut> for TripJson {
    fn from(t: TripOut) -> Self {
        TripJson {
            id: t.id,
            region: t.region,
            datasource: t.datasource,
            datetime: sluice_core::time::iso(t.ts.to_datetime()),
            origin: [t.origin_lon, t.origin_lat],
            destination: [t.destination_lon, t.destination_lat],
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct TripPage {
    pub items: Vec<TripJson>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<i64>,
}

fn page(items: Vec<TripOut>, limit: u32) -> TripPage {
    let next_after = (items.len() == limit as usize)
        .then(|| items.last().map(|t| t.id))
        .flatten();
    TripPage {
        items: items.into_iter().map(TripJson::from).collect(),
        next_after,
    }
}

/// A timestamp parameter.
pub fn time_param(name: &str, v: &Option<String>) -> Result<Option<Timestamp>, ApiError> {
    v.as_deref()
        .map(|s| {
            sluice_core::time::parse_utc(s)
                .map(|t| Timestamp::from_secs(t.timestamp()))
                .map_err(|e| ApiError::bad_param(name, e))
        })
        .transpose()
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TripsQuery {
    pub region: Option<String>,
    pub datasource: Option<String>,
    /// Inclusive start (ISO 8601 or YYYY-MM-DD HH:MM:SS, UTC).
    pub from: Option<String>,
    /// Exclusive end.
    pub to: Option<String>,
    /// Cursor: only trips with a larger id.
    #[param(minimum = 0, maximum = 9007199254740991.0)]
    pub after: Option<i64>,
    /// 1..=1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// Trips, in id order, with filters and cursor pagination.
#[utoipa::path(get, path = "/api/v1/trips/trips", params(TripsQuery),
    responses((status = 200, body = TripPage), (status = 400, body = ProblemDoc, content_type = "application/problem+json", description = "a malformed parameter, named in `param`")))]
async fn list_trips(
    State(ctx): State<Ctx>,
    ApiQuery(q): ApiQuery<TripsQuery>,
) -> Result<Json<TripPage>, ApiError> {
    let limit = Page {
        limit: q.limit,
        offset: None,
    }
    .limit(100, 1000)?;
    let f = TripFilter {
        region: q.region,
        datasource: q.datasource,
        from: time_param("from", &q.from)?,
        to: time_param("to", &q.to)?,
        after: bounded("after", q.after)?,
        limit,
        ..TripFilter::default()
    };
    let items = ctx.db.read_async(move |c| store::trips(c, &f)).await?;
    Ok(Json(page(items, limit)))
}

/// One trip with its full-precision coordinates.
#[utoipa::path(get, path = "/api/v1/trips/trips/{id}",
    params(("id" = i64, Path, minimum = 1, maximum = 9007199254740991.0)),
    responses((status = 200, body = TripJson), (status = 400, body = ProblemDoc, content_type = "application/problem+json", description = "a malformed parameter, named in `param`"), (status = 404, body = ProblemDoc, content_type = "application/problem+json", description = "no such trip")))]
async fn get_trip(
    State(ctx): State<Ctx>,
    Path(id): Path<String>,
) -> Result<Json<TripJson>, ApiError> {
    let id = trip_id(&id)?;
    let t = ctx.db.read_async(move |c| store::trip(c, id)).await?;
    t.map(|t| Json(t.into()))
        .ok_or_else(|| ApiError::not_found(format!("no trip with id {id}")))
}

pub fn trip_id(s: &str) -> Result<i64, ApiError> {
    positive_id("trip", s)
}

fn group_id(s: &str) -> Result<i64, ApiError> {
    positive_id("group", s)
}

/// The largest id and cursor the routes take (and their schemas state): 2^53 - 1, exact
/// in every JSON reader.
pub const MAX_ID: i64 = 9_007_199_254_740_991;

/// A path id: a positive integer up to [`MAX_ID`], else a 400 naming `id`.
fn positive_id(what: &str, s: &str) -> Result<i64, ApiError> {
    s.parse::<i64>()
        .ok()
        .filter(|i| (1..=MAX_ID).contains(i))
        .ok_or_else(|| {
            ApiError::bad_param(
                "id",
                format!("`{s}` is not a {what} id; expected an integer 1..={MAX_ID}"),
            )
        })
}

/// An optional count or cursor parameter within 0..=[`MAX_ID`], else a 400 naming it.
fn bounded<T: Copy + TryInto<i64> + std::fmt::Display>(
    param: &str,
    v: Option<T>,
) -> Result<Option<T>, ApiError> {
    match v {
        Some(x) if !x.try_into().is_ok_and(|i: i64| (0..=MAX_ID).contains(&i)) => Err(
            ApiError::bad_param(param, format!("{param} must be 0..={MAX_ID}, got {x}")),
        ),
        _ => Ok(v),
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GroupsQuery {
    pub region: Option<String>,
    /// Only groups with at least this many trips (default 1).
    #[param(minimum = 0, maximum = 9007199254740991.0)]
    pub min_size: Option<u64>,
    /// 1..=1000, default 50.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    #[param(minimum = 0, maximum = 9007199254740991.0)]
    pub offset: Option<u64>,
}

fn cfg(ctx: &Ctx) -> Result<GroupConfig, ApiError> {
    crate::group_config(ctx).map_err(ApiError::internal)
}

/// Similar-trip groups (same region, origin and destination H3 cells, time-of-day bucket),
/// largest first.
#[utoipa::path(get, path = "/api/v1/trips/groups", params(GroupsQuery),
    responses((status = 200, body = [GroupOut]), (status = 400, body = ProblemDoc, content_type = "application/problem+json", description = "a malformed parameter, named in `param`")))]
async fn list_groups(
    State(ctx): State<Ctx>,
    ApiQuery(q): ApiQuery<GroupsQuery>,
) -> Result<Json<Vec<GroupOut>>, ApiError> {
    let p = Page {
        limit: q.limit,
        offset: q.offset,
    };
    let (limit, offset) = (p.limit(50, 1000)?, p.offset());
    bounded("offset", q.offset)?;
    let min_size = bounded("min_size", q.min_size)?.unwrap_or(1);
    let cfg = cfg(&ctx)?;
    let groups = ctx
        .db
        .read_async(move |c| store::groups(c, cfg, q.region.as_deref(), min_size, limit, offset))
        .await?;
    Ok(Json(groups))
}

/// One group.
#[utoipa::path(get, path = "/api/v1/trips/groups/{id}",
    params(("id" = i64, Path, minimum = 1, maximum = 9007199254740991.0)),
    responses((status = 200, body = GroupOut), (status = 400, body = ProblemDoc, content_type = "application/problem+json", description = "a malformed parameter, named in `param`"), (status = 404, body = ProblemDoc, content_type = "application/problem+json", description = "no such group")))]
async fn get_group(
    State(ctx): State<Ctx>,
    Path(id): Path<String>,
) -> Result<Json<GroupOut>, ApiError> {
    let id = group_id(&id)?;
    let cfg = cfg(&ctx)?;
    let g = ctx.db.read_async(move |c| store::group(c, cfg, id)).await?;
    g.map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no group with id {id}")))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CursorQuery {
    /// Only trips with a larger id.
    #[param(minimum = 0, maximum = 9007199254740991.0)]
    pub after: Option<i64>,
    /// 1..=1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// The trips of one group, in id order.
#[utoipa::path(get, path = "/api/v1/trips/groups/{id}/trips",
    params(("id" = i64, Path, minimum = 1, maximum = 9007199254740991.0), CursorQuery),
    responses((status = 200, body = TripPage), (status = 400, body = ProblemDoc, content_type = "application/problem+json", description = "a malformed parameter, named in `param`"), (status = 404, body = ProblemDoc, content_type = "application/problem+json", description = "no such group")))]
async fn group_trips(
    State(ctx): State<Ctx>,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<CursorQuery>,
) -> Result<Json<TripPage>, ApiError> {
    let id = group_id(&id)?;
    let limit = Page {
        limit: q.limit,
        offset: None,
    }
    .limit(100, 1000)?;
    let after = bounded("after", q.after)?;
    let cfg = cfg(&ctx)?;
    let items = ctx
        .db
        .read_async(move |c| {
            let Some(g) = store::group(c, cfg, id)? else {
                return Err(ApiError::not_found(format!("no group with id {id}")));
            };
            Ok(store::group_trips(c, cfg, &g, after, limit)?)
        })
        .await?;
    Ok(Json(page(items, limit)))
}

#[derive(Deserialize, IntoParams, Default)]
#[into_params(parameter_in = Query)]
pub struct WeeklyQuery {
    /// A region name; or give `bbox`. Neither: every trip.
    pub region: Option<String>,
    /// `minLon,minLat,maxLon,maxLat` (inclusive).
    pub bbox: Option<String>,
    /// `origin` (default) | `destination` | `both` | `either` (with `bbox`).
    #[serde(rename = "match")]
    #[param(rename = "match", value_type = Option<Match>)]
    pub match_: Option<String>,
    /// `active` (default: weeks with at least one trip) | `span` (every week of the range).
    #[param(value_type = Option<WeeksMode>)]
    pub weeks: Option<String>,
    /// Only ISO weeks from the one holding this time (ISO 8601 or YYYY-MM-DD).
    pub from: Option<String>,
    /// Only ISO weeks up to the one holding this time.
    pub to: Option<String>,
}

/// The area of a weekly average.
#[derive(Clone, Debug, PartialEq)]
pub enum Area {
    All,
    Region(String),
    BBox(BBox, Match),
}

#[derive(Serialize, ToSchema)]
pub struct WeeklyOut {
    pub region: Option<String>,
    pub bbox: Option<BBox>,
    #[serde(rename = "match")]
    pub match_: Option<Match>,
    /// First and last week of the range (`2018-W18`), absent with no data.
    pub from_week: Option<String>,
    pub to_week: Option<String>,
    #[serde(flatten)]
    pub result: WeeklyAverage,
}

/// A parsed weekly-average request.
pub struct WeeklyRequest {
    pub area: Area,
    pub mode: WeeksMode,
    pub range: WeekRange,
}

impl WeeklyRequest {
    pub fn parse(q: &WeeklyQuery) -> Result<WeeklyRequest, ApiError> {
        let mode = match q.weeks.as_deref() {
            None | Some("active") => WeeksMode::Active,
            Some("span") => WeeksMode::Span,
            Some(o) => {
                return Err(ApiError::bad_param(
                    "weeks",
                    format!("`{o}` is not a weeks mode; expected active or span"),
                ))
            }
        };
        let m = match q.match_.as_deref() {
            None | Some("origin") => Match::Origin,
            Some("destination") => Match::Destination,
            Some("both") => Match::Both,
            Some("either") => Match::Either,
            Some(o) => {
                return Err(ApiError::bad_param(
                    "match",
                    format!(
                        "`{o}` is not a match mode; expected origin, destination, both or either"
                    ),
                ))
            }
        };
        let area = match (&q.region, &q.bbox) {
            (Some(_), Some(_)) => {
                return Err(ApiError::bad_param(
                    "bbox",
                    "give either region or bbox, not both",
                ))
            }
            (Some(r), None) => Area::Region(r.clone()),
            (None, Some(b)) => Area::BBox(
                BBox::parse(b).map_err(|e| ApiError::bad_param("bbox", e))?,
                m,
            ),
            (None, None) => Area::All,
        };
        if q.match_.is_some() && !matches!(area, Area::BBox(..)) {
            return Err(ApiError::bad_param(
                "match",
                "match applies to a bbox; give bbox=minLon,minLat,maxLon,maxLat",
            ));
        }
        let from = time_param("from", &q.from)?.map(Week::of);
        let to = time_param("to", &q.to)?.map(Week::of);
        if let (Some(a), Some(b)) = (from, to) {
            if a > b {
                return Err(ApiError::bad_param("to", "to must not be before from"));
            }
        }
        Ok(WeeklyRequest {
            area,
            mode,
            range: WeekRange { from, to },
        })
    }

    /// Runs the request on a read connection.
    pub fn run(&self, c: &Connection) -> Result<WeeklyOut, ApiError> {
        let counts = match &self.area {
            Area::All => store::weekly_region(c, None, self.range)?,
            Area::Region(r) => store::weekly_region(c, Some(r), self.range)?,
            Area::BBox(b, m) => store::weekly_bbox(c, b, *m, self.range)?,
        };
        let data = store::dataset_weeks(c)?;
        let span = match (self.range.from, self.range.to, data) {
            (Some(a), Some(b), _) => Some((a, b)),
            (Some(a), None, Some((_, b))) => Some((a, b.max(a))),
            (None, Some(b), Some((a, _))) => Some((a.min(b), b)),
            (None, None, d) => d,
            (_, _, None) => None,
        };
        let result = engine::weekly_average(&counts, self.mode, span);
        let (from_week, to_week) = match self.mode {
            WeeksMode::Span => (span.map(|s| s.0.label()), span.map(|s| s.1.label())),
            WeeksMode::Active => (
                result.series.first().map(|w| w.label.clone()),
                result.series.last().map(|w| w.label.clone()),
            ),
        };
        let (region, bbox, match_) = match &self.area {
            Area::All => (None, None, None),
            Area::Region(r) => (Some(r.clone()), None, None),
            Area::BBox(b, m) => (None, Some(*b), Some(*m)),
        };
        Ok(WeeklyOut {
            region,
            bbox,
            match_,
            from_week,
            to_week,
            result,
        })
    }
}

/// Average trips per week for a region, a box (with `match`) or everything; exact.
#[utoipa::path(get, path = "/api/v1/trips/weekly-average", params(WeeklyQuery),
    responses((status = 200, body = WeeklyOut), (status = 400, body = ProblemDoc, content_type = "application/problem+json", description = "a malformed parameter, named in `param`")))]
async fn weekly_average(
    State(ctx): State<Ctx>,
    ApiQuery(q): ApiQuery<WeeklyQuery>,
) -> Result<Json<WeeklyOut>, ApiError> {
    let req = WeeklyRequest::parse(&q)?;
    let out = ctx.db.read_async(move |c| req.run(c)).await?;
    Ok(Json(out))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CountsQuery {
    /// `region` (default) or `datasource`.
    #[param(value_type = Option<CountColumn>)]
    pub by: Option<String>,
}

/// What trips can be counted by (`/api/v1/trips/counts?by=`, `/vehicles/{column}/count`);
/// the parameters' schema, read through [`count_by`].
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum CountColumn {
    Region,
    Datasource,
}

#[derive(Serialize, ToSchema)]
pub struct CountJson {
    pub name: String,
    pub trips: u64,
}

pub fn count_by(param: &str, v: &str) -> Result<CountBy, ApiError> {
    match v {
        "region" => Ok(CountBy::Region),
        "datasource" => Ok(CountBy::Datasource),
        o => Err(ApiError::bad_param(
            param,
            format!("`{o}` cannot be counted; expected region or datasource"),
        )),
    }
}

/// Trip counts per region or datasource, largest first.
#[utoipa::path(get, path = "/api/v1/trips/counts", params(CountsQuery),
    responses((status = 200, body = [CountJson]), (status = 400, body = ProblemDoc, content_type = "application/problem+json", description = "a malformed parameter, named in `param`")))]
async fn counts(
    State(ctx): State<Ctx>,
    ApiQuery(q): ApiQuery<CountsQuery>,
) -> Result<Json<Vec<CountJson>>, ApiError> {
    let by = count_by("by", q.by.as_deref().unwrap_or("region"))?;
    let rows = ctx.db.read_async(move |c| store::counts(c, by)).await?;
    Ok(Json(
        rows.into_iter()
            .map(|(name, trips)| CountJson { name, trips })
            .collect(),
    ))
}
