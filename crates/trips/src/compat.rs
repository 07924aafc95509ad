//! The replaced Flask system's routes, answered as it answered them (compat.md), so that its
//! clients keep working: `/vehicles` (filters, streamed), `/vehicles/{id}` (0-based ids),
//! `/vehicles/{column}/count`, weekly trips and averages per region, `POST /vehicles`
//! (`Ingestion Started`) and the ingestion status in its three shapes, as a snapshot or, with
//! `Accept: text/event-stream`, pushed as it changes. Every answer maps the result of the
//! native queries (store functions, [`WeeklyRequest`]) into the original's shapes.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use sluice_core::http::{ApiQuery, ProblemDoc, SseEvent};
use sluice_core::jobs::{FileResult, FileStatus, JobFilter, JobState};
use sluice_core::{ApiError, Ctx, FileIngest, Job, JobId};
use utoipa::{IntoParams, OpenApi, ToSchema};

use crate::api::{count_by, parse_day, Area, CountColumn, WeeklyRequest};
use crate::engine::WeeksMode;
use crate::ingest::{CURRENT_FILE, DOMAIN, LEAD_TIMES};
use crate::parse::Timestamp;
use crate::store::{self, CoordPrefix, CountBy, TripFilter, TripOut, WeekRange};

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
    components(schemas(
        Vehicle,
        VehicleList,
        ColumnCount,
        ColumnCounts,
        WeeklyTrips,
        WeeklyTripsList,
        WeeklyAvg,
        WeeklyAvgList,
        IngestStatus,
        FileOutcome,
        ProblemDoc,
        SseEvent
    ))
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

/// Flask's rendering of a datetime in JSON (RFC 1123, always `GMT`).
const HTTP_DATE: &str = "%a, %d %b %Y %H:%M:%S GMT";

/// A trip as the replaced system showed it: its 0-based id, the time as Flask printed it and
/// the coordinates as text. Keys in Flask's (sorted) order.
#[derive(Serialize, ToSchema)]
pub struct Vehicle {
    pub datasource: String,
    /// As Flask printed it: `Mon, 21 May 2018 02:54:04 GMT`.
    #[schema(example = "Mon, 21 May 2018 02:54:04 GMT")]
    pub datetime: String,
    /// Longitude, the shortest text that reads back as the stored value.
    #[schema(example = "7.720368637535126")]
    pub destination_coord_point_x: String,
    #[schema(example = "45.06782385393849")]
    pub destination_coord_point_y: String,
    /// 0-based, in input order.
    #[schema(minimum = 0)]
    pub id: i64,
    #[schema(example = "7.672837913286881")]
    pub origin_coord_point_x: String,
    #[schema(example = "44.9957109242058")]
    pub origin_coord_point_y: String,
    pub region: String,
}

impl From<TripOut> for Vehicle {
    fn from(t: TripOut) -> Self {
        Vehicle {
            datasource: t.datasource,
            datetime: t.ts.to_datetime().format(HTTP_DATE).to_string(),
            destination_coord_point_x: t.destination_lon.to_string(),
            destination_coord_point_y: t.destination_lat.to_string(),
            id: t.id - 1,
            origin_coord_point_x: t.origin_lon.to_string(),
            origin_coord_point_y: t.origin_lat.to_string(),
            region: t.region,
        }
    }
}

/// The body of `GET /vehicles` (streamed).
#[derive(ToSchema)]
pub struct VehicleList {
    pub data: Vec<Vehicle>,
}

