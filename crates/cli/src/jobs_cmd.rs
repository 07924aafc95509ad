//! `sluice jobs`: list and show jobs from the database, follow one on a running server over
//! SSE with a progress bar.

use anyhow::{bail, Context};
use clap::Subcommand;
use futures::StreamExt;
use sluice_core::jobs::{JobEvent, JobFilter};
use sluice_core::{Ctx, JobState, Settings};

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
    Show { id: String },
    /// Follow a job on a running server until it ends (SSE, no polling).
    Follow {
        id: String,
        /// The server [default: http://<addr of the settings>].
        #[arg(long)]
        server: Option<String>,
    },
}

pub async fn run(settings: Settings, cmd: JobsCmd) -> anyhow::Result<()> {
    match cmd {
        JobsCmd::List {
            domain,
            state,
            limit,
        } => {
            let ctx = Ctx::open(settings)?;
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
                println!(
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
                );
            }
            Ok(())
        }
        JobsCmd::Show { id } => {
            let ctx = Ctx::open(settings)?;
            let id = id
                .parse()
                .with_context(|| format!("`{id}` is not a job id"))?;
            match ctx.jobs.get(id)? {
                Some(j) => {
                    println!("{}", serde_json::to_string_pretty(&j)?);
                    Ok(())
                }
                None => bail!("no job {id}"),
            }
        }
        JobsCmd::Follow { id, server } => {
            let base = server.unwrap_or_else(|| format!("http://{}", settings.addr));
            follow(&base, &id).await
        }
    }
}

async fn follow(base: &str, id: &str) -> anyhow::Result<()> {
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
            println!("{}", serde_json::to_string_pretty(&job)?);
            if job.state == JobState::Succeeded {
                Ok(())
            } else {
                bail!("job {} ended {}", job.id, job.state.as_str())
            }
        }
        None => bail!("the server sent no event"),
    }
}
