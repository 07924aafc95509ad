//! `sluice`: the server and command-line tool. Each subcommand resolves settings, opens the
//! data directory and calls into the platform or a domain crate.

mod jobs_cmd;
mod outcome;
mod progress;
mod settings;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use sluice_core::{Ctx, Domain, FileIngest, Job};

use settings::{Common, ServeOpts};

#[derive(Parser, Debug)]
#[command(
    name = "sluice",
    version,
    about = "Operational data in (CSV files, live event streams), KPIs and reports out, over HTTP with push-based job status.",
    long_about = "sluice ingests CSV files (dropped in an inbox folder, uploaded, or given on the command line) and live Server-Sent-Events streams into an embedded SQLite database, turns them into KPIs and reports, and serves them over HTTP with live job status (SSE, WebSocket, webhooks).\n\nSettings come from defaults < a TOML file (--config, or ./sluice.toml) < SLUICE_* environment variables < flags.\n\nStart with `sluice demo`."
)]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve the HTTP API and watch the inbox folders.
    Serve(ServeOpts),
    /// Generate realistic data for every domain, ingest it, then serve the API.
    Demo(ServeOpts),
    /// Ingest files or folders (or `-` for standard input) into a domain, with a progress bar.
    /// Works with or without a running server on the same data directory.
    #[command(after_help = outcome::INGEST_EXIT_CODES)]
    Ingest {
        /// The domain: network, trips or uptime.
        domain: String,
        /// Files or folders; `-` reads standard input.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Name recorded for standard input in the ingestion ledger [default:
        /// stdin-<UTC time>]. A later stream under the same name replaces this one; identical
        /// content is always a duplicate, whatever its name.
        #[arg(long)]
        name: Option<String>,
        /// One line per file (status, rows, why a file was rejected), not only the summary.
        #[arg(short, long)]
        verbose: bool,
    },
    /// Write realistic, deterministic sample data.
    #[command(subcommand)]
    Generate(GenerateCmd),
    /// List, show or follow jobs.
    #[command(subcommand)]
    Jobs(jobs_cmd::JobsCmd),
    /// Harvest the three live video-platform event streams until a stop condition (streams).
    Harvest(sluice_streams::cli::HarvestArgs),
    /// Serve simulated video-platform event streams (random or replayed captures).
    Simulate(sluice_streams::cli::SimulateArgs),
    /// Produce a report from the command line, with a progress bar.
    #[command(subcommand)]
    Report(ReportCmd),
    /// Copy the database, live (a server may keep running and ingesting), to a new file: one
    /// consistent snapshot. Restore by stopping the server and putting the copy in place of
    /// `<data-dir>/sluice.db`.
    Backup {
        /// The new file (refused if it exists).
        path: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum ReportCmd {
    /// Store uptime/downtime within business hours over the last hour, day and week (CSV).
    Uptime(sluice_uptime::cli::ReportArgs),
}

#[derive(Subcommand, Debug)]
enum GenerateCmd {
    /// A day of 5-minute flow files.
    Network(sluice_network::generate::GenerateArgs),
    /// Vehicle trips (to stdout, or to --files files in --out).
    Trips(sluice_trips::cli::GenerateArgs),
    /// Store status polls, business hours and time zones (three CSVs).
    Uptime(sluice_uptime::cli::GenerateArgs),
}

/// Every built-in domain.
fn domains() -> Vec<Arc<dyn Domain>> {
    vec![
        Arc::new(sluice_network::NetworkDomain),
        Arc::new(sluice_trips::TripsDomain),
        Arc::new(sluice_streams::StreamsDomain),
        Arc::new(sluice_uptime::UptimeDomain),
    ]
}

fn open(common: &Common, serve: Option<&ServeOpts>) -> anyhow::Result<(Ctx, Vec<Arc<dyn Domain>>)> {
    open_with(common, serve, |_| {})
}

/// [`open`] with the resolved settings adjusted first.
fn open_with(
    common: &Common,
    serve: Option<&ServeOpts>,
    adjust: impl FnOnce(&mut sluice_core::Settings),
) -> anyhow::Result<(Ctx, Vec<Arc<dyn Domain>>)> {
    let mut settings = settings::resolve(common, serve)?;
    adjust(&mut settings);
    let domains = domains();
    sluice_server::check_settings(&settings, &domains).map_err(anyhow::Error::msg)?;
    let ctx = open_ctx(settings)?;
    sluice_server::prepare(&ctx, &domains).context("cannot migrate the database")?;
    Ok((ctx, domains))
}

/// Refuses a command that needs the embedded SQLite database when the settings name
/// PostgreSQL, saying what to do instead.
fn require_sqlite(ctx: &Ctx, what: &str) -> anyhow::Result<()> {
    if ctx.db.backend() == sluice_core::Backend::Postgres {
        anyhow::bail!("{what} works on the embedded SQLite database only; leave --database unset");
    }
    Ok(())
}

/// Opens the data directory's database, saying so plainly when the directory is read-only.
fn open_ctx(settings: sluice_core::Settings) -> anyhow::Result<Ctx> {
    let data_dir = settings.data_dir.clone();
    Ctx::open(settings).map_err(|e| match sluice_core::db::is_read_only(&e) {
        true => anyhow::anyhow!(
            "the data directory {} is read-only ({e}): sluice writes its database, WAL and lock files there; give a writable --data-dir",
            data_dir.display()
        ),
        false => anyhow::Error::new(e).context("cannot open the database"),
    })
}

/// Before anything is created or opened: refuses a listen address the settings forbid, and
/// takes the data directory's serve lock.
fn lock_for_serving(common: &Common, opts: &ServeOpts) -> anyhow::Result<sluice_server::ServeLock> {
    let settings = settings::resolve(common, Some(opts))?;
    sluice_server::check_listen(&settings)?;
    Ok(sluice_server::ServeLock::acquire(&settings.data_dir)?)
}

fn main() -> std::process::ExitCode {
    outcome::exit(run())
}

fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // A server logs one line per job start and end; a command that shows its own progress
    // and outcome does not repeat them.
    let default_log = match cli.command {
        Command::Serve(_) | Command::Demo(_) => "info,refinery_core=warn,tower_http=warn",
        _ => "info,refinery_core=warn,tower_http=warn,sluice::jobs=warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG")
                .unwrap_or_else(|_| default_log.into()),
        )
        .with_writer(std::io::stderr)
        // Colours only on a terminal: not in journald, log files or pipes.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match cli.command {
        Command::Serve(opts) => {
            let _lock = lock_for_serving(&cli.common, &opts)?;
            let (ctx, domains) = open(&cli.common, Some(&opts))?;
            runtime()?.block_on(serve(ctx, domains, Vec::new()))
        }
        Command::Demo(opts) => {
            let _lock = lock_for_serving(&cli.common, &opts)?;
            let rt = runtime()?;
            // Runs as long as the demo serves: a harvest started with no source reads it.
            let sim = rt.block_on(sluice_streams::cli::demo_simulator())?;
            let (ctx, domains) = open_with(&cli.common, Some(&opts), |s| {
                s.domains
                    .entry("streams".into())
                    .or_default()
                    .entry("source")
                    .or_insert_with(|| sim.url().into());
            })?;
            require_sqlite(&ctx, "`sluice demo`")?;
            let tries = rt.block_on(demo(&ctx, &sim))?;
            rt.block_on(serve(ctx, domains, tries))
        }
        Command::Ingest {
            domain,
            paths,
            name,
            verbose,
        } => {
            let (ctx, domains) = open(&cli.common, None)?;
            let name = name.unwrap_or_else(|| {
                format!("stdin-{}", chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ"))
            });
            let job = ingest(&ctx, &domains, &domain, &paths, &name)?;
            outcome::report_ingest(&job, verbose)
        }
        Command::Generate(GenerateCmd::Network(args)) => {
            let files = sluice_network::generate::generate(&args)?;
            eprintln!("wrote {} files to {}", files.len(), args.out.display());
            Ok(())
        }
        Command::Generate(GenerateCmd::Trips(args)) => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
            sluice_trips::cli::generate(&args, &mut out)?;
            std::io::Write::flush(&mut out)?;
            Ok(())
        }
        Command::Generate(GenerateCmd::Uptime(args)) => {
            let files = sluice_uptime::cli::generate(&args)?;
            for f in files {
                eprintln!("wrote {}", f.display());
            }
            Ok(())
        }
        Command::Jobs(cmd) => {
            let settings = settings::resolve(&cli.common, None)?;
            runtime()?.block_on(jobs_cmd::run(settings, cmd))
        }
        Command::Harvest(args) => {
            let (ctx, _) = open(&cli.common, None)?;
            let summary = runtime()?.block_on(sluice_streams::cli::harvest(&ctx, args))?;
            outcome::print(summary)?;
            Ok(())
        }
        Command::Simulate(args) => runtime()?
            .block_on(sluice_streams::cli::simulate(args))
            .map_err(Into::into),
        Command::Backup { path } => {
            let (ctx, _) = open(&cli.common, None)?;
            require_sqlite(
                &ctx,
                "`sluice backup` (on PostgreSQL use pg_dump or pg_basebackup)",
            )?;
            let started = std::time::Instant::now();
            let bytes = ctx
                .sqlite()
                .backup_to(&path)
                .with_context(|| format!("cannot back up to {}", path.display()))?;
            eprintln!(
                "backed up {} to {} ({:.1} MiB in {:.1} s)",
                ctx.sqlite().path().display(),
                path.display(),
                bytes as f64 / f64::from(1 << 20),
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Command::Report(ReportCmd::Uptime(args)) => {
            let (ctx, _) = open(&cli.common, None)?;
            report_uptime(&ctx, &args)
        }
    }
}

