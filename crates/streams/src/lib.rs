//! Domain `streams`: harvesting the three live event streams of a video platform (Sytflix,
//! Sytazon, Sysney) in parallel into per-run reports, and a simulator of their source.
//!
//! # Layout
//! - [`sse`]: the incremental Server-Sent Events parser; bytes in any chunking → messages.
//! - [`parse`]: messages → [`parse::Event`]s or [`parse::Malformed`] reasons; stream and event
//!   types, the country → time zone table, Amsterdam output times, ages.
//! - [`harvest`]: one clock, three concurrent consumers with Basic auth and reconnection, the
//!   stop conditions, a writer thread persisting in batches; runs as a job.
//! - [`engine`]: the per-run report (users, recent shows, successful streams, start rate),
//!   pure and unit-tested.
//! - [`store`]: the domain's storage (runs, events, malformed messages): the SQLite SQL, the
//!   reads behind one trait, the writes dispatching on the backend, what both share.
//! - [`postgres`]: the same statements on PostgreSQL (binary `COPY` for a harvest's batches).
//! - [`api`]: native routes under `/api/v1/streams/…`.
//! - [`compat`]: the replaced Flask service's routes on the latest finished run.
//! - [`simulate`]: the source simulator (random events or capture replay), for the CLI,
//!   tests, the demo and the benchmark.
//! - [`cli`]: what the `sluice` binary calls: `simulate`, `harvest`, `demo`.
//!
//! # Invariants
//! - A run's id is its job's id.
//! - Every message admitted by a harvest is stored, as an event or as malformed, in the same
//!   transaction as the run's counts: received = persisted + malformed.

pub mod api;
pub mod cli;
pub mod compat;
pub mod engine;
pub mod error;
pub mod harvest;
pub mod parse;
pub mod postgres;
pub mod simulate;
pub mod sse;
pub mod store;

use sluice_core::{Ctx, Domain, Migration};
use utoipa::OpenApi;

pub use error::StreamsError;

/// The domain's name: routes, table prefix, job domain.
pub const NAME: &str = "streams";

/// The `streams` domain, registered with the server and the CLI.
pub struct StreamsDomain;

impl Domain for StreamsDomain {
    fn name(&self) -> &'static str {
        NAME
    }

    fn migrations(&self) -> Vec<Migration> {
        store::migrations()
    }

    fn postgres_migrations(&self) -> Option<Vec<Migration>> {
        Some(postgres::migrations())
    }

    fn router(&self, ctx: Ctx) -> axum::Router {
        api::router(ctx.clone()).merge(compat::router(ctx))
    }

    /// Every route the router answers, native and compat. No route streams without end: the
    /// simulator's SSE endpoints are served by `sluice simulate`, not by this router.
    fn openapi(&self) -> utoipa::openapi::OpenApi {
        let mut doc = api::NativeApi::openapi();
        doc.merge(compat::CompatApi::openapi());
        doc.tags = Some(vec![utoipa::openapi::tag::TagBuilder::new()
            .name(NAME)
            .description(Some("live stream harvests and their reports"))
            .build()]);
        doc
    }
}
