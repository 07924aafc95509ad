//! What the `sluice` binary calls: `sluice simulate`, `sluice harvest` and the streams part
//! of `sluice demo`. Argument structs are clap-derived so the binary flattens them.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use sluice_core::Ctx;

use crate::api::{load_report, RunRef};
use crate::error::StreamsError;
use crate::harvest::{
    self, human_ms, parse_duration, HarvestOutcome, HarvestOverrides, HarvestParams,
    DEFAULT_PASSWORD, DEFAULT_USER,
};
use crate::parse::Stream;
use crate::simulate::{RandomConfig, ReplayTiming, SimConfig, SimMode, Simulator};
use crate::store;

/// `sluice simulate`: serve the three streams like the real events server.
#[derive(clap::Args, Debug, Clone)]
pub struct SimulateArgs {
    /// Address to listen on (port 0 picks a free one); the default is where `sluice harvest`
    /// looks when given no source.
    #[arg(long, default_value = harvest::DEFAULT_SIM_ADDR,
        value_parser = sluice_core::config::parse_listen_addr)]
    pub addr: SocketAddr,
    /// Basic auth user the simulator accepts.
    #[arg(long, default_value = DEFAULT_USER)]
    pub user: String,
    /// Basic auth password the simulator accepts.
    #[arg(long, default_value = DEFAULT_PASSWORD)]
    pub password: String,
    /// Seed of the random events (same seed, same events).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Events per second per stream; 0 sends as fast as possible.
    #[arg(long, default_value_t = 20.0)]
    pub rate: f64,
    /// Share of malformed messages, from 0 to 1.
    #[arg(long, default_value_t = 0.02)]
    pub malformed: f64,
    /// Replay the capture files of DIR (files named sytflix…, sytazon…, sysney…) instead of
    /// random events, with their original timing.
    #[arg(long, value_name = "DIR")]
    pub replay: Option<PathBuf>,
    /// With --replay: send as fast as possible.
    #[arg(long, requires = "replay")]
    pub fast: bool,
    /// With --replay: speed-up factor of the original timing.
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
}

impl SimulateArgs {
    pub fn config(&self) -> SimConfig {
        let mode = match &self.replay {
            Some(dir) => SimMode::Replay {
                dir: dir.clone(),
                timing: if self.fast {
                    ReplayTiming::Fast
                } else {
                    ReplayTiming::Original { speed: self.speed }
                },
            },
            None => SimMode::Random(RandomConfig {
                seed: self.seed,
                rate: (self.rate != 0.0).then_some(self.rate),
                malformed_share: self.malformed,
            }),
        };
        SimConfig {
            user: self.user.clone(),
            password: self.password.clone(),
            mode,
        }
    }
}

/// Serves until Ctrl-C.
pub async fn simulate(args: SimulateArgs) -> Result<(), StreamsError> {
    let sim = Simulator::start(args.addr, args.config()).await?;
    let what = match &args.replay {
        Some(dir) => format!("replaying {}", dir.display()),
        None if args.rate == 0.0 => {
            format!("random events as fast as possible, seed {}", args.seed)
        }
        None => format!(
            "random events, {} per second per stream, seed {}",
            args.rate, args.seed
        ),
    };
    println!(
        "simulating the events server on {} ({what}); streams: {}; user `{}`; Ctrl-C stops",
        sim.url(),
        Stream::ALL.map(|s| format!("/{s}")).join(", "),
        args.user
    );
    // Without a signal handler there is nothing to wait for: serve until killed.
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
    println!("sent {} messages", sim.sent());
    sim.stop().await;
    Ok(())
}

fn duration_arg(s: &str) -> Result<Duration, String> {
    parse_duration(s)
}

/// `sluice harvest`: consume the three streams until a stop condition, store every event.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct HarvestArgs {
    /// Base URL of the events server [config: streams.source; default http://127.0.0.1:8090, where `sluice simulate` listens].
    #[arg(long, value_name = "BASE_URL", env = "SLUICE_STREAMS_SOURCE")]
    pub source: Option<String>,
    /// Basic auth user [default sytac].
    #[arg(long, env = "SLUICE_STREAMS_USER")]
    pub user: Option<String>,
    /// Basic auth password [default: the original server's].
    #[arg(long, env = "SLUICE_STREAMS_PASSWORD")]
    pub password: Option<String>,
    /// Time limit: 20s, 500ms, 2m… [default 20s].
    #[arg(long, value_parser = duration_arg)]
    pub max_duration: Option<Duration>,
    /// Stop when events of a user with this first name were seen --stop-count times
    /// [default Sytac].
    #[arg(long)]
    pub stop_name: Option<String>,
    /// How many events of --stop-name stop the run; 0 disables [default 3].
    #[arg(long)]
    pub stop_count: Option<u32>,
    /// Also write the run's report as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// Above this many events the summary skips the report figures: computing them loads every
/// event of the run, which a long full-speed harvest makes too large to be worth it here.
const SUMMARY_REPORT_LIMIT: u64 = 500_000;

impl From<HarvestArgs> for HarvestOverrides {
    fn from(args: HarvestArgs) -> HarvestOverrides {
        HarvestOverrides {
            source: args.source,
            user: args.user,
            password: args.password,
            max_duration: args.max_duration,
            stop_name: args.stop_name,
            stop_count: args.stop_count,
        }
    }
}

