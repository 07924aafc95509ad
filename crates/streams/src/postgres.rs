//! The streams domain's SQL on PostgreSQL: the same tables and statements as
//! [`crate::store`]'s SQLite ones. A harvest batch is loaded with binary `COPY` into each of
//! the two tables, in the transaction that also adds it to the run's counts.
//!
//! Text the source chose is stored as BYTEA (see the migration): written as the string's
//! UTF-8 bytes, read back into the same string.

use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{ToSql, Type};
use postgres::Transaction;
use sluice_core::{DbError, Migration};

use crate::engine::{PerStream, ReportEvent, Run};
use crate::harvest::Arrival;
use crate::parse::Stream;
use crate::store::{
    BatchCounts, NewRun, Reads, ReportRow, RunEnd, RunRow, StoreError, StoredEvent,
    StoredMalformed, REPORT_COLUMNS, RUN_COLUMNS,
};

pub fn migrations() -> Vec<Migration> {
    vec![Migration {
        name: "V1__init",
        sql: include_str!("../migrations/postgres/V1__init.sql"),
    }]
}

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> Self {
        StoreError::Db(DbError::Pg(e))
    }
}

pub(crate) fn insert_run(tx: &mut Transaction<'_>, run: &NewRun<'_>) -> Result<(), DbError> {
    tx.execute(
        "INSERT INTO streams_runs (id, source, params, state, started_at)
         VALUES ($1, $2, $3, 'running', $4)",
        &[&run.run_id, &run.source, &run.params_json, &run.started_at],
    )?;
    Ok(())
}

const EVENT_TYPES: [Type; 18] = [
    Type::TEXT,  // run_id
    Type::INT8,  // seq
    Type::TEXT,  // stream
    Type::TEXT,  // event_id
    Type::TEXT,  // event_type
    Type::TEXT,  // event_date
    Type::INT8,  // at_ms
    Type::INT8,  // user_id
    Type::BYTEA, // first_name
    Type::BYTEA, // last_name
    Type::TEXT,  // date_of_birth
    Type::BYTEA, // country
    Type::BYTEA, // show_id
    Type::BYTEA, // platform
    Type::BYTEA, // title
    Type::BYTEA, // first_actor
    Type::INT8,  // release_year
    Type::TEXT,  // raw
];

const MALFORMED_TYPES: [Type; 5] = [
    Type::TEXT,  // run_id
    Type::INT8,  // seq
    Type::TEXT,  // stream
    Type::BYTEA, // reason
    Type::BYTEA, // raw
];

fn bytes(s: &Option<String>) -> Option<&[u8]> {
    s.as_deref().map(str::as_bytes)
}

/// [`crate::store::insert_batch`] on PostgreSQL, in the batch's transaction: the events and
/// the malformed messages each by one binary `COPY`, then the run's counts.
pub(crate) fn insert_batch(
    tx: &mut Transaction<'_>,
    run_id: &str,
    batch: &[Arrival],
) -> Result<(), DbError> {
    let n = BatchCounts::of(batch);
    if n.events.iter().any(|&c| c > 0) {
        let sink = tx.copy_in(
            "COPY streams_events (run_id, seq, stream, event_id, event_type, event_date, at_ms,
               user_id, first_name, last_name, date_of_birth, country, show_id, platform, title,
               first_actor, release_year, raw) FROM STDIN BINARY",
        )?;
        let mut w = BinaryCopyInWriter::new(sink, &EVENT_TYPES);
        for a in batch {
            let Ok(e) = &a.message else { continue };
            let dob = e.user.date_of_birth.map(|d| d.to_string());
            let row: [&(dyn ToSql + Sync); 18] = [
                &run_id,
                &a.seq,
                &a.stream.name(),
                &e.id,
                &e.kind.as_str(),
                &e.event_date,
                &e.at.timestamp_millis(),
                &e.user.id,
                &bytes(&e.user.first_name),
                &bytes(&e.user.last_name),
                &dob,
                &bytes(&e.user.country),
                &e.show.show_id.as_bytes(),
                &e.show.platform.as_bytes(),
                &bytes(&e.show.title),
                &bytes(&e.show.first_actor),
                &e.show.release_year,
                &e.raw,
            ];
            w.write(&row)?;
        }
        w.finish()?;
    }
    if n.malformed.iter().any(|&c| c > 0) {
        let sink = tx.copy_in(
            "COPY streams_malformed (run_id, seq, stream, reason, raw) FROM STDIN BINARY",
        )?;
        let mut w = BinaryCopyInWriter::new(sink, &MALFORMED_TYPES);
        for a in batch {
            let Err((reason, raw)) = &a.message else {
                continue;
            };
            let reason = reason.to_string();
            let row: [&(dyn ToSql + Sync); 5] = [
                &run_id,
                &a.seq,
                &a.stream.name(),
                &reason.as_bytes(),
                &raw.as_bytes(),
            ];
            w.write(&row)?;
        }
        w.finish()?;
    }
    tx.execute(
        "UPDATE streams_runs SET
           events_sytflix = events_sytflix + $2, events_sytazon = events_sytazon + $3,
           events_sysney = events_sysney + $4, malformed_sytflix = malformed_sytflix + $5,
           malformed_sytazon = malformed_sytazon + $6, malformed_sysney = malformed_sysney + $7
         WHERE id = $1",
        &[
            &run_id,
            &n.events[0],
            &n.events[1],
            &n.events[2],
            &n.malformed[0],
            &n.malformed[1],
            &n.malformed[2],
        ],
    )?;
    Ok(())
}

