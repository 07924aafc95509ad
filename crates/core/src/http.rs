//! HTTP conventions shared by all routes: `application/problem+json` errors whose `detail`
//! names the bad input, and extractors that answer bad query strings and bodies with them.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::db::{is_storage_full, DbError, STORAGE_FULL};

/// An error answered as RFC 9457 problem details.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub detail: String,
    /// The request parameter at fault, when there is one.
    pub param: Option<String>,
}

/// The problem+json body every error answers with, as the OpenAPI document describes it.
/// Reference it in `responses(...)` as
/// `(status = 400, body = Problem, content_type = "application/problem+json")`.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Problem)]
pub struct ProblemDoc {
    /// Always `about:blank`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The status' reason phrase.
    pub title: String,
    pub status: u16,
    /// What was wrong, naming the bad input.
    pub detail: String,
    /// The request parameter at fault, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub param: Option<String>,
}

/// The documented 400 answer, for `responses(...)`: a bad parameter or body, named in `param`.
#[derive(utoipa::IntoResponses)]
#[response(
    status = 400,
    description = "a bad parameter or body; `param` names it",
    content_type = "application/problem+json"
)]
pub struct BadRequest(pub ProblemDoc);

/// The documented 404 answer, for `responses(...)`.
#[derive(utoipa::IntoResponses)]
#[response(
    status = 404,
    description = "no such resource",
    content_type = "application/problem+json"
)]
pub struct NotFound(pub ProblemDoc);

/// One Server-Sent Event as the OpenAPI document describes the events of a
/// `text/event-stream` response (OpenAPI 3.1: the schema describes each event).
#[derive(Serialize, utoipa::ToSchema)]
pub struct SseEvent {
    /// The event name.
    pub event: Option<String>,
    /// The payload: one JSON object per event.
    pub data: String,
    pub id: Option<String>,
    pub retry: Option<u64>,
}

/// The content type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    title: &'a str,
    status: u16,
    detail: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    param: Option<&'a str>,
}

impl ApiError {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            detail: detail.into(),
            param: None,
        }
    }
    /// 400 about one parameter: `detail` should say what was expected.
    pub fn bad_param(param: &str, detail: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            detail: detail.into(),
            param: Some(param.to_owned()),
        }
    }
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, detail)
    }
    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, detail)
    }
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, detail)
    }
    /// 507 when `cause` says the disk (or `max_db_bytes`) is full, with the one message of
    /// that condition; otherwise [`ApiError::internal`].
    pub fn storage(cause: impl std::error::Error + 'static) -> Self {
        if is_storage_full(&cause) {
            tracing::warn!(cause = %cause, "storage full");
            Self::new(StatusCode::INSUFFICIENT_STORAGE, STORAGE_FULL)
        } else {
            Self::internal(cause)
        }
    }
    /// 500: the cause is logged, the client gets a generic message.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error; the server log has the cause",
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.status, self.detail)
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        ApiError::storage(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let title = self.status.canonical_reason().unwrap_or("Error");
        let body = serde_json::to_vec(&Problem {
            kind: "about:blank",
            title,
            status: self.status.as_u16(),
            detail: &self.detail,
            param: self.param.as_deref(),
        })
        .expect("problem serializes");
        (
            self.status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            body,
        )
            .into_response()
    }
}

/// The URLs a client may give for the server to call (webhooks, stream sources): `http` or
/// `https`; a host name whose labels start with a letter (so it never reads as an IP
/// address) or a dotted IPv4 address; an optional port from 1 to 65535; an optional path of
/// unreserved characters. [`is_http_url`] accepts exactly this language (and at most
/// [`MAX_URL_LEN`] bytes), every such URL parses, and the OpenAPI document states the same.
pub const HTTP_URL_PATTERN: &str = "^https?://(?:[A-Za-z](?:-?[A-Za-z0-9])*(?:\\.[A-Za-z](?:-?[A-Za-z0-9])*)*|(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9]))(?::(?:6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3}))?(?:/[A-Za-z0-9._~-]*)*$";

/// The longest URL taken.
pub const MAX_URL_LEN: usize = 2048;

