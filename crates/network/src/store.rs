//! The network domain's storage: its SQLite SQL here, its PostgreSQL SQL in
//! [`crate::postgres`], the same tables and answers on both. What is not SQL — merging the
//! stored per-file state of an interval and ranking it ([`Merger`], [`ranked`]), paging — is
//! shared, and the reads behind the routes are one trait ([`Reads`]) with an implementation
//! per backend.

use std::collections::BTreeSet;

use rusqlite::{params, Connection, Transaction};
use sluice_core::ledger::FileId;
use sluice_core::{Database, DbError, Migration};

use crate::engine::{codec, top_k, FileState, Map};
use crate::parse::{HOUR_MS, PERIOD_MS};

/// The reads behind the KPI routes and the index, on either backend.
pub trait Reads {
    /// The ranks of the first [`KpiQuery::take`] intervals of `g` in the query's range.
    fn kpi_rows_of(&mut self, q: &KpiQuery, g: Granularity) -> Result<Vec<KpiRow>, StoreError>;
    /// The KPI generation: every recomputation of KPIs adds one in its transaction.
    fn kpi_generation(&mut self) -> Result<i64, StoreError>;
    /// The first and last interval start of granularity `g`, if it has intervals.
    fn interval_extent(&mut self, g: Granularity) -> Result<Option<(i64, i64)>, StoreError>;
    /// The intervals of granularity `g` starting in `[from, to)`, ordered by start: (start,
    /// rows, coverage).
    fn intervals_in(
        &mut self,
        g: Granularity,
        from: i64,
        to: i64,
    ) -> Result<Vec<(i64, u64, u32)>, StoreError>;
    /// Calls `f(start, rank, item, value)` for the ranks up to `max_rank` of `kpi` in the
    /// intervals of granularity `g` starting in `[from, to)`, ordered by start and rank.
    fn ranks_in(
        &mut self,
        kpi: Kpi,
        g: Granularity,
        range: (i64, i64),
        max_rank: u32,
        f: &mut dyn FnMut(i64, u32, i64, i64),
    ) -> Result<(), StoreError>;
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

pub fn migrations() -> Vec<Migration> {
    vec![
        Migration {
            name: "V1__init",
            sql: include_str!("../migrations/V1__init.sql"),
        },
        Migration {
            name: "V2__stable_kpi_ids",
            sql: include_str!("../migrations/V2__stable_kpi_ids.sql"),
        },
        Migration {
            name: "V3__kpi_generation",
            sql: include_str!("../migrations/V3__kpi_generation.sql"),
        },
    ]
}

/// How many ranks are kept per interval and KPI (native `limit` goes up to this).
pub const TOP_N: usize = 20;
// Row ids give rank two decimal digits.
const _: () = assert!(TOP_N < 100);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("a byte total exceeds 2^63 - 1 in the interval starting {0}")]
    Overflow(i64),
    #[error("stored state of the interval starting {0} is corrupt")]
    Corrupt(i64),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Db(DbError::Sqlite(e))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub enum Kpi {
    /// KPI1, "ServiceTrafficVolume".
    TopServices = 1,
    /// KPI2, "CellUniqueUsers".
    TopCells = 2,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub enum Granularity {
    FiveMinutes = 1,
    Hour = 2,
}

impl Granularity {
    pub fn millis(self) -> i64 {
        match self {
            Granularity::FiveMinutes => PERIOD_MS,
            Granularity::Hour => HOUR_MS,
        }
    }
}

fn to_i64(v: u128, period: i64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Overflow(period))
}

