//! The streams domain's storage: its SQLite SQL here, its PostgreSQL SQL in
//! [`crate::postgres`], the same tables and answers on both. What is not SQL — a batch's
//! counts, turning stored columns into runs, report events and API rows — is shared; the
//! writes dispatch on the backend and the reads behind the routes are one trait ([`Reads`])
//! with an implementation per backend. Times are stored as ISO 8601 UTC text (runs) and
//! epoch milliseconds (events).

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;
use sluice_core::{Database, DbError, Migration};
use utoipa::ToSchema;

use crate::engine::{Consumption, PerStream, ReportEvent, Run};
use crate::harvest::Arrival;
use crate::parse::{EventKind, Stream};

pub fn migrations() -> Vec<Migration> {
    vec![Migration {
        name: "V1__init",
        sql: include_str!("../migrations/V1__init.sql"),
    }]
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("a stored {0} is corrupt")]
    Corrupt(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Db(DbError::Sqlite(e))
    }
}

impl From<StoreError> for sluice_core::ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Db(e) => e.into(),
            other => sluice_core::ApiError::internal(other),
        }
    }
}

/// The reads behind the routes and the CLI, on either backend.
pub trait Reads {
    /// A run and its malformed counts per stream.
    fn get_run(&mut self, run_id: &str) -> Result<Option<(Run, PerStream)>, StoreError>;
    /// The most recently started run that succeeded.
    fn latest_finished(&mut self) -> Result<Option<(Run, PerStream)>, StoreError>;
    /// Runs, newest first (by start, then by insertion).
    fn list_runs(&mut self, limit: u32, offset: u64) -> Result<Vec<Run>, StoreError>;
    /// Every event of a run, as the report needs them (in no particular order).
    fn report_events(&mut self, run_id: &str) -> Result<Vec<ReportEvent>, StoreError>;
    /// A run's events in arrival order, optionally of one stream.
    fn events_page(
        &mut self,
        run_id: &str,
        stream: Option<Stream>,
        limit: u32,
        offset: u64,
    ) -> Result<Vec<StoredEvent>, StoreError>;
    /// A run's malformed messages in arrival order.
    fn malformed_page(
        &mut self,
        run_id: &str,
        limit: u32,
        offset: u64,
    ) -> Result<Vec<StoredMalformed>, StoreError>;
}

/// Runs `f` in one read transaction (one snapshot) of either backend.
pub fn read<R: Send>(
    db: &Database,
    f: impl FnOnce(&mut dyn Reads) -> Result<R, StoreError> + Send,
) -> Result<R, StoreError> {
    match db {
        Database::Sqlite(db) => db.read(|mut c| f(&mut c)),
        Database::Postgres(pg) => pg.read(|tx| f(tx)),
    }
}

/// [`read`] on the primary whatever the replica: for a read that must see this process's
/// own latest commit (the CLI's report right after its harvest).
pub fn read_primary<R: Send>(
    db: &Database,
    f: impl FnOnce(&mut dyn Reads) -> Result<R, StoreError> + Send,
) -> Result<R, StoreError> {
    match db {
        Database::Sqlite(db) => db.read(|mut c| f(&mut c)),
        Database::Postgres(pg) => pg.read_primary(|tx| f(tx)),
    }
}

/// [`read`] on the blocking thread pool, for async handlers.
pub async fn read_async<R: Send + 'static>(
    db: &Database,
    f: impl FnOnce(&mut dyn Reads) -> Result<R, StoreError> + Send + 'static,
) -> Result<R, StoreError> {
    let db = db.clone();
    tokio::task::spawn_blocking(move || read(&db, f))
        .await
        .map_err(|e| StoreError::Db(DbError::Task(e.to_string())))?
}

/// A run about to start.
pub struct NewRun<'a> {
    pub run_id: &'a str,
    pub source: &'a str,
    pub params_json: &'a str,
    pub started_at: &'a str,
}

