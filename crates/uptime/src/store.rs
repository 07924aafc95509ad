//! The domain's SQL on SQLite, parameterized (the schema, the writes of one ingested file,
//! the sorted per-store reads of a report, the report registry), and what both backends
//! share: the block codec, the merge of a file's polls into the stored blocks, the scans
//! over sorted rows, the [`Reads`] and [`PartReads`] traits and their dispatch on the
//! database ([`crate::postgres`] holds the PostgreSQL SQL).
//!
//! Polls are stored once, in blocks: one row per store, UTC day and file, holding the polls
//! of that day which that file delivered last, as little-endian i64 `at << 1 | active` in
//! time order. A poll delivered again by another file moves to that file's block, so each
//! (store, instant) is in exactly one block, and a replaced file takes back what it
//! delivered last by deleting its blocks.

use rusqlite::{params, Connection, OptionalExtension, Statement, Transaction};
use rustc_hash::FxHashMap;
use sluice_core::ledger::FileId;
use sluice_core::{Database, DbError, Migration};

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
pub(crate) fn day_of(v: i64) -> i64 {
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
        let batch = take_batch(&mut self.batch, &mut self.slots, &mut self.batched);
        let mut stored: Vec<(i64, i64, Vec<i64>)> = Vec::new();
        let mut merge = Merge::default();
        for (store, polls) in batch {
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
            let mut blob = Vec::new();
            merge.store(self.file.0, &polls, &stored, |op| {
                match op {
                    BlockOp::Delete { day, file } => {
                        self.delete.execute(params![store, day, file])?;
                    }
                    BlockOp::Put {
                        day, file, values, ..
                    } => {
                        self.put
                            .execute(params![store, day, file, encode(values, &mut blob)])?;
                    }
                }
                Ok(())
            })?;
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

/// Takes a writer's batch: per store, in key order, its polls in time order with one value
/// per instant (of the rows of one instant the last one wins).
pub(crate) fn take_batch(
    batch: &mut Vec<(i64, Vec<i64>)>,
    slots: &mut FxHashMap<i64, u32>,
    batched: &mut usize,
) -> Vec<(i64, Vec<i64>)> {
    let mut batch = std::mem::take(batch);
    slots.clear();
    *batched = 0;
    batch.sort_unstable_by_key(|b| b.0);
    for (_, polls) in &mut batch {
        // A stable sort: rows of one instant stay in delivery order.
        polls.sort_by_key(|v| v >> 1);
        dedup_keep_last(polls);
    }
    batch
}

/// A change to the blocks of one store.
pub(crate) enum BlockOp<'v> {
    Delete {
        day: i64,
        file: i64,
    },
    /// Writes the block; `existed` when a block of that key is stored already.
    Put {
        day: i64,
        file: i64,
        values: &'v [i64],
        existed: bool,
    },
}

/// The merge of a file's polls of one store into its stored blocks, with buffers reused
/// across stores.
#[derive(Default)]
pub(crate) struct Merge {
    merged: Vec<i64>,
    kept: Vec<i64>,
}

impl Merge {
    /// The changes that put `polls` (time order, one per instant) of `file` into the stored
    /// blocks `(day, file, values)` of their days: each day's polls merged into the file's
    /// block of that day (a later delivery of an instant wins) and removed from other
    /// files' blocks.
    pub(crate) fn store(
        &mut self,
        file: i64,
        polls: &[i64],
        stored: &[(i64, i64, Vec<i64>)],
        mut apply: impl FnMut(BlockOp<'_>) -> Result<(), DbError>,
    ) -> Result<(), DbError> {
        for day in polls.chunk_by(|a, b| day_of(*a) == day_of(*b)) {
            let d = day_of(day[0]);
            let mut own = false;
            for (_, f, old) in stored.iter().filter(|b| b.0 == d) {
                if *f == file {
                    // Written by an earlier batch of this file.
                    union_new_wins(old, day, &mut self.merged);
                    own = true;
                    continue;
                }
                without(old, day, &mut self.kept);
                if self.kept.is_empty() {
                    apply(BlockOp::Delete { day: d, file: *f })?;
                } else if self.kept.len() < old.len() {
                    apply(BlockOp::Put {
                        day: d,
                        file: *f,
                        values: &self.kept,
                        existed: true,
                    })?;
                }
            }
            apply(BlockOp::Put {
                day: d,
                file,
                values: if own { &self.merged } else { day },
                existed: own,
            })?;
        }
        Ok(())
    }
}

/// The writes of one file on either backend, for the readers of its rows.
pub trait Writer {
    /// The batch slot of a store's polls (the store is created when new).
    fn poll_slot(&mut self, store: &str) -> Result<u32, DbError>;
    /// One poll (`at << 1 | active`) of the store of `slot`.
    fn poll(&mut self, slot: u32, value: i64);
    /// Polls in the batch; slots are valid until the next [`Writer::write_polls`].
    fn batched(&self) -> usize;
    /// Writes the batch into the blocks.
    fn write_polls(&mut self) -> Result<(), DbError>;
    fn hours(&mut self, h: &Hours) -> Result<(), DbError>;
    fn zone(&mut self, z: &StoreZone) -> Result<(), DbError>;
}

impl Writer for FileWriter<'_> {
    fn poll_slot(&mut self, store: &str) -> Result<u32, DbError> {
        FileWriter::poll_slot(self, store)
    }
    fn poll(&mut self, slot: u32, value: i64) {
        FileWriter::poll(self, slot, value)
    }
    fn batched(&self) -> usize {
        FileWriter::batched(self)
    }
    fn write_polls(&mut self) -> Result<(), DbError> {
        FileWriter::write_polls(self)
    }
    fn hours(&mut self, h: &Hours) -> Result<(), DbError> {
        FileWriter::hours(self, h)
    }
    fn zone(&mut self, z: &StoreZone) -> Result<(), DbError> {
        FileWriter::zone(self, z)
    }
}

/// Of consecutive values of one instant keeps the last.
pub(crate) fn dedup_keep_last(v: &mut Vec<i64>) {
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
pub(crate) fn encode<'b>(values: &[i64], buf: &'b mut Vec<u8>) -> &'b [u8] {
    buf.clear();
    for v in values {
        buf.extend_from_slice(&v.to_le_bytes());
    }
    buf
}