/// Writes one file's state in its ingestion transaction, removing the contribution of the file
/// it replaces first, and marks the touched intervals dirty. Each interval's cells are moved
/// out of `state` once SQLite holds its copy: one interval of a large file stores tens of MB,
/// and SQLite copies a bound blob and again into the record, so keeping ours too would hold
/// a third copy.
pub fn write_file(
    tx: &Transaction<'_>,
    file: FileId,
    replaced: Option<FileId>,
    state: &mut FileState,
) -> Result<(), StoreError> {
    if let Some(old) = replaced {
        tx.execute(
            "INSERT OR IGNORE INTO network_dirty (period_start)
             SELECT period_start FROM network_file_interval WHERE file_id = ?1",
            [old.0],
        )?;
        tx.execute(
            "DELETE FROM network_file_interval WHERE file_id = ?1",
            [old.0],
        )?;
    }
    // Not cached: a cached statement would keep the last bound blob until its next use.
    let mut ins = tx.prepare(
        "INSERT INTO network_file_interval (period_start, file_id, rows, services, cells)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    let mut dirty =
        tx.prepare_cached("INSERT OR IGNORE INTO network_dirty (period_start) VALUES (?1)")?;
    for (period, s) in &mut state.intervals {
        let p = period.millis();
        ins.raw_bind_parameter(1, p)?;
        ins.raw_bind_parameter(2, file.0)?;
        ins.raw_bind_parameter(3, s.rows as i64)?;
        ins.raw_bind_parameter(4, codec::encode_services(&s.service_bytes))?;
        ins.raw_bind_parameter(5, std::mem::take(&mut s.cells))?;
        ins.raw_execute()?;
        dirty.execute([p])?;
    }
    Ok(())
}

/// Whether any interval waits for its KPIs.
pub fn has_dirty(conn: &Connection) -> Result<bool, StoreError> {
    Ok(
        conn.query_row("SELECT EXISTS (SELECT 1 FROM network_dirty)", [], |r| {
            r.get(0)
        })?,
    )
}

/// Recomputes the KPIs of the dirty 5-minute intervals before `before` (an hour boundary;
/// all when `None`) and of their hours, in one transaction. Returns how many intervals
/// (5-minute and hourly) were recomputed.
pub fn recompute_dirty(conn: &mut Connection, before: Option<i64>) -> Result<usize, StoreError> {
    let before = before.unwrap_or(i64::MAX);
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let periods: Vec<i64> = {
        let mut stmt = tx
            .prepare("SELECT period_start FROM network_dirty WHERE period_start < ?1 ORDER BY 1")?;
        let rows = stmt.query_map([before], |r| r.get(0))?;
        rows.collect::<Result<_, _>>()?
    };
    let hours = hours_of(&periods);
    for &p in &periods {
        recompute(&tx, Granularity::FiveMinutes, p)?;
    }
    for &h in &hours {
        recompute(&tx, Granularity::Hour, h)?;
    }
    tx.execute(
        "DELETE FROM network_dirty WHERE period_start < ?1",
        [before],
    )?;
    tx.execute(
        "UPDATE network_kpi_generation SET generation = generation + 1",
        [],
    )?;
    tx.commit()?;
    Ok(periods.len() + hours.len())
}

/// Merged state of the 5-minute intervals of one KPI interval.
#[derive(Default)]
pub(crate) struct Merged {
    pub(crate) rows: u64,
    service_bytes: Map<i64, u128>,
    /// Distinct subscribers per cell.
    cell_users: Vec<(i64, u64)>,
    /// 5-minute intervals with rows.
    pub(crate) coverage: u32,
}

/// Merges the stored state of the 5-minute intervals of one KPI interval, file by file. A
/// cell's subscribers are counted from the stored bytes: its stored count where one file has
/// the cell, else the size of the union of its files' sets, decoded one cell at a time; the
/// interval's subscribers are never held decoded all together.
pub(crate) struct Merger {
    state: Merged,
    with_rows: BTreeSet<i64>,
    /// Whether the interval has one file only: then its stored counts are the answer.
    single: bool,
    blobs: Vec<(i64, Vec<u8>)>,
}

impl Merger {
    /// A merger for an interval whose state comes from `files` stored rows.
    pub(crate) fn new(files: i64) -> Merger {
        Merger {
            state: Merged::default(),
            with_rows: BTreeSet::new(),
            single: files == 1,
            blobs: Vec::new(),
        }
    }

    /// Adds one file's stored state of the 5-minute interval `period`.
    pub(crate) fn add(
        &mut self,
        period: i64,
        rows: i64,
        services: &[u8],
        cells: &[u8],
    ) -> Result<(), StoreError> {
        let state = &mut self.state;
        if rows > 0 {
            self.with_rows.insert(period);
        }
        state.rows += rows as u64;
        codec::decode_services(services, |id, bytes| {
            *state.service_bytes.entry(id).or_default() += bytes;
        })
        .map_err(|_| StoreError::Corrupt(period))?;
        if self.single {
            // Read in place: no copy of a large blob.
            codec::cells(cells, |id, n, _| state.cell_users.push((id, n)))
                .map_err(|_| StoreError::Corrupt(period))?;
        } else {
            self.blobs.push((period, cells.to_vec()));
        }
        Ok(())
    }

    pub(crate) fn finish(self) -> Result<Merged, StoreError> {
        let mut state = self.state;
        state.coverage = self.with_rows.len() as u32;
        // (cell, count, subscribers, period) of every file, grouped by cell.
        let mut parts = Vec::new();
        for (period, blob) in &self.blobs {
            codec::cells(blob, |id, n, users| parts.push((id, n, users, *period)))
                .map_err(|_| StoreError::Corrupt(*period))?;
        }
        parts.sort_by_key(|p| p.0);
        let mut scratch = Vec::new();
        for group in parts.chunk_by(|a, b| a.0 == b.0) {
            let users = match group {
                [(_, n, _, _)] => *n,
                _ => {
                    scratch.clear();
                    for &(_, n, mut bytes, period) in group {
                        for u in codec::users(&mut bytes, n) {
                            scratch.push(u.map_err(|_| StoreError::Corrupt(period))?);
                        }
                    }
                    scratch.sort_unstable();
                    scratch.dedup();
                    scratch.len() as u64
                }
            };
            state.cell_users.push((group[0].0, users));
        }
        Ok(state)
    }
}

/// The KPI rows of a merged interval starting at `start`: (kpi, rank, item, value).
pub(crate) fn ranked(state: Merged, start: i64) -> Result<Vec<(Kpi, i64, i64, i64)>, StoreError> {
    let mut out = Vec::with_capacity(2 * TOP_N);
    let services = top_k(state.service_bytes.iter().map(|(k, v)| (*k, *v)), TOP_N);
    for (rank, (id, bytes)) in services.into_iter().enumerate() {
        out.push((Kpi::TopServices, rank as i64 + 1, id, to_i64(bytes, start)?));
    }
    let cells = top_k(state.cell_users, TOP_N);
    for (rank, (id, users)) in cells.into_iter().enumerate() {
        out.push((Kpi::TopCells, rank as i64 + 1, id, users as i64));
    }
    Ok(out)
}

/// The 5-minute intervals of `periods` and the hours they fall in.
pub(crate) fn hours_of(periods: &[i64]) -> BTreeSet<i64> {
    periods.iter().map(|p| p - p.rem_euclid(HOUR_MS)).collect()
}

/// Merges the stored state of the 5-minute intervals in [start, start + len).
fn load_state(tx: &Transaction<'_>, start: i64, len: i64) -> Result<Merged, StoreError> {
    let files: i64 = tx
        .prepare_cached(
            "SELECT count(*) FROM network_file_interval
             WHERE period_start >= ?1 AND period_start < ?2",
        )?
        .query_row([start, start + len], |r| r.get(0))?;
    let mut merger = Merger::new(files);
    let mut stmt = tx.prepare_cached(
        "SELECT period_start, rows, services, cells FROM network_file_interval
         WHERE period_start >= ?1 AND period_start < ?2",
    )?;
    let mut rows = stmt.query([start, start + len])?;
    while let Some(r) = rows.next()? {
        let services = r.get_ref(2)?.as_blob().map_err(rusqlite::Error::from)?;
        let cells = r.get_ref(3)?.as_blob().map_err(rusqlite::Error::from)?;
        merger.add(r.get(0)?, r.get(1)?, services, cells)?;
    }
    merger.finish()
}

fn recompute(tx: &Transaction<'_>, g: Granularity, start: i64) -> Result<(), StoreError> {
    let state = load_state(tx, start, g.millis())?;
    tx.execute(
        "DELETE FROM network_kpi WHERE granularity = ?1 AND interval_start = ?2",
        params![g as i64, start],
    )?;
    tx.execute(
        "DELETE FROM network_interval WHERE granularity = ?1 AND interval_start = ?2",
        params![g as i64, start],
    )?;
    if state.coverage == 0 {
        return Ok(()); // every file of the interval was replaced by one without its rows
    }
    tx.execute(
        "INSERT INTO network_interval (granularity, interval_start, rows, coverage)
         VALUES (?1, ?2, ?3, ?4)",
        params![g as i64, start, state.rows as i64, state.coverage],
    )?;
    let mut ins = tx.prepare_cached(
        "INSERT INTO network_kpi (kpi, granularity, interval_start, rank, item_id, value)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for (kpi, rank, id, value) in ranked(state, start)? {
        ins.execute(params![kpi as i64, g as i64, start, rank, id, value])?;
    }
    Ok(())
}

/// One ranked KPI entry.
#[derive(Clone, Debug, PartialEq)]
pub struct KpiRow {
    pub kpi: Kpi,
    pub granularity: Granularity,
    pub interval_start: i64,
    pub rank: u32,
    pub item_id: i64,
    pub value: i64,
    pub coverage: u32,
    pub rows: u64,
}

impl KpiRow {
    pub fn interval_end(&self) -> i64 {
        self.interval_start + self.granularity.millis()
    }

    /// The row's id, a function of its key alone so that recomputing the row (late files,
    /// crash recovery, another ingestion order) keeps it: the 5-minute slot since 1970 of
    /// its start × 10 000 + granularity × 1000 + kpi × 100 + rank. Ids ascend with (start,
    /// granularity, rank), and stay within ±2^53 (exact in every JSON reader) for any start
    /// within 8 million years of 1970.
    pub fn id(&self) -> i64 {
        // interval_start is a multiple of 5 minutes: the slot is exact, and i64 / 300 000
        // × 10 000 cannot overflow.
        (self.interval_start / crate::parse::PERIOD_MS) * 10_000
            + self.granularity as i64 * 1000
            + self.kpi as i64 * 100
            + i64::from(self.rank)
    }
}

/// A KPI query: intervals with `start >= from` and `end <= to`, ranks `1..=max_rank`,
/// ordered by interval start, granularity, rank; `offset`/`limit` count intervals.
#[derive(Clone, Debug)]
pub struct KpiQuery {
    pub kpi: Kpi,
    pub granularity: Option<Granularity>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub max_rank: u32,
    pub offset: u64,
    pub limit: Option<u64>,
}

impl KpiQuery {
    /// The granularities asked for.
    pub fn granularities(&self) -> &'static [Granularity] {
        match self.granularity {
            Some(Granularity::FiveMinutes) => &[Granularity::FiveMinutes],
            Some(Granularity::Hour) => &[Granularity::Hour],
            None => &[Granularity::FiveMinutes, Granularity::Hour],
        }
    }

    /// The first and last start of a matching interval of granularity `g`.
    pub fn starts(&self, g: Granularity) -> (i64, i64) {
        (
            self.from.unwrap_or(i64::MIN),
            self.to.map_or(i64::MAX, |to| to.saturating_sub(g.millis())),
        )
    }

    /// How many intervals of each granularity a page needs at most: the first offset+limit
    /// of each, merged by start, give the requested page of the merged sequence.
    pub fn take(&self) -> Option<u64> {
        self.limit.map(|l| l.saturating_add(self.offset))
    }
}