/// The replaced system's filters. As there, an empty value is no filter; both spellings of
/// each coordinate are accepted, and both must match when both are given.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct VehiclesQuery {
    pub region: Option<String>,
    pub datasource: Option<String>,
    /// Origin longitude: trips whose longitude's text starts with this (`7.67283791328688`
    /// finds `7.672837913286881`).
    #[param(pattern = r"^(-?[0-9]+(\.[0-9]*)?)?$")]
    pub origin_coord_x: Option<String>,
    /// Same as `origin_coord_x`.
    #[param(pattern = r"^(-?[0-9]+(\.[0-9]*)?)?$")]
    pub origin_coord_point_x: Option<String>,
    /// Origin latitude, a prefix of its text.
    #[param(pattern = r"^(-?[0-9]+(\.[0-9]*)?)?$")]
    pub origin_coord_y: Option<String>,
    /// Same as `origin_coord_y`.
    #[param(pattern = r"^(-?[0-9]+(\.[0-9]*)?)?$")]
    pub origin_coord_point_y: Option<String>,
    /// Destination longitude, a prefix of its text.
    #[param(pattern = r"^(-?[0-9]+(\.[0-9]*)?)?$")]
    pub destination_coord_x: Option<String>,
    /// Same as `destination_coord_x`.
    #[param(pattern = r"^(-?[0-9]+(\.[0-9]*)?)?$")]
    pub destination_coord_point_x: Option<String>,
    /// Destination latitude, a prefix of its text.
    #[param(pattern = r"^(-?[0-9]+(\.[0-9]*)?)?$")]
    pub destination_coord_y: Option<String>,
    /// Same as `destination_coord_y`.
    #[param(pattern = r"^(-?[0-9]+(\.[0-9]*)?)?$")]
    pub destination_coord_point_y: Option<String>,
    /// `YYYY-MM-DD`: trips of that UTC day.
    #[param(
        pattern = r"^(|([0-9]{4}-((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8]))|([0-9]{2}(0[48]|[2468][048]|[13579][26])|([02468][048]|[13579][26])00)-02-29))$"
    )]
    pub date: Option<String>,
    /// Most trips answered, default 10, no upper bound (the answer streams).
    // `u128` only for the schema: an integer without a `format` bounding it.
    #[param(value_type = Option<u128>, minimum = 0)]
    pub limit: Option<String>,
}

/// `Some` unless empty (the original's `if value:`).
fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.is_empty())
}

/// A coordinate prefix (`-?digits[.digits]`, the parameter's pattern), or a 400 naming
/// `param`.
fn coord_param(param: &str, v: &Option<String>) -> Result<Option<String>, ApiError> {
    let Some(s) = given(v) else {
        return Ok(None);
    };
    let digits = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let ok = !int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit());
    if !ok {
        return Err(ApiError::bad_param(
            param,
            format!("`{s}` is not the start of a coordinate; expected digits like -7.6728"),
        ));
    }
    Ok(Some(s.to_owned()))
}

/// Both spellings of one coordinate: the longer prefix when one extends the other; `Err`
/// when they contradict (no trip can match).
fn one_coord(
    (a, b): (&str, &str),
    q: (&Option<String>, &Option<String>),
) -> Result<Result<Option<CoordPrefix>, ()>, ApiError> {
    Ok(match (coord_param(a, q.0)?, coord_param(b, q.1)?) {
        (None, None) => Ok(None),
        (Some(p), None) | (None, Some(p)) => Ok(Some(CoordPrefix::new(&p))),
        (Some(p), Some(r)) if p.starts_with(&r) => Ok(Some(CoordPrefix::new(&p))),
        (Some(p), Some(r)) if r.starts_with(&p) => Ok(Some(CoordPrefix::new(&r))),
        _ => Err(()),
    })
}

/// A non-negative integer in decimal digits; past `u64` is as good as unbounded.
fn count_param(param: &str, s: &str) -> Result<u64, ApiError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::bad_param(
            param,
            format!(
                "`{}` is not a {param}; expected a non-negative integer",
                s.escape_debug()
            ),
        ));
    }
    Ok(s.parse().unwrap_or(u64::MAX))
}

impl VehiclesQuery {
    /// The listing's filter and limit; `None` when the filters contradict each other.
    fn parse(&self) -> Result<(Option<TripFilter>, u64), ApiError> {
        let limit = match &self.limit {
            None => 10,
            Some(l) => count_param("limit", l)?,
        };
        let (from, to) = match given(&self.date) {
            None => (None, None),
            Some(d) => {
                let start = parse_day(d)
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
                    .ok_or_else(|| {
                        ApiError::bad_param(
                            "date",
                            format!("`{d}` is not a date; expected YYYY-MM-DD"),
                        )
                    })?
                    .and_utc()
                    .timestamp();
                (
                    Some(Timestamp::from_secs(start)),
                    Some(Timestamp::from_secs(start + 86_400)),
                )
            }
        };
        let (Ok(ox), Ok(oy), Ok(dx), Ok(dy)) = (
            one_coord(
                ("origin_coord_x", "origin_coord_point_x"),
                (&self.origin_coord_x, &self.origin_coord_point_x),
            )?,
            one_coord(
                ("origin_coord_y", "origin_coord_point_y"),
                (&self.origin_coord_y, &self.origin_coord_point_y),
            )?,
            one_coord(
                ("destination_coord_x", "destination_coord_point_x"),
                (&self.destination_coord_x, &self.destination_coord_point_x),
            )?,
            one_coord(
                ("destination_coord_y", "destination_coord_point_y"),
                (&self.destination_coord_y, &self.destination_coord_point_y),
            )?,
        ) else {
            return Ok((None, limit));
        };
        let filter = TripFilter {
            region: given(&self.region).map(str::to_owned),
            datasource: given(&self.datasource).map(str::to_owned),
            origin: [ox, oy],
            destination: [dx, dy],
            from,
            to,
            after: None,
            limit: 0,
        };
        Ok((Some(filter), limit))
    }
}

