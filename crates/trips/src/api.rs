//! Native routes under `/api/v1/trips/…`: trips (filters, cursor pagination), one trip,
//! groups and their trips, weekly averages (region or box), counts. Ingestion routes
//! (inbox, uploads, files) are the platform's generic ones for this domain.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sluice_core::http::{csv_response, ApiQuery, Format, Page, ProblemDoc};
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

/// A real Gregorian day `YYYY-MM-DD` (years 0000..=9999, leap years included), the part of
/// [`TIME_PATTERN`] before the time; also the compat `date` parameter's grammar.
pub const DAY_GRAMMAR: &str = r"([0-9]{4}-((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8]))|([0-9]{2}(0[48]|[2468][048]|[13579][26])|([02468][048]|[13579][26])00)-02-29)";

/// The grammar of the native time parameters (`from`, `to`), as their OpenAPI pattern: a
/// day, optionally followed by `T` or a space, `HH:MM`, optional `:SS` with an optional
/// fraction of 1..9 digits, and an optional offset `Z` or `±HH:MM`; no offset is UTC.
/// [`parse_time`] accepts exactly these texts.
pub const TIME_PATTERN: &str = r"^([0-9]{4}-((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8]))|([0-9]{2}(0[48]|[2468][048]|[13579][26])|([02468][048]|[13579][26])00)-02-29)([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,9})?)?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?)?$";

/// The number written by the ASCII digits `b[r]`, or `None` if any is not a digit (or `r` is
/// past the end).
fn digits_at(b: &[u8], r: std::ops::Range<usize>) -> Option<u32> {
    b.get(r)?.iter().try_fold(0u32, |n, &c| {
        c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
    })
}

/// A real `YYYY-MM-DD` day ([`DAY_GRAMMAR`]).
pub fn parse_day(s: &str) -> Option<chrono::NaiveDate> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year = i32::try_from(digits_at(b, 0..4)?).ok()?;
    chrono::NaiveDate::from_ymd_opt(year, digits_at(b, 5..7)?, digits_at(b, 8..10)?)
}

/// A time of [`TIME_PATTERN`], to the second (a fraction is dropped: times are stored in
/// whole seconds, so `from=…:05.5` and `from=…:05` select the same trips).
pub fn parse_time(s: &str) -> Option<Timestamp> {
    let b = s.as_bytes();
    let day = parse_day(s.get(..10)?)?;
    let Some(rest) = b.get(10..).filter(|r| !r.is_empty()) else {
        return Some(Timestamp::from_secs(
            day.and_time(chrono::NaiveTime::MIN).and_utc().timestamp(),
        ));
    };
    if !matches!(rest[0], b'T' | b' ') || rest.get(3) != Some(&b':') {
        return None;
    }
    let (hour, minute) = (digits_at(rest, 1..3)?, digits_at(rest, 4..6)?);
    let mut second = 0;
    let mut at = 6;
    if rest.get(at) == Some(&b':') {
        second = digits_at(rest, at + 1..at + 3)?;
        at += 3;
        if rest.get(at) == Some(&b'.') {
            let n = rest[at + 1..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
            if !(1..=9).contains(&n) {
                return None;
            }
            at += 1 + n;
        }
    }
    let offset = match rest.get(at..)? {
        [] | [b'Z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (h, m) = (digits_at(&[*h1, *h2], 0..2)?, digits_at(&[*m1, *m2], 0..2)?);
            if h > 23 || m > 59 {
                return None;
            }
            let secs = i64::from(h * 3600 + m * 60);
            if *sign == b'-' {
                -secs
            } else {
                secs
            }
        }
        _ => return None,
    };
    let time = chrono::NaiveTime::from_hms_opt(hour, minute, second)?;
    Some(Timestamp::from_secs(
        day.and_time(time).and_utc().timestamp() - offset,
    ))
}

/// A time parameter ([`TIME_PATTERN`]), or a 400 naming it.
pub fn time_param(name: &str, v: &Option<String>) -> Result<Option<Timestamp>, ApiError> {
    v.as_deref()
        .map(|s| {
            parse_time(s).ok_or_else(|| {
                ApiError::bad_param(
                    name,
                    format!(
                        "`{}` is not a time; expected YYYY-MM-DD, optionally with THH:MM[:SS[.fraction]] and Z or ±HH:MM (UTC without one)",
                        s.escape_debug()
                    ),
                )
            })
        })
        .transpose()
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TripsQuery {
    pub region: Option<String>,
    pub datasource: Option<String>,
    /// Inclusive start: `YYYY-MM-DD[THH:MM[:SS[.fraction]]][Z|±HH:MM]` (`T` or a space;
    /// UTC without an offset).
    #[param(
        pattern = r"^([0-9]{4}-((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8]))|([0-9]{2}(0[48]|[2468][048]|[13579][26])|([02468][048]|[13579][26])00)-02-29)([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,9})?)?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?)?$"
    )]
    pub from: Option<String>,
    /// Exclusive end, the same form.
    #[param(
        pattern = r"^([0-9]{4}-((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8]))|([0-9]{2}(0[48]|[2468][048]|[13579][26])|([02468][048]|[13579][26])00)-02-29)([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,9})?)?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?)?$"
    )]
    pub to: Option<String>,
    /// Cursor: only trips with a larger id.
    #[param(minimum = 0, maximum = 9007199254740991.0)]
    pub after: Option<i64>,
    /// 1..=1000, default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// `json` (default) or `csv`; without it, `Accept: text/csv` asks for CSV.
    #[param(value_type = Option<Format>, inline)]
    pub format: Option<String>,
}

