//! The network domain's SQL on PostgreSQL: the same tables and statements as
//! [`crate::store`]'s SQLite ones, for several instances at once. A file's transaction and a
//! recomputation exclude each other through one advisory lock (shared by files, exclusive
//! for recomputing): a recomputation therefore sees every file committed before it and no
//! half of one, and two instances recomputing the same intervals take turns, so concurrent
//! ingestion on several instances gives the KPIs of a serial run.

use postgres::Transaction;
use sluice_core::ledger::FileId;
use sluice_core::pg::advisory_key;
use sluice_core::{DbError, Migration, PgDb};

use crate::engine::{codec, FileState};
use crate::store::{
    hours_of, ranked, Granularity, Kpi, KpiQuery, KpiRow, Merger, Reads, StoreError,
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

fn kpi_lock() -> i64 {
    advisory_key("network kpis")
}

/// [`crate::store::write_file`] on PostgreSQL (in the file's ledger transaction).
pub fn write_file(
    tx: &mut Transaction<'_>,
    file: FileId,
    replaced: Option<FileId>,
    state: &mut FileState,
) -> Result<(), StoreError> {
    tx.execute("SELECT pg_advisory_xact_lock_shared($1)", &[&kpi_lock()])?;
    if let Some(old) = replaced {
        tx.execute(
            "INSERT INTO network_dirty (period_start)
             SELECT period_start FROM network_file_interval WHERE file_id = $1
             ON CONFLICT DO NOTHING",
            &[&old.0],
        )?;
        tx.execute(
            "DELETE FROM network_file_interval WHERE file_id = $1",
            &[&old.0],
        )?;
    }
    let ins = tx.prepare(
        "INSERT INTO network_file_interval (period_start, file_id, rows, services, cells)
         VALUES ($1, $2, $3, $4, $5)",
    )?;
    let dirty =
        tx.prepare("INSERT INTO network_dirty (period_start) VALUES ($1) ON CONFLICT DO NOTHING")?;
    for (period, s) in &mut state.intervals {
        let p = period.millis();
        let services = codec::encode_services(&s.service_bytes);
        let cells = std::mem::take(&mut s.cells);
        tx.execute(&ins, &[&p, &file.0, &(s.rows as i64), &services, &cells])?;
        tx.execute(&dirty, &[&p])?;
    }
    Ok(())
}

/// Whether any interval waits for its KPIs.
pub fn has_dirty(pg: &PgDb) -> Result<bool, StoreError> {
    pg.read_primary(|tx| {
        Ok(tx
            .query_one("SELECT EXISTS (SELECT 1 FROM network_dirty)", &[])?
            .get(0))
    })
}

/// [`crate::store::recompute_dirty`] on PostgreSQL.
pub fn recompute_dirty(pg: &PgDb, before: Option<i64>) -> Result<usize, StoreError> {
    let before = before.unwrap_or(i64::MAX);
    pg.write(|tx| {
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&kpi_lock()])?;
        let periods: Vec<i64> = tx
            .query(
                "SELECT period_start FROM network_dirty WHERE period_start < $1 ORDER BY 1",
                &[&before],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if periods.is_empty() {
            return Ok(0); // another instance recomputed them while this one waited
        }
        let hours = hours_of(&periods);
        for &p in &periods {
            recompute(tx, Granularity::FiveMinutes, p)?;
        }
        for &h in &hours {
            recompute(tx, Granularity::Hour, h)?;
        }
        tx.execute(
            "DELETE FROM network_dirty WHERE period_start < $1",
            &[&before],
        )?;
        tx.execute(
            "UPDATE network_kpi_generation SET generation = generation + 1",
            &[],
        )?;
        Ok(periods.len() + hours.len())
    })
}

