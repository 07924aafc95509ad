//! Staging loads belong to the database handle that started them (core's owner model), not
//! to a process id: a live handle's load is never removed by another, and a closed handle's
//! load is removed by the next cleanup, also within one process.

mod common;

use sluice_trips::{ingest, store};

const STAGING: &str = "SELECT count(*) FROM trips_load WHERE state = 'staging'";

fn stage_one(ctx: &sluice_core::Ctx) -> store::LoadId {
    let cfg = sluice_trips::group_config(ctx).unwrap();
    store::write(&ctx.db, |c| {
        store::create_load(c, ctx.db.owner().id(), "in-progress.csv", cfg)
    })
    .unwrap()
}

#[test]
fn another_handles_live_load_stays_and_a_closed_handles_load_goes() {
    let dir = tempfile::tempdir().unwrap();
    let a = common::ctx(dir.path());
    let b = common::ctx(dir.path());
    stage_one(&a);
    // Same process id, as two containers that are both pid 1: A still runs, so its load stays.
    assert_eq!(ingest::cleanup(&b).unwrap(), 0);
    assert_eq!(common::count(&b, STAGING), 1);
    // A closes without finishing (its load was never completed nor discarded).
    drop(a);
    ingest::cleanup(&b).unwrap();
    assert_eq!(common::count(&b, STAGING), 0);
}

#[test]
fn a_handles_own_unfinished_load_is_not_its_cleanups_business() {
    let dir = tempfile::tempdir().unwrap();
    let a = common::ctx(dir.path());
    stage_one(&a);
    ingest::cleanup(&a).unwrap();
    assert_eq!(common::count(&a, STAGING), 1);
}