/// Trips, in id order, with filters and cursor pagination; as CSV, the same page.
#[utoipa::path(get, path = "/api/v1/trips/trips", params(TripsQuery),
    responses((status = 200, description = "a page of trips (JSON), or the page as CSV",
            content((TripPage = "application/json"), (String = "text/csv"))), (status = 400, body = ProblemDoc, content_type = "application/problem+json", description = "a malformed parameter, named in `param`")))]
async fn list_trips(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<TripsQuery>,
) -> Result<Response, ApiError> {
    let format = Format::negotiate(q.format.as_deref(), &headers)?;
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
    let items = store::read_async(&ctx.db, move |c| store::trips(c, &f)).await?;
    let page = page(items, limit);
    if format == Format::Csv {
        let header = [
            "id",
            "region",
            "datasource",
            "datetime",
            "origin_lon",
            "origin_lat",
            "destination_lon",
            "destination_lat",
        ];
        let rows = page.items.into_iter().map(|t| {
            vec![
                t.id.to_string(),
                t.region,
                t.datasource,
                t.datetime,
                t.origin[0].to_string(),
                t.origin[1].to_string(),
                t.destination[0].to_string(),
                t.destination[1].to_string(),
            ]
        });
        return Ok(csv_response("trips.csv", &header, rows));
    }
    Ok(Json(page).into_response())
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
    let t = store::read_async(&ctx.db, move |c| store::trip(c, id)).await?;
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
    let groups = store::read_async(&ctx.db, move |c| {
        store::groups(c, cfg, q.region.as_deref(), min_size, limit, offset)
    })
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
    let g = store::read_async(&ctx.db, move |c| store::group(c, cfg, id)).await?;
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
    let items = store::read_async(&ctx.db, move |c| {
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
    /// A region name; with `bbox`, the trips of the region that match the box (read trip by
    /// trip: exact, slower than either alone). Neither: every trip.
    pub region: Option<String>,
    /// `minLon,minLat,maxLon,maxLat`, inclusive, in plain decimal degrees; the corners may
    /// come in either order. With `region`: the trips of the region that match the box.
    #[param(
        pattern = r"^-?(180(\.0+)?|(1[0-7][0-9]|[1-9]?[0-9])(\.[0-9]+)?),-?(90(\.0+)?|[1-8]?[0-9](\.[0-9]+)?),-?(180(\.0+)?|(1[0-7][0-9]|[1-9]?[0-9])(\.[0-9]+)?),-?(90(\.0+)?|[1-8]?[0-9](\.[0-9]+)?)$"
    )]
    pub bbox: Option<String>,
    /// Which ends of a trip must lie in `bbox`: `origin` (default) | `destination` | `both` |
    /// `either`. Without `bbox` every trip matches and this has no effect.
    #[serde(rename = "match")]
    #[param(rename = "match", value_type = Option<Match>)]
    pub match_: Option<String>,
    /// `active` (default: weeks with at least one trip) | `span` (every week of the range).
    #[param(value_type = Option<WeeksMode>)]
    pub weeks: Option<String>,
    /// Only ISO weeks from the one holding this time (the form of `/trips`' `from`).
    #[param(
        pattern = r"^([0-9]{4}-((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8]))|([0-9]{2}(0[48]|[2468][048]|[13579][26])|([02468][048]|[13579][26])00)-02-29)([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,9})?)?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?)?$"
    )]
    pub from: Option<String>,
    /// Only ISO weeks up to the one holding this time; before `from`'s week: no weeks.
    #[param(
        pattern = r"^([0-9]{4}-((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8]))|([0-9]{2}(0[48]|[2468][048]|[13579][26])|([02468][048]|[13579][26])00)-02-29)([T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,9})?)?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?)?$"
    )]
    pub to: Option<String>,
    /// `json` (default) or `csv` (the per-week series); without it, `Accept: text/csv` asks for CSV.
    #[param(value_type = Option<Format>, inline)]
    pub format: Option<String>,
}

