//! The uptime domain's SQL on PostgreSQL: the same tables and reads as [`crate::store`]'s
//! SQLite ones. A file's writes run in its ledger transaction, which the ledger's advisory
//! lock serializes per domain: store keys are assigned there (the largest plus one, as
//! SQLite's rowids), and each batch of polls is merged with the stored blocks of its days
//! (read in one query), the changed blocks deleted and the new ones loaded with one binary
//! `COPY`. Hours and zones, upserts on SQLite, are collected (the last delivery wins) and
//! loaded the same way at the end of the file.

use std::cell::RefCell;

use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{ToSql, Type};
use postgres::{Portal, Row, Transaction};
use rustc_hash::FxHashMap;
use sluice_core::ledger::FileId;
use sluice_core::{DbError, Migration};

use crate::engine::{BusinessHours, PollPoint};
use crate::parse::{Hours, StoreZone};
use crate::store::{
    decode, encode, interval, last_of, point, read_store, report_stores_json, take_batch, BlockOp,
    BlockRows, BlockScan, HoursRows, HoursScan, Interval, LastBefore, Merge, PartReads, Reads,
    ReportRow, StoreRow, Stored, Writer,
};

pub fn migrations() -> Vec<Migration> {
    vec![Migration {
        name: "V1__init",
        sql: include_str!("../migrations/postgres/V1__init.sql"),
    }]
}

/// Runs a binary `COPY` of `rows` into `table (columns)`.
fn copy_in(
    tx: &mut Transaction<'_>,
    statement: &str,
    types: &[Type],
    rows: impl Iterator<Item = Vec<Box<dyn ToSql + Sync>>>,
) -> Result<(), DbError> {
    let sink = tx.copy_in(statement)?;
    let mut w = BinaryCopyInWriter::new(sink, types);
    for row in rows {
        let refs: Vec<&(dyn ToSql + Sync)> = row.iter().map(|v| &**v).collect();
        w.write(&refs)?;
    }
    w.finish()?;
    Ok(())
}

/// [`crate::store::FileWriter`] on PostgreSQL.
pub struct FileWriter<'a, 'b> {
    tx: &'a mut Transaction<'b>,
    file: FileId,
    ids: FxHashMap<String, i64>,
    next_key: i64,
    /// Stores created by this file, loaded at the end.
    new_stores: Vec<(i64, String)>,
    removed: bool,
    latest: Option<i64>,
    batch: Vec<(i64, Vec<i64>)>,
    slots: FxHashMap<i64, u32>,
    batched: usize,
    /// (store, day, start, end), loaded at the end.
    hours: Vec<(i64, i64, i64, i64)>,
    /// The zone of each store, the last row winning.
    zones: FxHashMap<i64, String>,
}

impl<'a, 'b> FileWriter<'a, 'b> {
    pub fn new(
        tx: &'a mut Transaction<'b>,
        file: FileId,
        replaced: Option<FileId>,
    ) -> Result<FileWriter<'a, 'b>, DbError> {
        if let Some(old) = replaced {
            for table in ["uptime_poll_blocks", "uptime_hours", "uptime_zones"] {
                tx.execute(
                    &format!("DELETE FROM {table} WHERE file_id = $1"),
                    &[&old.0],
                )?;
            }
            tx.execute(
                "DELETE FROM uptime_stores WHERE
                   NOT EXISTS (SELECT 1 FROM uptime_poll_blocks p WHERE p.store = uptime_stores.id)
                   AND NOT EXISTS (SELECT 1 FROM uptime_hours h WHERE h.store = uptime_stores.id)
                   AND NOT EXISTS (SELECT 1 FROM uptime_zones z WHERE z.store = uptime_stores.id)",
                &[],
            )?;
        }
        let mut ids = FxHashMap::default();
        let mut next_key = 1;
        for r in tx.query("SELECT store_id, id FROM uptime_stores", &[])? {
            let key: i64 = r.get(1);
            next_key = next_key.max(key + 1);
            ids.insert(r.get(0), key);
        }
        Ok(FileWriter {
            tx,
            file,
            ids,
            next_key,
            new_stores: Vec::new(),
            removed: replaced.is_some(),
            latest: None,
            batch: Vec::new(),
            slots: FxHashMap::default(),
            batched: 0,
            hours: Vec::new(),
            zones: FxHashMap::default(),
        })
    }