/// Trips read from the store per streamed chunk of a listing.
const PAGE_ROWS: u64 = 4096;

/// The listing as a streamed `{"data":[…]}`, read page by page through the id cursor, so
/// that memory does not grow with `limit`.
fn listing(ctx: Ctx, filter: Option<TripFilter>, limit: u64) -> Body {
    struct Pager {
        ctx: Ctx,
        filter: Option<TripFilter>,
        left: u64,
        rows_sent: bool,
        opened: bool,
    }
    let pager = Pager {
        ctx,
        filter,
        left: limit,
        rows_sent: false,
        opened: false,
    };
    let pages = futures::stream::unfold(pager, |mut p| async move {
        if p.opened && p.filter.is_none() {
            return None;
        }
        let mut buf = Vec::new();
        if !p.opened {
            p.opened = true;
            buf.extend_from_slice(b"{\"data\":[");
        }
        let page = p.left.min(PAGE_ROWS);
        let rows = match p.filter.clone() {
            Some(f) if page > 0 => {
                let f = TripFilter {
                    limit: u32::try_from(page).unwrap_or(u32::MAX),
                    ..f
                };
                match store::read_async(&p.ctx.db, move |c| store::trips(c, &f)).await {
                    Ok(rows) => rows,
                    Err(e) => {
                        p.filter = None;
                        return Some((Err(std::io::Error::other(e)), p));
                    }
                }
            }
            _ => Vec::new(),
        };
        let last = rows.last().map(|t| t.id);
        let n = rows.len() as u64;
        for t in rows {
            if p.rows_sent {
                buf.push(b',');
            }
            p.rows_sent = true;
            if let Err(e) = serde_json::to_writer(&mut buf, &Vehicle::from(t)) {
                p.filter = None;
                return Some((Err(std::io::Error::other(e)), p));
            }
        }
        p.left -= n;
        match &mut p.filter {
            Some(f) if n == page && p.left > 0 => f.after = last,
            _ => {
                buf.extend_from_slice(b"]}");
                p.filter = None;
            }
        }
        Some((Ok::<_, std::io::Error>(Bytes::from(buf)), p))
    });
    Body::from_stream(pages)
}

/// Trips with the replaced system's filters, in id order.
#[utoipa::path(get, path = "/vehicles", params(VehiclesQuery),
    responses(
        (status = 200, body = VehicleList, description = "the trips (streamed)"),
        (status = 400, body = ProblemDoc, content_type = "application/problem+json",
         description = "a malformed parameter, named in `param`")))]
async fn vehicles(
    State(s): State<CompatState>,
    ApiQuery(q): ApiQuery<VehiclesQuery>,
) -> Result<Response, ApiError> {
    let (filter, limit) = q.parse()?;
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        listing(s.ctx, filter, limit),
    )
        .into_response())
}

/// The native id of a compat id (0-based, all digits); `None` past the last possible id.
fn native_id(s: &str) -> Result<Option<i64>, ApiError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::bad_param(
            "id",
            format!(
                "`{}` is not a vehicle id; expected a non-negative integer",
                s.escape_debug()
            ),
        ));
    }
    Ok(s.parse::<i64>().ok().and_then(|i| i.checked_add(1)))
}

/// One trip by its 0-based id, or 404.
#[utoipa::path(get, path = "/vehicles/{id}",
    // `u128`: an integer without a `format` bounding it; past the last trip is a 404.
    params(("id" = u128, Path, minimum = 0, description = "0-based, in input order")),
    responses(
        (status = 200, body = Vehicle),
        (status = 400, body = ProblemDoc, content_type = "application/problem+json",
         description = "not an id"),
        (status = 404, body = ProblemDoc, content_type = "application/problem+json",
         description = "no such trip")))]
