//! The ingestion ledger. [`ingest_atomically`] runs a domain's writes for one input in the
//! same transaction as the input's ledger entry, so a crash at any point leaves the database
//! as if the input had never been seen, identical content is a no-op, and changed content
//! under the same name replaces the earlier contribution.

use std::io::Read;
use std::path::Path;

use chrono::Utc;
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

use crate::database::Database;
use crate::db::DbError;
use crate::jobs::{FileStatus, JobId};

/// Row id of a ledger entry; domain rows reference it so a file's contribution can be removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileId(pub i64);

/// The BLAKE3 hash of an input's bytes (as delivered, compressed or not), hex.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ContentHash(pub String);

/// Identity of one input.
#[derive(Clone, Debug)]
pub struct InputMeta {
    /// The file name (without folders) or `stdin`.
    pub name: String,
    pub hash: ContentHash,
    pub size: u64,
}

impl InputMeta {
    /// Hashes a file by streaming it.
    pub fn of_file(path: &Path) -> std::io::Result<InputMeta> {
        let mut hasher = blake3::Hasher::new();
        let mut file = std::fs::File::open(path)?;
        let mut buf = vec![0u8; 1 << 20];
        let mut size = 0u64;
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            size += n as u64;
            hasher.update(&buf[..n]);
        }
        Ok(InputMeta {
            name: path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            hash: ContentHash(hasher.finalize().to_hex().to_string()),
            size,
        })
    }
}

/// Counts a domain reports for one input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub accepted: u64,
    pub rejected: u64,
}

/// What happened to one input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Ingested (status `Ingested` or `Replaced`) with the domain's counts.
    Done {
        file_id: FileId,
        status: FileStatus,
        counts: Counts,
    },
    /// The same content was ingested before, under `previous_name`.
    Duplicate { previous_name: String },
}

/// Ingests one input atomically. `write` receives the open transaction, the new file id and
/// the id of the entry it replaces (whose contribution `write` must remove first); it returns
/// the row counts. Nothing is committed if `write` fails.
pub fn ingest_atomically<E: From<DbError>>(
    conn: &mut Connection,
    domain: &str,
    meta: &InputMeta,
    job: Option<JobId>,
    write: impl FnOnce(&Transaction<'_>, FileId, Option<FileId>) -> Result<Counts, E>,
) -> Result<Outcome, E> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(DbError::from)?;
    if let Some(previous_name) = find_same_content(&tx, domain, &meta.hash)? {
        return Ok(Outcome::Duplicate { previous_name });
    }
    let replaced = tx
        .query_row(
            "SELECT id FROM core_ledger WHERE domain = ?1 AND name = ?2",
            params![domain, meta.name],
            |r| r.get(0).map(FileId),
        )
        .optional()
        .map_err(DbError::from)?;
    if let Some(old) = replaced {
        // Keep the old id until the domain removed its rows; re-key the name first so the
        // new entry can take it.
        tx.execute(
            "UPDATE core_ledger SET name = name || ' (replaced ' || id || ')' WHERE id = ?1",
            [old.0],
        )
        .map_err(DbError::from)?;
    }
    tx.execute(
        "INSERT INTO core_ledger (domain, name, content_hash, size, job_id, ingested_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            domain,
            meta.name,
            meta.hash.0,
            meta.size as i64,
            job.map(|j| j.to_string()),
            Utc::now().to_rfc3339()
        ],
    )
    .map_err(DbError::from)?;
    let file_id = FileId(tx.last_insert_rowid());
    let counts = write(&tx, file_id, replaced)?;
    if let Some(old) = replaced {
        tx.execute("DELETE FROM core_ledger WHERE id = ?1", [old.0])
            .map_err(DbError::from)?;
    }
    tx.execute(
        "UPDATE core_ledger SET rows_accepted = ?2, rows_rejected = ?3 WHERE id = ?1",
        params![file_id.0, counts.accepted as i64, counts.rejected as i64],
    )
    .map_err(DbError::from)?;
    tx.commit().map_err(DbError::from)?;
    Ok(Outcome::Done {
        file_id,
        status: if replaced.is_some() {
            FileStatus::Replaced
        } else {
            FileStatus::Ingested
        },
        counts,
    })
}

/// The name of an input of `domain` with this content, if any.
pub fn find_same_content(
    conn: &Connection,
    domain: &str,
    hash: &ContentHash,
) -> Result<Option<String>, DbError> {
    Ok(conn
        .query_row(
            "SELECT name FROM core_ledger WHERE domain = ?1 AND content_hash = ?2",
            params![domain, hash.0],
            |r| r.get(0),
        )
        .optional()?)
}

