//! All SQL of the domain, parameterized: the schema, the writes of one ingested file, the
//! sorted per-store reads of a report, and the report registry.
//!
//! Polls are stored once, in blocks: one row per store, UTC day and file, holding the polls
//! of that day which that file delivered last, as little-endian i64 `at << 1 | active` in
//! time order. A poll delivered again by another file moves to that file's block, so each
//! (store, instant) is in exactly one block, and a replaced file takes back what it
//! delivered last by deleting its blocks.

use rusqlite::{params, Connection, OptionalExtension, Statement, Transaction};
use rustc_hash::FxHashMap;
use sluice_core::ledger::FileId;
use sluice_core::{DbError, Migration};

use crate::engine::{BusinessHours, PollPoint};
use crate::parse::{Hours, LocalTime, StoreZone, Weekday, DAY};

pub fn migrations() -> Vec<Migration> {
    vec![
        Migration {
            name: "V1__init",
            sql: include_str!("../migrations/V1__init.sql"),
        },
        Migration {
            name: "V2__poll_blocks",
            sql: include_str!("../migrations/V2__poll_blocks.sql"),
        },
    ]
}

/// Polls held in memory before they are written (at 8 bytes each, plus the vectors').
pub const BATCH_POLLS: usize = 1 << 22;

/// The writes of one file, inside its ledger transaction. Polls are collected per store and
/// written as blocks when the batch is full and at the end.
pub struct FileWriter<'t> {
    tx: &'t Transaction<'t>,
    file: FileId,
    ids: FxHashMap<String, i64>,
    /// Whether an earlier file's polls were removed (the latest poll may be earlier now).
    removed: bool,
    /// The latest poll of this file.
    latest: Option<i64>,
    /// Polls not written yet: (store key, values) per slot, in the order delivered.
    batch: Vec<(i64, Vec<i64>)>,
    slots: FxHashMap<i64, u32>,
    batched: usize,
    new_store: Statement<'t>,
    blocks: Statement<'t>,
    put: Statement<'t>,
    delete: Statement<'t>,
    hours: Statement<'t>,
    zone: Statement<'t>,
}

/// The day of a stored poll value.
fn day_of(v: i64) -> i64 {
    (v >> 1).div_euclid(DAY)
}