    fn store(&mut self, id: &str) -> i64 {
        if let Some(&k) = self.ids.get(id) {
            return k;
        }
        let k = self.next_key;
        self.next_key += 1;
        self.ids.insert(id.to_owned(), k);
        self.new_stores.push((k, id.to_owned()));
        k
    }

    /// Writes the rest, then the latest poll. Call once, last.
    pub fn finish(mut self) -> Result<(), DbError> {
        self.write_polls()?;
        let stores = std::mem::take(&mut self.new_stores);
        copy_in(
            self.tx,
            "COPY uptime_stores (id, store_id) FROM STDIN BINARY",
            &[Type::INT8, Type::TEXT],
            stores
                .into_iter()
                .map(|(k, s)| vec![Box::new(k) as Box<dyn ToSql + Sync>, Box::new(s)]),
        )?;
        let mut hours = std::mem::take(&mut self.hours);
        if !hours.is_empty() {
            hours.sort_unstable();
            hours.dedup();
            let col =
                |i: usize| -> Vec<i64> { hours.iter().map(|h| [h.0, h.1, h.2, h.3][i]).collect() };
            self.tx.execute(
                "DELETE FROM uptime_hours h
                 USING unnest($1::int8[], $2::int8[], $3::int8[], $4::int8[])
                   AS k(store, day, start_s, end_s)
                 WHERE h.store = k.store AND h.day = k.day AND h.start_s = k.start_s
                   AND h.end_s = k.end_s",
                &[&col(0), &col(1), &col(2), &col(3)],
            )?;
            let file = self.file.0;
            copy_in(
                self.tx,
                "COPY uptime_hours (store, day, start_s, end_s, file_id) FROM STDIN BINARY",
                &[Type::INT8; 5],
                hours.into_iter().map(|(s, d, a, b)| {
                    vec![
                        Box::new(s) as Box<dyn ToSql + Sync>,
                        Box::new(d),
                        Box::new(a),
                        Box::new(b),
                        Box::new(file),
                    ]
                }),
            )?;
        }
        let zones = std::mem::take(&mut self.zones);
        if !zones.is_empty() {
            let keys: Vec<i64> = zones.keys().copied().collect();
            self.tx
                .execute("DELETE FROM uptime_zones WHERE store = ANY($1)", &[&keys])?;
            let file = self.file.0;
            copy_in(
                self.tx,
                "COPY uptime_zones (store, zone, file_id) FROM STDIN BINARY",
                &[Type::INT8, Type::TEXT, Type::INT8],
                zones.into_iter().map(|(s, z)| {
                    vec![
                        Box::new(s) as Box<dyn ToSql + Sync>,
                        Box::new(z),
                        Box::new(file),
                    ]
                }),
            )?;
        }
        if self.removed {
            let mut latest = None;
            for r in self.tx.query(
                "SELECT polls FROM uptime_poll_blocks
                 WHERE day = (SELECT max(day) FROM uptime_poll_blocks)",
                &[],
            )? {
                latest = latest.max(decode(r.get(0)).next_back().map(|v| v >> 1));
            }
            self.tx
                .execute("UPDATE uptime_latest SET at = $1", &[&latest])?;
        } else if let Some(at) = self.latest {
            self.tx.execute(
                "UPDATE uptime_latest SET at = GREATEST(coalesce(at, $1), $1)",
                &[&at],
            )?;
        }
        Ok(())
    }
}

impl Writer for FileWriter<'_, '_> {
    fn poll_slot(&mut self, store: &str) -> Result<u32, DbError> {
        let key = self.store(store);
        let next = self.batch.len() as u32;
        let slot = *self.slots.entry(key).or_insert(next);
        if slot == next {
            self.batch.push((key, Vec::new()));
        }
        Ok(slot)
    }

    fn poll(&mut self, slot: u32, value: i64) {
        self.batch[slot as usize].1.push(value);
        self.batched += 1;
    }