pub mod postgres;

/// The inputs of a domain, newest first, on either backend.
pub fn entries(db: &Database, domain: &str, limit: u32) -> Result<Vec<LedgerEntry>, DbError> {
    match db {
        Database::Sqlite(db) => db.read(|c| list(c, domain, limit)),
        Database::Postgres(pg) => pg.read(|tx| postgres::list(tx, domain, limit)),
    }
}

/// One ledger entry, for listings.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct LedgerEntry {
    pub name: String,
    pub content_hash: String,
    pub size: u64,
    pub rows_accepted: u64,
    pub rows_rejected: u64,
    pub ingested_at: String,
}

/// The inputs of a domain, newest first.
pub fn list(conn: &Connection, domain: &str, limit: u32) -> Result<Vec<LedgerEntry>, DbError> {
    let mut stmt = conn.prepare(
        "SELECT name, content_hash, size, rows_accepted, rows_rejected, ingested_at
         FROM core_ledger WHERE domain = ?1 ORDER BY id DESC LIMIT ?2",
    )?;
    let rows = stmt
        .query_map(params![domain, limit], |r| {
            Ok(LedgerEntry {
                name: r.get(0)?,
                content_hash: r.get(1)?,
                size: r.get::<_, i64>(2)? as u64,
                rows_accepted: r.get::<_, i64>(3)? as u64,
                rows_rejected: r.get::<_, i64>(4)? as u64,
                ingested_at: r.get(5)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;

    fn setup() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.db")).unwrap();
        db.migrate("core", &crate::jobs::migrations()).unwrap();
        db.write(|c| {
            c.execute_batch("CREATE TABLE d_rows (file_id INTEGER, v INTEGER);")
                .map_err(DbError::from)
        })
        .unwrap();
        (dir, db)
    }

    fn meta(name: &str, content: &str) -> InputMeta {
        InputMeta {
            name: name.into(),
            hash: ContentHash(blake3::hash(content.as_bytes()).to_hex().to_string()),
            size: content.len() as u64,
        }
    }

    fn ingest(db: &Db, m: &InputMeta, v: i64) -> Result<Outcome, DbError> {
        db.write(|c| {
            ingest_atomically(c, "d", m, None, |tx, id, old| {
                if let Some(old) = old {
                    tx.execute("DELETE FROM d_rows WHERE file_id = ?1", [old.0])?;
                }
                tx.execute("INSERT INTO d_rows VALUES (?1, ?2)", [id.0, v])?;
                Ok(Counts {
                    accepted: 1,
                    rejected: 0,
                })
            })
        })
    }

    fn sum(db: &Db) -> i64 {
        db.read(|c| {
            c.query_row("SELECT coalesce(sum(v),0) FROM d_rows", [], |r| r.get(0))
                .map_err(DbError::from)
        })
        .unwrap()
    }

    #[test]
    fn duplicate_replace_and_rollback() {
        let (_d, db) = setup();
        let a = meta("a.csv", "one");
        assert!(matches!(
            ingest(&db, &a, 1).unwrap(),
            Outcome::Done {
                status: FileStatus::Ingested,
                ..
            }
        ));
        assert_eq!(
            ingest(&db, &a, 1).unwrap(),
            Outcome::Duplicate {
                previous_name: "a.csv".into()
            }
        );
        // Same content under another name is a duplicate too: nothing is counted twice.
        assert!(matches!(
            ingest(&db, &meta("b.csv", "one"), 1).unwrap(),
            Outcome::Duplicate { .. }
        ));
        assert_eq!(sum(&db), 1);
        let a2 = meta("a.csv", "two");
        assert!(matches!(
            ingest(&db, &a2, 5).unwrap(),
            Outcome::Done {
                status: FileStatus::Replaced,
                ..
            }
        ));
        assert_eq!(sum(&db), 5);
        // A failing write leaves nothing behind.
        let failed: Result<Outcome, DbError> = db.write(|c| {
            ingest_atomically(c, "d", &meta("c.csv", "three"), None, |tx, id, _| {
                tx.execute("INSERT INTO d_rows VALUES (?1, 100)", [id.0])?;
                Err(DbError::Task("boom".into()))
            })
        });
        assert!(failed.is_err());
        assert_eq!(sum(&db), 5);
        let names: Vec<String> = db
            .read(|c| list(c, "d", 10))
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names, vec!["a.csv".to_string()]);
    }
}
