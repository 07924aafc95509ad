//! All SQL of the domain, parameterized: the schema, the writes of one ingested file, the
//! sorted per-store reads of a report, and the report registry.

use std::collections::{HashMap, HashSet};

use rusqlite::{params, Connection, OptionalExtension, Statement, Transaction};
use sluice_core::ledger::FileId;
use sluice_core::{DbError, Migration};

use crate::engine::{BusinessHours, PollPoint};
use crate::parse::{Hours, LocalTime, Poll, StoreZone, Weekday, DAY};

pub fn migrations() -> Vec<Migration> {
    vec![Migration {
        name: "V1__init",
        sql: include_str!("../migrations/V1__init.sql"),
    }]
}

/// The writes of one file, inside its ledger transaction.
pub struct FileWriter<'t> {
    tx: &'t Transaction<'t>,
    file: FileId,
    ids: HashMap<String, i64>,
    /// (store, day) pairs whose poll block must be rebuilt before commit.
    touched: HashSet<(i64, i64)>,
    /// Whether an earlier file's polls were removed (the latest poll may be earlier now).
    removed: bool,
    /// The latest poll of this file.
    latest: Option<i64>,
    new_store: Statement<'t>,
    poll: Statement<'t>,
    hours: Statement<'t>,
    zone: Statement<'t>,
}