impl<'t> FileWriter<'t> {
    /// Prepares the writes; when the file replaces an earlier one, first takes back what
    /// that one delivered last.
    pub fn new(
        tx: &'t Transaction<'t>,
        file: FileId,
        replaced: Option<FileId>,
    ) -> Result<FileWriter<'t>, DbError> {
        if let Some(old) = replaced {
            for table in ["uptime_poll_blocks", "uptime_hours", "uptime_zones"] {
                tx.execute(&format!("DELETE FROM {table} WHERE file_id = ?1"), [old.0])?;
            }
            tx.execute(
                "DELETE FROM uptime_stores WHERE
                   NOT EXISTS (SELECT 1 FROM uptime_poll_blocks p WHERE p.store = uptime_stores.id)
                   AND NOT EXISTS (SELECT 1 FROM uptime_hours h WHERE h.store = uptime_stores.id)
                   AND NOT EXISTS (SELECT 1 FROM uptime_zones z WHERE z.store = uptime_stores.id)",
                [],
            )?;
        }
        let mut ids = FxHashMap::default();
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
            removed: replaced.is_some(),
            latest: None,
            batch: Vec::new(),
            slots: FxHashMap::default(),
            batched: 0,
            new_store: tx.prepare("INSERT INTO uptime_stores (store_id) VALUES (?1)")?,
            blocks: tx.prepare(
                "SELECT day, file_id, polls FROM uptime_poll_blocks
                 WHERE store = ?1 AND day >= ?2 AND day <= ?3",
            )?,
            put: tx.prepare(
                "INSERT INTO uptime_poll_blocks (store, day, file_id, polls) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (store, day, file_id) DO UPDATE SET polls = excluded.polls",
            )?,
            delete: tx.prepare(
                "DELETE FROM uptime_poll_blocks WHERE store = ?1 AND day = ?2 AND file_id = ?3",
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

    /// The batch slot of a store's polls (the store is created when new).
    pub fn poll_slot(&mut self, store: &str) -> Result<u32, DbError> {
        let key = self.store(store)?;
        let next = self.batch.len() as u32;
        let slot = *self.slots.entry(key).or_insert(next);
        if slot == next {
            self.batch.push((key, Vec::new()));
        }
        Ok(slot)
    }

    /// One poll (`at << 1 | active`) of the store of `slot`.
    pub fn poll(&mut self, slot: u32, value: i64) {
        self.batch[slot as usize].1.push(value);
        self.batched += 1;
    }

    /// Polls in the batch; slots are valid until the next [`FileWriter::write_polls`].
    pub fn batched(&self) -> usize {
        self.batched
    }

    /// Writes the batch into the blocks, store by store in key order: each day's polls are
    /// merged into this file's block of that day (a later delivery of an instant wins) and
    /// removed from other files' blocks.
    pub fn write_polls(&mut self) -> Result<(), DbError> {
        let mut batch = std::mem::take(&mut self.batch);
        self.slots.clear();
        self.batched = 0;
        batch.sort_unstable_by_key(|b| b.0);
        let mut stored: Vec<(i64, i64, Vec<i64>)> = Vec::new();
        let (mut merged, mut kept, mut blob) = (Vec::new(), Vec::new(), Vec::new());
        for (store, mut polls) in batch {
            // Time order; of the rows of one instant the last one wins (a stable sort).
            polls.sort_by_key(|v| v >> 1);
            dedup_keep_last(&mut polls);
            let (Some(&first), Some(&last)) = (polls.first(), polls.last()) else {
                continue;
            };
            self.latest = self.latest.max(Some(last >> 1));
            stored.clear();
            let mut rows = self
                .blocks
                .query(params![store, day_of(first), day_of(last)])?;
            while let Some(r) = rows.next()? {
                let blob = r.get_ref(2)?.as_blob().map_err(rusqlite::Error::from)?;
                stored.push((r.get(0)?, r.get(1)?, decode(blob).collect()));
            }
            drop(rows);
            for day in polls.chunk_by(|a, b| day_of(*a) == day_of(*b)) {
                let d = day_of(day[0]);
                let mut new: &[i64] = day;
                for (_, file, old) in stored.iter().filter(|b| b.0 == d) {
                    if *file == self.file.0 {
                        // Written by an earlier batch of this file.
                        union_new_wins(old, day, &mut merged);
                        new = &merged;
                        continue;
                    }
                    without(old, day, &mut kept);
                    if kept.is_empty() {
                        self.delete.execute(params![store, d, file])?;
                    } else if kept.len() < old.len() {
                        self.put
                            .execute(params![store, d, file, encode(&kept, &mut blob)])?;
                    }
                }
                self.put
                    .execute(params![store, d, self.file.0, encode(new, &mut blob)])?;
            }
        }
        Ok(())
    }

    /// Writes the rest of the polls and the latest poll. Call once, last.
    pub fn finish(mut self) -> Result<(), DbError> {
        self.write_polls()?;
        if self.removed {
            let latest = self.latest_stored()?;
            self.tx
                .execute("UPDATE uptime_latest SET at = ?1", [latest])?;
        } else if let Some(at) = self.latest {
            self.tx.execute(
                "UPDATE uptime_latest SET at = max(coalesce(at, ?1), ?1)",
                [at],
            )?;
        }
        Ok(())
    }

    /// The latest poll of all blocks: the last one of a block of the latest day.
    fn latest_stored(&self) -> Result<Option<i64>, DbError> {
        let mut stmt = self.tx.prepare(
            "SELECT polls FROM uptime_poll_blocks
             WHERE day = (SELECT max(day) FROM uptime_poll_blocks)",
        )?;
        let mut rows = stmt.query([])?;
        let mut latest = None;
        while let Some(r) = rows.next()? {
            let blob = r.get_ref(0)?.as_blob().map_err(rusqlite::Error::from)?;
            latest = latest.max(decode(blob).next_back().map(|v| v >> 1));
        }
        Ok(latest)
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

/// Of consecutive values of one instant keeps the last.
fn dedup_keep_last(v: &mut Vec<i64>) {
    let mut w = 0;
    for r in 0..v.len() {
        if w > 0 && v[w - 1] >> 1 == v[r] >> 1 {
            v[w - 1] = v[r];
        } else {
            v[w] = v[r];
            w += 1;
        }
    }
    v.truncate(w);
}

/// `old ∪ new` in time order into `out`; an instant in both takes `new`'s status.
fn union_new_wins(old: &[i64], new: &[i64], merged: &mut Vec<i64>) {
    merged.clear();
    let (mut i, mut j) = (0, 0);
    while i < old.len() && j < new.len() {
        let (a, b) = (old[i] >> 1, new[j] >> 1);
        if a < b {
            merged.push(old[i]);
            i += 1;
        } else {
            merged.push(new[j]);
            j += 1;
            i += usize::from(a == b);
        }
    }
    merged.extend_from_slice(&old[i..]);
    merged.extend_from_slice(&new[j..]);
}

/// The values of `old` whose instant is not in `new` (both in time order), into `out`.
fn without(old: &[i64], new: &[i64], out: &mut Vec<i64>) {
    out.clear();
    let mut j = 0;
    for &v in old {
        while j < new.len() && new[j] >> 1 < v >> 1 {
            j += 1;
        }
        if new.get(j).is_none_or(|n| n >> 1 != v >> 1) {
            out.push(v);
        }
    }
}

/// A block's bytes, in `buf`.
fn encode<'b>(values: &[i64], buf: &'b mut Vec<u8>) -> &'b [u8] {
    buf.clear();
    for v in values {
        buf.extend_from_slice(&v.to_le_bytes());
    }
    buf
}

/// A block's values, in time order.
fn decode(block: &[u8]) -> impl DoubleEndedIterator<Item = i64> + '_ {
    block
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().expect("chunks of 8 bytes")))
}