/// `sluice report uptime`: the report as a job in this process, with a progress bar.
fn report_uptime(ctx: &Ctx, args: &sluice_uptime::cli::ReportArgs) -> anyhow::Result<()> {
    let job = ctx
        .jobs
        .create(sluice_core::jobs::NewJob::new("uptime", "report", "stores"))?;
    let watcher = follow_in_process(ctx, job.id(), "uptime report");
    let mut path = None;
    let done = job.run(|job| {
        path = Some(sluice_uptime::cli::report(ctx, args, job)?);
        Ok::<_, sluice_uptime::UptimeError>(job.snapshot().summary)
    })?;
    let _ = watcher.join();
    match path {
        Some(path) => {
            outcome::print(path.display())?;
            Ok(())
        }
        None => bail!("{}", done.error.unwrap_or_default()),
    }
}

/// Shows a progress bar for a job of this process until it ends.
fn follow_in_process(
    ctx: &Ctx,
    id: sluice_core::JobId,
    label: &str,
) -> std::thread::JoinHandle<()> {
    let mut rx = ctx.jobs.subscribe();
    let label = label.to_owned();
    std::thread::spawn(move || {
        let mut bar = progress::JobProgress::new(&label);
        while let Ok(ev) = rx.blocking_recv() {
            if ev.job.id != id {
                continue;
            }
            bar.update(&ev.job);
            if ev.job.state.is_terminal() {
                break;
            }
        }
        bar.finish();
    })
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

async fn serve(ctx: Ctx, domains: Vec<Arc<dyn Domain>>, tries: Vec<String>) -> anyhow::Result<()> {
    let stop = stop_signal();
    let listener = sluice_server::bind(&ctx).await?;
    sluice_server::watch_inboxes(&ctx, &domains)?;
    let addr = listener.local_addr()?;
    let base = format!("http://{addr}");
    eprintln!(
        "sluice serving {base} (data in {})",
        ctx.settings.data_dir.display()
    );
    eprintln!("  {base}/api/v1/openapi.json   the API");
    eprintln!("  {base}/api/v1/jobs           jobs; live: curl -N {base}/api/v1/events");
    for t in &tries {
        match t.split_once(' ') {
            Some((method, path)) if path.trim_start().starts_with('/') => {
                eprintln!("  {method} {base}{}", path.trim_start())
            }
            _ => eprintln!("  {t}"),
        }
    }
    for d in &domains {
        if d.file_ingest().is_some() {
            eprintln!(
                "  inbox of {}: {}",
                d.name(),
                ctx.settings.inbox_dir(d.name()).display()
            );
        }
    }
    // After the banner: its first line is the address, which scripts (and tests) read first.
    prune_jobs_hourly(&ctx);
    let limits = sluice_server::ConnLimits::from_settings(&ctx.settings);
    let app = sluice_server::app(ctx, &domains);
    sluice_server::serve(listener, app, limits, async {
        stop.await;
        eprintln!("stopping");
    })
    .await;
    Ok(())
}

/// Deletes finished jobs older than `job_retention_days`, now and every hour after.
fn prune_jobs_hourly(ctx: &Ctx) {
    let days = ctx.settings.job_retention_days;
    if days == 0 {
        return;
    }
    let jobs = ctx.jobs.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
        loop {
            tick.tick().await;
            let cutoff = chrono::Utc::now() - chrono::Duration::days(days as i64);
            let j = jobs.clone();
            match tokio::task::spawn_blocking(move || j.prune_finished(cutoff)).await {
                Ok(Ok(0)) => {}
                Ok(Ok(n)) => tracing::info!(jobs = n, days, "pruned finished jobs"),
                Ok(Err(e)) => tracing::warn!(error = %e, "cannot prune old jobs"),
                Err(e) => tracing::warn!(error = %e, "cannot prune old jobs"),
            }
        }
    });
}