pub fn insert_run(db: &Database, run: &NewRun<'_>) -> Result<(), DbError> {
    match db {
        Database::Sqlite(db) => db.write(|c| {
            c.execute(
                "INSERT INTO streams_runs (id, source, params, state, started_at)
                 VALUES (?1, ?2, ?3, 'running', ?4)",
                params![run.run_id, run.source, run.params_json, run.started_at],
            )?;
            Ok(())
        }),
        Database::Postgres(pg) => pg.write(|tx| crate::postgres::insert_run(tx, run)),
    }
}

/// Persists a batch of arrivals and the run's counts in one transaction.
pub fn insert_batch(db: &Database, run_id: &str, batch: &[Arrival]) -> Result<(), DbError> {
    match db {
        Database::Sqlite(db) => db.write(|c| insert_batch_sqlite(c, run_id, batch)),
        Database::Postgres(pg) => pg.write(|tx| crate::postgres::insert_batch(tx, run_id, batch)),
    }
}

pub fn finish_run(db: &Database, run_id: &str, end: &RunEnd<'_>) -> Result<(), DbError> {
    match db {
        Database::Sqlite(db) => db.write(|c| {
            c.execute(
                "UPDATE streams_runs SET state = ?2, finished_at = ?3, stop_reason = ?4,
                   error = ?5, ms_sytflix = ?6, ms_sytazon = ?7, ms_sysney = ?8, ms_total = ?9
                 WHERE id = ?1",
                params![
                    run_id,
                    end.state(),
                    end.finished_at,
                    end.stop_reason,
                    end.error,
                    end.ms(0),
                    end.ms(1),
                    end.ms(2),
                    end.total_ms as i64,
                ],
            )?;
            Ok(())
        }),
        Database::Postgres(pg) => pg.write(|tx| crate::postgres::finish_run(tx, run_id, end)),
    }
}

/// A batch's events and malformed messages per stream, in [`Stream::ALL`] order: what the
/// run's counts grow by in the batch's transaction.
pub(crate) struct BatchCounts {
    pub(crate) events: [i64; 3],
    pub(crate) malformed: [i64; 3],
}

impl BatchCounts {
    pub(crate) fn of(batch: &[Arrival]) -> BatchCounts {
        let mut c = BatchCounts {
            events: [0; 3],
            malformed: [0; 3],
        };
        for a in batch {
            match a.message {
                Ok(_) => c.events[a.stream.index()] += 1,
                Err(_) => c.malformed[a.stream.index()] += 1,
            }
        }
        c
    }
}

/// The page cache of a harvest's transactions, in KiB. They append at the right edges of
/// four B-trees (the events and the malformed, and their (run, seq) indexes), so a batch's
/// dirty pages and those edges are all they touch; the shared writer's larger cache would
/// only fill with pages written once and never read again.
const HARVEST_CACHE_KIB: i64 = 8 << 10;

/// [`insert_batch`] on SQLite, under [`HARVEST_CACHE_KIB`] of page cache; the connection's
/// own cache size is restored after.
fn insert_batch_sqlite(c: &mut Connection, run_id: &str, batch: &[Arrival]) -> Result<(), DbError> {
    let cache: i64 = c.pragma_query_value(None, "cache_size", |r| r.get(0))?;
    c.pragma_update(None, "cache_size", -HARVEST_CACHE_KIB)?;
    let inserted = insert_batch_tx(c, run_id, batch);
    c.pragma_update(None, "cache_size", cache)?;
    inserted
}

