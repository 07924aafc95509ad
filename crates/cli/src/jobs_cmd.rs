//! `sluice jobs`: list and show jobs from the database, follow one on a running server over
//! SSE with a progress bar.

use anyhow::{bail, Context};
use clap::Subcommand;
use futures::StreamExt;
use sluice_core::jobs::{JobEvent, JobFilter};
use sluice_core::{Ctx, Job, JobId, JobState, Settings};

#[derive(Subcommand, Debug)]
pub enum JobsCmd {
    /// Jobs in the data directory, newest first.
    List {
        #[arg(long)]
        domain: Option<String>,
        /// queued, running, succeeded, failed or cancelled.
        #[arg(long)]
        state: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
    /// One job as JSON (summary and rejections included).
    Show {
        /// A job id, or a unique prefix of one (as `git` takes commits).
        id: String,
    },
    /// Follow a job on a running server until it ends (SSE, no polling); ends with a
    /// one-line summary.
    Follow {
        /// A job id, or a unique prefix of one in this data directory.
        id: String,
        /// The server [default: http://<addr of the settings>].
        #[arg(long)]
        server: Option<String>,
        /// Print the final job as JSON (for scripts) instead of the one-line summary.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(settings: Settings, cmd: JobsCmd) -> anyhow::Result<()> {
    match cmd {
        JobsCmd::List {
            domain,
            state,
            limit,
        } => {
            let ctx = crate::open_ctx(settings)?;
            let state = state
                .map(|s| s.parse::<JobState>().map_err(anyhow::Error::msg))
                .transpose()?;
            let jobs = ctx.jobs.list(&JobFilter {
                domain,
                state,
                limit,
                ..Default::default()
            })?;
            for j in jobs {
                crate::outcome::print(format_args!(
                    "{}  {:<8} {:<8} {:<9} {:>12}/{:<12} {:<6} {}",
                    j.id,
                    j.domain,
                    j.kind,
                    j.state.as_str(),
                    j.progress.done,
                    j.progress
                        .total
                        .map(|t| t.to_string())
                        .unwrap_or_else(|| "?".into()),
                    j.progress.unit,
                    j.created_at.format("%Y-%m-%d %H:%M:%S")
                ))?;
            }
            Ok(())
        }
        JobsCmd::Show { id } => {
            let ctx = crate::open_ctx(settings)?;
            let id = resolve(&ctx, &id)?;
            match ctx.jobs.get(id)? {
                Some(j) => {
                    crate::outcome::print(serde_json::to_string_pretty(&j)?)?;
                    Ok(())
                }
                None => bail!("no job {id}"),
            }
        }
        JobsCmd::Follow { id, server, json } => {
            let base = server.unwrap_or_else(|| format!("http://{}", settings.addr));
            let id = match id.parse::<JobId>() {
                Ok(id) => id,
                Err(_) => resolve(&crate::open_ctx(settings)?, &id)?,
            };
            follow(&base, &id.to_string(), json).await
        }
    }
}

/// A full job id, or the one job whose id starts with `given`.
fn resolve(ctx: &Ctx, given: &str) -> anyhow::Result<JobId> {
    if let Ok(id) = given.parse() {
        return Ok(id);
    }
    let found = ctx.jobs.with_prefix(given, 6)?;
    match &found[..] {
        [one] => Ok(*one),
        [] => bail!("no job id starts with `{given}` (see `sluice jobs list`)"),
        many => bail!(
            "`{given}` is ambiguous: it starts {}{}",
            many.iter()
                .take(5)
                .map(JobId::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            if many.len() > 5 { ", …" } else { "" }
        ),
    }
}

/// "job 1c2d… network ingest succeeded in 1.20 s: 3 files, 150000 rows accepted, 2 rejected".
fn one_line(job: &Job) -> String {
    let s = &job.summary;
    let elapsed = job
        .elapsed_secs()
        .map(|s| format!(" in {s:.2} s"))
        .unwrap_or_default();
    let mut parts = Vec::new();
    if !s.files.is_empty() {
        parts.push(format!("{} files", s.files.len()));
    }
    if s.rows_accepted + s.rows_rejected > 0 {
        parts.push(format!(
            "{} rows accepted, {} rejected",
            s.rows_accepted, s.rows_rejected
        ));
    }
    if let Some(e) = &job.error {
        parts.push(e.clone());
    }
    let tail = if parts.is_empty() {
        String::new()
    } else {
        format!(": {}", parts.join(", "))
    };
    format!(
        "job {} {} {} {}{elapsed}{tail}",
        job.id,
        job.domain,
        job.kind,
        job.state.as_str()
    )
}

async fn follow(base: &str, id: &str, json: bool) -> anyhow::Result<()> {
    let url = format!("{}/api/v1/jobs/{id}/events", base.trim_end_matches('/'));
    let resp = reqwest::get(&url)
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    if !resp.status().is_success() {
        bail!(
            "{url}: {} {}",
            resp.status(),
            resp.text().await.unwrap_or_default()
        );
    }
    let mut bar = crate::progress::JobProgress::new("job");
    let mut stream = resp.bytes_stream();
    let mut buf = Vec::new();
    let mut last = None;
    while let Some(chunk) = stream.next().await {
        buf.extend_from_slice(&chunk?);
        while let Some(i) = buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = buf.drain(..=i).collect();
            let line = String::from_utf8_lossy(&line);
            if let Some(data) = line.trim_end().strip_prefix("data:") {
                let ev: JobEvent = serde_json::from_str(data.trim())?;
                bar.update(&ev.job);
                last = Some(ev.job);
            }
        }
    }
    bar.finish();
    match last {
        Some(job) => {
            if json {
                crate::outcome::print(serde_json::to_string_pretty(&job)?)?;
            } else {
                crate::outcome::print(one_line(&job))?;
            }
            if job.state == JobState::Succeeded {
                Ok(())
            } else {
                bail!("job {} ended {}", job.id, job.state.as_str())
            }
        }
        None => bail!("the server sent no event"),
    }
}
