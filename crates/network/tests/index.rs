//! The in-memory KPI index answers every query exactly as SQL does: random queries (ranges
//! cut anywhere, both granularities, every depth, offsets and pages) over days with gaps,
//! before and after a late file, a replaced file and a file whose KPIs are not recomputed
//! yet change the stored data behind the index's back.

mod common;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sluice_network::generate::{generate_periods, GenerateArgs};
use sluice_network::index::KpiIndex;
use sluice_network::parse::PERIOD_MS;
use sluice_network::store::{self, Granularity, Kpi, KpiQuery, KpiRow};
use sluice_server::testing::TestServer;

/// 2017-03-01T00:00Z.
const DAY0: i64 = 1_488_326_400_000;
const DAY: i64 = 86_400_000;

fn recompute(s: &TestServer) {
    sluice_network::ingest::recompute(&s.ctx).unwrap();
}

/// Generates the files of `periods` (counted from DAY0) with `seed` and stores them.
fn store_periods(s: &TestServer, periods: std::ops::Range<u32>, seed: u64) {
    let args = GenerateArgs {
        day: chrono::NaiveDate::from_ymd_opt(2017, 3, 1).unwrap(),
        rows_per_file: 60,
        parts: 2,
        periods: 1,
        malformed: 0.0,
        seed,
        out: s.scratch().join(format!("gen-{seed}")),
    };
    for path in generate_periods(&args, periods).unwrap() {
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        // Its KPIs wait for `recompute`.
        common::commit_file(s, &name, &std::fs::read(&path).unwrap());
    }
}

fn random_query(rng: &mut ChaCha8Rng) -> KpiQuery {
    // Anywhere from a day before the data to a day after, to the millisecond or on a period.
    let time = |rng: &mut ChaCha8Rng| {
        let t = DAY0 - DAY + rng.random_range(0..7 * DAY);
        match rng.random_range(0..4) {
            0 => None,
            1 => Some(t),
            _ => Some(t - t.rem_euclid(PERIOD_MS)),
        }
    };
    let from = time(rng);
    let to = time(rng);
    KpiQuery {
        kpi: if rng.random() {
            Kpi::TopServices
        } else {
            Kpi::TopCells
        },
        granularity: [
            None,
            Some(Granularity::FiveMinutes),
            Some(Granularity::Hour),
        ][rng.random_range(0..3)],
        from,
        to,
        max_rank: if rng.random_range(0..4) == 0 {
            rng.random_range(1..=20)
        } else {
            rng.random_range(1..=3)
        },
        offset: if rng.random() {
            0
        } else {
            rng.random_range(0..40)
        },
        limit: if rng.random() {
            None
        } else {
            Some(rng.random_range(1..30))
        },
    }
}

async fn sql(s: &TestServer, q: &KpiQuery) -> Vec<KpiRow> {
    let q = q.clone();
    store::read_async(&s.ctx.db, move |c| store::kpi_rows(c, &q))
        .await
        .unwrap()
}

/// Every one of `n` random queries gets the same rows from the index as from SQL.
async fn agree(s: &TestServer, index: &KpiIndex, rng: &mut ChaCha8Rng, n: usize) -> usize {
    let mut nonempty = 0;
    for _ in 0..n {
        let q = random_query(rng);
        let want = sql(s, &q).await;
        assert_eq!(index.kpi_rows(&q).await.unwrap(), want, "{q:?}");
        nonempty += usize::from(!want.is_empty());
    }
    nonempty
}

fn everything(kpi: Kpi) -> KpiQuery {
    KpiQuery {
        kpi,
        granularity: None,
        from: None,
        to: None,
        max_rank: 3,
        offset: 0,
        limit: None,
    }
}

#[tokio::test]
async fn the_index_answers_as_sql_does_whatever_changes_behind_it() {
    let s = common::server(&[]).await;
    // Day 1 from 23:00 into day 2, day 2's afternoon, nothing on day 3, day 4's morning.
    store_periods(&s, 276..300, 1);
    store_periods(&s, 444..460, 1);
    store_periods(&s, 864..870, 1);
    recompute(&s);
    let index = KpiIndex::new(s.ctx.db.clone());
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    assert!(agree(&s, &index, &mut rng, 400).await > 100);

    // A late period on the empty day, and changed files under names already stored (each
    // replaces the old one's contribution).
    let before = index.kpi_rows(&everything(Kpi::TopCells)).await.unwrap();
    store_periods(&s, 600..603, 2);
    store_periods(&s, 450..451, 3);
    recompute(&s);
    let after = index.kpi_rows(&everything(Kpi::TopCells)).await.unwrap();
    assert_ne!(after, before);
    assert_eq!(after, sql(&s, &everything(Kpi::TopCells)).await);
    assert!(agree(&s, &index, &mut rng, 400).await > 100);

    // A file committed but not yet recomputed changes nothing that either answers.
    store_periods(&s, 700..701, 4);
    assert!(agree(&s, &index, &mut rng, 100).await > 20);
    recompute(&s);
    assert!(agree(&s, &index, &mut rng, 100).await > 20);
}
