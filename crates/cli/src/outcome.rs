//! How a command ends: what it prints as its result and its exit status. Errors print their
//! cause chain on one line, never a backtrace (`RUST_BACKTRACE` is for panics); a closed
//! stdout (`sluice … | head`) ends the command quietly.

use std::fmt::Display;
use std::io::Write;
use std::process::ExitCode;

use sluice_core::jobs::FileStatus;
use sluice_core::{Job, JobState};

/// `sluice ingest --help`, and the README, name these codes.
pub const INGEST_EXIT_CODES: &str = "\
Exit status:
  0  every input landed: ingested, replaced, or a duplicate of what is stored; no row rejected
  1  error: the job failed (nothing of the input it failed in is kept), or a path is unreadable
  2  usage error (unknown option, missing argument)
  3  partly landed: some rows, or whole files, were rejected (the first rejections are printed)
  4  nothing landed: no input file, every file rejected, or every row rejected";

const PARTLY: u8 = 3;
const NOTHING: u8 = 4;

/// An ending with its own exit status; its message is printed as is.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Exit {
    code: u8,
    message: String,
}

/// The process's exit status for a command's result.
pub fn exit(result: anyhow::Result<()>) -> ExitCode {
    let Err(e) = result else {
        return ExitCode::SUCCESS;
    };
    if is_broken_pipe(&e) {
        return ExitCode::SUCCESS; // the reader had what it wanted
    }
    if let Some(exit) = e.downcast_ref::<Exit>() {
        eprintln!("{}", exit.message);
        return ExitCode::from(exit.code);
    }
    eprintln!("error: {}", chain(&e));
    ExitCode::FAILURE
}

/// The causes on one line, each once: an error whose message already quotes its source
/// (`io error: No space left…` over `No space left…`) is not followed by it again.
fn chain(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// One line of a command's result on stdout; a closed stdout is an error (see [`exit`]),
/// not a panic as with `println!`.
pub fn print(line: impl Display) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()
}

/// What an ingest job's summary says about what landed.
#[derive(Debug, PartialEq, Eq)]
enum Landed {
    All,
    Partly,
    Nothing,
}

fn landed(job: &Job) -> Landed {
    let s = &job.summary;
    let kept = s
        .files
        .iter()
        .filter(|f| f.status != FileStatus::Rejected)
        .count();
    let rejected_files = s.files.len() - kept;
    if kept == 0 || (s.rows_accepted == 0 && s.rows_rejected > 0) {
        Landed::Nothing
    } else if rejected_files > 0 || s.rows_rejected > 0 {
        Landed::Partly
    } else {
        Landed::All
    }
}

/// "3 files: 2 ingested, 1 duplicate" (statuses in a fixed order, only those present).
fn count_by_status(job: &Job) -> String {
    let files = &job.summary.files;
    let counts: Vec<String> = [
        FileStatus::Ingested,
        FileStatus::Replaced,
        FileStatus::Duplicate,
        FileStatus::Rejected,
    ]
    .iter()
    .filter_map(|st| {
        let n = files.iter().filter(|f| f.status == *st).count();
        (n > 0).then(|| format!("{n} {}", status_word(st)))
    })
    .collect();
    let noun = if files.len() == 1 { "file" } else { "files" };
    match counts.is_empty() {
        true => format!("{} {noun}", files.len()),
        false => format!("{} {noun}: {}", files.len(), counts.join(", ")),
    }
}

fn status_word(st: &FileStatus) -> &'static str {
    match st {
        FileStatus::Ingested => "ingested",
        FileStatus::Replaced => "replaced",
        FileStatus::Duplicate => "duplicate",
        FileStatus::Rejected => "rejected",
    }
}

/// How many rejections the default summary shows; `sluice jobs show` has them all.
const SHOWN_REJECTIONS: usize = 5;

/// Prints an ingest job's outcome (per file with `verbose`) and ends with its exit status.
pub fn report_ingest(job: &Job, verbose: bool) -> anyhow::Result<()> {
    let s = &job.summary;
    for f in &s.files {
        let why = f.detail.as_deref().map(|d| format!(" — {d}"));
        if verbose || (f.status == FileStatus::Rejected) {
            eprintln!(
                "  {:<44} {:<9} {} rows, {} rejected{}",
                f.name,
                status_word(&f.status),
                f.rows_accepted,
                f.rows_rejected,
                why.unwrap_or_default()
            );
        }
    }
    let shown = if verbose {
        s.rejections.len()
    } else {
        SHOWN_REJECTIONS
    };
    for r in s.rejections.iter().take(shown) {
        eprintln!("  rejected {}:{}: {}", r.file, r.line, r.reason);
    }
    if s.rows_rejected as usize > shown.min(s.rejections.len()) {
        eprintln!(
            "  … `sluice jobs show {}` lists the first {} rejections",
            job.id,
            s.rejections.len()
        );
    }
    let elapsed = job.elapsed_secs().unwrap_or_default();
    let line = format!(
        "{}; {} rows accepted, {} rejected; job {} in {elapsed:.2} s",
        count_by_status(job),
        s.rows_accepted,
        s.rows_rejected,
        job.id,
    );
    if job.state != JobState::Succeeded {
        anyhow::bail!(
            "failed: {}; {line}",
            job.error.as_deref().unwrap_or("the job did not succeed")
        );
    }
    match landed(job) {
        Landed::All => {
            eprintln!("succeeded: {line}");
            Ok(())
        }
        Landed::Partly => Err(Exit {
            code: PARTLY,
            message: format!("partly landed: {line}"),
        }
        .into()),
        Landed::Nothing => Err(Exit {
            code: NOTHING,
            message: format!("nothing landed: {line}"),
        }
        .into()),
    }
}