/// Ctrl-C, or SIGTERM (what systemd and container runtimes send to stop a service). The
/// handlers are installed when this is called, so a signal that comes before the future is
/// polled still stops the server cleanly.
fn stop_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let ctrl_c = tokio::signal::ctrl_c();
    async move {
        #[cfg(unix)]
        if let Some(mut term) = term {
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
            return;
        }
        let _ = ctrl_c.await;
    }
}

/// Loads every domain's demo data; returns the "try this" lines.
async fn demo(ctx: &Ctx, sim: &sluice_streams::simulate::Simulator) -> anyhow::Result<Vec<String>> {
    let mut tries = Vec::new();
    let c = ctx.clone();
    eprintln!("demo: network — generating and ingesting three hours of flow files…");
    tries.extend(tokio::task::spawn_blocking(move || sluice_network::cli::demo(&c)).await??);
    let c = ctx.clone();
    eprintln!("demo: trips — generating and ingesting trips…");
    tries.extend(tokio::task::spawn_blocking(move || sluice_trips::cli::demo(&c)).await??);
    let c = ctx.clone();
    eprintln!("demo: uptime — generating polls, ingesting, producing a report…");
    tries.extend(tokio::task::spawn_blocking(move || sluice_uptime::cli::demo(&c)).await??);
    eprintln!("demo: streams — harvesting the built-in simulator…");
    tries.extend(sluice_streams::cli::demo(ctx, sim).await?);
    Ok(tries)
}

