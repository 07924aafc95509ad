//! HTTP conventions shared by all routes: `application/problem+json` errors whose `detail`
//! names the bad input, and extractors that answer bad query strings and bodies with them.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::db::DbError;

/// An error answered as RFC 9457 problem details.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub detail: String,
    /// The request parameter at fault, when there is one.
    pub param: Option<String>,
}

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
        ApiError::internal(e)
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

#[cfg(test)]
mod tests {
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
