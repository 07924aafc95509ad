//! The sluice HTTP server: composes the domain routers into one axum app.
//!
//! # Layout
//! - [`app`]: the router — domain routes, generic ingestion routes, job routes, health,
//!   metrics, OpenAPI — and the layers (auth, body limit, metrics, tracing).
//! - `jobs_api`: job snapshots and the push channels (SSE per job and for all jobs, WebSocket).
//! - `dashboard`: the web dashboard at `/` (embedded assets, no network needed).
//! - `auth`: bearer-token check on mutating routes.
//! - `guard`: without a token, loopback `Host`, same-origin and JSON-only checks.
//! - `metrics`: Prometheus counters and histograms.
//! - `connections`: the serve loop of [`serve`]: connection bound, header-read and idle
//!   timeouts, graceful shutdown.
//! - [`testing`]: a real server on a random port with a fresh data directory, for tests.
//!
//! # Invariants
//! - Without a token the server listens on loopback addresses only ([`serve`] refuses others).
//! - Every domain's migrations run before its routes serve ([`prepare`]).

mod auth;
mod connections;
mod dashboard;
mod guard;
mod jobs_api;
mod metrics;
pub mod testing;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::Router;
use sluice_core::{Backend, Ctx, DbError, Domain};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;

pub use connections::ConnLimits;
pub use metrics::Metrics;

/// Largest buffered request body (JSON); uploads stream under their own limit.
const JSON_BODY_LIMIT: usize = 2 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("refusing to listen on {0} without a token: set SLUICE_TOKEN (or --token) to serve beyond loopback")]
    NotLoopback(SocketAddr),
    #[error("cannot listen on {addr}: {source}{hint}", hint = bind_hint(.source))]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot watch the {domain} inbox: {source}")]
    Watch {
        domain: &'static str,
        source: sluice_core::inbox::WatchError,
    },
    #[error("another sluice server is serving the data directory {0} (its serve.lock is held): stop it, or give this one its own --data-dir")]
    AlreadyServed(std::path::PathBuf),
    #[error("cannot lock {path}: {source}")]
    Lock {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

/// What to do about the commonest failure to listen.
fn bind_hint(e: &std::io::Error) -> &'static str {
    match e.kind() {
        std::io::ErrorKind::AddrInUse => {
            " — is another sluice (or another server) running there? Stop it, or pick a free port with --addr 127.0.0.1:PORT"
        }
        _ => "",
    }
}

/// Refuses, before anything is created, to listen beyond loopback without a token.
pub fn check_listen(settings: &sluice_core::Settings) -> Result<(), ServeError> {
    if settings.token.is_none() && !settings.addr.ip().is_loopback() {
        return Err(ServeError::NotLoopback(settings.addr));
    }
    Ok(())
}

/// One server per data directory: held for the server's lifetime (the OS releases the lock
/// when the process ends, however it ends). `sluice ingest` beside a server takes none.
pub struct ServeLock {
    _file: std::fs::File,
}

impl ServeLock {
    pub fn acquire(data_dir: &std::path::Path) -> Result<ServeLock, ServeError> {
        let path = data_dir.join("serve.lock");
        let lock_err = |source| ServeError::Lock {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(data_dir).map_err(lock_err)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(lock_err)?;
        match file.try_lock() {
            Ok(()) => Ok(ServeLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => {
                Err(ServeError::AlreadyServed(data_dir.to_owned()))
            }
            Err(std::fs::TryLockError::Error(e)) => Err(lock_err(e)),
        }
    }
}

/// Checks every domain's settings; a bad one names the domain and the setting.
pub fn check_settings(
    settings: &sluice_core::Settings,
    domains: &[Arc<dyn Domain>],
) -> Result<(), String> {
    for d in domains {
        d.check_settings(settings)
            .map_err(|e| format!("invalid [{}] setting: {e}", d.name()))?;
    }
    Ok(())
}

/// Applies every domain's migrations and marks jobs interrupted by a crash as failed. On
/// PostgreSQL, where other instances may die at any time, the sweep repeats every lease.
pub fn prepare(ctx: &Ctx, domains: &[Arc<dyn Domain>]) -> Result<(), DbError> {
    for d in domains {
        ctx.db.migrate(
            d.name(),
            &d.migrations(),
            d.postgres_migrations().as_deref(),
        )?;
    }
    if ctx.db.backend() == Backend::Postgres {
        ctx.jobs.sweep_every(sluice_core::pg::LEASE / 2);
    }
    let n = ctx.jobs.recover_interrupted()?;
    if n > 0 {
        tracing::warn!(
            jobs = n,
            "marked jobs interrupted by a previous stop as failed"
        );
    }
    Ok(())
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "sluice",
        description = "Operational data in, KPIs and reports out, with push-based job status."
    ),
    paths(
        jobs_api::list_jobs,
        jobs_api::get_job,
        jobs_api::job_events,
        jobs_api::all_events,
        jobs_api::ws,
        health,
        openapi_json,
        metrics::metrics
    ),
    components(schemas(
        sluice_core::Job,
        sluice_core::jobs::JobEvent,
        sluice_core::http::ProblemDoc,
        sluice_core::http::SseEvent,
        Health
    ))
)]
struct CoreApi;