    fn batched(&self) -> usize {
        self.batched
    }

    /// The batch merged with the stored blocks of its days (one query), the blocks it
    /// changes deleted and their new contents loaded with one `COPY`.
    fn write_polls(&mut self) -> Result<(), DbError> {
        let batch = take_batch(&mut self.batch, &mut self.slots, &mut self.batched);
        let (mut keys, mut lo, mut hi) = (Vec::new(), Vec::new(), Vec::new());
        for (store, polls) in &batch {
            if let (Some(&first), Some(&last)) = (polls.first(), polls.last()) {
                self.latest = self.latest.max(Some(last >> 1));
                keys.push(*store);
                lo.push(crate::store::day_of(first));
                hi.push(crate::store::day_of(last));
            }
        }
        if keys.is_empty() {
            return Ok(());
        }
        let mut stored: FxHashMap<i64, Vec<(i64, i64, Vec<i64>)>> = FxHashMap::default();
        for r in self.tx.query(
            "SELECT b.store, b.day, b.file_id, b.polls
             FROM unnest($1::int8[], $2::int8[], $3::int8[]) AS r(store, lo, hi)
             JOIN uptime_poll_blocks b ON b.store = r.store AND b.day >= r.lo AND b.day <= r.hi",
            &[&keys, &lo, &hi],
        )? {
            stored.entry(r.get(0)).or_default().push((
                r.get(1),
                r.get(2),
                decode(r.get(3)).collect(),
            ));
        }
        let (mut gone, mut puts) = ([Vec::new(), Vec::new(), Vec::new()], Vec::new());
        let mut merge = Merge::default();
        let none = Vec::new();
        for (store, polls) in &batch {
            let old = stored.get(store).unwrap_or(&none);
            merge.store(self.file.0, polls, old, |op| {
                match op {
                    BlockOp::Delete { day, file } => {
                        gone[0].push(*store);
                        gone[1].push(day);
                        gone[2].push(file);
                    }
                    BlockOp::Put {
                        day,
                        file,
                        values,
                        existed,
                    } => {
                        if existed {
                            gone[0].push(*store);
                            gone[1].push(day);
                            gone[2].push(file);
                        }
                        let mut blob = Vec::with_capacity(values.len() * 8);
                        encode(values, &mut blob);
                        puts.push((*store, day, file, blob));
                    }
                }
                Ok(())
            })?;
        }
        if !gone[0].is_empty() {
            self.tx.execute(
                "DELETE FROM uptime_poll_blocks b
                 USING unnest($1::int8[], $2::int8[], $3::int8[]) AS k(store, day, file_id)
                 WHERE b.store = k.store AND b.day = k.day AND b.file_id = k.file_id",
                &[&gone[0], &gone[1], &gone[2]],
            )?;
        }
        copy_in(
            self.tx,
            "COPY uptime_poll_blocks (store, day, file_id, polls) FROM STDIN BINARY",
            &[Type::INT8, Type::INT8, Type::INT8, Type::BYTEA],
            puts.into_iter().map(|(s, d, f, b)| {
                vec![
                    Box::new(s) as Box<dyn ToSql + Sync>,
                    Box::new(d),
                    Box::new(f),
                    Box::new(b),
                ]
            }),
        )
    }

    fn hours(&mut self, h: &Hours) -> Result<(), DbError> {
        let s = self.store(h.store.as_str());
        self.hours.push((
            s,
            h.day.index() as i64,
            i64::from(h.start.secs()),
            i64::from(h.end.secs()),
        ));
        Ok(())
    }

    fn zone(&mut self, z: &StoreZone) -> Result<(), DbError> {
        let s = self.store(z.store.as_str());
        self.zones.insert(s, z.zone.name().to_owned());
        Ok(())
    }
}

/// Rows fetched already.
struct Fetched(std::vec::IntoIter<Row>);

fn block_row(r: Row, out: &mut Vec<i64>) -> (i64, i64) {
    out.clear();
    out.extend(decode(r.get(2)));
    (r.get(0), r.get(1))
}