fn point(v: i64) -> PollPoint {
    PollPoint {
        at: v >> 1,
        up: v & 1 == 1,
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

/// A business-hours interval of one weekday.
type Interval = (Weekday, LocalTime, LocalTime);

/// The statement of an [`HoursScan`], prepared by the caller that owns it.
pub fn hours_scan_statement(conn: &Connection) -> Result<Statement<'_>, DbError> {
    Ok(conn.prepare(
        "SELECT store, day, start_s, end_s FROM uptime_hours
         WHERE store >= ?1 AND store <= ?2 ORDER BY store, day, start_s, end_s",
    )?)
}

/// One sorted scan over the business hours of a range of stores, read store by store in
/// key order beside a [`BlockScan`].
pub struct HoursScan<'s> {
    rows: rusqlite::Rows<'s>,
    /// The next row: its store and interval (None when it no longer converts).
    ahead: Option<(i64, Option<Interval>)>,
}

impl<'s> HoursScan<'s> {
    /// Scans stores `lo..=hi`.
    pub fn new(
        stmt: &'s mut Statement<'_>,
        (lo, hi): (i64, i64),
    ) -> Result<HoursScan<'s>, DbError> {
        let mut scan = HoursScan {
            rows: stmt.query(params![lo, hi])?,
            ahead: None,
        };
        scan.advance()?;
        Ok(scan)
    }

    fn advance(&mut self) -> Result<(), DbError> {
        self.ahead = match self.rows.next()? {
            Some(r) => Some((r.get(0)?, hours_row(r)?)),
            None => None,
        };
        Ok(())
    }

    /// The hours of the next store, None for a store without any (open 24×7); stores must
    /// come in increasing key order.
    pub fn read(&mut self, store: i64) -> Result<Option<BusinessHours>, DbError> {
        while self.ahead.as_ref().is_some_and(|a| a.0 < store) {
            self.advance()?;
        }
        let mut intervals = Vec::new();
        while let Some((_, iv)) = self.ahead.take_if(|a| a.0 == store) {
            intervals.extend(iv);
            self.advance()?;
        }
        Ok((!intervals.is_empty()).then(|| BusinessHours::from_intervals(intervals)))
    }
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

/// The last poll of a store before `day`: the latest of the blocks of the last day before.
fn last_before(
    before: &mut Statement<'_>,
    store: i64,
    day: i64,
) -> Result<Option<PollPoint>, DbError> {
    let mut rows = before.query(params![store, day])?;
    let (mut last_day, mut latest) = (None, None);
    while let Some(r) = rows.next()? {
        let d: i64 = r.get(0)?;
        if last_day.is_some_and(|l| l != d) {
            break;
        }
        last_day = Some(d);
        let blob = r.get_ref(1)?.as_blob().map_err(rusqlite::Error::from)?;
        latest = latest.max(decode(blob).next_back());
    }
    Ok(latest.map(point))
}

/// Rows `(store, day, polls)` in store and day order, read a day at a time: the blocks of
/// one store and day (one per file that delivered some of its polls) merged in time order.
struct Days<'s> {
    rows: rusqlite::Rows<'s>,
    /// The first block of the next day, read ahead.
    ahead: Option<(i64, i64)>,
    ahead_values: Vec<i64>,
}