/// A block's values, in time order.
pub(crate) fn decode(block: &[u8]) -> impl DoubleEndedIterator<Item = i64> + '_ {
    block
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().expect("chunks of 8 bytes")))
}

pub(crate) fn point(v: i64) -> PollPoint {
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
pub type Interval = (Weekday, LocalTime, LocalTime);

/// The statement of an [`HoursScan`], prepared by the caller that owns it.
pub fn hours_scan_statement(conn: &Connection) -> Result<Statement<'_>, DbError> {
    Ok(conn.prepare(
        "SELECT store, day, start_s, end_s FROM uptime_hours
         WHERE store >= ?1 AND store <= ?2 ORDER BY store, day, start_s, end_s",
    )?)
}

/// Hours rows `(store, interval)` in store, day, start and end order, from either backend.
pub trait HoursRows {
    /// The next row's store and interval (None when it no longer converts).
    fn next_hours(&mut self) -> Result<Option<(i64, Option<Interval>)>, DbError>;
}

impl HoursRows for rusqlite::Rows<'_> {
    fn next_hours(&mut self) -> Result<Option<(i64, Option<Interval>)>, DbError> {
        Ok(match self.next()? {
            Some(r) => Some((r.get(0)?, hours_row(r)?)),
            None => None,
        })
    }
}

/// Block rows `(store, day, polls)` in the order of their query, from either backend.
pub trait BlockRows {
    /// The next row's store and day; its values replace `out`'s.
    fn next_block(&mut self, out: &mut Vec<i64>) -> Result<Option<(i64, i64)>, DbError>;
}