/// Checks a URL the server will call against [`HTTP_URL_PATTERN`]; a 400 naming `param`.
pub fn http_url(param: &str, value: &str) -> Result<String, ApiError> {
    if value.len() <= MAX_URL_LEN && is_http_url(value) {
        Ok(value.to_owned())
    } else {
        Err(ApiError::bad_param(
            param,
            format!(
                "`{}` is not an http(s) URL of at most {MAX_URL_LEN} bytes; expected e.g. http://localhost:8080/hook",
                value.escape_debug()
            ),
        ))
    }
}

/// Whether `s` is in the language of [`HTTP_URL_PATTERN`].
pub fn is_http_url(s: &str) -> bool {
    let Some(rest) = s
        .strip_prefix("http://")
        .or_else(|| s.strip_prefix("https://"))
    else {
        return false;
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (host, port) = match authority.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    };
    let path_ok = path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._~-".contains(&b));
    let port_ok = port.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 5
            && !p.starts_with('0')
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u32>().is_ok_and(|n| (1..=65535).contains(&n))
    });
    path_ok && port_ok && (is_host_name(host) || is_dotted_ipv4(host))
}

/// Labels of letters, digits and single inner hyphens, each starting with a letter.
fn is_host_name(host: &str) -> bool {
    host.split('.').all(|label| {
        let b = label.as_bytes();
        b.first().is_some_and(u8::is_ascii_alphabetic)
            && b.last().is_some_and(u8::is_ascii_alphanumeric)
            && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
            && !label.contains("--")
    })
}

/// Four decimal octets from 0 to 255 without leading zeros.
fn is_dotted_ipv4(host: &str) -> bool {
    let octets: Vec<&str> = host.split('.').collect();
    octets.len() == 4
        && octets.iter().all(|o| {
            !o.is_empty()
                && o.len() <= 3
                && o.bytes().all(|b| b.is_ascii_digit())
                && (o.len() == 1 || !o.starts_with('0'))
                && o.parse::<u16>().is_ok_and(|n| n <= 255)
        })
}

/// OpenAPI schema of a URL checked by [`http_url`], for `schema_with =`.
pub fn http_url_schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::Type::String)
        .pattern(Some(HTTP_URL_PATTERN))
        .max_length(Some(MAX_URL_LEN))
        .description(Some("an absolute http:// or https:// URL"))
        .build()
}

/// [`http_url_schema`] that also admits `null` (an optional field of a JSON body).
pub fn nullable_http_url_schema() -> utoipa::openapi::Object {
    let mut o = http_url_schema();
    o.schema_type = [utoipa::openapi::Type::String, utoipa::openapi::Type::Null]
        .into_iter()
        .collect();
    o
}

/// Reads an optional JSON object body: empty, whitespace and `null` are `T::default()`, an
/// object is read into `T`, and anything else (serde would take `[…]` for a struct) is a 400.
pub fn optional_json_object<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let bad = |e: serde_json::Error| ApiError::bad_request(format!("invalid JSON body: {e}"));
    let value: serde_json::Value = serde_json::from_slice(body).map_err(bad)?;
    match value {
        serde_json::Value::Null => Ok(T::default()),
        serde_json::Value::Object(_) => serde_json::from_value(value).map_err(bad),
        _ => Err(ApiError::bad_request(
            "invalid JSON body: expected an object (or no body)",
        )),
    }
}

/// Deserializes an optional integer of a JSON body the way JSON Schema counts integers:
/// `5` and `5.0` alike (the document's `type: integer` admits both), anything with a fraction
/// or out of `T`'s range is an error. Use as `#[serde(default, deserialize_with =
/// "sluice_core::http::json_integer")]`.
pub fn json_integer<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: TryFrom<i128>,
{
    use serde::de::Error;
    let Some(n) = <Option<serde_json::Number> as serde::Deserialize>::deserialize(d)? else {
        return Ok(None);
    };
    let whole = if let Some(i) = n.as_i64() {
        Some(i128::from(i))
    } else if let Some(u) = n.as_u64() {
        Some(i128::from(u))
    } else {
        // Integral floats up to 2^63 fit; anything beyond is out of every range we take.
        n.as_f64()
            .filter(|f| f.fract() == 0.0 && f.abs() < 9.3e18)
            .map(|f| f as i128)
    };
    let whole = whole.ok_or_else(|| D::Error::custom(format!("{n} is not an integer")))?;
    T::try_from(whole)
        .map(Some)
        .map_err(|_| D::Error::custom(format!("{n} is out of range")))
}

