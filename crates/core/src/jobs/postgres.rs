//! The SQL of [`super::Jobs`] on PostgreSQL: the same statements as on SQLite, `seq` in the
//! place of the rowid.

use chrono::{DateTime, Utc};
use postgres::{Row, Transaction};

use super::{Job, JobFilter, JobId, JobState, Progress, INTERRUPTED, JOB_COLUMNS};
use crate::db::DbError;
use crate::pg::PgDb;

pub(super) fn persist(tx: &mut Transaction<'_>, job: &Job, owner: &str) -> Result<(), DbError> {
    let summary = serde_json::to_string(&job.summary).expect("summary serializes");
    tx.execute(
        "INSERT INTO core_jobs (id, domain, kind, state, progress_done, progress_total,
           progress_unit, created_at, started_at, finished_at, summary, error,
           callback_url, owner)
         VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14)
         ON CONFLICT (id) DO UPDATE SET state=excluded.state,
           progress_done=excluded.progress_done, progress_total=excluded.progress_total,
           started_at=excluded.started_at, finished_at=excluded.finished_at,
           summary=excluded.summary, error=excluded.error",
        &[
            &job.id.to_string(),
            &job.domain,
            &job.kind,
            &job.state.as_str(),
            &(job.progress.done as i64),
            &job.progress.total.map(|t| t as i64),
            &job.progress.unit,
            &job.created_at.to_rfc3339(),
            &job.started_at.map(|t| t.to_rfc3339()),
            &job.finished_at.map(|t| t.to_rfc3339()),
            &summary,
            &job.error,
            &job.callback_url,
            &owner,
        ],
    )?;
    Ok(())
}

/// Marks the unfinished jobs of owners whose lease expired as failed; returns their ids. Two
/// instances sweeping at once mark each job once (the update re-checks the state).
pub(super) fn recover(pg: &PgDb) -> Result<Vec<JobId>, DbError> {
    let rows: Vec<(String, String)> = pg.read_primary(|tx| {
        Ok::<_, DbError>(
            tx.query(
                "SELECT id, owner FROM core_jobs WHERE state IN ('queued','running')",
                &[],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect(),
        )
    })?;
    let dead: Vec<String> = rows
        .into_iter()
        .filter(|(_, owner)| !pg.owner().is_alive(owner))
        .map(|(id, _)| id)
        .collect();
    if dead.is_empty() {
        return Ok(Vec::new());
    }
    pg.write(|tx| {
        let mut marked = Vec::new();
        for id in dead {
            let n = tx.execute(
                "UPDATE core_jobs SET state='failed', finished_at=$2, error=$3
                 WHERE id=$1 AND state IN ('queued','running')",
                &[&id, &Utc::now().to_rfc3339(), &INTERRUPTED],
            )?;
            if let (1, Ok(id)) = (n, id.parse()) {
                marked.push(id);
            }
        }
        Ok(marked)
    })
}

fn time(r: &Row, i: usize) -> Result<Option<DateTime<Utc>>, DbError> {
    r.get::<_, Option<String>>(i)
        .map(|s| {
            DateTime::parse_from_rfc3339(&s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| DbError::Task(format!("core_jobs column {i}: {e}")))
        })
        .transpose()
}

fn row_to_job(r: &Row) -> Result<Job, DbError> {
    let bad = |what: &str, e: String| DbError::Task(format!("core_jobs {what}: {e}"));
    let id: String = r.get(0);
    let state: String = r.get(3);
    let summary: String = r.get(10);
    Ok(Job {
        id: id
            .parse()
            .map_err(|e: uuid::Error| bad("id", e.to_string()))?,
        domain: r.get(1),
        kind: r.get(2),
        state: state.parse::<JobState>().map_err(|e| bad("state", e))?,
        progress: Progress {
            done: r.get::<_, i64>(4) as u64,
            total: r.get::<_, Option<i64>>(5).map(|t| t as u64),
            unit: r.get(6),
        },
        created_at: time(r, 7)?.unwrap_or_default(),
        started_at: time(r, 8)?,
        finished_at: time(r, 9)?,
        summary: serde_json::from_str(&summary).map_err(|e| bad("summary", e.to_string()))?,
        error: r.get(11),
        callback_url: r.get(12),
    })
}

pub(super) fn load(tx: &mut Transaction<'_>, id: JobId) -> Result<Option<Job>, DbError> {
    tx.query_opt(
        &format!("SELECT {JOB_COLUMNS} FROM core_jobs WHERE id = $1"),
        &[&id.to_string()],
    )?
    .as_ref()
    .map(row_to_job)
    .transpose()
}

pub(super) fn list(tx: &mut Transaction<'_>, f: &JobFilter) -> Result<Vec<Job>, DbError> {
    let before: Option<i64> = match f.before {
        Some(id) => tx
            .query_opt(
                "SELECT seq FROM core_jobs WHERE id = $1",
                &[&id.to_string()],
            )?
            .map(|r| r.get(0)),
        None => None,
    };
    let rows = tx.query(
        &format!(
            "SELECT {JOB_COLUMNS} FROM core_jobs
             WHERE ($1::text IS NULL OR domain = $1) AND ($2::text IS NULL OR kind = $2)
               AND ($3::text IS NULL OR state = $3) AND ($4::bigint IS NULL OR seq < $4)
             ORDER BY seq DESC LIMIT $5"
        ),
        &[
            &f.domain,
            &f.kind,
            &f.state.map(JobState::as_str),
            &before,
            &i64::from(f.limit),
        ],
    )?;
    rows.iter().map(row_to_job).collect()
}

pub(super) fn with_prefix(
    tx: &mut Transaction<'_>,
    prefix: &str,
    limit: u32,
) -> Result<Vec<JobId>, DbError> {
    let rows = tx.query(
        "SELECT id FROM core_jobs WHERE substr(id, 1, length($1)) = $1
         ORDER BY seq DESC LIMIT $2",
        &[&prefix, &i64::from(limit)],
    )?;
    Ok(rows
        .iter()
        .filter_map(|r| r.get::<_, String>(0).parse().ok())
        .collect())
}

pub(super) fn prune(tx: &mut Transaction<'_>, before: DateTime<Utc>) -> Result<usize, DbError> {
    Ok(tx.execute(
        "DELETE FROM core_jobs WHERE state IN ('succeeded','failed','cancelled')
         AND finished_at < $1",
        &[&before.to_rfc3339()],
    )? as usize)
}
