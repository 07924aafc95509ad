//! All SQL of the domain, parameterized. Times are stored as ISO 8601 UTC text (runs) and
//! epoch milliseconds (events).

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;
use sluice_core::{DbError, Migration};
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

pub fn insert_run(
    c: &Connection,
    run_id: &str,
    source: &str,
    params_json: &str,
    started_at: &str,
) -> Result<(), DbError> {
    c.execute(
        "INSERT INTO streams_runs (id, source, params, state, started_at)
         VALUES (?1, ?2, ?3, 'running', ?4)",
        params![run_id, source, params_json, started_at],
    )?;
    Ok(())
}

/// The page cache of a harvest's transactions, in KiB. They append at the right edges of
/// four B-trees (the events and the malformed, and their (run, seq) indexes), so a batch's
/// dirty pages and those edges are all they touch; the shared writer's larger cache would
/// only fill with pages written once and never read again.
const HARVEST_CACHE_KIB: i64 = 8 << 10;

/// Persists a batch of arrivals and the run's counts in one transaction, under
/// [`HARVEST_CACHE_KIB`] of page cache; the connection's own cache size is restored after.
pub fn insert_batch(c: &mut Connection, run_id: &str, batch: &[Arrival]) -> Result<(), DbError> {
    let cache: i64 = c.pragma_query_value(None, "cache_size", |r| r.get(0))?;
    c.pragma_update(None, "cache_size", -HARVEST_CACHE_KIB)?;
    let inserted = insert_batch_tx(c, run_id, batch);
    c.pragma_update(None, "cache_size", cache)?;
    inserted
}