/// `Query<T>` whose rejection is a problem+json 400 naming the parameter.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| ApiQuery(q.0))
            .map_err(|e: QueryRejection| ApiError::bad_request(e.body_text()))
    }
}

/// `Json<T>` whose rejection is a problem+json 4xx.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        axum::Json::<T>::from_request(req, state)
            .await
            .map(|j| ApiJson(j.0))
            .map_err(|e: JsonRejection| ApiError::new(e.status(), e.body_text()))
    }
}

/// Native list pagination: `limit` (clamped to a maximum) and `offset`.
#[derive(Clone, Copy, Debug, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    pub limit: Option<u32>,
    pub offset: Option<u64>,
}

impl Page {
    /// The limit to use: `default` when absent; a 400 above `max` or at 0.
    pub fn limit(&self, default: u32, max: u32) -> Result<u32, ApiError> {
        match self.limit {
            None => Ok(default),
            Some(0) => Err(ApiError::bad_param("limit", "limit must be at least 1")),
            Some(l) if l > max => Err(ApiError::bad_param(
                "limit",
                format!("limit must be at most {max}, got {l}"),
            )),
            Some(l) => Ok(l),
        }
    }
    pub fn offset(&self) -> u64 {
        self.offset.unwrap_or(0)
    }
}

/// The representation of a read route that can export: `?format=` decides; without it
/// `Accept: text/csv` (and no JSON in `Accept`) asks for CSV; JSON otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, utoipa::ToSchema)]
#[schema(as = ExportFormat, rename_all = "lowercase")]
pub enum Format {
    Json,
    Csv,
}

impl Format {
    pub fn negotiate(
        format: Option<&str>,
        headers: &axum::http::HeaderMap,
    ) -> Result<Format, ApiError> {
        match format {
            Some("json") => Ok(Format::Json),
            Some("csv") => Ok(Format::Csv),
            None | Some("") => {
                let accept = headers
                    .get_all(header::ACCEPT)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .flat_map(|v| v.split(','))
                    .map(|range| {
                        range
                            .split(';')
                            .next()
                            .unwrap_or("")
                            .trim()
                            .to_ascii_lowercase()
                    })
                    .collect::<Vec<_>>();
                let csv = accept.iter().any(|r| r == "text/csv");
                let json = accept.iter().any(|r| r == "application/json");
                Ok(if csv && !json {
                    Format::Csv
                } else {
                    Format::Json
                })
            }
            Some(other) => Err(ApiError::bad_param(
                "format",
                format!("unknown format `{other}`; expected json or csv"),
            )),
        }
    }
}

