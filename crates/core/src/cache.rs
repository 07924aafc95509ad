//! A cache of rendered read responses that is exact, not time-based: every lookup asks SQLite
//! for the database's `data_version` on a dedicated connection, which changes whenever any
//! other connection — this process's writer or another process such as `sluice ingest` —
//! commits. A changed version empties the cache, so an answer is never older than the data.
//! On PostgreSQL the version is the handle's commit count ([`crate::PgDb::version`]): this
//! instance's commits at once, other instances' when their notification arrives.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use bytes::Bytes;
use rusqlite::{Connection, OpenFlags};

use crate::database::Database;
use crate::db::DbError;

/// Entries kept before the cache is emptied (bounded memory under many distinct queries).
const MAX_ENTRIES: usize = 4096;

pub struct ResponseCache {
    probe: Probe,
    entries: Mutex<(i64, HashMap<String, Bytes>)>,
}

enum Probe {
    Sqlite(Mutex<Connection>),
    Postgres(crate::PgDb),
}

impl ResponseCache {
    pub fn new(db: &Database) -> Result<ResponseCache, DbError> {
        let probe = match db {
            Database::Sqlite(db) => Probe::Sqlite(Mutex::new(Connection::open_with_flags(
                db.path(),
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?)),
            // A replica's replay is not announced: a version bumped at the primary's commit
            // could be paired with an answer the replica computed before replaying it.
            Database::Postgres(pg) if pg.has_replica() => {
                return Err(DbError::Unsupported(
                    "reads go to a replica, whose replay this instance does not hear of".into(),
                ))
            }
            Database::Postgres(pg) => Probe::Postgres(pg.clone()),
        };
        Ok(ResponseCache {
            probe,
            entries: Mutex::new((i64::MIN, HashMap::new())),
        })
    }

    /// The current data version (a cheap call: no I/O unless the WAL index changed).
    pub fn version(&self) -> Result<i64, DbError> {
        let probe = match &self.probe {
            Probe::Sqlite(probe) => probe,
            Probe::Postgres(pg) => return Ok(pg.version()),
        };
        let conn = probe.lock().unwrap_or_else(|p| p.into_inner());
        // Prepared once: on every cached request, preparing cost more than the pragma.
        let version = conn
            .prepare_cached("PRAGMA data_version")?
            .query_row([], |r| r.get(0))?;
        Ok(version)
    }

    /// The cached body for `key` if the data did not change since it was stored, and the
    /// current version (to pass to [`Self::put`]).
    pub fn get(&self, key: &str) -> Result<(Option<Bytes>, i64), DbError> {
        let version = self.version()?;
        let mut e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if e.0 != version {
            e.0 = version;
            e.1.clear();
            return Ok((None, version));
        }
        Ok((e.1.get(key).cloned(), version))
    }

    /// Stores a body computed at `version`; dropped if the data changed meanwhile.
    pub fn put(&self, key: String, version: i64, body: Bytes) {
        let mut e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if e.0 != version {
            return;
        }
        if e.1.len() >= MAX_ENTRIES {
            e.1.clear();
        }
        e.1.insert(key, body);
    }
}

/// Upper bound of a cached body; larger answers are served but not kept.
const MAX_BODY: usize = 1 << 20;

/// Middleware for read routes answering JSON: serves `GET`s from the cache keyed by path,
/// query and `Accept`, and stores successful JSON answers.
pub async fn cached(State(cache): State<Arc<ResponseCache>>, req: Request, next: Next) -> Response {
    if req.method() != Method::GET {
        return next.run(req).await;
    }
    // `Accept` can select another representation of the same URL (CSV export).
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();
    let key = format!("{}\0{accept}", req.uri());
    let version = match cache.get(&key) {
        Ok((Some(body), _)) => {
            return ([(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        Ok((None, v)) => v,
        Err(e) => return crate::ApiError::internal(e).into_response(),
    };
    let resp = next.run(req).await;
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v == "application/json");
    if resp.status() != StatusCode::OK || !is_json {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(bytes) => {
            cache.put(key, version, bytes.clone());
            Response::from_parts(parts, axum::body::Body::from(bytes))
        }
        Err(e) => crate::ApiError::internal(e).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commit_on_any_connection_invalidates() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::Db::open(&dir.path().join("t.db")).unwrap();
        db.write(|c| c.execute_batch("CREATE TABLE t (x)").map_err(DbError::from))
            .unwrap();
        let cache = ResponseCache::new(&Database::Sqlite(db)).unwrap();
        let (hit, v) = cache.get("q").unwrap();
        assert!(hit.is_none());
        cache.put("q".into(), v, Bytes::from_static(b"old"));
        assert_eq!(cache.get("q").unwrap().0.as_deref(), Some(&b"old"[..]));
        // Another connection, as another process would.
        let other = Connection::open(dir.path().join("t.db")).unwrap();
        other.execute("INSERT INTO t VALUES (1)", []).unwrap();
        assert!(cache.get("q").unwrap().0.is_none());
        // A body computed before the change is not stored under the new version.
        cache.put("q".into(), v, Bytes::from_static(b"stale"));
        assert!(cache.get("q").unwrap().0.is_none());
    }
}