/// Expands folders into their files (sorted), keeping explicit files as given.
fn expand(paths: &[PathBuf], ingest: &dyn FileIngest) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).with_context(|| format!("cannot read {}", p.display()))?;
        if meta.is_dir() {
            let mut inside: Vec<PathBuf> = std::fs::read_dir(p)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| {
                    f.is_file() && !sluice_core::inbox::is_temporary(f) && ingest.accepts(f)
                })
                .collect();
            inside.sort();
            if inside.is_empty() {
                eprintln!("note: no {} files in {}", ingest.domain(), p.display());
            }
            files.extend(inside);
        } else {
            files.push(p.clone());
        }
    }
    Ok(files)
}

fn ingest(
    ctx: &Ctx,
    domains: &[Arc<dyn Domain>],
    domain: &str,
    paths: &[PathBuf],
    name: &str,
) -> anyhow::Result<Job> {
    let Some(d) = domains.iter().find(|d| d.name() == domain) else {
        bail!(
            "unknown domain `{domain}`; domains: {}",
            domains
                .iter()
                .map(|d| d.name())
                .collect::<Vec<_>>()
                .join(", ")
        );
    };
    let Some(ingest) = d.file_ingest() else {
        bail!("the {domain} domain is not fed by files");
    };
    let stdin = paths.iter().any(|p| p.as_os_str() == "-");
    if stdin && paths.len() > 1 {
        bail!("`-` (standard input) cannot be combined with other paths");
    }
    let files = if stdin {
        Vec::new()
    } else {
        expand(paths, ingest.as_ref())?
    };
    let job = if stdin {
        ctx.jobs
            .create(sluice_core::jobs::NewJob::new(domain, "ingest", "bytes"))?
    } else {
        sluice_core::ingest::new_job(ctx, ingest.as_ref(), &files, None)?
    };
    let watcher = follow_in_process(ctx, job.id(), &format!("{domain} ingest"));
    let done = if stdin {
        job.run(|job| {
            // Not locked: a domain may read it on a thread of its own.
            let mut reader = std::io::BufReader::with_capacity(1 << 20, std::io::stdin());
            ingest.ingest_reader(ctx, name, &mut reader, job)
        })
    } else {
        sluice_core::ingest::run(ctx, ingest.as_ref(), &files, job)
    };
    let _ = watcher.join();
    Ok(done?)
}