async fn vehicle(
    State(s): State<CompatState>,
    Path(id): Path<String>,
) -> Result<Json<Vehicle>, ApiError> {
    let not_found = || ApiError::not_found(format!("no vehicle trip with id {id}"));
    let Some(native) = native_id(&id)? else {
        return Err(not_found());
    };
    let t = store::read_async(&s.ctx.db, move |c| store::trip(c, native)).await?;
    t.map(|t| Json(t.into())).ok_or_else(not_found)
}

/// A count by `region` or `datasource`: the name is under the column's key.
#[derive(Serialize, ToSchema)]
pub struct ColumnCount {
    pub count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub datasource: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ColumnCounts {
    pub data: Vec<ColumnCount>,
}

/// Trip counts by `region` or `datasource` (no other column), by name.
#[utoipa::path(get, path = "/vehicles/{column}/count",
    params(("column" = CountColumn, Path)),
    responses(
        (status = 200, body = ColumnCounts),
        (status = 400, body = ProblemDoc, content_type = "application/problem+json",
         description = "a column that cannot be counted")))]
async fn column_count(
    State(s): State<CompatState>,
    Path(column): Path<String>,
) -> Result<Json<ColumnCounts>, ApiError> {
    let by = count_by("column", &column)?;
    let mut rows = store::read_async(&s.ctx.db, move |c| store::counts(c, by)).await?;
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let data = rows
        .into_iter()
        .map(|(name, count)| {
            let (region, datasource) = match by {
                CountBy::Region => (Some(name), None),
                CountBy::Datasource => (None, Some(name)),
            };
            ColumnCount {
                count,
                datasource,
                region,
            }
        })
        .collect();
    Ok(Json(ColumnCounts { data }))
}

#[derive(Serialize, ToSchema)]
pub struct WeeklyTrips {
    pub freq_trip: u64,
    pub region: String,
    /// ISO week number.
    #[schema(minimum = 1, maximum = 53)]
    pub week_number: u32,
    /// ISO year of the week (the original ignored it).
    pub year: i32,
}

#[derive(Serialize, ToSchema)]
pub struct WeeklyTripsList {
    pub data: Vec<WeeklyTrips>,
}

/// Trips per region and ISO week, by week then region.
#[utoipa::path(get, path = "/vehicles/weekly_trips/region",
    responses((status = 200, body = WeeklyTripsList)))]
async fn weekly_trips(State(s): State<CompatState>) -> Result<Json<WeeklyTripsList>, ApiError> {
    let rows = store::read_async(&s.ctx.db, store::region_weeks).await?;
    let data = rows
        .into_iter()
        .map(|(region, w, n)| {
            let (year, week_number) = w.iso();
            WeeklyTrips {
                freq_trip: n,
                region,
                week_number,
                year,
            }
        })
        .collect();
    Ok(Json(WeeklyTripsList { data }))
}

#[derive(Serialize, ToSchema)]
pub struct WeeklyAvg {
    /// As Postgres printed `AVG(...)::text`: `"7.6000000000000000"`.
    #[schema(example = "7.6000000000000000")]
    pub freq_avg_weekly_trips: String,
    pub region: String,
}

#[derive(Serialize, ToSchema)]
pub struct WeeklyAvgList {
    pub data: Vec<WeeklyAvg>,
}

/// `sum / n` as Postgres' `numeric` division prints it: rounded half away from zero to the
/// scale `select_div_scale` picks, at least 16 significant digits (weights in base-10000
/// digits, as Postgres stores numerics).
pub fn pg_numeric_avg(sum: u64, n: u64) -> Option<String> {
    if n == 0 {
        return None;
    }
    // Weight and first base-10000 digit of an integer.
    let digits = |mut v: u64| {
        let mut weight = 0i64;
        while v >= 10_000 {
            v /= 10_000;
            weight += 1;
        }
        (weight, v)
    };
    let ((w1, f1), (w2, f2)) = (digits(sum), digits(n));
    let mut qweight = w1 - w2;
    if f1 <= f2 {
        qweight -= 1;
    }
    let scale = usize::try_from((16 - 4 * qweight).max(0)).unwrap_or(0);
    let (sum, n) = (u128::from(sum), u128::from(n));
    let mut int = sum / n;
    let mut rem = sum % n;
    let mut frac = Vec::with_capacity(scale + 1);
    for _ in 0..=scale {
        rem *= 10;
        frac.push((rem / n) as u8);
        rem %= n;
    }
    if frac.pop().is_some_and(|d| d >= 5) {
        let carry = frac.iter_mut().rev().all(|d| {
            *d = (*d + 1) % 10;
            *d == 0
        });
        if carry {
            int += 1;
        }
    }
    let mut out = int.to_string();
    if scale > 0 {
        out.push('.');
        out.extend(frac.iter().map(|d| char::from(b'0' + d)));
    }
    Some(out)
}