fn hours_row(r: &Row) -> (i64, Option<Interval>) {
    let (d, s, e): (i64, i64, i64) = (r.get(1), r.get(2), r.get(3));
    let converted = match (u8::try_from(d), u32::try_from(s), u32::try_from(e)) {
        (Ok(d), Ok(s), Ok(e)) => interval(d, s, e),
        _ => None,
    };
    (r.get(0), converted)
}

impl BlockRows for Fetched {
    fn next_block(&mut self, out: &mut Vec<i64>) -> Result<Option<(i64, i64)>, DbError> {
        Ok(self.0.next().map(|r| block_row(r, out)))
    }
}

const BEFORE: &str =
    "SELECT store, day, polls FROM uptime_poll_blocks WHERE store = $1 AND day < $2
     ORDER BY day DESC";

struct Before<'r, 'a, 'b>(&'r RefCell<&'a mut Transaction<'b>>);

impl LastBefore for Before<'_, '_, '_> {
    fn last_before(&mut self, store: i64, day: i64) -> Result<Option<PollPoint>, DbError> {
        let rows = self.0.borrow_mut().query(BEFORE, &[&store, &day])?;
        last_of(&mut Fetched(rows.into_iter()))
    }
}

/// The last poll before a day of every store of a key range that has one, read in one
/// query (a seek per store on the server, not a round trip per store).
struct BeforeAll(FxHashMap<i64, PollPoint>);

impl BeforeAll {
    fn read(tx: &mut Transaction<'_>, (lo, hi): (i64, i64), day: i64) -> Result<Self, DbError> {
        let mut last: FxHashMap<i64, i64> = FxHashMap::default();
        for r in tx.query(
            "SELECT b.store, b.polls FROM uptime_stores s
             CROSS JOIN LATERAL (SELECT max(day) AS day FROM uptime_poll_blocks
                                 WHERE store = s.id AND day < $3) d
             JOIN uptime_poll_blocks b ON b.store = s.id AND b.day = d.day
             WHERE s.id >= $1 AND s.id <= $2",
            &[&lo, &hi, &day],
        )? {
            if let Some(v) = decode(r.get(1)).next_back() {
                let e = last.entry(r.get(0)).or_insert(v);
                *e = (*e).max(v);
            }
        }
        Ok(BeforeAll(
            last.into_iter().map(|(k, v)| (k, point(v))).collect(),
        ))
    }
}

impl LastBefore for BeforeAll {
    /// `day` is the scan's (that of [`BeforeAll::read`]).
    fn last_before(&mut self, store: i64, _day: i64) -> Result<Option<PollPoint>, DbError> {
        Ok(self.0.get(&store).copied())
    }
}

/// Rows of a portal, fetched this many at a time: a worker holds a bounded part of its scan.
const FETCH: i32 = 2048;

struct PortalRows<'r, 'a, 'b> {
    tx: &'r RefCell<&'a mut Transaction<'b>>,
    portal: Portal,
    buf: std::vec::IntoIter<Row>,
    done: bool,
}

impl<'r, 'a, 'b> PortalRows<'r, 'a, 'b> {
    fn new(
        tx: &'r RefCell<&'a mut Transaction<'b>>,
        query: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Self, DbError> {
        let portal = tx.borrow_mut().bind(query, params)?;
        Ok(PortalRows {
            tx,
            portal,
            buf: Vec::new().into_iter(),
            done: false,
        })
    }

    fn fetch(&mut self) -> Result<Option<Row>, DbError> {
        if let Some(r) = self.buf.next() {
            return Ok(Some(r));
        }
        if self.done {
            return Ok(None);
        }
        let rows = self.tx.borrow_mut().query_portal(&self.portal, FETCH)?;
        self.done = rows.len() < FETCH as usize;
        self.buf = rows.into_iter();
        Ok(self.buf.next())
    }
}

impl BlockRows for PortalRows<'_, '_, '_> {
    fn next_block(&mut self, out: &mut Vec<i64>) -> Result<Option<(i64, i64)>, DbError> {
        Ok(self.fetch()?.map(|r| block_row(r, out)))
    }
}