/// The rows of `q`, by SQL.
pub fn kpi_rows(c: &mut dyn Reads, q: &KpiQuery) -> Result<Vec<KpiRow>, StoreError> {
    page(q, |g| c.kpi_rows_of(q, g))
}

/// The answer to `q` from `rows_of(g)`: the ranks of the first [`KpiQuery::take`]
/// intervals of granularity `g` in the query's range, ordered by start and rank.
pub fn page<E>(
    q: &KpiQuery,
    mut rows_of: impl FnMut(Granularity) -> Result<Vec<KpiRow>, E>,
) -> Result<Vec<KpiRow>, E> {
    let mut rows = Vec::new();
    for &g in q.granularities() {
        rows.extend(rows_of(g)?);
    }
    rows.sort_by_key(|r| (r.interval_start, r.granularity as i64, r.rank));
    // Page over intervals, not rows.
    let mut out = Vec::with_capacity(rows.len());
    let mut seen = 0u64;
    let mut last = None;
    for r in rows {
        let key = (r.interval_start, r.granularity as i64);
        if last != Some(key) {
            last = Some(key);
            seen += 1;
        }
        if seen <= q.offset {
            continue;
        }
        if q.limit.is_some_and(|l| seen > q.offset + l) {
            break;
        }
        out.push(r);
    }
    Ok(out)
}