fn recompute(tx: &mut Transaction<'_>, g: Granularity, start: i64) -> Result<(), StoreError> {
    let end = start + g.millis();
    let files: i64 = tx
        .query_one(
            "SELECT count(*) FROM network_file_interval
             WHERE period_start >= $1 AND period_start < $2",
            &[&start, &end],
        )?
        .get(0);
    let mut merger = Merger::new(files);
    for r in tx.query(
        "SELECT period_start, rows, services, cells FROM network_file_interval
         WHERE period_start >= $1 AND period_start < $2",
        &[&start, &end],
    )? {
        merger.add(r.get(0), r.get(1), r.get(2), r.get(3))?;
    }
    let state = merger.finish()?;
    let gi = g as i64;
    tx.execute(
        "DELETE FROM network_kpi WHERE granularity = $1 AND interval_start = $2",
        &[&gi, &start],
    )?;
    tx.execute(
        "DELETE FROM network_interval WHERE granularity = $1 AND interval_start = $2",
        &[&gi, &start],
    )?;
    if state.coverage == 0 {
        return Ok(()); // every file of the interval was replaced by one without its rows
    }
    tx.execute(
        "INSERT INTO network_interval (granularity, interval_start, rows, coverage)
         VALUES ($1, $2, $3, $4)",
        &[
            &gi,
            &start,
            &(state.rows as i64),
            &i64::from(state.coverage),
        ],
    )?;
    let rows = ranked(state, start)?;
    if rows.is_empty() {
        return Ok(());
    }
    // One statement for the interval's ranks (arrays unnested), not one round trip each.
    let kpis: Vec<i64> = rows.iter().map(|r| r.0 as i64).collect();
    let ranks: Vec<i64> = rows.iter().map(|r| r.1).collect();
    let items: Vec<i64> = rows.iter().map(|r| r.2).collect();
    let values: Vec<i64> = rows.iter().map(|r| r.3).collect();
    tx.execute(
        "INSERT INTO network_kpi (kpi, granularity, interval_start, rank, item_id, value)
         SELECT k, $1, $2, r, i, v FROM unnest($3::bigint[], $4::bigint[], $5::bigint[],
                                               $6::bigint[]) AS t(k, r, i, v)",
        &[&gi, &start, &kpis, &ranks, &items, &values],
    )?;
    Ok(())
}

impl Reads for Transaction<'_> {
    fn kpi_rows_of(&mut self, q: &KpiQuery, g: Granularity) -> Result<Vec<KpiRow>, StoreError> {
        let (first, last) = q.starts(g);
        let take = q.take().map(|t| t.min(i64::MAX as u64) as i64);
        let rows = self.query(
            "SELECT k.interval_start, k.rank, k.item_id, k.value, iv.coverage, iv.rows
             FROM (SELECT interval_start, rows, coverage FROM network_interval
                   WHERE granularity = $1 AND interval_start >= $2 AND interval_start <= $3
                   ORDER BY interval_start LIMIT $4) AS iv
             JOIN network_kpi k
               ON k.interval_start = iv.interval_start AND k.granularity = $1
             WHERE k.kpi = $5 AND k.rank <= $6
             ORDER BY k.interval_start, k.rank",
            &[
                &(g as i64),
                &first,
                &last,
                &take,
                &(q.kpi as i64),
                &i64::from(q.max_rank),
            ],
        )?;
        Ok(rows
            .iter()
            .map(|r| KpiRow {
                kpi: q.kpi,
                granularity: g,
                interval_start: r.get(0),
                rank: r.get::<_, i64>(1) as u32,
                item_id: r.get(2),
                value: r.get(3),
                coverage: r.get::<_, i64>(4) as u32,
                rows: r.get::<_, i64>(5) as u64,
            })
            .collect())
    }

    fn kpi_generation(&mut self) -> Result<i64, StoreError> {
        Ok(self
            .query_one("SELECT generation FROM network_kpi_generation", &[])?
            .get(0))
    }

    fn interval_extent(&mut self, g: Granularity) -> Result<Option<(i64, i64)>, StoreError> {
        let r = self.query_one(
            "SELECT min(interval_start), max(interval_start) FROM network_interval
             WHERE granularity = $1",
            &[&(g as i64)],
        )?;
        Ok(r.get::<_, Option<i64>>(0).zip(r.get::<_, Option<i64>>(1)))
    }

    fn intervals_in(
        &mut self,
        g: Granularity,
        from: i64,
        to: i64,
    ) -> Result<Vec<(i64, u64, u32)>, StoreError> {
        Ok(self
            .query(
                "SELECT interval_start, rows, coverage FROM network_interval
                 WHERE granularity = $1 AND interval_start >= $2 AND interval_start < $3
                 ORDER BY interval_start",
                &[&(g as i64), &from, &to],
            )?
            .iter()
            .map(|r| {
                (
                    r.get(0),
                    r.get::<_, i64>(1) as u64,
                    r.get::<_, i64>(2) as u32,
                )
            })
            .collect())
    }

    fn ranks_in(
        &mut self,
        kpi: Kpi,
        g: Granularity,
        (from, to): (i64, i64),
        max_rank: u32,
        f: &mut dyn FnMut(i64, u32, i64, i64),
    ) -> Result<(), StoreError> {
        for r in self.query(
            "SELECT interval_start, rank, item_id, value FROM network_kpi
             WHERE kpi = $1 AND granularity = $2 AND interval_start >= $3 AND interval_start < $4
               AND rank <= $5
             ORDER BY interval_start, rank",
            &[&(kpi as i64), &(g as i64), &from, &to, &i64::from(max_rank)],
        )? {
            f(r.get(0), r.get::<_, i64>(1) as u32, r.get(2), r.get(3));
        }
        Ok(())
    }
}