/// A CSV answer (RFC 4180, a header row first) offered for download as `file_name`.
pub fn csv_response<R, F>(file_name: &str, header: &[&str], rows: R) -> Response
where
    R: IntoIterator<Item = Vec<F>>,
    F: AsRef<[u8]>,
{
    let mut w = csv::Writer::from_writer(Vec::new());
    let written = w
        .write_record(header)
        .and_then(|()| rows.into_iter().try_for_each(|r| w.write_record(&r)));
    let body = match written
        .map_err(std::io::Error::from)
        .and_then(|()| w.into_inner().map_err(|e| e.into_error()))
    {
        Ok(body) => body,
        Err(e) => return ApiError::internal(e).into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file_name}\""),
            ),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn format_is_the_parameter_then_accept_then_json() {
        use axum::http::{HeaderMap, HeaderValue};
        let accept = |v: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT, HeaderValue::from_static(v));
            h
        };
        let none = HeaderMap::new();
        assert_eq!(Format::negotiate(None, &none).unwrap(), Format::Json);
        assert_eq!(Format::negotiate(Some("csv"), &none).unwrap(), Format::Csv);
        assert_eq!(
            Format::negotiate(Some("json"), &accept("text/csv")).unwrap(),
            Format::Json
        );
        assert_eq!(
            Format::negotiate(None, &accept("text/csv;q=0.9")).unwrap(),
            Format::Csv
        );
        assert_eq!(
            Format::negotiate(None, &accept("application/json, text/csv")).unwrap(),
            Format::Json
        );
        assert_eq!(
            Format::negotiate(None, &accept("*/*")).unwrap(),
            Format::Json
        );
        let e = Format::negotiate(Some("xml"), &none).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(e.param.as_deref(), Some("format"));
    }

    use super::*;

    #[tokio::test]
    async fn problem_body_names_the_parameter() {
        let resp = ApiError::bad_param("from", "expected YYYY-MM-DD_HH:MM:SS").into_response();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            resp.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let body = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["param"], "from");
        assert_eq!(v["status"], 400);
    }

    #[tokio::test]
    async fn a_full_database_is_507_with_the_one_message_and_other_errors_stay_500() {
        let full = DbError::Sqlite(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            Some("database or disk is full".into()),
        ));
        let resp = ApiError::from(full).into_response();
        assert_eq!(resp.status(), StatusCode::INSUFFICIENT_STORAGE);
        assert_eq!(resp.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        let body = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["detail"], STORAGE_FULL);
        assert_eq!(v["status"], 507);

        let enospc = std::io::Error::from_raw_os_error(28);
        assert_eq!(
            ApiError::storage(enospc).status,
            StatusCode::INSUFFICIENT_STORAGE
        );
        let other = DbError::Task("boom".into());
        assert_eq!(
            ApiError::from(other).status,
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    #[test]
    fn server_urls_are_the_documented_language_and_all_parse() {
        for u in [
            "http://localhost:8080",
            "https://data-provider:8080/",
            "http://127.0.0.1:65535/a/b.c_d~e-",
            "http://0.0.0.0",
            "http://a-b.c9",
        ] {
            assert!(is_http_url(u), "{u}");
            let parsed = reqwest::Url::parse(u).unwrap();
            assert!(matches!(parsed.scheme(), "http" | "https"));
        }
        for u in [
            "ftp://x",
            "HTTP://x",
            "http://",
            "http://-a",
            "http://a-",
            "http://xn--a",
            "http://1a",
            "http://256.1.1.1",
            "http://01.1.1.1",
            "http://1.1.1",
            "http://a:0",
            "http://a:65536",
            "http://a:080",
            "http://a:",
            "http://a/%20",
            "http://a?q",
            "http://a#f",
            "http://u@a",
            "http://a..b",
            "http://a.",
            " http://a",
        ] {
            assert!(!is_http_url(u), "{u}");
            let e = http_url("callback_url", u).unwrap_err();
            assert_eq!(e.param.as_deref(), Some("callback_url"), "{u}");
        }
        let long = format!("http://a/{}", "x".repeat(MAX_URL_LEN));
        assert!(http_url("source", &long).is_err());
        let re = regex::Regex::new(HTTP_URL_PATTERN).unwrap();
        for u in [
            "http://localhost:8080",
            "http://1a",
            "http://a:65536",
            "http://0.0.0.0/x",
        ] {
            assert_eq!(re.is_match(u), is_http_url(u), "{u}");
        }
    }

    #[test]
    fn json_integers_as_json_schema_counts_them() {
        #[derive(serde::Deserialize)]
        struct B {
            #[serde(default, deserialize_with = "json_integer")]
            n: Option<u32>,
        }
        let n = |j: &str| serde_json::from_str::<B>(j).map(|b| b.n);
        assert_eq!(n(r#"{"n": 5}"#).unwrap(), Some(5));
        assert_eq!(n(r#"{"n": 5.0}"#).unwrap(), Some(5));
        assert_eq!(n(r#"{"n": null}"#).unwrap(), None);
        assert_eq!(n("{}").unwrap(), None);
        assert!(n(r#"{"n": 5.5}"#).is_err());
        assert!(n(r#"{"n": -1}"#).is_err());
        assert!(n(r#"{"n": 4294967296}"#).is_err());
        assert!(n(r#"{"n": 1e300}"#).is_err());
        assert!(n(r#"{"n": "5"}"#).is_err());
    }

    #[test]
    fn page_limits() {
        let p = Page {
            limit: Some(500),
            offset: None,
        };
        assert!(p.limit(10, 100).is_err());
        assert_eq!(Page::default().limit(10, 100).unwrap(), 10);
    }
}