impl BlockRows for rusqlite::Rows<'_> {
    fn next_block(&mut self, out: &mut Vec<i64>) -> Result<Option<(i64, i64)>, DbError> {
        out.clear();
        let Some(r) = self.next()? else {
            return Ok(None);
        };
        let blob = r.get_ref(2)?.as_blob().map_err(rusqlite::Error::from)?;
        out.extend(decode(blob));
        Ok(Some((r.get(0)?, r.get(1)?)))
    }
}

/// The last poll of a store before a day, of either backend.
pub trait LastBefore {
    fn last_before(&mut self, store: i64, day: i64) -> Result<Option<PollPoint>, DbError>;
}

/// One sorted scan over the business hours of a range of stores, read store by store in
/// key order beside a [`BlockScan`].
pub struct HoursScan<R> {
    rows: R,
    /// The next row: its store and interval (None when it no longer converts).
    ahead: Option<(i64, Option<Interval>)>,
}

impl<'s> HoursScan<rusqlite::Rows<'s>> {
    /// Scans stores `lo..=hi`.
    pub fn new(
        stmt: &'s mut Statement<'_>,
        (lo, hi): (i64, i64),
    ) -> Result<HoursScan<rusqlite::Rows<'s>>, DbError> {
        HoursScan::over(stmt.query(params![lo, hi])?)
    }
}

impl<R: HoursRows> HoursScan<R> {
    /// Scans the rows of a query over a range of stores.
    pub fn over(rows: R) -> Result<HoursScan<R>, DbError> {
        let mut scan = HoursScan { rows, ahead: None };
        scan.advance()?;
        Ok(scan)
    }

