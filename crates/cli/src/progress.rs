//! Progress display for jobs: an indicatif bar on a terminal, plain lines otherwise (logs,
//! pipes, tests), both fed by job events.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use sluice_core::Job;

pub struct JobProgress {
    bar: Option<ProgressBar>,
    label: String,
    last_line: Option<Instant>,
}

/// Rows so far and the domain's rows/s, when the job's live summary has them.
fn rows_note(job: &Job) -> String {
    let s = &job.summary;
    if s.rows_accepted + s.rows_rejected == 0 {
        return String::new();
    }
    let mut note = format!(", {} rows", s.rows_accepted);
    if s.rows_rejected > 0 {
        note += &format!(" (+{} rejected)", s.rows_rejected);
    }
    if let Some(rate) = s.extra.get("rows_per_s").and_then(|v| v.as_f64()) {
        note += &format!(", {rate:.0} rows/s");
    }
    note
}

impl JobProgress {
    pub fn new(label: &str) -> JobProgress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template(
                    "{msg} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta})",
                )
                .expect("valid template"),
            );
            bar.set_message(label.to_owned());
            bar
        });
        JobProgress {
            bar,
            label: label.to_owned(),
            last_line: None,
        }
    }

    pub fn update(&mut self, job: &Job) {
        let p = &job.progress;
        match &self.bar {
            Some(bar) => {
                if p.unit != "bytes" {
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{msg} [{elapsed_precise}] {wide_bar} {pos}/{len} ({per_sec}, eta {eta})",
                        )
                        .expect("valid template"),
                    );
                }
                bar.set_length(p.total.unwrap_or(p.done));
                bar.set_position(p.done);
                bar.set_message(format!("{}{}", self.label, rows_note(job)));
            }
            None => {
                // Plain lines at most twice a second. The end is the caller's to tell: a
                // job that succeeded may still have landed nothing.
                let due = self
                    .last_line
                    .is_none_or(|t| t.elapsed() >= Duration::from_millis(500));
                if due && !job.state.is_terminal() {
                    self.last_line = Some(Instant::now());
                    let total = p.total.map(|t| t.to_string()).unwrap_or_else(|| "?".into());
                    eprintln!(
                        "job {} {}: {}/{} {}{}",
                        job.id,
                        job.state.as_str(),
                        p.done,
                        total,
                        p.unit,
                        rows_note(job)
                    );
                }
            }
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