impl HoursRows for PortalRows<'_, '_, '_> {
    fn next_hours(&mut self) -> Result<Option<(i64, Option<Interval>)>, DbError> {
        Ok(self.fetch()?.map(|r| hours_row(&r)))
    }
}

/// The blocks of one store from `day` on, in day order.
fn store_blocks(tx: &mut Transaction<'_>, store: i64, day: i64) -> Result<Fetched, DbError> {
    let rows = tx.query(
        "SELECT store, day, polls FROM uptime_poll_blocks WHERE store = $1 AND day >= $2
         ORDER BY day",
        &[&store, &day],
    )?;
    Ok(Fetched(rows.into_iter()))
}

struct PgPart<'r, 'a, 'b> {
    tx: &'r RefCell<&'a mut Transaction<'b>>,
    hours: HoursScan<PortalRows<'r, 'a, 'b>>,
    scan: Option<BlockScan<PortalRows<'r, 'a, 'b>, BeforeAll>>,
    values: Vec<i64>,
    from: i64,
}

impl PartReads for PgPart<'_, '_, '_> {
    fn hours(&mut self, key: i64) -> Result<Option<BusinessHours>, DbError> {
        self.hours.read(key)
    }

    fn polls(&mut self, key: i64, take: &mut dyn FnMut(PollPoint) -> bool) -> Result<(), DbError> {
        if let Some(scan) = self.scan.as_mut() {
            return scan.read(key, take);
        }
        let day = self.from.div_euclid(crate::parse::DAY) - 1;
        let rows = store_blocks(&mut self.tx.borrow_mut(), key, day)?;
        read_store(
            rows,
            &mut Before(self.tx),
            &mut self.values,
            key,
            self.from,
            take,
        )
    }
}

/// [`crate::store::part_reads`] on PostgreSQL: the scans are portals of `tx`, fetched a
/// part at a time.
pub fn part_reads<R>(
    tx: &mut Transaction<'_>,
    all: bool,
    (lo, hi): (i64, i64),
    from: i64,
    f: impl FnOnce(&mut dyn PartReads) -> R,
) -> Result<R, DbError> {
    let tx = RefCell::new(tx);
    let hours = HoursScan::over(PortalRows::new(
        &tx,
        "SELECT store, day, start_s, end_s FROM uptime_hours
         WHERE store >= $1 AND store <= $2 ORDER BY store, day, start_s, end_s",
        &[&lo, &hi],
    )?)?;
    let scan = if all {
        let day = from.div_euclid(crate::parse::DAY) - 1;
        let before = BeforeAll::read(&mut tx.borrow_mut(), (lo, hi), day)?;
        let rows = PortalRows::new(
            &tx,
            "SELECT store, day, polls FROM uptime_poll_blocks
             WHERE store >= $1 AND store <= $2 AND day >= $3 ORDER BY store, day",
            &[&lo, &hi, &day],
        )?;
        Some(BlockScan::over(rows, before, from)?)
    } else {
        None
    };
    let mut part = PgPart {
        tx: &tx,
        hours,
        scan,
        values: Vec::new(),
        from,
    };
    Ok(f(&mut part))
}

const STORE_SELECT: &str = "SELECT s.id, s.store_id, z.zone FROM uptime_stores s
     LEFT JOIN uptime_zones z ON z.store = s.id";

fn store_row(r: &Row) -> StoreRow {
    StoreRow {
        key: r.get(0),
        store_id: r.get(1),
        zone: r.get(2),
    }
}

const REPORT_SELECT: &str =
    "SELECT id, created_at, requested_now, stores, coverage, now, rows FROM uptime_reports";

fn report_row(r: &Row) -> ReportRow {
    let stores: Option<String> = r.get(3);
    ReportRow {
        id: r.get(0),
        created_at: r.get(1),
        requested_now: r.get(2),
        stores: stores.and_then(|s| serde_json::from_str(&s).ok()),
        coverage: r.get(4),
        now: r.get(5),
        rows: r.get(6),
    }
}

