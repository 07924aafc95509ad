//! Progress display for jobs: an indicatif bar on a terminal, plain lines otherwise (logs,
//! pipes, tests), both fed by job events.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use sluice_core::Job;

pub struct JobProgress {
    bar: Option<ProgressBar>,
    last_line: Option<Instant>,
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
            }
            None => {
                // Plain lines at most twice a second, plus every state change.
                let due = self
                    .last_line
                    .is_none_or(|t| t.elapsed() >= Duration::from_millis(500));
                if due || job.state.is_terminal() {
                    self.last_line = Some(Instant::now());
                    let total = p.total.map(|t| t.to_string()).unwrap_or_else(|| "?".into());
                    eprintln!(
                        "job {} {}: {}/{} {}",
                        job.id,
                        job.state.as_str(),
                        p.done,
                        total,
                        p.unit
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