    fn advance(&mut self) -> Result<(), DbError> {
        self.ahead = self.rows.next_hours()?;
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

/// Business-hours intervals of one store, by day, start and end.
pub fn store_intervals(
    conn: &Connection,
    key: i64,
) -> Result<Vec<(Weekday, LocalTime, LocalTime)>, DbError> {
    let mut stmt = conn.prepare(
        "SELECT store, day, start_s, end_s FROM uptime_hours WHERE store = ?1
         ORDER BY day, start_s, end_s",
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
    Ok(interval(d, s, e))
}

/// A stored interval; None when it no longer converts.
pub(crate) fn interval(d: u8, s: u32, e: u32) -> Option<Interval> {
    Weekday::new(d)
        .zip(LocalTime::from_secs(s))
        .zip(LocalTime::from_secs(e))
        .map(|((d, s), e)| (d, s, e))
}

/// The latest poll of all stores.
pub fn latest_poll(conn: &Connection) -> Result<Option<i64>, DbError> {
    Ok(conn.query_row("SELECT at FROM uptime_latest", [], |r| r.get(0))?)
}

/// The last poll of rows `(store, day, polls)` of one store in decreasing day order: the
/// latest of the blocks of their first day.
pub(crate) fn last_of(rows: &mut impl BlockRows) -> Result<Option<PollPoint>, DbError> {
    let (mut last_day, mut latest) = (None, None);
    let mut values = Vec::new();
    while let Some((_, d)) = rows.next_block(&mut values)? {
        if last_day.is_some_and(|l| l != d) {
            break;
        }
        last_day = Some(d);
        latest = latest.max(values.last().copied());
    }
    Ok(latest.map(point))
}

/// Rows `(store, day, polls)` in store and day order, read a day at a time: the blocks of
/// one store and day (one per file that delivered some of its polls) merged in time order.
pub(crate) struct Days<R> {
    rows: R,
    /// The first block of the next day, read ahead.
    ahead: Option<(i64, i64)>,
    ahead_values: Vec<i64>,
}

impl<R: BlockRows> Days<R> {
    pub(crate) fn new(rows: R) -> Result<Days<R>, DbError> {
        let mut days = Days {
            rows,
            ahead: None,
            ahead_values: Vec::new(),
        };
        days.read_ahead()?;
        Ok(days)
    }

    fn read_ahead(&mut self) -> Result<(), DbError> {
        self.ahead = self.rows.next_block(&mut self.ahead_values)?;
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

/// [`PollReader::read`] over one store's rows from the day before `from`'s day on.
pub(crate) fn read_store(
    rows: impl BlockRows,
    before: &mut impl LastBefore,
    values: &mut Vec<i64>,
    store: i64,
    from: i64,
    mut take: impl FnMut(PollPoint) -> bool,
) -> Result<(), DbError> {
    // Most stores are polled every day: one range read then covers the last poll before
    // `from` too, and the extra seek is only needed for stores with a gap.
    let day = from.div_euclid(DAY) - 1;
    let mut days = Days::new(rows)?;
    if days.peek() != Some((store, day)) {
        if let Some(p) = before.last_before(store, day)? {
            if !take(p) {
                return Ok(());
            }
        }
    }
    while days.next(values)?.is_some() {
        for &v in values.iter() {
            if !take(point(v)) {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// The statement of the last poll before a day (see [`last_of`]).
const BEFORE: &str =
    "SELECT store, day, polls FROM uptime_poll_blocks WHERE store = ?1 AND day < ?2
     ORDER BY day DESC";

/// Sorted reads of one store's polls around a range, from the per-day blocks.
pub struct PollReader<'c> {
    before: Before<'c>,
    from: Statement<'c>,
    values: Vec<i64>,
}

struct Before<'c>(Statement<'c>);

impl LastBefore for Before<'_> {
    fn last_before(&mut self, store: i64, day: i64) -> Result<Option<PollPoint>, DbError> {
        last_of(&mut self.0.query(params![store, day])?)
    }
}

impl LastBefore for PollReader<'_> {
    fn last_before(&mut self, store: i64, day: i64) -> Result<Option<PollPoint>, DbError> {
        self.before.last_before(store, day)
    }
}

impl<'c> PollReader<'c> {
    pub fn new(conn: &'c Connection) -> Result<PollReader<'c>, DbError> {
        Ok(PollReader {
            before: Before(conn.prepare(BEFORE)?),
            from: conn.prepare(
                "SELECT store, day, polls FROM uptime_poll_blocks WHERE store = ?1 AND day >= ?2
                 ORDER BY day",
            )?,
            values: Vec::new(),
        })
    }

    /// The last poll of a store before `day`.
    pub fn last_before(&mut self, store: i64, day: i64) -> Result<Option<PollPoint>, DbError> {
        self.before.last_before(store, day)
    }

    /// Feeds the polls that decide the status inside `[from, ..)` to `take` in time order:
    /// from the day before `from`'s day on (or, when that day has no polls, the last poll
    /// before it first), until `take` returns false. The first ones may be before `from`.
    pub fn read(
        &mut self,
        store: i64,
        from: i64,
        take: impl FnMut(PollPoint) -> bool,
    ) -> Result<(), DbError> {
        let day = from.div_euclid(DAY) - 1;
        let rows = self.from.query(params![store, day])?;
        read_store(rows, &mut self.before, &mut self.values, store, from, take)
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
pub struct BlockScan<R, L> {
    days: Days<R>,
    values: Vec<i64>,
    day: i64,
    reader: L,
}

impl<'s, 'c> BlockScan<rusqlite::Rows<'s>, PollReader<'c>> {
    /// Scans stores `lo..=hi` from the day before `from`'s day on.
    pub fn new(
        stmt: &'s mut Statement<'_>,
        conn: &'c Connection,
        (lo, hi): (i64, i64),
        from: i64,
    ) -> Result<Self, DbError> {
        let day = from.div_euclid(DAY) - 1;
        BlockScan::over(
            stmt.query(params![lo, hi, day])?,
            PollReader::new(conn)?,
            from,
        )
    }
}

impl<R: BlockRows, L: LastBefore> BlockScan<R, L> {
    /// Scans the rows of a query over a range of stores from the day before `from`'s day
    /// on, `reader` finding the last poll before for stores without one that day.
    pub fn over(rows: R, reader: L, from: i64) -> Result<Self, DbError> {
        Ok(BlockScan {
            days: Days::new(rows)?,
            values: Vec::new(),
            day: from.div_euclid(DAY) - 1,
            reader,
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
    let stores = report_stores_json(r);
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

/// The reads of the routes and reports, on either backend, in one snapshot.
pub trait Reads {
    /// Every store, by store id.
    fn stores(&mut self) -> Result<Vec<StoreRow>, DbError>;
    /// Stores by page, by store id.
    fn stores_page(&mut self, limit: u32, offset: u64) -> Result<Vec<StoreRow>, DbError>;
    /// One store by its id, if known.
    fn store(&mut self, store_id: &str) -> Result<Option<StoreRow>, DbError>;
    /// Business-hours intervals of one store, by day, start and end.
    fn store_intervals(&mut self, key: i64) -> Result<Vec<Interval>, DbError>;
    /// The latest poll of all stores.
    fn latest_poll(&mut self) -> Result<Option<i64>, DbError>;
    /// [`PollReader::read`].
    fn store_polls(
        &mut self,
        key: i64,
        from: i64,
        take: &mut dyn FnMut(PollPoint) -> bool,
    ) -> Result<(), DbError>;
    fn report(&mut self, id: &str) -> Result<Option<ReportRow>, DbError>;
    /// Reports newest first.
    fn reports(&mut self, limit: u32, offset: u64) -> Result<Vec<ReportRow>, DbError>;
    fn stored(&mut self) -> Result<Stored, DbError>;
}

impl Reads for &Connection {
    fn stores(&mut self) -> Result<Vec<StoreRow>, DbError> {
        stores(self)
    }
    fn stores_page(&mut self, limit: u32, offset: u64) -> Result<Vec<StoreRow>, DbError> {
        stores_page(self, limit, offset)
    }
    fn store(&mut self, store_id: &str) -> Result<Option<StoreRow>, DbError> {
        store(self, store_id)
    }
    fn store_intervals(&mut self, key: i64) -> Result<Vec<Interval>, DbError> {
        store_intervals(self, key)
    }
    fn latest_poll(&mut self) -> Result<Option<i64>, DbError> {
        latest_poll(self)
    }
    fn store_polls(
        &mut self,
        key: i64,
        from: i64,
        take: &mut dyn FnMut(PollPoint) -> bool,
    ) -> Result<(), DbError> {
        PollReader::new(self)?.read(key, from, take)
    }
    fn report(&mut self, id: &str) -> Result<Option<ReportRow>, DbError> {
        report(self, id)
    }
    fn reports(&mut self, limit: u32, offset: u64) -> Result<Vec<ReportRow>, DbError> {
        reports(self, limit, offset)
    }
    fn stored(&mut self) -> Result<Stored, DbError> {
        stored(self)
    }
}

/// Runs `f` in one read transaction (one snapshot) of either backend.
pub fn read<R: Send, E: From<DbError> + Send>(
    db: &Database,
    f: impl FnOnce(&mut dyn Reads) -> Result<R, E> + Send,
) -> Result<R, E> {
    match db {
        Database::Sqlite(db) => db.read(|mut c| f(&mut c)),
        Database::Postgres(pg) => pg.read(|tx| f(tx)),
    }
}

/// [`read`] on the primary whatever the replica: for what must follow this instance's own
/// writes (a report just registered).
pub fn read_primary<R: Send, E: From<DbError> + Send>(
    db: &Database,
    f: impl FnOnce(&mut dyn Reads) -> Result<R, E> + Send,
) -> Result<R, E> {
    match db {
        Database::Sqlite(db) => db.read(|mut c| f(&mut c)),
        Database::Postgres(pg) => pg.read_primary(|tx| f(tx)),
    }
}

/// Registers a report, on either backend.
pub fn insert_report_on(db: &Database, r: &ReportRow) -> Result<(), DbError> {
    match db {
        Database::Sqlite(db) => db.write(|c| insert_report(c, r)),
        Database::Postgres(pg) => pg.write(|tx| crate::postgres::insert_report(tx, r)),
    }
}

/// Records a report's end, on either backend.
pub fn finish_report_on(db: &Database, id: &str, now: i64, rows: i64) -> Result<(), DbError> {
    match db {
        Database::Sqlite(db) => db.write(|c| finish_report(c, id, now, rows)),
        Database::Postgres(pg) => pg.write(|tx| crate::postgres::finish_report(tx, id, now, rows)),
    }
}

/// The rows of a report's `insert_report`, for both backends.
pub(crate) fn report_stores_json(r: &ReportRow) -> Option<String> {
    r.stores
        .as_ref()
        .map(|s| serde_json::to_string(s).unwrap_or_default())
}

/// The reads of one report worker (its range of stores, in key order), on either backend.
pub trait PartReads {
    /// The hours of the next store (see [`HoursScan::read`]).
    fn hours(&mut self, key: i64) -> Result<Option<BusinessHours>, DbError>;
    /// The polls of the next store from `from` (see [`PollReader::read`]).
    fn polls(&mut self, key: i64, take: &mut dyn FnMut(PollPoint) -> bool) -> Result<(), DbError>;
}

struct SqlitePart<'s, 'c> {
    hours: HoursScan<rusqlite::Rows<'s>>,
    scan: Option<BlockScan<rusqlite::Rows<'s>, PollReader<'c>>>,
    reader: PollReader<'c>,
    from: i64,
}

impl PartReads for SqlitePart<'_, '_> {
    fn hours(&mut self, key: i64) -> Result<Option<BusinessHours>, DbError> {
        self.hours.read(key)
    }
    fn polls(&mut self, key: i64, take: &mut dyn FnMut(PollPoint) -> bool) -> Result<(), DbError> {
        match self.scan.as_mut() {
            Some(scan) => scan.read(key, take),
            None => self.reader.read(key, self.from, take),
        }
    }
}

/// Runs `f` over the reads of stores `keys` (lo..=hi) from `from`: a full report (`all`)
/// scans the blocks of its key range once; a filtered one seeks each store.
pub fn part_reads<R>(
    conn: &Connection,
    all: bool,
    keys: (i64, i64),
    from: i64,
    f: impl FnOnce(&mut dyn PartReads) -> R,
) -> Result<R, DbError> {
    let mut hours_stmt = hours_scan_statement(conn)?;
    let mut scan_stmt = block_scan_statement(conn)?;
    let mut part = SqlitePart {
        hours: HoursScan::new(&mut hours_stmt, keys)?,
        scan: if all {
            Some(BlockScan::new(&mut scan_stmt, conn, keys, from)?)
        } else {
            None
        },
        reader: PollReader::new(conn)?,
        from,
    };
    Ok(f(&mut part))
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use proptest::prelude::*;

    use sluice_server::testing::{postgres_admin, TestDatabase};

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

    /// A delivery's polls through a writer of either backend, written early where it says.
    fn write_delivery(w: &mut dyn Writer, d: &Delivery) {
        for (row, &(s, at, up)) in d.polls.iter().enumerate() {
            if d.flushes.contains(&row) {
                w.write_polls().unwrap();
            }
            let slot = w.poll_slot(STORES[s]).unwrap();
            w.poll(slot, (at << 1) | i64::from(up));
        }
    }

    /// One database on the test PostgreSQL server for the cases of this test binary, when
    /// `SLUICE_TEST_POSTGRES` names one.
    fn test_postgres() -> Option<&'static sluice_core::PgDb> {
        use std::sync::{Arc, OnceLock};
        static DB: OnceLock<Option<(Arc<TestDatabase>, sluice_core::PgDb)>> = OnceLock::new();
        DB.get_or_init(|| {
            if postgres_admin().is_none() {
                assert!(
                    std::env::var_os("CI").is_none(),
                    "CI runs this test: SLUICE_TEST_POSTGRES must name the test server"
                );
                return None;
            }
            let database = TestDatabase::create();
            let pg = sluice_core::PgDb::connect(&database.url, None).unwrap();
            pg.migrate("uptime", &crate::postgres::migrations())
                .unwrap();
            Some((database, pg))
        })
        .as_ref()
        .map(|(_, pg)| pg)
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

    proptest! {
        // Each case is a few round trips per delivery.
        #![proptest_config(ProptestConfig::with_cases(100))]

        /// The same deliveries written on PostgreSQL give the same stores, blocks, latest
        /// poll and reads as on SQLite (checked above against the model); only where the
        /// test server is there (`SLUICE_TEST_POSTGRES`).
        #[test]
        fn postgres_writes_and_reads_what_sqlite_does(
            deliveries in prop::collection::vec(delivery(), 1..6),
            from_slot in -4i64..20,
        ) {
            let Some(pg) = test_postgres() else {
                return Ok(());
            };
            let mut conn = database(2);
            let mut live: Vec<i64> = Vec::new();
            pg.write(|tx| {
                tx.batch_execute(
                    "TRUNCATE uptime_stores, uptime_poll_blocks, uptime_hours, uptime_zones;
                     UPDATE uptime_latest SET at = NULL",
                )?;
                Ok::<_, DbError>(())
            })
            .unwrap();
            for (i, d) in deliveries.iter().enumerate() {
                let file = FileId(i as i64 + 1);
                let replaced = d
                    .replaces
                    .filter(|&r| r < live.len())
                    .map(|r| FileId(live.remove(r)));
                let tx = conn.transaction().unwrap();
                let mut w = FileWriter::new(&tx, file, replaced).unwrap();
                write_delivery(&mut w, d);
                w.finish().unwrap();
                tx.commit().unwrap();
                pg.write(|tx| {
                    let mut w = crate::postgres::FileWriter::new(tx, file, replaced)?;
                    write_delivery(&mut w, d);
                    w.finish()
                })
                .unwrap();
                live.push(file.0);
            }
            let pg_blocks = pg
                .read(|tx| {
                    let rows = tx.query("SELECT store, day, file_id, polls FROM uptime_poll_blocks", &[])?;
                    Ok::<_, DbError>(
                        rows.iter()
                            .map(|r| ((r.get(0), r.get(1), r.get(2)), decode(r.get(3)).collect()))
                            .collect::<BTreeMap<(i64, i64, i64), Vec<i64>>>(),
                    )
                })
                .unwrap();
            prop_assert_eq!(pg_blocks, stored_blocks(&conn));
            let from = from_slot * 6 * HOUR;
            let reads = |r: &mut dyn Reads| {
                let stores = r.stores()?;
                let mut polls = Vec::new();
                for s in &stores {
                    let mut got = Vec::new();
                    r.store_polls(s.key, from, &mut |p| { got.push(p); true })?;
                    polls.push(got);
                }
                let stored = r.stored()?;
                Ok::<_, DbError>((format!("{stores:?}"), polls, stored))
            };
            let want = reads(&mut &conn).unwrap();
            let got = pg.read(|tx| reads(tx)).unwrap();
            prop_assert_eq!(&got, &want);
            let keys: Vec<i64> = (1..=STORES.len() as i64).collect();
            for all in [true, false] {
                let part = |r: &mut dyn PartReads| {
                    let mut out = Vec::new();
                    for &k in &keys {
                        let mut got = Vec::new();
                        r.polls(k, &mut |p| { got.push(p); true })?;
                        out.push(got);
                    }
                    Ok::<_, DbError>(out)
                };
                let want = part_reads(&conn, all, (1, 3), from, part).unwrap().unwrap();
                let got = pg
                    .read(|tx| crate::postgres::part_reads(tx, all, (1, 3), from, part)?)
                    .unwrap();
                prop_assert_eq!(got, want);
            }
        }
    }
}