/// Runs a harvest as a job in this process; returns a readable summary.
pub async fn harvest(ctx: &Ctx, args: HarvestArgs) -> Result<String, StreamsError> {
    let json = args.json.clone();
    let params = HarvestParams::resolve(ctx, args.into())?;
    let source = params.source.clone();
    let (_job, running) = harvest::start(ctx, params, None)?;
    let outcome = running
        .await
        .map_err(|e| StreamsError::HarvestFailed(e.to_string()))??;
    if let Some(error) = outcome.error {
        return Err(StreamsError::HarvestFailed(format!(
            "{error} (run {}; {} events stored before it failed)",
            outcome.run_id,
            outcome.events_per_stream.iter().sum::<u64>()
        )));
    }
    let mut text = summary(&source, &outcome);
    let total: u64 = outcome.events_per_stream.iter().sum();
    if total <= SUMMARY_REPORT_LIMIT || json.is_some() {
        let db = ctx.db.clone();
        let run = RunRef::Id(outcome.run_id.clone());
        // On the primary: a replica may not have replayed the run's last commit yet.
        let report =
            tokio::task::spawn_blocking(move || store::read_primary(&db, |c| load_report(c, &run)))
                .await
                .map_err(|e| StreamsError::HarvestFailed(e.to_string()))??;
        if let Some(r) = report {
            let rate = r
                .sytflix_start_rate
                .map_or("n/a".to_owned(), |x| format!("{x:.3} %"));
            let _ = writeln!(
                text,
                "  {} users, {} recent shows, Sytflix start rate {rate}, {} successful streams",
                r.users_total, r.recent_shows, r.successful_streams_total
            );
            if let Some(path) = &json {
                let json = serde_json::to_vec_pretty(&r).unwrap_or_default();
                std::fs::write(path, json).map_err(|source| StreamsError::Write {
                    path: path.clone(),
                    source,
                })?;
                let _ = writeln!(text, "  report written to {}", path.display());
            }
        }
    }
    let _ = write!(
        text,
        "  report: GET /api/v1/streams/runs/{}/report",
        outcome.run_id
    );
    Ok(text)
}

fn summary(source: &str, o: &HarvestOutcome) -> String {
    let mut text = format!(
        "harvest {} of {source}: {} in {}\n",
        o.run_id,
        o.stop_reason.as_deref().unwrap_or("stopped"),
        human_ms(o.total_ms)
    );
    for s in Stream::ALL {
        let i = s.index();
        let _ = writeln!(
            text,
            "  {:<8} {:>9} events {:>7} malformed {:>3} reconnects  consumed {} ms",
            s.name(),
            o.events_per_stream[i],
            o.malformed_per_stream[i],
            o.reconnects_per_stream[i],
            o.stream_ms[i].map_or("?".to_owned(), |m| m.to_string())
        );
    }
    let _ = writeln!(
        text,
        "  total    {:>9} events {:>7} malformed                consumed {} ms",
        o.events_per_stream.iter().sum::<u64>(),
        o.malformed_per_stream.iter().sum::<u64>(),
        o.total_ms
    );
    text
}

/// The simulator of `sluice demo`, on a free local port: the demo's harvests (its own, and
/// any started with no source while it serves) read it.
pub async fn demo_simulator() -> Result<Simulator, StreamsError> {
    Simulator::start(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        SimConfig {
            user: DEFAULT_USER.into(),
            password: DEFAULT_PASSWORD.into(),
            mode: SimMode::Random(RandomConfig {
                seed: 42,
                rate: Some(50.0),
                malformed_share: 0.02,
            }),
        },
    )
    .await
}

/// The streams part of `sluice demo`: a short harvest of the demo's simulator, and the URLs
/// to try.
pub async fn demo(ctx: &Ctx, sim: &Simulator) -> Result<Vec<String>, StreamsError> {
    let params = HarvestParams::new(
        &sim.url(),
        DEFAULT_USER.into(),
        DEFAULT_PASSWORD.into(),
        Duration::from_secs(3),
        harvest::DEFAULT_STOP_NAME.into(),
        harvest::DEFAULT_STOP_COUNT,
    )?;
    let (_job, running) = harvest::start(ctx, params, None)?;
    let outcome = running
        .await
        .map_err(|e| StreamsError::HarvestFailed(e.to_string()))??;
    if let Some(error) = outcome.error {
        return Err(StreamsError::HarvestFailed(error));
    }
    Ok(vec![
        format!(
            "streams: harvested {} events ({} malformed) from the built-in simulator: {}",
            outcome.events_per_stream.iter().sum::<u64>(),
            outcome.malformed_per_stream.iter().sum::<u64>(),
            outcome.stop_reason.unwrap_or_default()
        ),
        "GET /user_report".into(),
        "GET /recent_shows".into(),
        "GET /successful_streams".into(),
        "GET /start_events".into(),
        "GET /api/v1/streams/runs".into(),
        "GET /api/v1/streams/runs/latest/report".into(),
        format!(
            "GET /api/v1/streams/runs/{}/events?limit=10",
            outcome.run_id
        ),
        format!("GET /api/v1/streams/runs/{}/malformed", outcome.run_id),
    ])
}
