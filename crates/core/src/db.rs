//! The SQLite handle: WAL, one writer connection behind a mutex and a pool of readers, so
//! that queries never wait for ingestion. Migrations are tracked per owner (core and each
//! domain) in their own history table, so that every domain owns its schema.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::owner::Owner;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::Connection;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database pool error: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("PostgreSQL: {}", pg_message(.0))]
    Pg(#[from] postgres::Error),
    #[error("database URL {0}")]
    Url(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("migration of {owner} failed: {message}")]
    Migration { owner: String, message: String },
    #[error("io error: {0}")]
    Io(#[from] std::io::Error),
    #[error("background task failed: {0}")]
    Task(String),
}

/// A PostgreSQL error with the server's message and detail, not just "db error".
fn pg_message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(d) => match d.detail() {
            Some(detail) => format!("{} ({detail})", d.message()),
            None => d.message().to_owned(),
        },
        None => e.to_string(),
    }
}

/// The SQLSTATE of `e` or of an error in its `source()` chain, if a PostgreSQL server sent one.
fn pg_state(e: &(dyn std::error::Error + 'static)) -> Option<postgres::error::SqlState> {
    let mut cur = Some(e);
    while let Some(c) = cur {
        if let Some(p) = c.downcast_ref::<postgres::Error>() {
            if let Some(code) = p.code() {
                return Some(code.clone());
            }
        }
        cur = c.source();
    }
    None
}

/// What every answer and every failed job says when the disk, or the database's cap
/// (`max_db_bytes`), is full: one wording whichever domain and layer noticed it (SQLite says
/// "database or disk is full", a file write "No space left on device").
pub const STORAGE_FULL: &str = "the disk is full (or the database reached max_db_bytes): nothing of this input was kept; free space and retry";

/// Whether `e`, or any error in its `source()` chain, says that the database or its folder
/// cannot be written: SQLite's `SQLITE_READONLY`, a read-only file system, no permission,
/// a PostgreSQL hot standby or read-only transaction.
pub fn is_read_only(e: &(dyn std::error::Error + 'static)) -> bool {
    if pg_state(e) == Some(postgres::error::SqlState::READ_ONLY_SQL_TRANSACTION) {
        return true;
    }
    let mut cause = Some(e);
    while let Some(c) = cause {
        if let Some(rusqlite::Error::SqliteFailure(f, _)) = c.downcast_ref::<rusqlite::Error>() {
            if f.code == rusqlite::ErrorCode::ReadOnly {
                return true;
            }
        }
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            if matches!(
                io.kind(),
                std::io::ErrorKind::ReadOnlyFilesystem | std::io::ErrorKind::PermissionDenied
            ) {
                return true;
            }
        }
        cause = c.source();
    }
    false
}

/// Whether `e`, or any error in its `source()` chain, says that the disk or the database's
/// cap is full: SQLite's `SQLITE_FULL`, PostgreSQL's `disk_full`, or an I/O error of kind
/// `StorageFull` (ENOSPC).
pub fn is_storage_full(e: &(dyn std::error::Error + 'static)) -> bool {
    if pg_state(e) == Some(postgres::error::SqlState::DISK_FULL) {
        return true;
    }
    let mut cur = Some(e);
    while let Some(e) = cur {
        if let Some(rusqlite::Error::SqliteFailure(f, _)) = e.downcast_ref::<rusqlite::Error>() {
            if f.code == rusqlite::ErrorCode::DiskFull {
                return true;
            }
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::StorageFull || io.raw_os_error() == Some(ENOSPC) {
                return true;
            }
            // An I/O error wrapping another error reports the wrapped one's source, not the
            // wrapped one itself, so look at it here.
            if io.get_ref().is_some_and(|inner| is_storage_full(inner)) {
                return true;
            }
        }
        cur = e.source();
    }
    false
}

/// "No space left on device" on Linux and macOS, for errors whose kind was not mapped.
const ENOSPC: i32 = 28;

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
    owner: Owner,
    writer: Mutex<Connection>,
    readers: r2d2::Pool<SqliteConnectionManager>,
}

/// Caps the database file of a writing connection at `max_bytes` (rounded up to whole pages):
/// past it SQLite fails the transaction with `SQLITE_FULL`, as on a full disk.
fn cap_size(conn: &Connection, max_bytes: u64) -> rusqlite::Result<()> {
    let page_size: u64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
    // SQLite never sets the cap below the file's current size: a smaller cap keeps what is
    // there and refuses any growth.
    conn.pragma_update(None, "max_page_count", max_bytes.div_ceil(page_size))
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
    /// Opens (creating if needed) the database file in WAL mode, without a size cap.
    pub fn open(path: &Path) -> Result<Db, DbError> {
        Db::open_capped(path, None)
    }

    /// [`Db::open`] whose writer cannot grow the file past `max_bytes` (setting
    /// `max_db_bytes`): an input that would is refused whole, as on a full disk.
    pub fn open_capped(path: &Path, max_bytes: Option<u64>) -> Result<Db, DbError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let writer = Connection::open(path)?;
        writer.busy_timeout(BUSY_TIMEOUT)?;
        writer.pragma_update(None, "journal_mode", "WAL")?;
        configure(&writer)?;
        if let Some(max) = max_bytes {
            cap_size(&writer, max)?;
        }
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
        let owners = path.with_file_name("owners");
        Ok(Db {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                owner: Owner::acquire(&owners)?,
                writer: Mutex::new(writer),
                readers,
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The owner of the work started through this handle (see [`crate::owner`]); its lock
    /// file is in `owners/` beside the database.
    pub fn owner(&self) -> &Owner {
        &self.inner.owner
    }

    /// Copies the database, live, to a new file `dest` with SQLite's online backup: one
    /// consistent snapshot (writers go on meanwhile), written beside `dest` and renamed into
    /// place, so `dest` is never a partial copy. Refuses an existing `dest`. Returns its size.
    pub fn backup_to(&self, dest: &Path) -> Result<u64, DbError> {
        if dest.exists() {
            return Err(DbError::Io(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!("{} exists; choose a new file", dest.display()),
            )));
        }
        let partial = dest.with_extension("partial");
        let _ = std::fs::remove_file(&partial);
        {
            let src = self.inner.readers.get()?;
            let mut out = Connection::open(&partial)?;
            // All pages in one step: one read snapshot, never restarted by a concurrent commit.
            {
                let backup = rusqlite::backup::Backup::new(&src, &mut out)?;
                while backup.step(-1)? != rusqlite::backup::StepResult::Done {
                    // Busy or Locked: another connection holds a lock for a moment.
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            out.pragma_update(None, "journal_mode", "DELETE")?;
        }
        std::fs::rename(&partial, dest)?;
        Ok(std::fs::metadata(dest)?.len())
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
            // One transaction for the migrations and their history rows: ungrouped, refinery
            // commits a migration and its history row separately, and a kill between the two
            // leaves a schema that the next start tries to create again.
            .set_grouped(true)
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

    /// Runs `f` with a pooled read-only connection (blocking), inside one read transaction:
    /// everything `f` reads comes from one snapshot, so an answer built from several
    /// statements (rollups and raw records of a box, KPIs and their extent) never mixes the
    /// states before and after a commit that lands between them.
    pub fn read<R, E: From<DbError>>(
        &self,
        f: impl FnOnce(&Connection) -> Result<R, E>,
    ) -> Result<R, E> {
        let conn = self.inner.readers.get().map_err(DbError::from)?;
        let tx = conn.unchecked_transaction().map_err(DbError::from)?;
        let out = f(&tx)?;
        // Ending a read-only transaction cannot lose anything; its error is still reported.
        tx.finish().map_err(DbError::from)?;
        Ok(out)
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
    fn a_read_sees_one_snapshot_whatever_commits_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.db")).unwrap();
        let m = [Migration {
            name: "V1__s",
            sql: "CREATE TABLE s_t (x INTEGER); INSERT INTO s_t VALUES (1);",
        }];
        db.migrate("s", &m).unwrap();
        let count = |c: &Connection| -> Result<i64, DbError> {
            Ok(c.query_row("SELECT count(*) FROM s_t", [], |r| r.get(0))?)
        };
        let (before, after) = db
            .read(|c| {
                let before = count(c)?;
                db.write(|w| Ok::<_, DbError>(w.execute("INSERT INTO s_t VALUES (2)", [])?))?;
                Ok::<_, DbError>((before, count(c)?))
            })
            .unwrap();
        assert_eq!(
            (before, after),
            (1, 1),
            "a commit between two statements was seen"
        );
        assert_eq!(db.read(count).unwrap(), 2, "the next read sees the commit");
    }

    #[test]
    fn an_owners_pending_migrations_apply_all_or_none() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.db")).unwrap();
        let v1 = Migration {
            name: "V1__a",
            sql: "CREATE TABLE g_a (id INTEGER);",
        };
        let broken = Migration {
            name: "V2__b",
            sql: "CREATE TABLE g_b (id INTEGER); INSERT INTO no_such_table VALUES (1);",
        };
        assert!(db.migrate("g", &[v1.clone(), broken]).is_err());
        // What a kill between a migration and its history row would have left: V1's table
        // without its record, which the next start would try to create again.
        let tables: i64 = db
            .read(|c| {
                c.query_row(
                    "SELECT count(*) FROM sqlite_master WHERE name IN ('g_a', 'g_b')",
                    [],
                    |r| r.get(0),
                )
                .map_err(DbError::from)
            })
            .unwrap();
        assert_eq!(tables, 0, "a migration of a failed start was kept");
        let fixed = Migration {
            name: "V2__b",
            sql: "CREATE TABLE g_b (id INTEGER);",
        };
        db.migrate("g", &[v1, fixed]).unwrap();
    }

    #[test]
    fn an_older_binary_refuses_a_database_migrated_further() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.db")).unwrap();
        let v1 = Migration {
            name: "V1__a",
            sql: "CREATE TABLE x_a (id INTEGER);",
        };
        let v2 = Migration {
            name: "V2__b",
            sql: "CREATE TABLE x_b (id INTEGER);",
        };
        db.migrate("x", &[v1.clone(), v2]).unwrap();
        // A downgrade: the binary knows V1 only.
        let e = db.migrate("x", &[v1]).unwrap_err();
        assert!(
            matches!(e, DbError::Migration { ref owner, .. } if owner == "x"),
            "{e}"
        );
    }

    #[test]
    fn a_backup_is_a_whole_standalone_database_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.db")).unwrap();
        db.write(|c| {
            c.execute_batch("CREATE TABLE t (v INTEGER); INSERT INTO t VALUES (1), (2);")
                .map_err(DbError::from)
        })
        .unwrap();
        let dest = dir.path().join("copy.db");
        assert!(db.backup_to(&dest).unwrap() > 0);
        let copy = Connection::open(&dest).unwrap();
        let n: i64 = copy
            .query_row("SELECT sum(v) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 3);
        let mode: String = copy
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "delete");
        let e = db.backup_to(&dest).unwrap_err();
        assert!(e.to_string().contains("exists"), "{e}");
    }

    #[test]
    fn a_capped_writer_fails_as_on_a_full_disk_and_keeps_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open_capped(&dir.path().join("t.db"), Some(64 << 10)).unwrap();
        db.write(|c| {
            c.execute_batch("CREATE TABLE t (b BLOB)")
                .map_err(DbError::from)
        })
        .unwrap();
        let err = db
            .write(|c| {
                c.execute("INSERT INTO t VALUES (zeroblob(1 << 20))", [])
                    .map_err(DbError::from)
            })
            .unwrap_err();
        assert!(is_storage_full(&err), "{err}");
        let n: i64 = db
            .read(|c| {
                c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
                    .map_err(DbError::from)
            })
            .unwrap();
        assert_eq!(n, 0);
        assert!(!is_storage_full(&DbError::Task("other".into())));
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
