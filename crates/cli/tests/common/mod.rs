//! What the tests of the real binary share: running a command, and a serving command
//! (`serve`, `demo`) on a free port, killed when the test ends however it ends.

#![allow(dead_code)] // each test file uses its own part

use std::io::{BufRead, BufReader, Lines};
use std::path::Path;
use std::process::{Child, ChildStderr, Command, Output, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_sluice");

/// Runs `sluice --data-dir DATA ARGS…` to its end. `RUST_BACKTRACE` is set, as a user's
/// shell may have it, so that no output depends on its absence.
pub fn sluice(data: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env("SLUICE_LOG", "warn")
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A child process killed when dropped.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A serving command and its base URL, with the log lines it writes after its address.
pub struct Serving {
    pub base: String,
    pub log: Lines<BufReader<ChildStderr>>,
    _child: Killed,
}

impl Serving {
    /// `sluice --data-dir DATA ARGS… --addr 127.0.0.1:0` once it serves. `log` is the
    /// `SLUICE_LOG` filter; `None` keeps the binary's default.
    pub fn start(data: &Path, args: &[&str], log: Option<&str>) -> Serving {
        let mut cmd = Command::new(BIN);
        cmd.arg("--data-dir")
            .arg(data)
            .args(args)
            .args(["--addr", "127.0.0.1:0"])
            .env_remove("SLUICE_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if let Some(filter) = log {
            cmd.env("SLUICE_LOG", filter);
        }
        let mut child = cmd.spawn().unwrap();
        let mut log = BufReader::new(child.stderr.take().unwrap()).lines();
        let child = Killed(child);
        let mut seen = String::new();
        let base = loop {
            let line = log
                .next()
                .unwrap_or_else(|| panic!("{args:?} ended before serving:\n{seen}"))
                .unwrap();
            seen.push_str(&line);
            seen.push('\n');
            if let Some(rest) = line.strip_prefix("sluice serving ") {
                break rest.split_whitespace().next().unwrap().to_owned();
            }
        };
        Serving {
            base,
            log,
            _child: child,
        }
    }

    /// Keeps reading the log on a thread of its own, or a full pipe would block the server's
    /// next line. Returns the base URL and the guard that kills the server.
    pub fn drain(self) -> (String, Killed) {
        let Serving { base, log, _child } = self;
        std::thread::spawn(move || log.for_each(drop));
        (base, _child)
    }
}
