//! An in-memory copy of the KPIs' top ranks, read by the KPI routes instead of SQL. Under
//! varying queries, which the response cache cannot answer, a statement on a pooled
//! connection run on the blocking pool was most of a request's CPU; a lookup here is a lock,
//! one `PRAGMA data_version` and a walk over a few intervals.
//!
//! Exact, never stale: every lookup first reads SQLite's `data_version` on the index's own
//! connection, which changes with every commit of any other connection or process. When it
//! changed, the index reads `network_kpi_generation`, which every KPI recomputation bumps in
//! its own transaction, and a new generation drops everything held. Files' partial state and
//! job updates change the data version but not the generation, so a running ingestion
//! empties the index only when it recomputes KPIs. On PostgreSQL every lookup reads the
//! generation itself (one small statement, on the replica when reads go there): commits of
//! other instances, and a replica's replay, are then seen as soon as they are visible.
//!
//! Memory is bounded: the index holds whole UTC days ("blocks"), each loaded on first use
//! together with the generation it belongs to (one read transaction), with ranks up to
//! [`RANKS`] (the compat routes' depth and the native default), at most [`MAX_BLOCKS`] days
//! (~40 KB each). A query for deeper ranks, or over more days, is answered by SQL.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags};
use sluice_core::{Database, DbError};

use crate::store::{self, Granularity, Kpi, KpiQuery, KpiRow, Reads, StoreError};

/// Ranks per interval and KPI held in memory.
pub const RANKS: u32 = 3;
/// Days held at most; more are answered by SQL (and loading one more empties the index).
pub const MAX_BLOCKS: usize = 512;
const DAY_MS: i64 = 86_400_000;

/// One interval and its top ranks of both KPIs.
struct Interval {
    start: i64,
    rows: u64,
    coverage: u32,
    /// Ranks 1..=len[k] of KPI k + 1: (item, value).
    ranks: [[(i64, i64); RANKS as usize]; 2],
    len: [u8; 2],
}

/// The intervals of one UTC day, per granularity (index: granularity - 1), by start.
#[derive(Default)]
struct Block([Vec<Interval>; 2]);

struct State {
    /// Opened on first use (a failure then is that request's error, not the server's).
    probe: Option<Connection>,
    /// `data_version` when the generation was last read.
    version: Option<i64>,
    generation: i64,
    /// First and last interval start per granularity in this generation.
    extent: [Option<(i64, i64)>; 2],
    blocks: HashMap<i64, Arc<Block>>,
}

pub struct KpiIndex {
    db: Database,
    state: Mutex<State>,
}

/// What a query needs: the blocks of days `first..=last`, those held, and the generation.
struct Plan {
    first: i64,
    blocks: Vec<Option<Arc<Block>>>,
    generation: i64,
}

fn slot(g: Granularity) -> usize {
    g as usize - 1
}

impl KpiIndex {
    pub fn new(db: Database) -> KpiIndex {
        KpiIndex {
            db,
            state: Mutex::new(State {
                probe: None,
                version: None,
                generation: 0,
                extent: [None, None],
                blocks: HashMap::new(),
            }),
        }
    }

    /// The rows [`store::kpi_rows`] answers for `q`, from memory where the index can.
    pub async fn kpi_rows(&self, q: &KpiQuery) -> Result<Vec<KpiRow>, StoreError> {
        if q.max_rank <= RANKS {
            if let Some(mut plan) = self.plan(q)? {
                if self.fill(&mut plan).await? {
                    return Ok(answer(q, &plan));
                }
            }
        }
        let q = q.clone();
        store::read_async(&self.db, move |c| store::kpi_rows(c, &q)).await
    }

    /// Brings the index up to date and lists the blocks `q` needs; `None` if too many.
    fn plan(&self, q: &KpiQuery) -> Result<Option<Plan>, StoreError> {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        refresh(&self.db, &mut st)?;
        let mut days: Option<(i64, i64)> = None;
        for &g in q.granularities() {
            let Some((lo, hi)) = st.extent[slot(g)] else {
                continue;
            };
            let (first, last) = q.starts(g);
            let (first, last) = (first.max(lo), last.min(hi));
            if first > last {
                continue;
            }
            let (a, b) = (first.div_euclid(DAY_MS), last.div_euclid(DAY_MS));
            days = Some(days.map_or((a, b), |(x, y)| (x.min(a), y.max(b))));
        }
        let Some((first, last)) = days else {
            return Ok(Some(Plan {
                first: 0,
                blocks: Vec::new(),
                generation: st.generation,
            }));
        };
        if last - first >= MAX_BLOCKS as i64 {
            return Ok(None);
        }
        Ok(Some(Plan {
            first,
            blocks: (first..=last).map(|d| st.blocks.get(&d).cloned()).collect(),
            generation: st.generation,
        }))
    }

    /// Loads the blocks `plan` lacks; false if the KPIs changed meanwhile (then the plan's
    /// blocks would mix two generations).
    async fn fill(&self, plan: &mut Plan) -> Result<bool, StoreError> {
        let missing: Vec<i64> = plan
            .blocks
            .iter()
            .enumerate()
            .filter(|(_, b)| b.is_none())
            .map(|(i, _)| plan.first + i as i64)
            .collect();
        if missing.is_empty() {
            return Ok(true);
        }
        // One read transaction: the generation and the blocks agree.
        let (generation, loaded) = store::read_async(&self.db, move |c| {
            let generation = c.kpi_generation()?;
            let loaded = load(c, &missing)?;
            Ok::<_, StoreError>((generation, loaded))
        })
        .await?;
        if generation != plan.generation {
            return Ok(false);
        }
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let keep = st.generation == generation;
        if keep && st.blocks.len() + loaded.len() > MAX_BLOCKS {
            st.blocks.clear();
        }
        for (day, block) in loaded {
            let block = Arc::new(block);
            if keep {
                st.blocks.insert(day, block.clone());
            }
            plan.blocks[(day - plan.first) as usize] = Some(block);
        }
        Ok(true)
    }
}