/// Average trips per active week, per region (the native weekly average of each region).
#[utoipa::path(get, path = "/vehicles/weekly_avg_trips/region",
    responses((status = 200, body = WeeklyAvgList)))]
async fn weekly_avg(State(s): State<CompatState>) -> Result<Json<WeeklyAvgList>, ApiError> {
    let data = store::read_async(&s.ctx.db, |c| {
        let mut data = Vec::new();
        for (region, _) in store::counts(c, CountBy::Region)? {
            let req = WeeklyRequest {
                area: Area::Region(region.clone()),
                mode: WeeksMode::Active,
                range: WeekRange::default(),
            };
            let out = req.run(c)?;
            if let Some(avg) = pg_numeric_avg(out.result.trips, out.result.weeks) {
                data.push(WeeklyAvg {
                    freq_avg_weekly_trips: avg,
                    region,
                });
            }
        }
        Ok::<_, ApiError>(data)
    })
    .await?;
    Ok(Json(WeeklyAvgList { data }))
}

/// Starts ingesting the CSV files of the trips inbox and answers at once, as the original
/// did, with `Ingestion Started`; `Location` names the job for clients that want it.
#[utoipa::path(post, path = "/vehicles",
    responses((status = 200, body = String, content_type = "text/html",
        description = "`Ingestion Started`",
        headers(("Location" = String, description = "the ingestion job, `/api/v1/jobs/{id}`")))))]
async fn start_ingest(State(s): State<CompatState>) -> Result<Response, ApiError> {
    let job = sluice_core::ingest::start_inbox_job(&s.ctx, s.ingest.clone(), None, None).await?;
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8".to_owned()),
            (header::LOCATION, format!("/api/v1/jobs/{}", job.id)),
        ],
        "Ingestion Started",
    )
        .into_response())
}

/// One input of an ingestion as the original reported it.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct FileOutcome {
    pub file: String,
    /// Python's `str(timedelta)`: `0:00:00.172140`; absent for a failed file.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "0:00:00.172140")]
    pub lead_time: Option<String>,
    /// Rows read; absent for a failed file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_rows: Option<u64>,
    /// `Successful Data Ingestion` or `Fail during Data Ingestion`.
    pub result: String,
}

/// The ingestion status in the original's three shapes: nothing ever ingested (`review`,
/// empty `details`); running (`start_time` as Flask printed it, `review` naming the file
/// being read); finished (`review` `Process Finished`, `start_time`/`end_time` as
/// `%m/%d/%Y, %H:%M:%S`, `lead_time`).
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct IngestStatus {
    /// Finished inputs.
    pub details: Vec<FileOutcome>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "09/03/2022, 20:45:15")]
    pub end_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "0:00:00.315056")]
    pub lead_time: Option<String>,
    #[schema(example = "Process Finished")]
    pub review: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "Sat, 03 Sep 2022 20:37:37 GMT")]
    pub start_time: Option<String>,
}