/// The area of a weekly average.
#[derive(Clone, Debug, PartialEq)]
pub enum Area {
    All,
    Region(String),
    BBox(BBox, Match),
    /// The trips of a region that match a box.
    RegionBBox(String, BBox, Match),
}

fn bbox_param(b: &str) -> Result<BBox, ApiError> {
    BBox::parse(b).map_err(|e| ApiError::bad_param("bbox", e))
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
            (Some(r), Some(b)) => Area::RegionBBox(r.clone(), bbox_param(b)?, m),
            (Some(r), None) => Area::Region(r.clone()),
            (None, Some(b)) => Area::BBox(bbox_param(b)?, m),
            (None, None) => Area::All,
        };
        let from = time_param("from", &q.from)?.map(Week::of);
        let to = time_param("to", &q.to)?.map(Week::of);
        Ok(WeeklyRequest {
            area,
            mode,
            range: WeekRange { from, to },
        })
    }

    /// Runs the request on a read connection.
    pub fn run(&self, c: &mut dyn store::Sql) -> Result<WeeklyOut, ApiError> {
        let counts = match &self.area {
            Area::All => store::weekly_region(c, None, self.range)?,
            Area::Region(r) => store::weekly_region(c, Some(r), self.range)?,
            Area::BBox(b, m) => store::weekly_bbox(c, b, *m, self.range)?,
            Area::RegionBBox(r, b, m) => store::weekly_region_bbox(c, r, b, *m, self.range)?,
        };
        let data = store::dataset_weeks(c)?;
        let span = match (self.range.from, self.range.to, data) {
            // `to` before `from`: a range without weeks.
            (Some(a), Some(b), _) if a > b => None,
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
            Area::RegionBBox(r, b, m) => (Some(r.clone()), Some(*b), Some(*m)),
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

/// Average trips per week for a region, a box (with `match`) or everything; exact. As CSV,
/// the per-week series it averages.
#[utoipa::path(get, path = "/api/v1/trips/weekly-average", params(WeeklyQuery),
    responses((status = 200, description = "the average (JSON), or its weeks as CSV",
            content((WeeklyOut = "application/json"), (String = "text/csv"))), (status = 400, body = ProblemDoc, content_type = "application/problem+json", description = "a malformed parameter, named in `param`")))]
