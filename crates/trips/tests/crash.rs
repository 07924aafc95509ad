//! kill -9 during ingestion, then a restart: exactly one copy of every row.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

use sluice_trips::batch::End;
use sluice_trips::cli::GeneratedReader;
use sluice_trips::generate::Generator;
use sluice_trips::store::{self, WeekRange};

// Large enough that the kill lands well before the end on a fast machine (100+ batches).
const ROWS: u64 = 120_000;

fn child_exe() -> std::path::PathBuf {
    // Examples are built by `cargo test` next to the test binaries' folder.
    let exe = std::env::current_exe().unwrap();
    exe.parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join("ingest_child")
}

fn generated() -> Vec<u8> {
    let mut v = Vec::new();
    GeneratedReader::new(Generator::new(5, 0.01), ROWS)
        .read_to_end(&mut v)
        .unwrap();
    v
}

/// Runs the child until `ready` holds on the database, then kills it with SIGKILL.
fn kill_when(dir: &std::path::Path, mode: &str, ready: &str) {
    let mut child = Command::new(child_exe())
        .args([dir.to_str().unwrap(), mode, &ROWS.to_string(), "2000"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("the ingest_child example is built by cargo test");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "started");
    let ctx = common::ctx(dir);
    while common::count(&ctx, ready) == 0 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the child finished before the kill"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // The child's staging load is live: another process's cleanup leaves it alone.
    assert_eq!(sluice_trips::ingest::cleanup(&ctx).unwrap(), 0);
    child.kill().unwrap(); // SIGKILL on Unix.
    child.wait().unwrap();
}

fn assert_one_copy(ctx: &sluice_core::Ctx, accepted: u64) {
    assert_eq!(
        common::count(ctx, "SELECT sum(n) FROM trips_batch WHERE visible") as u64,
        accepted
    );
    assert_eq!(
        common::count(ctx, "SELECT count(*) FROM trips_batch WHERE NOT visible"),
        0
    );
    assert_eq!(
        common::count(ctx, "SELECT sum(n) FROM trips_region_week") as u64,
        accepted
    );
    assert_eq!(
        common::count(ctx, "SELECT sum(n) FROM trips_region") as u64,
        accepted
    );
    assert_eq!(
        common::count(ctx, "SELECT sum(n) FROM trips_group") as u64,
        accepted
    );
    for level in [1, 8] {
        let cells: u64 = store::read(&ctx.db, |c| {
            store::density(c, End::Destination, level, None, usize::MAX)
        })
        .unwrap()
        .iter()
        .map(|c| c.2)
        .sum();
        assert_eq!(cells, accepted, "level {level}");
    }
    assert_eq!(
        common::count(
            ctx,
            "SELECT count(*) FROM trips_load WHERE state = 'staging'"
        ),
        0
    );
    // Group datasource counts were subtracted as exactly as the group sizes.
    let cfg = sluice_trips::group_config(ctx).unwrap();
    let groups = store::read(&ctx.db, |c| store::groups(c, cfg, None, 0, u32::MAX, 0)).unwrap();
    let by_source: u64 = groups.iter().flat_map(|g| g.datasources.values()).sum();
    assert_eq!(by_source, accepted);
    let world = sluice_trips::engine::BBox::parse("-180,-90,180,90").unwrap();
    for m in [
        sluice_trips::engine::Match::Both,
        sluice_trips::engine::Match::Either,
    ] {
        let n: u64 = store::read(&ctx.db, |c| {
            store::weekly_bbox(c, &world, m, WeekRange::default())
        })
        .unwrap()
        .values()
        .sum();
        assert_eq!(n, accepted, "{m:?}");
    }
}

#[test]
fn sigkill_during_a_stream_then_restart() {
    let dir = tempfile::tempdir().unwrap();
    // Killed after some batches were committed (and rolled up) under the staging load.
    kill_when(
        dir.path(),
        "stream",
        "SELECT count(*) >= 3 FROM trips_batch WHERE visible",
    );
    let ctx = common::ctx(dir.path());
    assert!(common::count(&ctx, "SELECT sum(n) FROM trips_batch") >= 6_000);
    let s = common::ingest_stream(&ctx, "stream.csv", &generated());
    assert_eq!(s.rows_accepted + s.rows_rejected, ROWS);
    assert!(s.rows_rejected > 0);
    assert_one_copy(&ctx, s.rows_accepted);
    // And again: a duplicate, nothing changes.
    let again = common::ingest_stream(&ctx, "other-name.csv", &generated());
    assert_eq!(
        again.files[0].status,
        sluice_core::jobs::FileStatus::Duplicate
    );
    assert_one_copy(&ctx, s.rows_accepted);
}

#[test]
fn sigkill_during_a_file_then_restart() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path()).unwrap();
    let path = dir.path().join("big.csv");
    std::fs::write(&path, generated()).unwrap();
    // Killed while the file's batches are committed under its staging load.
    kill_when(dir.path(), "file", "SELECT count(*) >= 3 FROM trips_batch");
    let ctx = common::ctx(dir.path());
    // Nothing of the file is visible, and the ledger does not know it.
    assert_eq!(
        common::count(&ctx, "SELECT count(*) FROM trips_batch WHERE visible"),
        0
    );
    assert_eq!(common::count(&ctx, "SELECT count(*) FROM core_ledger"), 0);
    let s = common::ingest_file(&ctx, &path);
    assert_eq!(s.rows_accepted + s.rows_rejected, ROWS);
    assert_one_copy(&ctx, s.rows_accepted);
    // The same file again is a duplicate, found before parsing.
    let again = common::ingest_file(&ctx, &path);
    assert_eq!(
        again.files[0].status,
        sluice_core::jobs::FileStatus::Duplicate
    );
    assert_one_copy(&ctx, s.rows_accepted);
}