/// The OpenAPI document of the whole app: the platform's routes, each domain's own routes
/// and, for file-fed domains, the generic ingestion routes under the domain's name.
pub fn openapi(domains: &[Arc<dyn Domain>]) -> utoipa::openapi::OpenApi {
    let mut doc = CoreApi::openapi();
    for d in domains {
        doc.merge(d.openapi());
        if d.file_ingest().is_some() {
            doc.merge(sluice_core::ingest::openapi(d.name()));
        }
    }
    doc
}

#[derive(serde::Serialize, utoipa::ToSchema)]
struct Health {
    /// Always `ok` while the server answers.
    status: &'static str,
}

/// Liveness.
#[utoipa::path(get, path = "/health", tag = "platform", responses((status = 200, body = Health)))]
async fn health() -> axum::Json<Health> {
    axum::Json(Health { status: "ok" })
}

/// This OpenAPI document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "platform",
    responses((status = 200, description = "the OpenAPI 3.1 document of every route", body = Object)))]
async fn openapi_json(
    axum::extract::State(doc): axum::extract::State<Arc<serde_json::Value>>,
) -> axum::Json<serde_json::Value> {
    axum::Json((*doc).clone())
}

/// Unknown paths and methods answer problem+json like every other error.
async fn no_route(uri: axum::http::Uri) -> sluice_core::ApiError {
    sluice_core::ApiError::not_found(format!("no route {}", uri.path()))
}

async fn no_method(method: axum::http::Method, uri: axum::http::Uri) -> sluice_core::ApiError {
    sluice_core::ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        format!("{} does not answer {method}", uri.path()),
    )
}

/// The whole app for `ctx` and `domains` (migrations must have run: see [`prepare`]).
pub fn app(ctx: Ctx, domains: &[Arc<dyn Domain>]) -> Router {
    let metrics = Metrics::new();
    let doc = Arc::new(serde_json::to_value(openapi(domains)).expect("the document serializes"));
    let mut router = Router::new()
        .route("/health", get(health))
        .route("/api/v1/openapi.json", get(openapi_json).with_state(doc))
        .merge(jobs_api::routes(ctx.clone()))
        .merge(metrics.routes())
        .merge(dashboard::routes());
    for d in domains {
        router = router.merge(d.router(ctx.clone()));
        if let Some(ingest) = d.file_ingest() {
            router = router.merge(sluice_core::ingest::routes(ctx.clone(), ingest));
        }
    }
    router
        .fallback(no_route)
        .method_not_allowed_fallback(no_method)
        .layer(axum::middleware::from_fn_with_state(
            ctx.settings.token.clone().map(Arc::<str>::from),
            auth::require_token,
        ))
        .layer(axum::middleware::from_fn_with_state(
            guard::Guard::new(&ctx.settings),
            guard::check,
        ))
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            metrics::track,
        ))
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .layer(TraceLayer::new_for_http())
}

/// Starts serving the file-fed domains: sweeps their spools of uploads a previous server
/// left behind (this process holds the data directory's serve lock), then watches their
/// inboxes.
pub fn watch_inboxes(ctx: &Ctx, domains: &[Arc<dyn Domain>]) -> Result<(), ServeError> {
    for d in domains {
        if let Some(ingest) = d.file_ingest() {
            let swept = sluice_core::ingest::sweep_spool(ctx, d.name())?;
            if swept > 0 {
                tracing::warn!(
                    domain = d.name(),
                    uploads = swept,
                    "removed uploads left in the spool by a previous server"
                );
            }
            sluice_core::inbox::watch(ctx.clone(), ingest).map_err(|source| ServeError::Watch {
                domain: d.name(),
                source,
            })?;
        }
    }
    Ok(())
}

/// Binds the listener, refusing non-loopback addresses when no token is set.
pub async fn bind(ctx: &Ctx) -> Result<tokio::net::TcpListener, ServeError> {
    let addr = ctx.settings.addr;
    check_listen(&ctx.settings)?;
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })
}

/// Serves HTTP/1.1 (keep-alive, upgrades) within `limits` until `shutdown` resolves; then
/// stops accepting, lets the requests in flight finish for a bounded grace and closes the
/// connections left. Dropping the future closes every connection it serves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: ConnLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    connections::serve(listener, app, limits, shutdown).await
}
