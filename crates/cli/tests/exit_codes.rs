//! What the real binary says and returns when things do not (all) land, and how it ends on a
//! closed stdout or a user error: the exit statuses `sluice ingest --help` documents.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::{sluice, stderr, BIN};

/// A generated network file (valid name and rows) in `dir`.
fn network_file(dir: &Path) -> std::path::PathBuf {
    let out = dir.join("net");
    let o = sluice(
        dir,
        &[
            "generate",
            "network",
            "--periods",
            "1",
            "--parts",
            "1",
            "--rows-per-file",
            "300",
            "--seed",
            "1",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let file = std::fs::read_dir(&out).unwrap().next().unwrap().unwrap();
    file.path()
}

#[test]
fn everything_landed_is_0_with_a_summary_and_per_file_lines_only_when_verbose() {
    let tmp = tempfile::tempdir().unwrap();
    let file = network_file(tmp.path());
    let data = tmp.path().join("data");
    let o = sluice(&data, &["ingest", "network", file.to_str().unwrap()]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("succeeded: 1 file: 1 ingested; 300 rows accepted, 0 rejected"),
        "{err}"
    );
    let name = file.file_name().unwrap().to_str().unwrap();
    assert!(!err.contains(&format!("  {name}")), "{err}");
    // Again, verbose: a duplicate of what is stored has landed.
    let o = sluice(
        &data,
        &["ingest", "network", "--verbose", file.to_str().unwrap()],
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains(&format!("  {name}")), "{err}");
    assert!(err.contains("duplicate"), "{err}");
}

#[test]
fn nothing_landed_is_4_and_says_why() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    // A trips CSV under a network file name: the header is another domain's.
    let other = tmp.path().join("ipflow_data.ts-1488355500000.1.csv");
    std::fs::write(
        &other,
        "region,origin_coord,destination_coord,datetime,datasource\n",
    )
    .unwrap();
    let badly_named = tmp.path().join("flows.csv");
    std::fs::write(&badly_named, "x\n").unwrap();
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    for (input, why) in [
        (&other, "header"),
        (&badly_named, "file name must be"),
        (&empty, "no network files"),
    ] {
        let o = sluice(&data, &["ingest", "network", input.to_str().unwrap()]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(4), "{input:?}: {err}");
        assert!(err.contains("nothing landed"), "{input:?}: {err}");
        assert!(err.contains(why), "{input:?}: {err}");
        assert!(!err.contains("succeeded"), "{input:?}: {err}");
    }
}

#[test]
fn some_rows_rejected_is_3_with_the_first_rejections() {
    let tmp = tempfile::tempdir().unwrap();
    let file = network_file(tmp.path());
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.push_str("not,a,valid,row\n");
    std::fs::write(&file, text).unwrap();
    let o = sluice(
        &tmp.path().join("data"),
        &["ingest", "network", file.to_str().unwrap()],
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(err.contains("partly landed"), "{err}");
    assert!(err.contains(":302:"), "the rejected line is named: {err}");
}

#[test]
fn user_errors_print_one_cause_without_a_backtrace() {
    let tmp = tempfile::tempdir().unwrap();
    let o = sluice(tmp.path(), &["jobs", "show", "feedbeef"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.starts_with("error: no job id starts with `feedbeef`"),
        "{err}"
    );
    assert!(!err.contains("backtrace"), "{err}");
    // An unreachable harvest source fails the command.
    let o = sluice(
        tmp.path(),
        &[
            "harvest",
            "--source",
            "http://127.0.0.1:9",
            "--max-duration",
            "5",
        ],
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("cannot reach the source"), "{err}");
    assert!(!err.contains("backtrace"), "{err}");
}

#[test]
fn a_job_is_found_by_a_unique_prefix_of_its_id() {
    let tmp = tempfile::tempdir().unwrap();
    let file = network_file(tmp.path());
    let data = tmp.path().join("data");
    assert!(
        sluice(&data, &["ingest", "network", file.to_str().unwrap()])
            .status
            .success()
    );
    let list = sluice(&data, &["jobs", "list"]);
    let id = String::from_utf8(list.stdout).unwrap()[..36].to_owned();
    let o = sluice(&data, &["jobs", "show", &id[..7]]);
    assert!(o.status.success(), "{}", stderr(&o));
    let job: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(job["id"], id.as_str());
}

#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    let file = network_file(tmp.path());
    // So that `jobs list` has a line to write.
    assert!(
        sluice(tmp.path(), &["ingest", "network", file.to_str().unwrap()])
            .status
            .success()
    );
    for args in [
        &["generate", "trips", "--rows", "100000"][..],
        &["jobs", "list"][..],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let o = Command::new(BIN)
            .arg("--data-dir")
            .arg(tmp.path())
            .args(args)
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[tokio::test]
async fn jobs_follow_ends_with_one_line_or_the_job_as_json() {
    let server = sluice_server::testing::TestServer::start(Vec::new()).await;
    let job = server
        .ctx
        .jobs
        .create(sluice_core::jobs::NewJob::new("network", "ingest", "files"))
        .unwrap();
    let id = job.id().to_string();
    job.start().unwrap();
    job.succeed(sluice_core::Summary {
        rows_accepted: 7,
        ..Default::default()
    })
    .unwrap();
    let data = server.data_dir().to_owned();
    let base = server.base.clone();
    let follow = move |extra: &'static [&'static str]| {
        let mut args = vec!["jobs", "follow", &id[..8], "--server", &base];
        args.extend(extra);
        sluice(&data, &args)
    };
    let (line, json) = tokio::task::spawn_blocking(move || (follow(&[]), follow(&["--json"])))
        .await
        .unwrap();
    assert!(line.status.success(), "{}", stderr(&line));
    let out = String::from_utf8(line.stdout).unwrap();
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains("network ingest succeeded"), "{out}");
    assert!(out.contains("7 rows accepted, 0 rejected"), "{out}");
    let job: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(job["state"], "succeeded");
}

#[test]
fn a_taken_port_is_named_with_a_hint_and_localhost_is_an_address() {
    let tmp = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let o = sluice(&tmp.path().join("a"), &["serve", "--addr", &addr]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains(&format!("cannot listen on {addr}")), "{err}");
    assert!(err.contains("is another sluice"), "{err}");
    assert_eq!(err.lines().count(), 1, "one cause, once: {err}");

    let mut child = Command::new(BIN)
        .arg("--data-dir")
        .arg(tmp.path().join("b"))
        .args(["serve", "--addr", "localhost:0"])
        .env("SLUICE_LOG", "warn")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stderr.take().unwrap()),
        &mut line,
    )
    .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        line.starts_with("sluice serving http://127.0.0.1:"),
        "{line}"
    );
}

#[test]
fn a_read_only_data_directory_is_named_as_such() {
    // A read-only bind mount in a private mount namespace needs root; the CI runs as root.
    let uid = Command::new("id").arg("-u").output().unwrap();
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        eprintln!("skipped: a read-only mount needs root");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    assert!(sluice(&data, &["jobs", "list"]).status.success());
    let d = data.to_str().unwrap();
    let script = format!(
        "mount --bind {d} {d} && mount -o remount,ro,bind {d} && {BIN} --data-dir {d} jobs list"
    );
    let o = Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .env("SLUICE_LOG", "warn")
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.starts_with(&format!("error: the data directory {d} is read-only")),
        "{err}"
    );
    assert_eq!(err.matches("Read-only file system").count(), 1, "{err}");
}