impl<'t> FileWriter<'t> {
    /// Prepares the writes; when the file replaces an earlier one, first takes back what
    /// only that one delivered.
    pub fn new(
        tx: &'t Transaction<'t>,
        file: FileId,
        replaced: Option<FileId>,
    ) -> Result<FileWriter<'t>, DbError> {
        let mut touched = HashSet::new();
        if let Some(old) = replaced {
            let mut stmt = tx.prepare("SELECT store, at FROM uptime_polls WHERE file_id = ?1")?;
            let mut rows = stmt.query([old.0])?;
            while let Some(r) = rows.next()? {
                touched.insert((r.get(0)?, r.get::<_, i64>(1)?.div_euclid(DAY)));
            }
            for table in ["uptime_polls", "uptime_hours", "uptime_zones"] {
                tx.execute(&format!("DELETE FROM {table} WHERE file_id = ?1"), [old.0])?;
            }
            tx.execute(
                "DELETE FROM uptime_stores WHERE
                   NOT EXISTS (SELECT 1 FROM uptime_polls p WHERE p.store = uptime_stores.id)
                   AND NOT EXISTS (SELECT 1 FROM uptime_hours h WHERE h.store = uptime_stores.id)
                   AND NOT EXISTS (SELECT 1 FROM uptime_zones z WHERE z.store = uptime_stores.id)",
                [],
            )?;
        }
        let mut ids = HashMap::new();
        {
            let mut stmt = tx.prepare("SELECT store_id, id FROM uptime_stores")?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                ids.insert(r.get(0)?, r.get(1)?);
            }
        }
        Ok(FileWriter {
            tx,
            file,
            ids,
            touched,
            removed: replaced.is_some(),
            latest: None,
            new_store: tx.prepare("INSERT INTO uptime_stores (store_id) VALUES (?1)")?,
            // A re-delivered poll keeps one row; the latest delivery's status wins.
            poll: tx.prepare(
                "INSERT INTO uptime_polls (store, at, active, file_id) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (store, at) DO UPDATE SET active = excluded.active,
                   file_id = excluded.file_id",
            )?,
            hours: tx.prepare(
                "INSERT INTO uptime_hours (store, day, start_s, end_s, file_id)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (store, day, start_s, end_s) DO UPDATE SET file_id = excluded.file_id",
            )?,
            zone: tx.prepare(
                "INSERT INTO uptime_zones (store, zone, file_id) VALUES (?1, ?2, ?3)
                 ON CONFLICT (store) DO UPDATE SET zone = excluded.zone, file_id = excluded.file_id",
            )?,
        })
    }

    fn store(&mut self, id: &str) -> Result<i64, DbError> {
        if let Some(&k) = self.ids.get(id) {
            return Ok(k);
        }
        self.new_store.execute([id])?;
        let k = self.tx.last_insert_rowid();
        self.ids.insert(id.to_owned(), k);
        Ok(k)
    }

    pub fn poll(&mut self, p: &Poll) -> Result<(), DbError> {
        let s = self.store(p.store.as_str())?;
        self.poll
            .execute(params![s, p.at.0, p.status.is_active(), self.file.0])?;
        self.touched.insert((s, p.at.0.div_euclid(DAY)));
        self.latest = self.latest.max(Some(p.at.0));
        Ok(())
    }

    /// Rebuilds the poll blocks of every (store, day) this file changed and the latest
    /// poll. Call once, last.
    pub fn finish(self) -> Result<(), DbError> {
        if self.removed {
            self.tx.execute(
                "UPDATE uptime_latest SET at =
                   (SELECT max((SELECT max(at) FROM uptime_polls p WHERE p.store = s.id))
                    FROM uptime_stores s)",
                [],
            )?;
        }
        if let Some(at) = self.latest {
            self.tx.execute(
                "UPDATE uptime_latest SET at = max(coalesce(at, ?1), ?1)",
                [at],
            )?;
        }
        let mut touched: Vec<(i64, i64)> = self.touched.into_iter().collect();
        touched.sort_unstable();
        let mut read = self.tx.prepare(
            "SELECT at, active FROM uptime_polls WHERE store = ?1 AND at >= ?2 AND at < ?3
             ORDER BY at",
        )?;
        let mut put = self.tx.prepare(
            "INSERT INTO uptime_poll_days (store, day, polls) VALUES (?1, ?2, ?3)
             ON CONFLICT (store, day) DO UPDATE SET polls = excluded.polls",
        )?;
        let mut drop = self
            .tx
            .prepare("DELETE FROM uptime_poll_days WHERE store = ?1 AND day = ?2")?;
        let mut block = Vec::new();
        for (store, day) in touched {
            block.clear();
            let mut rows = read.query(params![store, day * DAY, (day + 1) * DAY])?;
            while let Some(r) = rows.next()? {
                let p = PollPoint {
                    at: r.get(0)?,
                    up: r.get(1)?,
                };
                block.extend_from_slice(&encode(p).to_le_bytes());
            }
            if block.is_empty() {
                drop.execute(params![store, day])?;
            } else {
                put.execute(params![store, day, block])?;
            }
        }
        Ok(())
    }

    pub fn hours(&mut self, h: &Hours) -> Result<(), DbError> {
        let s = self.store(h.store.as_str())?;
        self.hours.execute(params![
            s,
            h.day.index() as i64,
            h.start.secs(),
            h.end.secs(),
            self.file.0
        ])?;
        Ok(())
    }

    pub fn zone(&mut self, z: &StoreZone) -> Result<(), DbError> {
        let s = self.store(z.store.as_str())?;
        self.zone.execute(params![s, z.zone.name(), self.file.0])?;
        Ok(())
    }
}

/// A store as a report needs it.
#[derive(Clone, Debug)]
pub struct StoreRow {
    pub key: i64,
    pub store_id: String,
    /// The zone name as stored (validated at ingestion).
    pub zone: Option<String>,
}

const STORE_SELECT: &str = "SELECT s.id, s.store_id, z.zone FROM uptime_stores s
     LEFT JOIN uptime_zones z ON z.store = s.id";

fn store_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoreRow> {
    Ok(StoreRow {
        key: r.get(0)?,
        store_id: r.get(1)?,
        zone: r.get(2)?,
    })
}

/// Every store, by store id.
pub fn stores(conn: &Connection) -> Result<Vec<StoreRow>, DbError> {
    let mut stmt = conn.prepare(&format!("{STORE_SELECT} ORDER BY s.store_id"))?;
    let rows = stmt.query_map([], store_row)?.collect::<Result<_, _>>()?;
    Ok(rows)
}