fn insert_batch_tx(c: &mut Connection, run_id: &str, batch: &[Arrival]) -> Result<(), DbError> {
    let tx = c.transaction()?;
    let mut events = [0i64; 3];
    let mut malformed = [0i64; 3];
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
                    events[a.stream.index()] += 1;
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
                    malformed[a.stream.index()] += 1;
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
    tx.execute(
        "UPDATE streams_runs SET
           events_sytflix = events_sytflix + ?2, events_sytazon = events_sytazon + ?3,
           events_sysney = events_sysney + ?4, malformed_sytflix = malformed_sytflix + ?5,
           malformed_sytazon = malformed_sytazon + ?6, malformed_sysney = malformed_sysney + ?7
         WHERE id = ?1",
        params![
            run_id,
            events[0],
            events[1],
            events[2],
            malformed[0],
            malformed[1],
            malformed[2]
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

pub fn finish_run(c: &Connection, run_id: &str, end: &RunEnd<'_>) -> Result<(), DbError> {
    let ms = |v: Option<u64>| v.map(|v| v as i64);
    c.execute(
        "UPDATE streams_runs SET state = ?2, finished_at = ?3, stop_reason = ?4, error = ?5,
           ms_sytflix = ?6, ms_sytazon = ?7, ms_sysney = ?8, ms_total = ?9
         WHERE id = ?1",
        params![
            run_id,
            if end.succeeded { "succeeded" } else { "failed" },
            end.finished_at,
            end.stop_reason,
            end.error,
            ms(end.stream_ms[0]),
            ms(end.stream_ms[1]),
            ms(end.stream_ms[2]),
            end.total_ms as i64,
        ],
    )?;
    Ok(())
}

const RUN_COLUMNS: &str = "id, state, source, started_at, finished_at, stop_reason, error,
    ms_sytflix, ms_sytazon, ms_sysney, ms_total, events_sytflix, events_sytazon, events_sysney,
    malformed_sytflix, malformed_sytazon, malformed_sysney";

/// A run and its malformed counts per stream.
fn row_to_run(r: &Row<'_>) -> rusqlite::Result<(Run, PerStream)> {
    let ms = |i: usize| -> rusqlite::Result<Option<u64>> {
        Ok(r.get::<_, Option<i64>>(i)?.map(|v| v as u64))
    };
    let count = |i: usize| -> rusqlite::Result<u64> { Ok(r.get::<_, i64>(i)? as u64) };
    let events = PerStream::from_array([count(11)?, count(12)?, count(13)?]);
    let malformed = PerStream::from_array([count(14)?, count(15)?, count(16)?]);
    Ok((
        Run {
            run_id: r.get(0)?,
            state: r.get(1)?,
            source: r.get(2)?,
            started_at: r.get(3)?,
            finished_at: r.get(4)?,
            stop_reason: r.get(5)?,
            error: r.get(6)?,
            consumption_ms: Consumption {
                sytflix: ms(7)?,
                sytazon: ms(8)?,
                sysney: ms(9)?,
                total: ms(10)?,
            },
            events_total: events.total(),
            malformed_total: malformed.total(),
        },
        malformed,
    ))
}

pub fn get_run(c: &Connection, run_id: &str) -> Result<Option<(Run, PerStream)>, DbError> {
    Ok(c.query_row(
        &format!("SELECT {RUN_COLUMNS} FROM streams_runs WHERE id = ?1"),
        [run_id],
        row_to_run,
    )
    .optional()?)
}

/// The most recently started run that succeeded.
pub fn latest_finished(c: &Connection) -> Result<Option<(Run, PerStream)>, DbError> {
    Ok(c.query_row(
        &format!(
            "SELECT {RUN_COLUMNS} FROM streams_runs WHERE state = 'succeeded'
             ORDER BY started_at DESC, rowid DESC LIMIT 1"
        ),
        [],
        row_to_run,
    )
    .optional()?)
}

/// Runs, newest first.
pub fn list_runs(c: &Connection, limit: u32, offset: u64) -> Result<Vec<Run>, DbError> {
    let mut stmt = c.prepare(&format!(
        "SELECT {RUN_COLUMNS} FROM streams_runs ORDER BY started_at DESC, rowid DESC
         LIMIT ?1 OFFSET ?2"
    ))?;
    let runs = stmt
        .query_map(params![limit, offset as i64], |r| {
            row_to_run(r).map(|x| x.0)
        })?
        .collect::<Result<_, _>>()?;
    Ok(runs)
}

/// Every event of a run, as the report needs them.
pub fn report_events(c: &Connection, run_id: &str) -> Result<Vec<ReportEvent>, DbError> {
    let mut stmt = c.prepare(
        "SELECT seq, stream, event_type, at_ms, user_id, first_name, last_name, date_of_birth,
           show_id, platform, title, first_actor, release_year
         FROM streams_events WHERE run_id = ?1",
    )?;
    let bad = |i: usize, what: String| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Text,
            Box::<dyn std::error::Error + Send + Sync>::from(what),
        )
    };
    let events = stmt
        .query_map([run_id], |r| {
            let stream: String = r.get(1)?;
            let kind: String = r.get(2)?;
            let at: i64 = r.get(3)?;
            let dob: Option<String> = r.get(7)?;
            Ok(ReportEvent {
                seq: r.get(0)?,
                stream: stream.parse().map_err(|e| bad(1, e))?,
                kind: kind
                    .parse::<EventKind>()
                    .map_err(|_| bad(2, format!("event type {kind}")))?,
                at: DateTime::<Utc>::from_timestamp_millis(at)
                    .ok_or_else(|| bad(3, format!("time {at}")))?,
                user_id: r.get(4)?,
                first_name: r.get(5)?,
                last_name: r.get(6)?,
                date_of_birth: dob
                    .map(|d| d.parse::<NaiveDate>().map_err(|e| bad(7, e.to_string())))
                    .transpose()?,
                show_id: r.get(8)?,
                platform: r.get(9)?,
                title: r.get(10)?,
                first_actor: r.get(11)?,
                release_year: r.get(12)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(events)
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

/// A run's events in arrival order, optionally of one stream.
pub fn events_page(
    c: &Connection,
    run_id: &str,
    stream: Option<Stream>,
    limit: u32,
    offset: u64,
) -> Result<Vec<StoredEvent>, DbError> {
    let mut stmt = c.prepare(
        "SELECT seq, stream, event_id, event_type, at_ms, raw FROM streams_events
         WHERE run_id = ?1 AND (?2 IS NULL OR stream = ?2)
         ORDER BY seq LIMIT ?3 OFFSET ?4",
    )?;
    let events = stmt
        .query_map(
            params![run_id, stream.map(Stream::name), limit, offset as i64],
            |r| {
                let raw: String = r.get(5)?;
                let at = DateTime::<Utc>::from_timestamp_millis(r.get(4)?).unwrap_or_default();
                Ok(StoredEvent {
                    seq: r.get(0)?,
                    stream: r.get(1)?,
                    id: r.get(2)?,
                    event: r.get(3)?,
                    at: sluice_core::time::iso(at),
                    // Stored only after it parsed as JSON, so this cannot fail in practice.
                    data: serde_json::from_str(&raw).unwrap_or(serde_json::Value::String(raw)),
                })
            },
        )?
        .collect::<Result<_, _>>()?;
    Ok(events)
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

pub fn malformed_page(
    c: &Connection,
    run_id: &str,
    limit: u32,
    offset: u64,
) -> Result<Vec<StoredMalformed>, DbError> {
    let mut stmt = c.prepare(
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
