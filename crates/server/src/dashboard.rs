//! The web dashboard at `/`: one page (overview, network, trips, streams, uptime views chosen
//! by the URL fragment) whose script reads the documented API and follows `/api/v1/events`.
//!
//! Every asset is embedded in the binary (`include_str!`), so the dashboard works with no
//! internet access and no build step. The only third-party file is the map outline data
//! (`assets/vendor/`, world-atlas: Natural Earth 1:110m countries, with its license and
//! `refresh.sh`); charts and the map are hand-written SVG.
//!
//! The pages are served with a strict Content-Security-Policy (scripts, styles and requests
//! only from this origin, no inline script), so the pages use no inline handlers.

use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

const INDEX: &str = include_str!("../assets/index.html");
const APP_JS: &str = include_str!("../assets/app.js");
const APP_CSS: &str = include_str!("../assets/app.css");
const COUNTRIES: &str = include_str!("../assets/vendor/countries-110m.json");

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'";

/// The dashboard's routes: `/` and its assets under `/dashboard/`.
pub fn routes() -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { asset(INDEX, "text/html; charset=utf-8") }),
        )
        .route(
            "/dashboard/app.js",
            get(|| async { asset(APP_JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/dashboard/app.css",
            get(|| async { asset(APP_CSS, "text/css; charset=utf-8") }),
        )
        .route(
            "/dashboard/countries-110m.json",
            get(|| async { asset(COUNTRIES, "application/json") }),
        )
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Assets change with the binary: revalidate rather than serve a stale page.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}