/// Drops what the index holds if the KPIs changed since it was filled.
fn refresh(db: &Database, st: &mut State) -> Result<(), StoreError> {
    let db = match db {
        Database::Sqlite(db) => db,
        Database::Postgres(_) => {
            let (generation, extent) = store::read(db, |c| {
                Ok((
                    c.kpi_generation()?,
                    [
                        c.interval_extent(Granularity::FiveMinutes)?,
                        c.interval_extent(Granularity::Hour)?,
                    ],
                ))
            })?;
            if st.version.is_none() || generation != st.generation {
                st.extent = extent;
                st.blocks.clear();
                st.generation = generation;
                st.version = Some(0);
            }
            return Ok(());
        }
    };
    if st.probe.is_none() {
        st.probe = Some(
            Connection::open_with_flags(
                db.path(),
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(DbError::from)?,
        );
    }
    let probe = st.probe.as_ref().expect("opened above");
    let version: i64 = probe
        .prepare_cached("PRAGMA data_version")?
        .query_row([], |r| r.get(0))?;
    if st.version == Some(version) {
        return Ok(());
    }
    // Read after the version: what is read is at least as new as the version recorded.
    let tx = probe.unchecked_transaction()?;
    let mut c: &Connection = &tx;
    let generation = c.kpi_generation()?;
    if st.version.is_none() || generation != st.generation {
        st.extent = [
            c.interval_extent(Granularity::FiveMinutes)?,
            c.interval_extent(Granularity::Hour)?,
        ];
        st.blocks.clear();
        st.generation = generation;
    }
    tx.finish()?;
    st.version = Some(version);
    Ok(())
}

/// The blocks of `days` (ascending), one range read per run of consecutive days.
fn load(conn: &mut dyn Reads, days: &[i64]) -> Result<Vec<(i64, Block)>, StoreError> {
    let mut out: Vec<(i64, Block)> = Vec::with_capacity(days.len());
    for run in days.chunk_by(|a, b| b - a == 1) {
        let (first, last) = (run[0], run[run.len() - 1]);
        let at = out.len();
        out.extend(run.iter().map(|&d| (d, Block::default())));
        let range = (first * DAY_MS, (last + 1).saturating_mul(DAY_MS));
        for g in [Granularity::FiveMinutes, Granularity::Hour] {
            for (start, rows, coverage) in conn.intervals_in(g, range.0, range.1)? {
                let day = start.div_euclid(DAY_MS);
                out[at + (day - first) as usize].1 .0[slot(g)].push(Interval {
                    start,
                    rows,
                    coverage,
                    ranks: [[(0, 0); RANKS as usize]; 2],
                    len: [0, 0],
                });
            }
            for kpi in [Kpi::TopServices, Kpi::TopCells] {
                let k = kpi as usize - 1;
                conn.ranks_in(kpi, g, range, RANKS, &mut |start, rank, item, value| {
                    let day = start.div_euclid(DAY_MS);
                    let intervals = &mut out[at + (day - first) as usize].1 .0[slot(g)];
                    // Ranks without their interval cannot be answered by the join either.
                    if let Ok(i) = intervals.binary_search_by_key(&start, |iv| iv.start) {
                        let iv = &mut intervals[i];
                        // Ranks are 1, 2, 3 in order; the slot follows the rank, not the count.
                        if let Some(slot) = (rank as usize).checked_sub(1) {
                            iv.ranks[k][slot] = (item, value);
                            iv.len[k] = iv.len[k].max(rank as u8);
                        }
                    }
                })?;
            }
        }
    }
    Ok(out)
}

/// `q` answered from the plan's blocks, exactly as [`store::kpi_rows`] answers it.
fn answer(q: &KpiQuery, plan: &Plan) -> Vec<KpiRow> {
    let k = q.kpi as usize - 1;
    let take = q.take().unwrap_or(u64::MAX);
    let rows: Result<_, std::convert::Infallible> = store::page(q, |g| {
        let (first, last) = q.starts(g);
        let mut rows = Vec::new();
        let intervals = plan
            .blocks
            .iter()
            .flat_map(|b| b.as_deref().expect("filled").0[slot(g)].iter())
            .skip_while(|iv| iv.start < first)
            .take_while(|iv| iv.start <= last)
            .take(usize::try_from(take).unwrap_or(usize::MAX));
        for iv in intervals {
            let n = usize::from(iv.len[k]).min(q.max_rank as usize);
            for (rank, &(item_id, value)) in iv.ranks[k][..n].iter().enumerate() {
                rows.push(KpiRow {
                    kpi: q.kpi,
                    granularity: g,
                    interval_start: iv.start,
                    rank: rank as u32 + 1,
                    item_id,
                    value,
                    coverage: iv.coverage,
                    rows: iv.rows,
                });
            }
        }
        Ok(rows)
    });
    let Ok(rows) = rows;
    rows
}