/// Stores by page, by store id.
pub fn stores_page(conn: &Connection, limit: u32, offset: u64) -> Result<Vec<StoreRow>, DbError> {
    let mut stmt = conn.prepare(&format!(
        "{STORE_SELECT} ORDER BY s.store_id LIMIT ?1 OFFSET ?2"
    ))?;
    let rows = stmt
        .query_map(params![limit, offset as i64], store_row)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// One store by its id, if known.
pub fn store(conn: &Connection, store_id: &str) -> Result<Option<StoreRow>, DbError> {
    Ok(conn
        .query_row(
            &format!("{STORE_SELECT} WHERE s.store_id = ?1"),
            [store_id],
            store_row,
        )
        .optional()?)
}

/// Business hours of every store that has some (stores without are 24×7).
pub fn all_hours(conn: &Connection) -> Result<HashMap<i64, BusinessHours>, DbError> {
    let mut stmt = conn.prepare("SELECT store, day, start_s, end_s FROM uptime_hours")?;
    let mut rows = stmt.query([])?;
    let mut raw: HashMap<i64, Vec<(Weekday, LocalTime, LocalTime)>> = HashMap::new();
    while let Some(r) = rows.next()? {
        if let Some(iv) = hours_row(r)? {
            raw.entry(r.get(0)?).or_default().push(iv);
        }
    }
    Ok(raw
        .into_iter()
        .map(|(k, v)| (k, BusinessHours::from_intervals(v)))
        .collect())
}

/// Business-hours intervals of one store, by day and start.
pub fn store_intervals(
    conn: &Connection,
    key: i64,
) -> Result<Vec<(Weekday, LocalTime, LocalTime)>, DbError> {
    let mut stmt = conn.prepare(
        "SELECT store, day, start_s, end_s FROM uptime_hours WHERE store = ?1
         ORDER BY day, start_s",
    )?;
    let mut rows = stmt.query([key])?;
    let mut v = Vec::new();
    while let Some(r) = rows.next()? {
        v.extend(hours_row(r)?);
    }
    Ok(v)
}

/// Rows were validated at ingestion; a row that no longer converts is skipped.
fn hours_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Option<(Weekday, LocalTime, LocalTime)>> {
    let (d, s, e): (u8, u32, u32) = (r.get(1)?, r.get(2)?, r.get(3)?);
    Ok(Weekday::new(d)
        .zip(LocalTime::from_secs(s))
        .zip(LocalTime::from_secs(e))
        .map(|((d, s), e)| (d, s, e)))
}

/// The latest poll of all stores.
pub fn latest_poll(conn: &Connection) -> Result<Option<i64>, DbError> {
    Ok(conn.query_row("SELECT at FROM uptime_latest", [], |r| r.get(0))?)
}

/// The last poll of a store before `day`.
fn last_before(
    before: &mut Statement<'_>,
    store: i64,
    day: i64,
) -> Result<Option<PollPoint>, DbError> {
    Ok(before
        .query_row(params![store, day], |r| {
            Ok(r.get_ref(0)?
                .as_blob()
                .ok()
                .and_then(|b| decode(b).next_back()))
        })
        .optional()?
        .flatten())
}

fn encode(p: PollPoint) -> i64 {
    (p.at << 1) | i64::from(p.up)
}

/// The polls of a block, in time order.
fn decode(block: &[u8]) -> impl DoubleEndedIterator<Item = PollPoint> + '_ {
    block.chunks_exact(8).map(|c| {
        let v = i64::from_le_bytes(c.try_into().expect("chunks of 8 bytes"));
        PollPoint {
            at: v >> 1,
            up: v & 1 == 1,
        }
    })
}

/// Sorted reads of one store's polls around a range, from the per-day blocks.
pub struct PollReader<'c> {
    before: Statement<'c>,
    from: Statement<'c>,
}

