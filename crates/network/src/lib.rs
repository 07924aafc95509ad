//! Domain `network`: mobile-network KPIs from 5-minute flow files.
//!
//! # Layout
//! - [`parse`]: file names, header by column name, rows → [`parse::Flow`] with a reason per
//!   rejected row; a bounded line reader.
//! - [`engine`]: folding a file into mergeable per-interval state and ranking (top-k).
//! - [`store`]: all SQL — per-file partial state, dirty intervals, materialized KPIs.
//! - [`index`]: the KPIs' top ranks in memory, exact (checked against SQLite's data
//!   version and the KPI generation on every read), read by the routes.
//! - [`ingest`]: the [`sluice_core::FileIngest`] implementation (parallel fold, one
//!   transaction per file, recomputation of touched intervals).
//! - [`api`]: native routes under `/api/v1/network/`.
//! - [`compat`]: routes of the replaced Flask and Django systems.
//! - [`settings`]: the `[network]` settings (compat time zone, where periods come from).
//! - [`time`]: the time parameters' grammar, shared by the routes and their OpenAPI pattern.
//! - [`generate`]: realistic, deterministic days of flow files.
//! - [`cli`]: what the `sluice` binary calls (generate, demo).
//!
//! # Invariants
//! - KPIs are derived data: they are recomputed from per-file state, so a late or replaced
//!   file changes exactly its intervals and their hours, and nothing is counted twice.

#![forbid(unsafe_code)]

pub mod api;
pub mod cli;
pub mod compat;
pub mod engine;
pub mod generate;
pub mod index;
pub mod ingest;
pub mod parse;
pub mod postgres;
pub mod settings;
pub mod store;
pub mod time;

use std::sync::Arc;

use sluice_core::{Ctx, Domain, FileIngest, Migration, Settings};
use utoipa::OpenApi;

pub struct NetworkDomain;

impl Domain for NetworkDomain {
    fn name(&self) -> &'static str {
        ingest::DOMAIN
    }

    fn migrations(&self) -> Vec<Migration> {
        store::migrations()
    }

    fn postgres_migrations(&self) -> Option<Vec<Migration>> {
        Some(postgres::migrations())
    }

    fn router(&self, ctx: Ctx) -> axum::Router {
        // Intervals left dirty by a crash after a file's transaction get their KPIs now.
        let c = ctx.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = ingest::recompute(&c) {
                tracing::error!(error = %e, "recomputing network KPIs at start failed");
            }
        });
        let index = Arc::new(index::KpiIndex::new(ctx.db.clone()));
        let routes = api::routes(index.clone()).merge(compat::routes(&ctx, index));
        // KPI reads are hot and change only when files land: cache them until the database
        // changes (exact, see sluice_core::cache).
        match sluice_core::cache::ResponseCache::new(&ctx.db) {
            Ok(cache) => routes.layer(axum::middleware::from_fn_with_state(
                Arc::new(cache),
                sluice_core::cache::cached,
            )),
            Err(e) => {
                tracing::warn!(error = %e, "network responses are not cached");
                routes
            }
        }
    }

    fn openapi(&self) -> utoipa::openapi::OpenApi {
        let mut doc = api::NetworkApi::openapi().merge_from(compat::CompatApi::openapi());
        // The compat routes answer with and without the trailing slash of their READMEs.
        let slashed: Vec<(String, utoipa::openapi::PathItem)> = doc
            .paths
            .paths
            .iter()
            .filter(|(path, _)| !path.starts_with("/api/v1/") && path.ends_with('/'))
            .map(|(path, item)| (path.clone(), item.clone()))
            .collect();
        for (path, mut item) in slashed {
            if let Some(op) = item.get.as_mut() {
                op.operation_id = op.operation_id.take().map(|id| format!("{id}_no_slash"));
            }
            doc.paths
                .paths
                .insert(path.trim_end_matches('/').to_owned(), item);
        }
        // OpenAPI requires path parameters to be required; utoipa leaves that out of those
        // with a custom schema.
        for item in doc.paths.paths.values_mut() {
            for op in item.get.iter_mut() {
                for p in op.parameters.iter_mut().flatten() {
                    if p.parameter_in == utoipa::openapi::path::ParameterIn::Path {
                        p.required = utoipa::openapi::Required::True;
                    }
                }
            }
        }
        doc
    }

    fn check_settings(&self, settings: &Settings) -> Result<(), String> {
        settings::NetworkSettings::from_settings(settings)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn file_ingest(&self) -> Option<Arc<dyn FileIngest>> {
        Some(Arc::new(ingest::NetworkIngest))
    }
}