pub fn insert_report(tx: &mut Transaction<'_>, r: &ReportRow) -> Result<(), DbError> {
    tx.execute(
        "INSERT INTO uptime_reports (id, created_at, requested_now, stores, coverage)
         VALUES ($1, $2, $3, $4, $5)",
        &[
            &r.id,
            &r.created_at,
            &r.requested_now,
            &report_stores_json(r),
            &r.coverage,
        ],
    )?;
    Ok(())
}

pub fn finish_report(
    tx: &mut Transaction<'_>,
    id: &str,
    now: i64,
    rows: i64,
) -> Result<(), DbError> {
    tx.execute(
        "UPDATE uptime_reports SET now = $2, rows = $3 WHERE id = $1",
        &[&id, &now, &rows],
    )?;
    Ok(())
}

// Store ids order as SQLite's BINARY collation does, whatever the database's collation.
impl Reads for Transaction<'_> {
    fn stores(&mut self) -> Result<Vec<StoreRow>, DbError> {
        let rows = self.query(
            &format!("{STORE_SELECT} ORDER BY s.store_id COLLATE \"C\""),
            &[],
        )?;
        Ok(rows.iter().map(store_row).collect())
    }

    fn stores_page(&mut self, limit: u32, offset: u64) -> Result<Vec<StoreRow>, DbError> {
        let rows = self.query(
            &format!("{STORE_SELECT} ORDER BY s.store_id COLLATE \"C\" LIMIT $1 OFFSET $2"),
            &[&i64::from(limit), &(offset as i64)],
        )?;
        Ok(rows.iter().map(store_row).collect())
    }

    fn store(&mut self, store_id: &str) -> Result<Option<StoreRow>, DbError> {
        Ok(self
            .query_opt(
                &format!("{STORE_SELECT} WHERE s.store_id = $1"),
                &[&store_id],
            )?
            .as_ref()
            .map(store_row))
    }

    fn store_intervals(&mut self, key: i64) -> Result<Vec<Interval>, DbError> {
        let rows = self.query(
            "SELECT store, day, start_s, end_s FROM uptime_hours WHERE store = $1
             ORDER BY day, start_s, end_s",
            &[&key],
        )?;
        Ok(rows.iter().filter_map(|r| hours_row(r).1).collect())
    }

    fn latest_poll(&mut self) -> Result<Option<i64>, DbError> {
        Ok(self.query_one("SELECT at FROM uptime_latest", &[])?.get(0))
    }

    fn store_polls(
        &mut self,
        key: i64,
        from: i64,
        take: &mut dyn FnMut(PollPoint) -> bool,
    ) -> Result<(), DbError> {
        let day = from.div_euclid(crate::parse::DAY) - 1;
        let rows = store_blocks(self, key, day)?;
        let tx = RefCell::new(self);
        read_store(rows, &mut Before(&tx), &mut Vec::new(), key, from, take)
    }

    fn report(&mut self, id: &str) -> Result<Option<ReportRow>, DbError> {
        Ok(self
            .query_opt(&format!("{REPORT_SELECT} WHERE id = $1"), &[&id])?
            .as_ref()
            .map(report_row))
    }

    fn reports(&mut self, limit: u32, offset: u64) -> Result<Vec<ReportRow>, DbError> {
        let rows = self.query(
            &format!("{REPORT_SELECT} ORDER BY seq DESC LIMIT $1 OFFSET $2"),
            &[&i64::from(limit), &(offset as i64)],
        )?;
        Ok(rows.iter().map(report_row).collect())
    }

    fn stored(&mut self) -> Result<Stored, DbError> {
        let r = self.query_one(
            "SELECT (SELECT count(*) FROM uptime_stores),
                    (SELECT count(DISTINCT store) FROM uptime_hours),
                    (SELECT count(*) FROM uptime_zones),
                    (SELECT coalesce(sum(length(polls)), 0) / 8 FROM uptime_poll_blocks)",
            &[],
        )?;
        Ok(Stored {
            stores: r.get(0),
            stores_with_hours: r.get(1),
            stores_with_zone: r.get(2),
            polls: r.get(3),
            latest_poll: self.latest_poll()?,
        })
    }
}