impl<'c> PollReader<'c> {
    pub fn new(conn: &'c Connection) -> Result<PollReader<'c>, DbError> {
        Ok(PollReader {
            before: conn.prepare(
                "SELECT polls FROM uptime_poll_days WHERE store = ?1 AND day < ?2
                 ORDER BY day DESC LIMIT 1",
            )?,
            from: conn.prepare(
                "SELECT day, polls FROM uptime_poll_days WHERE store = ?1 AND day >= ?2
                 ORDER BY day",
            )?,
        })
    }

    /// The last poll of a store before `day`.
    pub fn last_before(&mut self, store: i64, day: i64) -> Result<Option<PollPoint>, DbError> {
        last_before(&mut self.before, store, day)
    }

    /// Feeds the polls that decide the status inside `[from, ..)` to `take` in time order:
    /// from the day before `from`'s day on (or, when that day has no polls, the last poll
    /// before it first), until `take` returns false. The first ones may be before `from`.
    pub fn read(
        &mut self,
        store: i64,
        from: i64,
        mut take: impl FnMut(PollPoint) -> bool,
    ) -> Result<(), DbError> {
        // Most stores are polled every day: one range read then covers the last poll before
        // `from` too, and the extra seek is only needed for stores with a gap.
        let day = from.div_euclid(DAY) - 1;
        let mut rows = self.from.query(params![store, day])?;
        let first = rows.next()?;
        if first.is_none_or(|r| r.get::<_, i64>(0).ok() != Some(day)) {
            if let Some(p) = last_before(&mut self.before, store, day)? {
                if !take(p) {
                    return Ok(());
                }
            }
        }
        let mut row = first;
        while let Some(r) = row {
            let block = r.get_ref(1)?.as_blob().map_err(rusqlite::Error::from)?;
            for p in decode(block) {
                if !take(p) {
                    return Ok(());
                }
            }
            row = rows.next()?;
        }
        Ok(())
    }
}

/// The statement of a [`BlockScan`], prepared by the caller that owns it.
pub fn block_scan_statement(conn: &Connection) -> Result<Statement<'_>, DbError> {
    Ok(conn.prepare(
        "SELECT store, day, polls FROM uptime_poll_days
         WHERE store >= ?1 AND store <= ?2 AND day >= ?3 ORDER BY store, day",
    )?)
}

/// One sorted scan over the poll blocks of a range of stores, read store by store in key
/// order: a full report runs one query per reader thread instead of one per store.
pub struct BlockScan<'s, 'c> {
    rows: rusqlite::Rows<'s>,
    /// (store, day) of the block in `buf`, None at the end.
    cur: Option<(i64, i64)>,
    buf: Vec<u8>,
    day: i64,
    reader: PollReader<'c>,
}

impl<'s, 'c> BlockScan<'s, 'c> {
    /// Scans stores `lo..=hi` from the day before `from`'s day on.
    pub fn new(
        stmt: &'s mut Statement<'_>,
        conn: &'c Connection,
        (lo, hi): (i64, i64),
        from: i64,
    ) -> Result<BlockScan<'s, 'c>, DbError> {
        let day = from.div_euclid(DAY) - 1;
        let mut scan = BlockScan {
            rows: stmt.query(params![lo, hi, day])?,
            cur: None,
            buf: Vec::new(),
            day,
            reader: PollReader::new(conn)?,
        };
        scan.advance()?;
        Ok(scan)
    }

    fn advance(&mut self) -> Result<(), DbError> {
        self.cur = None;
        if let Some(r) = self.rows.next()? {
            self.cur = Some((r.get(0)?, r.get(1)?));
            self.buf.clear();
            self.buf
                .extend_from_slice(r.get_ref(2)?.as_blob().map_err(rusqlite::Error::from)?);
        }
        Ok(())
    }