fn insert_batch_tx(c: &mut Connection, run_id: &str, batch: &[Arrival]) -> Result<(), DbError> {
    let tx = c.transaction()?;
    {
        let mut ev = tx.prepare_cached(
            "INSERT INTO streams_events (run_id, seq, stream, event_id, event_type, event_date,
               at_ms, user_id, first_name, last_name, date_of_birth, country, show_id, platform,
               title, first_actor, release_year, raw)
             VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18)",
        )?;
        let mut bad = tx.prepare_cached(
            "INSERT INTO streams_malformed (run_id, seq, stream, reason, raw)
             VALUES (?1,?2,?3,?4,?5)",
        )?;
        for a in batch {
            match &a.message {
                Ok(e) => {
                    ev.execute(params![
                        run_id,
                        a.seq,
                        a.stream.name(),
                        e.id,
                        e.kind.as_str(),
                        e.event_date,
                        e.at.timestamp_millis(),
                        e.user.id,
                        e.user.first_name,
                        e.user.last_name,
                        e.user.date_of_birth.map(|d| d.to_string()),
                        e.user.country,
                        e.show.show_id,
                        e.show.platform,
                        e.show.title,
                        e.show.first_actor,
                        e.show.release_year,
                        e.raw,
                    ])?;
                }
                Err((reason, raw)) => {
                    bad.execute(params![
                        run_id,
                        a.seq,
                        a.stream.name(),
                        reason.to_string(),
                        raw
                    ])?;
                }
            }
        }
    }
    let n = BatchCounts::of(batch);
    tx.execute(
        "UPDATE streams_runs SET
           events_sytflix = events_sytflix + ?2, events_sytazon = events_sytazon + ?3,
           events_sysney = events_sysney + ?4, malformed_sytflix = malformed_sytflix + ?5,
           malformed_sytazon = malformed_sytazon + ?6, malformed_sysney = malformed_sysney + ?7
         WHERE id = ?1",
        params![
            run_id,
            n.events[0],
            n.events[1],
            n.events[2],
            n.malformed[0],
            n.malformed[1],
            n.malformed[2]
        ],
    )?;
    tx.commit()?;
    Ok(())
}

/// How a run ended.
pub struct RunEnd<'a> {
    pub succeeded: bool,
    pub finished_at: &'a str,
    pub stop_reason: Option<&'a str>,
    pub error: Option<&'a str>,
    /// Per stream, in [`Stream::ALL`] order.
    pub stream_ms: [Option<u64>; 3],
    pub total_ms: u64,
}

impl RunEnd<'_> {
    pub(crate) fn state(&self) -> &'static str {
        if self.succeeded {
            "succeeded"
        } else {
            "failed"
        }
    }

    /// How long stream `i` was consumed, as stored.
    pub(crate) fn ms(&self, i: usize) -> Option<i64> {
        self.stream_ms[i].map(|v| v as i64)
    }
}

pub(crate) const RUN_COLUMNS: &str = "id, state, source, started_at, finished_at, stop_reason,
    error, ms_sytflix, ms_sytazon, ms_sysney, ms_total, events_sytflix, events_sytazon,
    events_sysney, malformed_sytflix, malformed_sytazon, malformed_sysney";

/// A run's columns as [`RUN_COLUMNS`] lists them.
pub(crate) struct RunRow {
    pub(crate) id: String,
    pub(crate) state: String,
    pub(crate) source: String,
    pub(crate) started_at: String,
    pub(crate) finished_at: Option<String>,
    pub(crate) stop_reason: Option<String>,
    pub(crate) error: Option<String>,
    /// sytflix, sytazon, sysney, total.
    pub(crate) ms: [Option<i64>; 4],
    /// Events then malformed messages, each in [`Stream::ALL`] order.
    pub(crate) counts: [i64; 6],
}

impl RunRow {
    /// The run and its malformed counts per stream.
    pub(crate) fn into_run(self) -> (Run, PerStream) {
        let ms = |i: usize| self.ms[i].map(|v| v as u64);
        let c = self.counts.map(|v| v as u64);
        let events = PerStream::from_array([c[0], c[1], c[2]]);
        let malformed = PerStream::from_array([c[3], c[4], c[5]]);
        (
            Run {
                run_id: self.id,
                state: self.state,
                source: self.source,
                started_at: self.started_at,
                finished_at: self.finished_at,
                stop_reason: self.stop_reason,
                error: self.error,
                consumption_ms: Consumption {
                    sytflix: ms(0),
                    sytazon: ms(1),
                    sysney: ms(2),
                    total: ms(3),
                },
                events_total: events.total(),
                malformed_total: malformed.total(),
            },
            malformed,
        )
    }
}