pub(crate) fn finish_run(
    tx: &mut Transaction<'_>,
    run_id: &str,
    end: &RunEnd<'_>,
) -> Result<(), DbError> {
    tx.execute(
        "UPDATE streams_runs SET state = $2, finished_at = $3, stop_reason = $4, error = $5,
           ms_sytflix = $6, ms_sytazon = $7, ms_sysney = $8, ms_total = $9
         WHERE id = $1",
        &[
            &run_id,
            &end.state(),
            &end.finished_at,
            &end.stop_reason,
            &end.error,
            &end.ms(0),
            &end.ms(1),
            &end.ms(2),
            &(end.total_ms as i64),
        ],
    )?;
    Ok(())
}

fn run_row(r: &postgres::Row) -> RunRow {
    RunRow {
        id: r.get(0),
        state: r.get(1),
        source: r.get(2),
        started_at: r.get(3),
        finished_at: r.get(4),
        stop_reason: r.get(5),
        error: r.get(6),
        ms: [r.get(7), r.get(8), r.get(9), r.get(10)],
        counts: [
            r.get(11),
            r.get(12),
            r.get(13),
            r.get(14),
            r.get(15),
            r.get(16),
        ],
    }
}

/// A BYTEA column written from a string, back into that string.
fn text(r: &postgres::Row, i: usize) -> Result<String, StoreError> {
    String::from_utf8(r.get(i)).map_err(|_| StoreError::Corrupt(format!("text in column {i}")))
}

fn opt_text(r: &postgres::Row, i: usize) -> Result<Option<String>, StoreError> {
    r.get::<_, Option<Vec<u8>>>(i)
        .map(|b| {
            String::from_utf8(b).map_err(|_| StoreError::Corrupt(format!("text in column {i}")))
        })
        .transpose()
}

impl Reads for Transaction<'_> {
    fn get_run(&mut self, run_id: &str) -> Result<Option<(Run, PerStream)>, StoreError> {
        Ok(self
            .query_opt(
                &format!("SELECT {RUN_COLUMNS} FROM streams_runs WHERE id = $1"),
                &[&run_id],
            )?
            .map(|r| run_row(&r).into_run()))
    }

    fn latest_finished(&mut self) -> Result<Option<(Run, PerStream)>, StoreError> {
        Ok(self
            .query_opt(
                &format!(
                    "SELECT {RUN_COLUMNS} FROM streams_runs WHERE state = 'succeeded'
                     ORDER BY started_at DESC, run_no DESC LIMIT 1"
                ),
                &[],
            )?
            .map(|r| run_row(&r).into_run()))
    }

    fn list_runs(&mut self, limit: u32, offset: u64) -> Result<Vec<Run>, StoreError> {
        Ok(self
            .query(
                &format!(
                    "SELECT {RUN_COLUMNS} FROM streams_runs ORDER BY started_at DESC, run_no DESC
                     LIMIT $1 OFFSET $2"
                ),
                &[&i64::from(limit), &(offset as i64)],
            )?
            .iter()
            .map(|r| run_row(r).into_run().0)
            .collect())
    }

    fn report_events(&mut self, run_id: &str) -> Result<Vec<ReportEvent>, StoreError> {
        self.query(
            &format!("SELECT {REPORT_COLUMNS} FROM streams_events WHERE run_id = $1"),
            &[&run_id],
        )?
        .iter()
        .map(|r| {
            ReportRow {
                seq: r.get(0),
                stream: r.get(1),
                kind: r.get(2),
                at_ms: r.get(3),
                user_id: r.get(4),
                first_name: opt_text(r, 5)?,
                last_name: opt_text(r, 6)?,
                date_of_birth: r.get(7),
                show_id: text(r, 8)?,
                platform: text(r, 9)?,
                title: opt_text(r, 10)?,
                first_actor: opt_text(r, 11)?,
                release_year: r.get(12),
            }
            .into_event()
        })
        .collect()
    }

    fn events_page(
        &mut self,
        run_id: &str,
        stream: Option<Stream>,
        limit: u32,
        offset: u64,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        Ok(self
            .query(
                "SELECT seq, stream, event_id, event_type, at_ms, raw FROM streams_events
                 WHERE run_id = $1 AND ($2::text IS NULL OR stream = $2)
                 ORDER BY seq LIMIT $3 OFFSET $4",
                &[
                    &run_id,
                    &stream.map(Stream::name),
                    &i64::from(limit),
                    &(offset as i64),
                ],
            )?
            .iter()
            .map(|r| {
                StoredEvent::from_columns(
                    r.get(0),
                    r.get(1),
                    r.get(2),
                    r.get(3),
                    r.get(4),
                    r.get(5),
                )
            })
            .collect())
    }

    fn malformed_page(
        &mut self,
        run_id: &str,
        limit: u32,
        offset: u64,
    ) -> Result<Vec<StoredMalformed>, StoreError> {
        self.query(
            "SELECT seq, stream, reason, raw FROM streams_malformed WHERE run_id = $1
             ORDER BY seq LIMIT $2 OFFSET $3",
            &[&run_id, &i64::from(limit), &(offset as i64)],
        )?
        .iter()
        .map(|r| {
            Ok(StoredMalformed {
                seq: r.get(0),
                stream: r.get(1),
                reason: text(r, 2)?,
                raw: text(r, 3)?,
            })
        })
        .collect()
    }
}