    /// Like [`PollReader::read`] for the next store; stores must come in increasing key
    /// order.
    pub fn read(
        &mut self,
        store: i64,
        mut take: impl FnMut(PollPoint) -> bool,
    ) -> Result<(), DbError> {
        while self.cur.is_some_and(|(s, _)| s < store) {
            self.advance()?;
        }
        if self.cur != Some((store, self.day)) {
            if let Some(p) = self.reader.last_before(store, self.day)? {
                take(p);
            }
        }
        let mut wanted = true;
        while self.cur.is_some_and(|(s, _)| s == store) {
            if wanted {
                for p in decode(&self.buf) {
                    if !take(p) {
                        wanted = false;
                        break;
                    }
                }
            }
            self.advance()?;
        }
        Ok(())
    }
}

/// A report as registered.
#[derive(Clone, Debug)]
pub struct ReportRow {
    pub id: String,
    pub created_at: String,
    pub requested_now: Option<i64>,
    pub stores: Option<Vec<String>>,
    pub coverage: i64,
    pub now: Option<i64>,
    pub rows: Option<i64>,
}

pub fn insert_report(conn: &Connection, r: &ReportRow) -> Result<(), DbError> {
    let stores = r
        .stores
        .as_ref()
        .map(|s| serde_json::to_string(s).unwrap_or_default());
    conn.execute(
        "INSERT INTO uptime_reports (id, created_at, requested_now, stores, coverage)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![r.id, r.created_at, r.requested_now, stores, r.coverage],
    )?;
    Ok(())
}

pub fn finish_report(conn: &Connection, id: &str, now: i64, rows: i64) -> Result<(), DbError> {
    conn.execute(
        "UPDATE uptime_reports SET now = ?2, rows = ?3 WHERE id = ?1",
        params![id, now, rows],
    )?;
    Ok(())
}

const REPORT_SELECT: &str =
    "SELECT id, created_at, requested_now, stores, coverage, now, rows FROM uptime_reports";

fn report_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ReportRow> {
    let stores: Option<String> = r.get(3)?;
    Ok(ReportRow {
        id: r.get(0)?,
        created_at: r.get(1)?,
        requested_now: r.get(2)?,
        stores: stores.and_then(|s| serde_json::from_str(&s).ok()),
        coverage: r.get(4)?,
        now: r.get(5)?,
        rows: r.get(6)?,
    })
}

pub fn report(conn: &Connection, id: &str) -> Result<Option<ReportRow>, DbError> {
    Ok(conn
        .query_row(&format!("{REPORT_SELECT} WHERE id = ?1"), [id], report_row)
        .optional()?)
}

/// Reports newest first.
pub fn reports(conn: &Connection, limit: u32, offset: u64) -> Result<Vec<ReportRow>, DbError> {
    let mut stmt = conn.prepare(&format!(
        "{REPORT_SELECT} ORDER BY rowid DESC LIMIT ?1 OFFSET ?2"
    ))?;
    let rows = stmt
        .query_map(params![limit, offset as i64], report_row)?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// What is stored, for `GET /api/v1/uptime/summary`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[schema(as = UptimeStored)]
pub struct Stored {
    pub stores: i64,
    pub stores_with_hours: i64,
    pub stores_with_zone: i64,
    pub polls: i64,
    /// Microseconds since the epoch.
    #[serde(skip)]
    pub latest_poll: Option<i64>,
}

pub fn stored(conn: &Connection) -> Result<Stored, DbError> {
    let (stores, stores_with_hours, stores_with_zone, polls) = conn.query_row(
        "SELECT (SELECT count(*) FROM uptime_stores),
                (SELECT count(DISTINCT store) FROM uptime_hours),
                (SELECT count(*) FROM uptime_zones),
                (SELECT count(*) FROM uptime_polls)",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )?;
    Ok(Stored {
        stores,
        stores_with_hours,
        stores_with_zone,
        polls,
        latest_poll: latest_poll(conn)?,
    })
}