impl Reads for &Connection {
    fn kpi_rows_of(&mut self, q: &KpiQuery, g: Granularity) -> Result<Vec<KpiRow>, StoreError> {
        // CROSS JOIN fixes the join order: intervals by primary-key range first, then each
        // interval's ranks by the primary key. Left to itself, the planner of SQLite 3.50 scans
        // every row of the KPI and builds a temporary index per query (50x slower).
        let mut stmt = self.prepare_cached(
            "SELECT k.interval_start, k.rank, k.item_id, k.value, iv.coverage, iv.rows
         FROM (SELECT interval_start, rows, coverage FROM network_interval
               WHERE granularity = ?1 AND interval_start >= ?2 AND interval_start <= ?3
               ORDER BY interval_start LIMIT ?4) AS iv
         CROSS JOIN network_kpi k
         WHERE k.kpi = ?5 AND k.granularity = ?1 AND k.interval_start = iv.interval_start
           AND k.rank <= ?6
         ORDER BY k.interval_start, k.rank",
        )?;
        let (first, last) = q.starts(g);
        let rows = stmt.query_map(
            params![
                g as i64,
                first,
                last,
                q.take().map_or(-1, |t| t.min(i64::MAX as u64) as i64),
                q.kpi as i64,
                q.max_rank
            ],
            |r| {
                Ok(KpiRow {
                    kpi: q.kpi,
                    granularity: g,
                    interval_start: r.get(0)?,
                    rank: r.get(1)?,
                    item_id: r.get(2)?,
                    value: r.get(3)?,
                    coverage: r.get(4)?,
                    rows: r.get::<_, i64>(5)? as u64,
                })
            },
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn kpi_generation(&mut self) -> Result<i64, StoreError> {
        Ok(self
            .prepare_cached("SELECT generation FROM network_kpi_generation")?
            .query_row([], |r| r.get(0))?)
    }

    fn interval_extent(&mut self, g: Granularity) -> Result<Option<(i64, i64)>, StoreError> {
        Ok(self
            .prepare_cached(
                "SELECT min(interval_start), max(interval_start) FROM network_interval
             WHERE granularity = ?1",
            )?
            .query_row([g as i64], |r| {
                Ok(r.get::<_, Option<i64>>(0)?.zip(r.get(1)?))
            })?)
    }

    fn intervals_in(
        &mut self,
        g: Granularity,
        from: i64,
        to: i64,
    ) -> Result<Vec<(i64, u64, u32)>, StoreError> {
        let mut stmt = self.prepare_cached(
            "SELECT interval_start, rows, coverage FROM network_interval
         WHERE granularity = ?1 AND interval_start >= ?2 AND interval_start < ?3
         ORDER BY interval_start",
        )?;
        let rows = stmt.query_map(params![g as i64, from, to], |r| {
            Ok((r.get(0)?, r.get::<_, i64>(1)? as u64, r.get(2)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn ranks_in(
        &mut self,
        kpi: Kpi,
        g: Granularity,
        (from, to): (i64, i64),
        max_rank: u32,
        f: &mut dyn FnMut(i64, u32, i64, i64),
    ) -> Result<(), StoreError> {
        let mut stmt = self.prepare_cached(
            "SELECT interval_start, rank, item_id, value FROM network_kpi
         WHERE kpi = ?1 AND granularity = ?2 AND interval_start >= ?3 AND interval_start < ?4
           AND rank <= ?5
         ORDER BY interval_start, rank",
        )?;
        let mut rows = stmt.query(params![kpi as i64, g as i64, from, to, max_rank])?;
        while let Some(r) = rows.next()? {
            f(r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
        }
        Ok(())
    }
}
