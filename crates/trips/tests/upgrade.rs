//! A database written before the per-cell weeks blobs and the level-1 rollups (V3: one row
//! per cell and week, levels 2..8) answers exactly as a fresh one after the upgrade, both
//! before and after its level-1 rollups are built from the stored batches.

mod common;

use std::collections::BTreeMap;

use sluice_trips::batch::Tally;
use sluice_trips::engine::{BBox, Match, Week};
use sluice_trips::generate::{write_csv, Generator};
use sluice_trips::ingest::{self, Limits};
use sluice_trips::store::{self, WeekRange};

type Answers = Vec<BTreeMap<Week, u64>>;

/// Boxes around the generator's cities, from a few streets to a region, in all modes.
fn answers(ctx: &sluice_core::Ctx) -> Answers {
    let mut out = Vec::new();
    for (cx, cy) in [(7.68, 45.07), (14.43, 50.08), (9.99, 53.55)] {
        for half in [0.003, 0.02, 0.07, 0.3] {
            let b = BBox {
                min_lon: cx - half * 1.3,
                min_lat: cy - half,
                max_lon: cx + half * 0.7,
                max_lat: cy + half * 1.1,
            };
            for m in [
                Match::Origin,
                Match::Destination,
                Match::Both,
                Match::Either,
            ] {
                let got = store::read(&ctx.db, |c| {
                    store::weekly_bbox(c, &b, m, WeekRange::default())
                })
                .unwrap();
                out.push(got);
            }
        }
    }
    out
}

/// `(end, level, cell, weeks)` of every per-cell rollup row.
fn cells(ctx: &sluice_core::Ctx) -> Vec<(i64, i64, i64, Vec<u8>)> {
    ctx.sqlite()
        .read(|c| {
            let mut stmt =
                c.prepare("SELECT end_, level, cell, weeks FROM trips_cell ORDER BY 1, 2, 3")?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok::<_, sluice_core::DbError>(rows)
        })
        .unwrap()
}

/// Turns the trips tables back into their V3 form: per-week rows of levels 2..8, no level 1,
/// and V4 not applied.
fn downgrade_to_v3(ctx: &sluice_core::Ctx, rows: &[(i64, i64, i64, Vec<u8>)]) {
    ctx.sqlite()
        .write(|c| {
            let tx = c.transaction()?;
            tx.execute_batch(
                "CREATE TABLE trips_cell_week (
                    end_ INTEGER NOT NULL, level INTEGER NOT NULL, cell INTEGER NOT NULL,
                    week INTEGER NOT NULL, n INTEGER NOT NULL,
                    PRIMARY KEY (end_, level, cell, week)) WITHOUT ROWID;
                 DROP TABLE trips_cell;
                 DROP TABLE trips_pending;
                 DELETE FROM trips_schema_history WHERE version = 4;",
            )?;
            let mut ins = tx.prepare(
                "INSERT INTO trips_cell_week (end_, level, cell, week, n)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for (end, level, cell, weeks) in rows.iter().filter(|r| r.1 >= 2) {
                for (week, n) in Tally::decode(weeks) {
                    ins.execute([*end, *level, *cell, week, n])?;
                }
            }
            drop(ins);
            tx.commit()?;
            Ok::<_, sluice_core::DbError>(())
        })
        .unwrap();
}

fn pending(ctx: &sluice_core::Ctx) -> i64 {
    common::count(ctx, "SELECT count(*) FROM trips_pending")
}

#[test]
fn an_upgraded_database_answers_as_a_fresh_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = Vec::new();
    write_csv(&mut Generator::new(5, 0.0), 5000, &mut csv).unwrap();
    let (fresh, rows) = {
        let ctx = common::ctx(dir.path());
        let limits = Limits {
            batch_rows: 900,
            spill_keys: 30_000,
        };
        common::ingest_stream_with(&ctx, "gen.csv", &csv, limits);
        let rows = cells(&ctx);
        assert!(rows.iter().any(|r| r.1 == 1), "level-1 rollups are written");
        assert_eq!(pending(&ctx), 0);
        let fresh = answers(&ctx);
        assert!(fresh.iter().filter(|a| !a.is_empty()).count() > 30);
        downgrade_to_v3(&ctx, &rows);
        (fresh, rows)
    };

    // The migration converts the weekly rows; level 1 waits for a writer.
    let ctx = common::ctx(dir.path());
    assert_eq!(pending(&ctx), 1);
    let coarse: Vec<_> = rows.iter().filter(|r| r.1 >= 2).cloned().collect();
    assert_eq!(cells(&ctx), coarse);
    assert_eq!(answers(&ctx), fresh);

    ingest::complete_levels(&ctx).unwrap();
    assert_eq!(pending(&ctx), 0);
    assert_eq!(cells(&ctx), rows);
    assert_eq!(answers(&ctx), fresh);

    // Removing the load (its file replaced by an empty one) leaves no rollup behind.
    let header = sluice_trips::generate::HEADER.as_bytes();
    common::ingest_stream(&ctx, "gen.csv", header);
    assert_eq!(common::count(&ctx, "SELECT count(*) FROM trips_cell"), 0);
}
