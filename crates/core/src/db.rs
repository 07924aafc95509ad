//! The SQLite handle: WAL, one writer connection behind a mutex and a pool of readers, so
//! that queries never wait for ingestion. Migrations are tracked per owner (core and each
//! domain) in their own history table, so that every domain owns its schema.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::Connection;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database pool error: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("migration of {owner} failed: {message}")]
    Migration { owner: String, message: String },
    #[error("io error: {0}")]
    Io(#[from] std::io::Error),
    #[error("background task failed: {0}")]
    Task(String),
}

/// One embedded migration: `name` is `V<n>__<description>`, versions counted per owner.
#[derive(Clone, Debug)]
pub struct Migration {
    pub name: &'static str,
    pub sql: &'static str,
}

/// Long enough for a query or a job update to wait out a large file's transaction, possibly
/// held by another process (`sluice ingest` next to `sluice serve`).
const BUSY_TIMEOUT: Duration = Duration::from_secs(600);

#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: r2d2::Pool<SqliteConnectionManager>,
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.execute_batch(
        "PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = ON;
         PRAGMA temp_store = MEMORY;
         PRAGMA cache_size = -65536;
         PRAGMA mmap_size = 268435456;",
    )
}

impl Db {
    /// Opens (creating if needed) the database file in WAL mode.
    pub fn open(path: &Path) -> Result<Db, DbError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let writer = Connection::open(path)?;
        writer.busy_timeout(BUSY_TIMEOUT)?;
        writer.pragma_update(None, "journal_mode", "WAL")?;
        configure(&writer)?;
        let manager = SqliteConnectionManager::file(path)
            .with_flags(
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                    | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX
                    | rusqlite::OpenFlags::SQLITE_OPEN_URI,
            )
            .with_init(|c| configure(c));
        let readers = r2d2::Pool::builder()
            .max_size(16)
            .min_idle(Some(0))
            .build(manager)?;
        Ok(Db {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                writer: Mutex::new(writer),
                readers,
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Applies the owner's migrations that are not applied yet, tracked in
    /// `<owner>_schema_history`.
    pub fn migrate(&self, owner: &str, migrations: &[Migration]) -> Result<(), DbError> {
        let err = |message: String| DbError::Migration {
            owner: owner.to_owned(),
            message,
        };
        let list = migrations
            .iter()
            .map(|m| refinery::Migration::unapplied(m.name, m.sql).map_err(|e| err(e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        let mut conn = self.writer();
        refinery::Runner::new(&list)
            .set_migration_table_name(format!("{owner}_schema_history"))
            .run(&mut *conn)
            .map_err(|e| err(e.to_string()))?;
        Ok(())
    }

    /// The single writer connection. Hold it for one transaction, not longer.
    pub fn writer(&self) -> MutexGuard<'_, Connection> {
        // A panic while writing leaves SQLite consistent (the transaction rolls back on drop),
        // so a poisoned lock is safe to reuse.
        self.inner
            .writer
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Runs `f` with the writer connection (blocking).
    pub fn write<R, E: From<DbError>>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<R, E>,
    ) -> Result<R, E> {
        let mut conn = self.writer();
        f(&mut conn)
    }

    /// Runs `f` with a pooled read-only connection (blocking).
    pub fn read<R, E: From<DbError>>(
        &self,
        f: impl FnOnce(&Connection) -> Result<R, E>,
    ) -> Result<R, E> {
        let conn = self.inner.readers.get().map_err(DbError::from)?;
        f(&conn)
    }

    /// [`Db::read`] on the blocking thread pool, for async handlers.
    pub async fn read_async<R, E>(
        &self,
        f: impl FnOnce(&Connection) -> Result<R, E> + Send + 'static,
    ) -> Result<R, E>
    where
        R: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let db = self.clone();
        tokio::task::spawn_blocking(move || db.read(f))
            .await
            .map_err(|e| E::from(DbError::Task(e.to_string())))?
    }

    /// [`Db::write`] on the blocking thread pool, for async handlers.
    pub async fn write_async<R, E>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<R, E> + Send + 'static,
    ) -> Result<R, E>
    where
        R: Send + 'static,
        E: From<DbError> + Send + 'static,
    {
        let db = self.clone();
        tokio::task::spawn_blocking(move || db.write(f))
            .await
            .map_err(|e| E::from(DbError::Task(e.to_string())))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_tracked_per_owner_and_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.db")).unwrap();
        let a = [Migration {
            name: "V1__a",
            sql: "CREATE TABLE a_t (x INTEGER);",
        }];
        let b = [Migration {
            name: "V1__b",
            sql: "CREATE TABLE b_t (y INTEGER);",
        }];
        db.migrate("a", &a).unwrap();
        db.migrate("b", &b).unwrap();
        db.migrate("a", &a).unwrap();
        let n: i64 = db
            .read(|c| {
                c.query_row(
                    "SELECT count(*) FROM sqlite_master WHERE name IN ('a_t','b_t')",
                    [],
                    |r| r.get(0),
                )
                .map_err(DbError::from)
            })
            .unwrap();
        assert_eq!(n, 2);
    }

    #[test]
    fn readers_see_committed_writes_and_cannot_write() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.db")).unwrap();
        db.write(|c| {
            c.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
                .map_err(DbError::from)
        })
        .unwrap();
        let x: i64 = db
            .read(|c| {
                c.query_row("SELECT x FROM t", [], |r| r.get(0))
                    .map_err(DbError::from)
            })
            .unwrap();
        assert_eq!(x, 1);
        let denied = db.read(|c| {
            c.execute("INSERT INTO t VALUES (2)", [])
                .map_err(DbError::from)
        });
        assert!(denied.is_err());
    }
}
