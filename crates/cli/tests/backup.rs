//! `sluice backup PATH`: a consistent copy of the live database, taken beside a running
//! server, that opens on its own and holds what the source holds; an existing file is
//! never overwritten.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::{sluice, Killed, BIN};

fn counts(db: &Path) -> (i64, i64, String) {
    let c = rusqlite::Connection::open(db).unwrap();
    let q = |sql: &str| c.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
    let integrity: String = c
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    (
        q("SELECT count(*) FROM network_kpi"),
        q("SELECT count(*) FROM core_ledger"),
        integrity,
    )
}

#[test]
fn a_backup_beside_a_running_server_is_a_whole_database() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let flows = tmp.path().join("flows");
    let o = sluice(
        tmp.path(),
        &[
            "generate",
            "network",
            "--periods",
            "3",
            "--parts",
            "1",
            "--rows-per-file",
            "500",
            "--out",
            flows.to_str().unwrap(),
        ],
    );
    assert!(o.status.success());
    assert!(
        sluice(&data, &["ingest", "network", flows.to_str().unwrap()])
            .status
            .success()
    );
    let _server = Killed(
        Command::new(BIN)
            .arg("--data-dir")
            .arg(&data)
            .args(["serve", "--addr", "127.0.0.1:0"])
            .env("SLUICE_LOG", "warn")
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    let copy = tmp.path().join("backup.db");
    let o = sluice(&data, &["backup", copy.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("backed up"), "{err}");
    let source = counts(&data.join("sluice.db"));
    assert!(source.0 > 0 && source.1 == 3, "{source:?}");
    assert_eq!(counts(&copy), source);
    // The copy stands alone: no WAL beside it.
    assert!(!tmp.path().join("backup.db-wal").exists());

    let again = sluice(&data, &["backup", copy.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&again.stderr);
    assert_eq!(again.status.code(), Some(1), "{err}");
    assert!(err.contains("exists"), "{err}");
}