impl<'s> Days<'s> {
    fn new(rows: rusqlite::Rows<'s>) -> Result<Days<'s>, DbError> {
        let mut days = Days {
            rows,
            ahead: None,
            ahead_values: Vec::new(),
        };
        days.read_ahead()?;
        Ok(days)
    }

    fn read_ahead(&mut self) -> Result<(), DbError> {
        self.ahead = None;
        self.ahead_values.clear();
        if let Some(r) = self.rows.next()? {
            self.ahead = Some((r.get(0)?, r.get(1)?));
            let blob = r.get_ref(2)?.as_blob().map_err(rusqlite::Error::from)?;
            self.ahead_values.extend(decode(blob));
        }
        Ok(())
    }

    /// (store, day) of the next day.
    fn peek(&self) -> Option<(i64, i64)> {
        self.ahead
    }

    /// The next day's values into `out`.
    fn next(&mut self, out: &mut Vec<i64>) -> Result<Option<(i64, i64)>, DbError> {
        let Some(key) = self.ahead else {
            return Ok(None);
        };
        std::mem::swap(out, &mut self.ahead_values);
        self.read_ahead()?;
        let mut several = false;
        while self.ahead == Some(key) {
            out.extend_from_slice(&self.ahead_values);
            several = true;
            self.read_ahead()?;
        }
        if several {
            // Instants are distinct across blocks, and values sort as their instants.
            out.sort_unstable();
        }
        Ok(Some(key))
    }
}

/// Sorted reads of one store's polls around a range, from the per-day blocks.
pub struct PollReader<'c> {
    before: Statement<'c>,
    from: Statement<'c>,
    values: Vec<i64>,
}