/// Python's `str(timedelta)` of a duration: `[D day[s], ]H:MM:SS[.ffffff]`.
pub fn py_timedelta(micros: u64) -> String {
    let (days, rest) = (micros / 86_400_000_000, micros % 86_400_000_000);
    let (secs, us) = (rest / 1_000_000, rest % 1_000_000);
    let mut out = match days {
        0 => String::new(),
        1 => "1 day, ".to_owned(),
        d => format!("{d} days, "),
    };
    out.push_str(&format!(
        "{}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    ));
    if us > 0 {
        out.push_str(&format!(".{us:06}"));
    }
    out
}

fn micros_between(a: DateTime<Utc>, b: DateTime<Utc>) -> u64 {
    u64::try_from((b - a).num_microseconds().unwrap_or(0)).unwrap_or(0)
}

const SUCCESS: &str = "Successful Data Ingestion";
const FAILURE: &str = "Fail during Data Ingestion";

fn outcome(f: &FileResult, job: &Job) -> FileOutcome {
    if f.status == FileStatus::Rejected {
        return FileOutcome {
            file: f.name.clone(),
            lead_time: None,
            num_rows: None,
            result: FAILURE.into(),
        };
    }
    let micros = job
        .summary
        .extra
        .get(LEAD_TIMES)
        .and_then(|t| t.get(&f.name))
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0);
    FileOutcome {
        file: f.name.clone(),
        lead_time: Some(py_timedelta(micros)),
        num_rows: Some(f.rows_accepted + f.rows_rejected),
        result: SUCCESS.into(),
    }
}

/// The status of the latest ingestion job (`None`: there never was one).
pub fn status_of(job: Option<&Job>) -> IngestStatus {
    let Some(job) = job else {
        return IngestStatus {
            details: Vec::new(),
            end_time: None,
            lead_time: None,
            review: "Nothing is being processed".into(),
            start_time: None,
        };
    };
    let mut details: Vec<FileOutcome> = job.summary.files.iter().map(|f| outcome(f, job)).collect();
    let current = job
        .summary
        .extra
        .get(CURRENT_FILE)
        .and_then(serde_json::Value::as_str)
        .filter(|name| !job.summary.files.iter().any(|f| f.name == *name));
    let started = job.started_at.unwrap_or(job.created_at);
    if !job.state.is_terminal() {
        return IngestStatus {
            details,
            end_time: None,
            lead_time: None,
            review: match current {
                Some(name) => format!("{name}: In progress.."),
                // The original's words between its start and its first file.
                None => "Data Ingestion in Progress.".into(),
            },
            start_time: Some(started.format(HTTP_DATE).to_string()),
        };
    }
    if job.state != JobState::Succeeded {
        if let Some(name) = current {
            details.push(FileOutcome {
                file: name.to_owned(),
                lead_time: None,
                num_rows: None,
                result: FAILURE.into(),
            });
        }
    }
    let ended = job.finished_at.unwrap_or(started);
    const FINISHED: &str = "%m/%d/%Y, %H:%M:%S";
    IngestStatus {
        details,
        end_time: Some(ended.format(FINISHED).to_string()),
        lead_time: Some(py_timedelta(micros_between(started, ended))),
        review: "Process Finished".into(),
        start_time: Some(started.format(FINISHED).to_string()),
    }
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

/// The state of the current or last ingestion. With `Accept: text/event-stream`: the same
/// objects pushed as they change, from the current one to the end of the running (or else
/// the next) ingestion.
#[utoipa::path(get, path = "/vehicles/ingest-data/status",
    responses((status = 200, description = "the status; an SSE stream of it with `Accept: text/event-stream`",
        content((IngestStatus = "application/json"), (SseEvent = "text/event-stream")))))]
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
    let first = status_of(latest.as_ref());
    if !wants_stream {
        return Ok(Json(first).into_response());
    }
    let followed: Option<JobId> = latest
        .as_ref()
        .filter(|j| !j.state.is_terminal())
        .map(|j| j.id);
    let ctx = s.ctx.clone();
    let jobs = tokio_stream::wrappers::BroadcastStream::new(rx).filter_map(move |e| {
        // A lagging subscriber lost events: the stored job is the news.
        let job = match e {
            Ok(e) => Some(e.job),
            Err(_) => latest_job(&ctx).ok().flatten(),
        };
        let ours = job.filter(|j| j.domain == DOMAIN && j.kind == "ingest");
        async move { ours }
    });
    struct Follow<S> {
        jobs: S,
        followed: Option<JobId>,
        last: IngestStatus,
        done: bool,
    }
    let follow = Follow {
        jobs: Box::pin(jobs),
        followed,
        last: first.clone(),
        done: false,
    };
    // Follow one job (the running one, else the next to appear) and end after its end.
    let changes = futures::stream::unfold(follow, |mut f| async move {
        if f.done {
            return None;
        }
        loop {
            let job = f.jobs.next().await?;
            if job.id != *f.followed.get_or_insert(job.id) {
                continue;
            }
            let status = status_of(Some(&job));
            f.done = job.state.is_terminal();
            if status != f.last || f.done {
                f.last = status.clone();
                return Some((status, f));
            }
        }
    });
    let stream = futures::stream::iter([first])
        .chain(changes)
        .map(|st| Ok::<_, Infallible>(event(&st)));
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(std::time::Duration::from_secs(15)))
        .into_response())
}