/// An event's columns as the report reads them, before their text is checked.
pub(crate) struct ReportRow {
    pub(crate) seq: i64,
    pub(crate) stream: String,
    pub(crate) kind: String,
    pub(crate) at_ms: i64,
    pub(crate) user_id: i64,
    pub(crate) first_name: Option<String>,
    pub(crate) last_name: Option<String>,
    pub(crate) date_of_birth: Option<String>,
    pub(crate) show_id: String,
    pub(crate) platform: String,
    pub(crate) title: Option<String>,
    pub(crate) first_actor: Option<String>,
    pub(crate) release_year: Option<i64>,
}

/// The columns [`ReportRow`] reads, in its order.
pub(crate) const REPORT_COLUMNS: &str = "seq, stream, event_type, at_ms, user_id, first_name,
    last_name, date_of_birth, show_id, platform, title, first_actor, release_year";

impl ReportRow {
    pub(crate) fn into_event(self) -> Result<ReportEvent, StoreError> {
        let corrupt = |what: String| StoreError::Corrupt(format!("event {}: {what}", self.seq));
        Ok(ReportEvent {
            seq: self.seq,
            stream: self.stream.parse().map_err(corrupt)?,
            kind: self
                .kind
                .parse::<EventKind>()
                .map_err(|_| corrupt(format!("event type {}", self.kind)))?,
            at: DateTime::<Utc>::from_timestamp_millis(self.at_ms)
                .ok_or_else(|| corrupt(format!("time {}", self.at_ms)))?,
            user_id: self.user_id,
            date_of_birth: self
                .date_of_birth
                .as_deref()
                .map(|d| d.parse::<NaiveDate>().map_err(|e| corrupt(e.to_string())))
                .transpose()?,
            first_name: self.first_name,
            last_name: self.last_name,
            show_id: self.show_id,
            platform: self.platform,
            title: self.title,
            first_actor: self.first_actor,
            release_year: self.release_year,
        })
    }
}

/// One stored event as the native API shows it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct StoredEvent {
    /// Arrival order in the run.
    pub seq: i64,
    pub stream: String,
    #[schema(required = true)]
    pub id: Option<String>,
    pub event: String,
    /// ISO 8601 UTC.
    pub at: String,
    /// The payload as received.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

impl StoredEvent {
    /// The event from its stored columns: `at` in epoch milliseconds, `raw` its JSON.
    pub(crate) fn from_columns(
        seq: i64,
        stream: String,
        id: Option<String>,
        event: String,
        at_ms: i64,
        raw: String,
    ) -> StoredEvent {
        let at = DateTime::<Utc>::from_timestamp_millis(at_ms).unwrap_or_default();
        StoredEvent {
            seq,
            stream,
            id,
            event,
            at: sluice_core::time::iso(at),
            // Stored only after it parsed as JSON, so this cannot fail in practice.
            data: serde_json::from_str(&raw).unwrap_or(serde_json::Value::String(raw)),
        }
    }
}

/// One malformed message.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct StoredMalformed {
    pub seq: i64,
    pub stream: String,
    pub reason: String,
    /// The message's lines as received.
    pub raw: String,
}

fn run_row(r: &Row<'_>) -> rusqlite::Result<RunRow> {
    Ok(RunRow {
        id: r.get(0)?,
        state: r.get(1)?,
        source: r.get(2)?,
        started_at: r.get(3)?,
        finished_at: r.get(4)?,
        stop_reason: r.get(5)?,
        error: r.get(6)?,
        ms: [r.get(7)?, r.get(8)?, r.get(9)?, r.get(10)?],
        counts: [
            r.get(11)?,
            r.get(12)?,
            r.get(13)?,
            r.get(14)?,
            r.get(15)?,
            r.get(16)?,
        ],
    })
}