impl<'c> PollReader<'c> {
    pub fn new(conn: &'c Connection) -> Result<PollReader<'c>, DbError> {
        Ok(PollReader {
            before: conn.prepare(
                "SELECT day, polls FROM uptime_poll_blocks WHERE store = ?1 AND day < ?2
                 ORDER BY day DESC",
            )?,
            from: conn.prepare(
                "SELECT store, day, polls FROM uptime_poll_blocks WHERE store = ?1 AND day >= ?2
                 ORDER BY day",
            )?,
            values: Vec::new(),
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
        let mut days = Days::new(self.from.query(params![store, day])?)?;
        if days.peek() != Some((store, day)) {
            if let Some(p) = last_before(&mut self.before, store, day)? {
                if !take(p) {
                    return Ok(());
                }
            }
        }
        while days.next(&mut self.values)?.is_some() {
            for &v in &self.values {
                if !take(point(v)) {
                    return Ok(());
                }
            }
        }
        Ok(())
    }
}

/// The statement of a [`BlockScan`], prepared by the caller that owns it.
pub fn block_scan_statement(conn: &Connection) -> Result<Statement<'_>, DbError> {
    Ok(conn.prepare(
        "SELECT store, day, polls FROM uptime_poll_blocks
         WHERE store >= ?1 AND store <= ?2 AND day >= ?3 ORDER BY store, day",
    )?)
}

/// One sorted scan over the poll blocks of a range of stores, read store by store in key
/// order: a full report runs one query per reader thread instead of one per store.
pub struct BlockScan<'s, 'c> {
    days: Days<'s>,
    values: Vec<i64>,
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
        Ok(BlockScan {
            days: Days::new(stmt.query(params![lo, hi, day])?)?,
            values: Vec::new(),
            day,
            reader: PollReader::new(conn)?,
        })
    }

    /// Like [`PollReader::read`] for the next store; stores must come in increasing key
    /// order.
    pub fn read(
        &mut self,
        store: i64,
        mut take: impl FnMut(PollPoint) -> bool,
    ) -> Result<(), DbError> {
        while self.days.peek().is_some_and(|(s, _)| s < store) {
            self.days.next(&mut self.values)?;
        }
        if self.days.peek() != Some((store, self.day)) {
            if let Some(p) = self.reader.last_before(store, self.day)? {
                take(p);
            }
        }
        let mut wanted = true;
        while self.days.peek().is_some_and(|(s, _)| s == store) {
            self.days.next(&mut self.values)?;
            if wanted {
                for &v in &self.values {
                    if !take(point(v)) {
                        wanted = false;
                        break;
                    }
                }
            }
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
                (SELECT coalesce(sum(length(polls)), 0) / 8 FROM uptime_poll_blocks)",
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

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use proptest::prelude::*;

    use super::*;
    use crate::parse::HOUR;

    fn database(migrations_applied: usize) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        for m in &migrations()[..migrations_applied] {
            conn.execute_batch(m.sql).unwrap();
        }
        conn
    }

    /// (store key, day, file) → the block's values, checked to be a block: non-empty, in
    /// time order, all of its day.
    fn stored_blocks(conn: &Connection) -> BTreeMap<(i64, i64, i64), Vec<i64>> {
        let mut stmt = conn
            .prepare("SELECT store, day, file_id, polls FROM uptime_poll_blocks")
            .unwrap();
        let mut rows = stmt.query([]).unwrap();
        let mut out = BTreeMap::new();
        while let Some(r) = rows.next().unwrap() {
            let values: Vec<i64> = decode(r.get_ref(3).unwrap().as_blob().unwrap()).collect();
            let day: i64 = r.get(1).unwrap();
            assert!(!values.is_empty());
            assert!(
                values.windows(2).all(|w| w[0] >> 1 < w[1] >> 1),
                "{values:?}"
            );
            assert!(values.iter().all(|&v| day_of(v) == day), "{values:?}");
            out.insert((r.get(0).unwrap(), day, r.get(2).unwrap()), values);
        }
        out
    }

    fn key_of(conn: &Connection, store: &str) -> Option<i64> {
        conn.query_row(
            "SELECT id FROM uptime_stores WHERE store_id = ?1",
            [store],
            |r| r.get(0),
        )
        .optional()
        .unwrap()
    }

    /// One file: which earlier delivery it replaces, its polls (store, instant, active) in
    /// row order, and before which rows the writer writes its batch early.
    #[derive(Clone, Debug)]
    struct Delivery {
        replaces: Option<usize>,
        polls: Vec<(usize, i64, bool)>,
        flushes: Vec<usize>,
    }

    const STORES: [&str; 3] = ["a", "b", "c"];

    fn delivery() -> impl Strategy<Value = Delivery> {
        // Instants 6 h apart over five days from 1969-12-31, some a microsecond later.
        let poll = (0..STORES.len(), -4i64..16, 0i64..2, any::<bool>())
            .prop_map(|(s, k, us, up)| (s, k * 6 * HOUR + us, up));
        (
            prop::option::of(0usize..8),
            prop::collection::vec(poll, 0..14),
            prop::collection::vec(0usize..14, 0..3),
        )
            .prop_map(|(replaces, polls, flushes)| Delivery {
                replaces,
                polls,
                flushes,
            })
    }

    /// The polls the store's readers must give from `from`: those from the day before
    /// `from`'s day on, after the last one before when that day has none.
    fn expected_from(polls: &[(i64, bool)], from: i64) -> Vec<PollPoint> {
        let day = from.div_euclid(DAY) - 1;
        let mut out: Vec<PollPoint> = Vec::new();
        if !polls.iter().any(|p| p.0.div_euclid(DAY) == day) {
            out.extend(
                polls
                    .iter()
                    .rev()
                    .find(|p| p.0 < day * DAY)
                    .map(|p| PollPoint { at: p.0, up: p.1 }),
            );
        }
        out.extend(
            polls
                .iter()
                .filter(|p| p.0 >= day * DAY)
                .map(|p| PollPoint { at: p.0, up: p.1 }),
        );
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        /// Files delivering, re-delivering and replacing polls, written in batches: the blocks
        /// hold each (store, instant) once with its latest delivery's status and file, and
        /// every reader gives a store's polls in time order.
        #[test]
        fn blocks_hold_each_poll_of_its_latest_delivery_once(
            deliveries in prop::collection::vec(delivery(), 1..6),
            from_slot in -4i64..20,
        ) {
            let mut conn = database(2);
            // (store, at) → (active, file): what the blocks must hold.
            let mut model: BTreeMap<(&str, i64), (bool, i64)> = BTreeMap::new();
            let mut live: Vec<i64> = Vec::new();
            for (i, d) in deliveries.iter().enumerate() {
                let file = i as i64 + 1;
                let replaced = d.replaces.filter(|&r| r < live.len()).map(|r| live.remove(r));
                if let Some(old) = replaced {
                    model.retain(|_, v| v.1 != old);
                }
                let tx = conn.transaction().unwrap();
                let mut w = FileWriter::new(&tx, FileId(file), replaced.map(FileId)).unwrap();
                for (row, &(s, at, up)) in d.polls.iter().enumerate() {
                    if d.flushes.contains(&row) {
                        w.write_polls().unwrap();
                    }
                    let slot = w.poll_slot(STORES[s]).unwrap();
                    w.poll(slot, (at << 1) | i64::from(up));
                    model.insert((STORES[s], at), (up, file));
                }
                w.finish().unwrap();
                tx.commit().unwrap();
                live.push(file);
            }
            let mut held: BTreeMap<(&str, i64), (bool, i64)> = BTreeMap::new();
            let blocks = stored_blocks(&conn);
            for ((key, _, file), values) in &blocks {
                let store = STORES.iter().find(|s| key_of(&conn, s) == Some(*key)).unwrap();
                for &v in values {
                    prop_assert!(held.insert((store, v >> 1), (v & 1 == 1, *file)).is_none());
                }
            }
            prop_assert_eq!(&held, &model);
            prop_assert_eq!(latest_poll(&conn).unwrap(), model.keys().map(|k| k.1).max());
            prop_assert_eq!(
                stored(&conn).unwrap().polls,
                model.len() as i64
            );

            let from = from_slot * 6 * HOUR;
            let keys: BTreeSet<i64> = STORES.iter().filter_map(|s| key_of(&conn, s)).collect();
            let mut scan_stmt = block_scan_statement(&conn).unwrap();
            let (lo, hi) = (*keys.first().unwrap_or(&0), *keys.last().unwrap_or(&0));
            let mut scan = BlockScan::new(&mut scan_stmt, &conn, (lo, hi), from).unwrap();
            let mut reader = PollReader::new(&conn).unwrap();
            for store in STORES {
                if key_of(&conn, store).is_none() {
                    prop_assert!(!model.keys().any(|k| k.0 == store));
                }
            }
            // A scan reads stores in key order.
            let mut by_key: Vec<(i64, &str)> =
                STORES.iter().filter_map(|s| Some((key_of(&conn, s)?, *s))).collect();
            by_key.sort_unstable();
            for (key, store) in by_key {
                let polls: Vec<(i64, bool)> = model
                    .iter()
                    .filter(|(k, _)| k.0 == store)
                    .map(|(k, v)| (k.1, v.0))
                    .collect();
                let want = expected_from(&polls, from);
                let mut got = Vec::new();
                reader.read(key, from, |p| { got.push(p); true }).unwrap();
                prop_assert_eq!(&got, &want);
                let mut scanned = Vec::new();
                scan.read(key, |p| { scanned.push(p); true }).unwrap();
                prop_assert_eq!(&scanned, &want);
                let day = from.div_euclid(DAY);
                let before = polls.iter().rev().find(|p| p.0 < day * DAY);
                prop_assert_eq!(
                    reader.last_before(key, day).unwrap(),
                    before.map(|p| PollPoint { at: p.0, up: p.1 })
                );
            }
        }

        /// V2 builds the blocks from V1's row table exactly as ingestion writes them.
        #[test]
        fn the_migration_builds_the_blocks_of_the_rows(
            rows in prop::collection::btree_map(
                (1i64..4, -3 * DAY..3 * DAY),
                (any::<bool>(), 1i64..4),
                0..60,
            ),
        ) {
            let conn = database(1);
            for (&(store, at), &(up, file)) in &rows {
                conn.execute(
                    "INSERT INTO uptime_polls (store, at, active, file_id) VALUES (?1, ?2, ?3, ?4)",
                    params![store, at, up, file],
                )
                .unwrap();
            }
            conn.execute_batch(migrations()[1].sql).unwrap();
            let mut want: BTreeMap<(i64, i64, i64), Vec<i64>> = BTreeMap::new();
            for (&(store, at), &(up, file)) in &rows {
                want.entry((store, at.div_euclid(DAY), file))
                    .or_default()
                    .push((at << 1) | i64::from(up));
            }
            prop_assert_eq!(stored_blocks(&conn), want);
            let mut stmt = conn
                .prepare("SELECT name FROM sqlite_master WHERE name IN ('uptime_polls', 'uptime_poll_days')")
                .unwrap();
            prop_assert_eq!(stmt.query([]).unwrap().next().unwrap().is_none(), true);
        }
    }
}
