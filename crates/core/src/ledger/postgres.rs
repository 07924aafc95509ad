//! The ledger on PostgreSQL. Several instances may ingest at once: the commits of one
//! domain's inputs take turns under a transaction-scoped advisory lock, so "is this content
//! already here" and "does this name replace an entry" are answered against every committed
//! input, whichever instance committed it. Parsing and folding, outside the transaction,
//! still run in parallel.

use chrono::Utc;
use postgres::Transaction;

use super::{ContentHash, Counts, FileId, InputMeta, LedgerEntry, Outcome};
use crate::db::DbError;
use crate::jobs::{FileStatus, JobId};
use crate::pg::advisory_key;

/// [`super::ingest_atomically`] on PostgreSQL, inside `tx` (of [`crate::PgDb::write`], which
/// commits it when this succeeds).
pub fn ingest_atomically<E: From<DbError>>(
    tx: &mut Transaction<'_>,
    domain: &str,
    meta: &InputMeta,
    job: Option<JobId>,
    write: impl FnOnce(&mut Transaction<'_>, FileId, Option<FileId>) -> Result<Counts, E>,
) -> Result<Outcome, E> {
    lock(tx, domain)?;
    if let Some(previous_name) = find_same_content(tx, domain, &meta.hash)? {
        return Ok(Outcome::Duplicate { previous_name });
    }
    let replaced = tx
        .query_opt(
            "SELECT id FROM core_ledger WHERE domain = $1 AND name = $2",
            &[&domain, &meta.name],
        )
        .map_err(DbError::from)?
        .map(|r| FileId(r.get(0)));
    if let Some(old) = replaced {
        tx.execute(
            "UPDATE core_ledger SET name = name || ' (replaced ' || id || ')' WHERE id = $1",
            &[&old.0],
        )
        .map_err(DbError::from)?;
    }
    let file_id = FileId(
        tx.query_one(
            "INSERT INTO core_ledger (domain, name, content_hash, size, job_id, ingested_at)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            &[
                &domain,
                &meta.name,
                &meta.hash.0,
                &(meta.size as i64),
                &job.map(|j| j.to_string()),
                &Utc::now().to_rfc3339(),
            ],
        )
        .map_err(DbError::from)?
        .get(0),
    );
    let counts = write(tx, file_id, replaced)?;
    if let Some(old) = replaced {
        tx.execute("DELETE FROM core_ledger WHERE id = $1", &[&old.0])
            .map_err(DbError::from)?;
    }
    tx.execute(
        "UPDATE core_ledger SET rows_accepted = $2, rows_rejected = $3 WHERE id = $1",
        &[
            &file_id.0,
            &(counts.accepted as i64),
            &(counts.rejected as i64),
        ],
    )
    .map_err(DbError::from)?;
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

/// Takes the domain's ledger lock until the transaction ends.
pub fn lock(tx: &mut Transaction<'_>, domain: &str) -> Result<(), DbError> {
    let key = advisory_key(&format!("ledger {domain}"));
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&key])?;
    Ok(())
}

/// The name of an input of `domain` with this content, if any.
pub fn find_same_content(
    tx: &mut Transaction<'_>,
    domain: &str,
    hash: &ContentHash,
) -> Result<Option<String>, DbError> {
    Ok(tx
        .query_opt(
            "SELECT name FROM core_ledger WHERE domain = $1 AND content_hash = $2",
            &[&domain, &hash.0],
        )?
        .map(|r| r.get(0)))
}

/// The inputs of a domain, newest first.
pub fn list(
    tx: &mut Transaction<'_>,
    domain: &str,
    limit: u32,
) -> Result<Vec<LedgerEntry>, DbError> {
    Ok(tx
        .query(
            "SELECT name, content_hash, size, rows_accepted, rows_rejected, ingested_at
             FROM core_ledger WHERE domain = $1 ORDER BY id DESC LIMIT $2",
            &[&domain, &i64::from(limit)],
        )?
        .iter()
        .map(|r| LedgerEntry {
            name: r.get(0),
            content_hash: r.get(1),
            size: r.get::<_, i64>(2) as u64,
            rows_accepted: r.get::<_, i64>(3) as u64,
            rows_rejected: r.get::<_, i64>(4) as u64,
            ingested_at: r.get(5),
        })
        .collect())
}