async fn weekly_average(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<WeeklyQuery>,
) -> Result<Response, ApiError> {
    let format = Format::negotiate(q.format.as_deref(), &headers)?;
    let req = WeeklyRequest::parse(&q)?;
    let out = store::read_async(&ctx.db, move |c| req.run(c)).await?;
    if format == Format::Csv {
        let header = ["year", "week", "label", "week_start", "trips"];
        let rows = out.result.series.into_iter().map(|w| {
            vec![
                w.year.to_string(),
                w.week.to_string(),
                w.label,
                w.week_start,
                w.trips.to_string(),
            ]
        });
        return Ok(csv_response("weekly-average.csv", &header, rows));
    }
    Ok(Json(out).into_response())
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
    let rows = store::read_async(&ctx.db, move |c| store::counts(c, by)).await?;
    Ok(Json(
        rows.into_iter()
            .map(|(name, trips)| CountJson { name, trips })
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;
    use rand::{Rng, SeedableRng};

    /// A random text close to the time grammar: a day and time from pieces around the
    /// grammar's edges (month and day bounds, leap days, 24:00, 60 seconds, 10-digit
    /// fractions, lower-case letters, offsets without a colon), sometimes mutated by an edit.
    fn near_time(rng: &mut impl Rng) -> String {
        use crate::testgen::pick;
        let year = pick(
            rng,
            &[
                "0000", "1900", "1970", "2000", "2018", "2023", "2024", "2100", "2400", "9999",
                "999", "20180",
            ],
        );
        let month = format!("{:02}", rng.random_range(0..=13));
        let day = if rng.random_bool(0.5) {
            format!("{:02}", rng.random_range(0..=32))
        } else {
            pick(rng, &["28", "29", "30", "31", "1"]).to_owned()
        };
        let mut t = format!("{year}-{month}-{day}");
        if rng.random_bool(0.7) {
            t.push_str(pick(rng, &["T", "T", " ", "t", "_"]));
            t.push_str(pick(rng, &["00", "09", "23", "24", "9"]));
            t.push(':');
            t.push_str(pick(rng, &["00", "30", "59", "60"]));
            if rng.random_bool(0.6) {
                t.push(':');
                t.push_str(pick(rng, &["00", "07", "59", "60"]));
                if rng.random_bool(0.5) {
                    t.push_str(pick(rng, &[".", ".5", ".123456789", ".1234567890"]));
                }
            }
            t.push_str(pick(
                rng,
                &[
                    "", "", "Z", "z", "+00:00", "-23:59", "+05:30", "+24:00", "+05:60", "+0530",
                    " UTC",
                ],
            ));
        } else if rng.random_bool(0.1) {
            t.push('Z');
        }
        crate::testgen::maybe_edit(rng, t, b"0123456789-:T .Z+")
    }

    /// What chrono makes of a text of the grammar, completed to RFC 3339.
    fn chrono_secs(t: &str) -> i64 {
        let mut full = t.replacen(' ', "T", 1);
        if full.len() == 10 {
            full.push_str("T00:00");
        }
        let offset_at = full[11..]
            .find(['Z', '+', '-'])
            .map_or(full.len(), |i| i + 11);
        let (time, offset) = full.split_at(offset_at);
        let seconds = if time.len() == 16 { ":00" } else { "" };
        let offset = if offset.is_empty() { "Z" } else { offset };
        let rfc = format!("{time}{seconds}{offset}");
        DateTime::parse_from_rfc3339(&rfc)
            .unwrap_or_else(|e| panic!("{rfc}: {e}"))
            .timestamp()
    }

    #[test]
    fn times_are_exactly_the_time_pattern() {
        let re = regex::Regex::new(TIME_PATTERN).unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let (mut valid, mut invalid) = (0, 0);
        for _ in 0..200_000 {
            let t = near_time(&mut rng);
            let parsed = parse_time(&t);
            assert_eq!(re.is_match(&t), parsed.is_some(), "{t:?}: {parsed:?}");
            match parsed {
                Some(ts) => {
                    valid += 1;
                    assert_eq!(ts.secs(), chrono_secs(&t), "{t}");
                }
                None => invalid += 1,
            }
        }
        // Both sides of the grammar were exercised in quantity.
        assert!(
            valid > 10_000 && invalid > 10_000,
            "{valid} valid, {invalid} invalid"
        );
    }

    #[test]
    fn every_day_of_the_day_grammar_is_a_real_day() {
        let re = regex::Regex::new(&format!("^{DAY_GRAMMAR}$")).unwrap();
        for y in (0..=2404).chain([9999]) {
            for m in 0..=13 {
                for d in 0..=32 {
                    let t = format!("{y:04}-{m:02}-{d:02}");
                    let real = chrono::NaiveDate::from_ymd_opt(y, m, d).is_some();
                    assert_eq!(re.is_match(&t), real, "{t}");
                    assert_eq!(parse_day(&t).is_some(), real, "{t}");
                }
            }
        }
    }

    #[test]
    fn the_time_pattern_starts_with_the_day_grammar() {
        assert!(TIME_PATTERN.starts_with(&format!("^{DAY_GRAMMAR}(")));
    }

    #[test]
    fn the_patterns_in_the_document_are_the_checked_ones() {
        let doc = serde_json::to_string(&TripsApi::openapi()).unwrap();
        for p in [TIME_PATTERN, engine::BBOX_PATTERN] {
            let quoted = serde_json::to_string(p).unwrap();
            assert!(doc.contains(&quoted), "{p} missing from the document");
        }
    }
}
