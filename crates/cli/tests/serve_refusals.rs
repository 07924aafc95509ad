//! `serve` refuses what it must before it touches the disk: an address beyond loopback
//! without a token leaves no data directory behind, and a second server on a data directory
//! that one is already serving stops with a message that says so.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_sluice");

#[test]
fn a_refused_address_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = Command::new(BIN)
        .args(["serve", "--addr", "0.0.0.0:0", "--data-dir"])
        .arg(&data)
        .env_remove("SLUICE_TOKEN")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("without a token"), "{err}");
    assert!(
        !data.exists(),
        "the refused server created {}",
        data.display()
    );
}

#[test]
fn a_second_server_on_the_same_data_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut first = Command::new(BIN)
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env("SLUICE_LOG", "warn")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The first server is up once it has printed its address.
    let mut lines = BufReader::new(first.stderr.take().unwrap()).lines();
    let up = lines
        .by_ref()
        .map_while(Result::ok)
        .any(|l| l.starts_with("sluice serving"));
    assert!(up, "the first server did not start");

    let second = Command::new(BIN)
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("another sluice server"), "{err}");

    // Once the first is gone (killed, not stopped cleanly), the directory can be served again.
    let mut third = Command::new(BIN)
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env("SLUICE_LOG", "warn")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let up = BufReader::new(third.stderr.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .any(|l| l.starts_with("sluice serving"));
    third.kill().unwrap();
    third.wait().unwrap();
    assert!(up, "the directory stayed locked after its server died");
}

#[cfg(unix)]
#[test]
fn sigterm_stops_the_server_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Command::new(BIN)
        .args(["serve", "--addr", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .env("SLUICE_LOG", "warn")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stderr.take().unwrap()).lines();
    assert!(lines
        .by_ref()
        .map_while(Result::ok)
        .any(|l| l.starts_with("sluice serving")));
    let ok = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    // A clean stop says so and exits 0 (killed by the signal, it would have no exit code).
    let said_stopping = lines.map_while(Result::ok).any(|l| l == "stopping");
    let status = server.wait().unwrap();
    assert!(said_stopping);
    assert_eq!(status.code(), Some(0));
}

#[test]
fn a_database_that_cannot_be_reached_or_read_is_named_at_once() {
    let dir = tempfile::tempdir().unwrap();
    for (url, says) in [
        // Port 1 on loopback: nothing listens there.
        (
            "postgres://sluice:secret@127.0.0.1:1/sluice",
            "cannot connect",
        ),
        ("mysql://sluice:secret@db/sluice", "neither postgres://"),
    ] {
        let out = Command::new(BIN)
            .args(["jobs", "list", "--database", url, "--data-dir"])
            .arg(dir.path().join("data"))
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{url}: {err}");
        assert!(!err.contains("secret"), "the password was printed: {err}");
    }
}