impl Reads for &Connection {
    fn get_run(&mut self, run_id: &str) -> Result<Option<(Run, PerStream)>, StoreError> {
        Ok(self
            .query_row(
                &format!("SELECT {RUN_COLUMNS} FROM streams_runs WHERE id = ?1"),
                [run_id],
                run_row,
            )
            .optional()?
            .map(RunRow::into_run))
    }

    fn latest_finished(&mut self) -> Result<Option<(Run, PerStream)>, StoreError> {
        Ok(self
            .query_row(
                &format!(
                    "SELECT {RUN_COLUMNS} FROM streams_runs WHERE state = 'succeeded'
                     ORDER BY started_at DESC, rowid DESC LIMIT 1"
                ),
                [],
                run_row,
            )
            .optional()?
            .map(RunRow::into_run))
    }

    fn list_runs(&mut self, limit: u32, offset: u64) -> Result<Vec<Run>, StoreError> {
        let mut stmt = self.prepare(&format!(
            "SELECT {RUN_COLUMNS} FROM streams_runs ORDER BY started_at DESC, rowid DESC
             LIMIT ?1 OFFSET ?2"
        ))?;
        let rows = stmt
            .query_map(params![limit, offset as i64], run_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows.into_iter().map(|r| r.into_run().0).collect())
    }

    fn report_events(&mut self, run_id: &str) -> Result<Vec<ReportEvent>, StoreError> {
        let mut stmt = self.prepare(&format!(
            "SELECT {REPORT_COLUMNS} FROM streams_events WHERE run_id = ?1"
        ))?;
        let mut rows = stmt.query([run_id])?;
        let mut events = Vec::new();
        while let Some(r) = rows.next()? {
            events.push(
                ReportRow {
                    seq: r.get(0)?,
                    stream: r.get(1)?,
                    kind: r.get(2)?,
                    at_ms: r.get(3)?,
                    user_id: r.get(4)?,
                    first_name: r.get(5)?,
                    last_name: r.get(6)?,
                    date_of_birth: r.get(7)?,
                    show_id: r.get(8)?,
                    platform: r.get(9)?,
                    title: r.get(10)?,
                    first_actor: r.get(11)?,
                    release_year: r.get(12)?,
                }
                .into_event()?,
            );
        }
        Ok(events)
    }

    fn events_page(
        &mut self,
        run_id: &str,
        stream: Option<Stream>,
        limit: u32,
        offset: u64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let mut stmt = self.prepare(
            "SELECT seq, stream, event_id, event_type, at_ms, raw FROM streams_events
             WHERE run_id = ?1 AND (?2 IS NULL OR stream = ?2)
             ORDER BY seq LIMIT ?3 OFFSET ?4",
        )?;
        let events = stmt
            .query_map(
                params![run_id, stream.map(Stream::name), limit, offset as i64],
                |r| {
                    Ok(StoredEvent::from_columns(
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                },
            )?
            .collect::<Result<_, _>>()?;
        Ok(events)
    }

    fn malformed_page(
        &mut self,
        run_id: &str,
        limit: u32,
        offset: u64,
    ) -> Result<Vec<StoredMalformed>, StoreError> {
        let mut stmt = self.prepare(
            "SELECT seq, stream, reason, raw FROM streams_malformed WHERE run_id = ?1
             ORDER BY seq LIMIT ?2 OFFSET ?3",
        )?;
        let rows = stmt
            .query_map(params![run_id, limit, offset as i64], |r| {
                Ok(StoredMalformed {
                    seq: r.get(0)?,
                    stream: r.get(1)?,
                    reason: r.get(2)?,
                    raw: r.get(3)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }
}
