//! The trips benchmark driver (bench/trips/run.sh), usable before the `sluice` CLI wires the
//! domain in:
//! - `trips_bench generate <rows> <seed>`: CSV to stdout (as `sluice generate trips`);
//! - `trips_bench ingest <data_dir>`: stdin into the database (as `sluice ingest trips -`),
//!   prints one JSON line of figures;
//! - `trips_bench query <data_dir> <repeats>`: the T2 weekly averages, one JSON line each with
//!   p50/p95 latency and the answer, for the cross-check with the peers.

use std::io::{BufReader, Write};
use std::time::Instant;

use sluice_core::jobs::NewJob;
use sluice_core::{Ctx, Domain, FileIngest, Settings};
use sluice_trips::api::{WeeklyQuery, WeeklyRequest};
use sluice_trips::cli::{generate, GenerateArgs};
use sluice_trips::{TripsDomain, TripsIngest};

/// The T2 areas: a region, and boxes from a few streets to the whole world.
pub const BOXES: [(&str, &str); 4] = [
    ("small", "14.42,50.07,14.44,50.09"),
    ("city", "14.2,49.9,14.7,50.25"),
    ("multi-city", "5,44,15,54"),
    ("world", "-180,-90,180,90"),
];

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("generate") => {
            let g = GenerateArgs {
                rows: args[2].parse()?,
                seed: args[3].parse()?,
                files: None,
                out: None,
                malformed: 0.0,
            };
            generate(&g, &mut std::io::stdout().lock())?;
        }
        Some("ingest") => {
            let ctx = Ctx::open(Settings::with_data_dir(&args[2]))?;
            ctx.db.migrate("trips", &TripsDomain.migrations())?;
            let job = ctx.jobs.create(NewJob::new("trips", "ingest", "bytes"))?;
            job.start()?;
            let t = Instant::now();
            let stdin = std::io::stdin();
            let s = TripsIngest.ingest_reader(
                &ctx,
                "stdin.csv",
                &mut BufReader::with_capacity(1 << 20, stdin),
                &job,
            )?;
            let secs = t.elapsed().as_secs_f64();
            job.succeed(s.clone())?;
            let db = std::fs::metadata(ctx.db.path())?.len();
            println!(
                "{}",
                serde_json::json!({"rows": s.rows_accepted, "rejected": s.rows_rejected,
                    "secs": secs, "rows_per_s": s.rows_accepted as f64 / secs, "db_bytes": db})
            );
        }
        Some("query") => {
            let ctx = Ctx::open(Settings::with_data_dir(&args[2]))?;
            let repeats: usize = args[3].parse()?;
            let mut queries: Vec<(String, WeeklyQuery)> = vec![
                (
                    "region=Prague".into(),
                    WeeklyQuery {
                        region: Some("Prague".into()),
                        ..Default::default()
                    },
                ),
                ("all".into(), WeeklyQuery::default()),
            ];
            for (name, b) in BOXES {
                for m in ["origin", "destination", "both", "either"] {
                    queries.push((
                        format!("bbox={name}&match={m}"),
                        WeeklyQuery {
                            bbox: Some(b.into()),
                            match_: Some(m.into()),
                            ..Default::default()
                        },
                    ));
                }
            }
            let mut out = std::io::stdout().lock();
            for (name, q) in queries {
                let req = WeeklyRequest::parse(&q).map_err(|e| anyhow::anyhow!("{e}"))?;
                let mut times = Vec::with_capacity(repeats);
                let mut answer = None;
                for _ in 0..repeats {
                    let t = Instant::now();
                    let r = ctx
                        .db
                        .read(|c| req.run(c))
                        .map_err(|e| anyhow::anyhow!("{e}"))?;
                    times.push(t.elapsed().as_secs_f64() * 1e3);
                    answer = Some(r);
                }
                times.sort_by(f64::total_cmp);
                let pct = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
                let a = answer.expect("repeats >= 1");
                writeln!(
                    out,
                    "{}",
                    serde_json::json!({"query": name, "p50_ms": pct(0.5), "p95_ms": pct(0.95),
                        "trips": a.result.trips, "weeks": a.result.weeks, "average": a.result.average})
                )?;
            }
        }
        _ => anyhow::bail!(
            "usage: trips_bench generate <rows> <seed> | ingest <dir> | query <dir> <repeats>"
        ),
    }
    Ok(())
}