fn event(st: &IngestStatus) -> Event {
    Event::default()
        .json_data(st)
        .unwrap_or_else(|_| Event::default().comment("unserializable status"))
}

#[cfg(test)]
mod tests {
    use super::*;

    // The patterns of `VehiclesQuery`'s parameters, checked against the parsers below.
    /// A prefix of a coordinate's text (`LIKE 'value%'`); empty is no filter.
    const COORD_PATTERN: &str = r"^(-?[0-9]+(\.[0-9]*)?)?$";
    /// `YYYY-MM-DD`, a real Gregorian day (leap years included); empty is no filter.
    const DATE_PATTERN: &str = r"^(|([0-9]{4}-((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8]))|([0-9]{2}(0[48]|[2468][048]|[13579][26])|([02468][048]|[13579][26])00)-02-29))$";

    #[test]
    fn averages_print_as_postgres_numeric() {
        assert_eq!(pg_numeric_avg(38, 5), Some("7.6000000000000000".into()));
        assert_eq!(pg_numeric_avg(28, 5), Some("5.6000000000000000".into()));
        assert_eq!(pg_numeric_avg(3, 5), Some("0.60000000000000000000".into()));
        assert_eq!(pg_numeric_avg(20, 3), Some("6.6666666666666667".into()));
        assert_eq!(pg_numeric_avg(5, 5), Some("1.00000000000000000000".into()));
        assert_eq!(
            pg_numeric_avg(100_000, 7),
            Some("14285.714285714286".into())
        );
        assert_eq!(pg_numeric_avg(2, 3), Some("0.66666666666666666667".into()));
    }

    #[test]
    fn durations_print_as_python_timedelta() {
        assert_eq!(py_timedelta(172_140), "0:00:00.172140");
        assert_eq!(py_timedelta(0), "0:00:00");
        assert_eq!(py_timedelta(82_754_150), "0:01:22.754150");
        assert_eq!(py_timedelta(86_400_000_000 + 1), "1 day, 0:00:00.000001");
        assert_eq!(py_timedelta(2 * 86_400_000_000), "2 days, 0:00:00");
    }

    #[test]
    fn the_date_pattern_is_the_native_day_grammar() {
        assert_eq!(DATE_PATTERN, format!("^(|{})$", crate::api::DAY_GRAMMAR));
    }

    #[test]
    fn days_are_exactly_the_date_pattern() {
        let re = regex::Regex::new(DATE_PATTERN).unwrap();
        let mut texts = vec![String::new(), "2018-5-21".into(), "20180521".into()];
        for y in (0..=2404).chain([9999]) {
            for m in 0..=13 {
                for d in 0..=32 {
                    texts.push(format!("{y:04}-{m:02}-{d:02}"));
                }
            }
        }
        for t in texts {
            let accepted = t.is_empty() || parse_day(&t).is_some();
            assert_eq!(re.is_match(&t), accepted, "{t}");
        }
    }

    #[test]
    fn coordinates_are_exactly_the_coordinate_pattern() {
        let re = regex::Regex::new(COORD_PATTERN).unwrap();
        for t in [
            "",
            "7",
            "-7",
            "7.",
            "7.6",
            "-7.67283791328688",
            "0.0",
            "1234",
            ".5",
            "-",
            "7.6.1",
            "7a",
            "+7",
            " 7",
            "1e5",
            "-.5",
            "--7",
        ] {
            let accepted = coord_param("x", &Some(t.to_owned())).is_ok();
            assert_eq!(re.is_match(t), accepted, "{t:?}");
        }
    }

    #[test]
    fn the_patterns_in_the_document_are_the_checked_ones() {
        let doc = serde_json::to_string(&CompatApi::openapi()).unwrap();
        for p in [COORD_PATTERN, DATE_PATTERN] {
            let quoted = serde_json::to_string(p).unwrap();
            assert!(doc.contains(&quoted), "{p} missing from the document");
        }
    }
}
