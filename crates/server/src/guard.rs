//! Without a token the server trusts whoever can reach loopback, so it must make sure that
//! a request really comes from a local client and not from a web page the user has open:
//! - `Host` must be a loopback name or address (or one of `allowed_hosts`): a page that
//!   rebinds its own DNS name to 127.0.0.1 still sends its name (DNS rebinding);
//! - a mutating request that carries an `Origin` must come from the server's own origin
//!   (browsers send `Origin` on every cross-site POST, also the "simple" ones);
//! - a mutating request with a body is JSON (`415` otherwise), except uploads, so a cross-site
//!   form or `text/plain` body cannot pass as JSON.
//!
//! With a token, the token decides (`auth`), and none of this applies.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sluice_core::ApiError;

/// What the guard knows: `None` when a token is set (the guard is off).
pub struct Guard {
    allowed_hosts: Vec<String>,
}

impl Guard {
    pub fn new(settings: &sluice_core::Settings) -> Option<Arc<Guard>> {
        settings.token.is_none().then(|| {
            Arc::new(Guard {
                allowed_hosts: settings
                    .allowed_hosts
                    .iter()
                    .map(|h| h.trim().to_ascii_lowercase())
                    .filter(|h| !h.is_empty())
                    .collect(),
            })
        })
    }

    fn host_allowed(&self, host: &str) -> bool {
        let name = host_name(host).to_ascii_lowercase();
        name == "localhost"
            || name.ends_with(".localhost")
            || name
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
            || self.allowed_hosts.contains(&name)
    }
}

/// `host[:port]` → `host` (IPv6 literals keep their brackets).
fn host_name(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority.find(']').map_or(authority, |i| &authority[..=i]);
    }
    authority.rsplit_once(':').map_or(authority, |(h, _)| h)
}

fn forbidden(detail: String) -> Response {
    ApiError::new(StatusCode::FORBIDDEN, detail).into_response()
}

fn is_json(content_type: &str) -> bool {
    let media = content_type.split(';').next().unwrap_or("").trim();
    media.eq_ignore_ascii_case("application/json")
        || (media.len() > 5 && media[media.len() - 5..].eq_ignore_ascii_case("+json"))
}

fn has_body(req: &Request) -> bool {
    let h = req.headers();
    h.contains_key(header::TRANSFER_ENCODING)
        || h.get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0")
}

pub async fn check(State(guard): State<Option<Arc<Guard>>>, req: Request, next: Next) -> Response {
    let Some(guard) = guard else {
        return next.run(req).await;
    };
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
        .unwrap_or_default();
    if !guard.host_allowed(&host) {
        return forbidden(format!(
            "Host `{}` is not a loopback name; without a token only local clients are served (add the name to allowed_hosts, or set a token)",
            host.escape_debug()
        ));
    }
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let own = origin
            .split_once("://")
            .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(&host));
        if !own {
            return forbidden(format!(
                "cross-site request refused: Origin `{}` is not this server's own",
                origin.escape_debug()
            ));
        }
    }
    let is_upload = req.uri().path().ends_with("/uploads");
    if !is_upload && has_body(&req) {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !is_json(content_type) {
            return ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "this route takes a JSON body: send Content-Type: application/json (got `{}`)",
                    content_type.escape_debug()
                ),
            )
            .into_response();
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        let g = Guard {
            allowed_hosts: vec!["sluice.lan".into()],
        };
        for ok in [
            "localhost",
            "localhost:8080",
            "LOCALHOST",
            "app.localhost:1",
            "127.0.0.1:8080",
            "127.5.6.7",
            "[::1]:8080",
            "[::1]",
            "sluice.lan:80",
        ] {
            assert!(g.host_allowed(ok), "{ok}");
        }
        for bad in [
            "",
            "evil.example",
            "evil.example:8080",
            "10.0.0.1:8080",
            "[::2]",
            "localhost.evil.example",
        ] {
            assert!(!g.host_allowed(bad), "{bad}");
        }
    }

    #[test]
    fn json_media_types() {
        assert!(is_json("application/json"));
        assert!(is_json("Application/JSON; charset=utf-8"));
        assert!(is_json("application/merge-patch+json"));
        assert!(!is_json("text/plain"));
        assert!(!is_json(""));
        assert!(!is_json("multipart/form-data; boundary=x"));
    }
}
