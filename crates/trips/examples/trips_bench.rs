//! The query side of the trips benchmark (bench/trips/run.sh and boxes.sh; ingestion there
//! goes through the `sluice` binary): `trips_bench <data_dir> <repeats> [--boxes FILE]`
//! (or the database named by `SLUICE_DATABASE`) prints one JSON line per query with p50/p95 latency and the answer, for the cross-check
//! with the peers:
//! - T2: the weekly averages of a region, of everything, and of four boxes in the four match
//!   modes, each with `weeks=active` and `weeks=span`, run by the same code as
//!   `GET /api/v1/trips/weekly-average`;
//! - the `/vehicles` lookups: one trip by id, and listings by filter (first 10 ids);
//! - with `--boxes FILE` instead of both: T2a, every box of FILE (JSON lines
//!   `{"name", "bbox"}`, from bench/trips/boxes.py) in the four match modes x both weeks modes.

use std::time::Instant;

use sluice_core::{Ctx, Settings};
use sluice_trips::api::{WeeklyQuery, WeeklyRequest};
use sluice_trips::parse::Timestamp;
use sluice_trips::store::{self, CoordPrefix, TripFilter};

/// The T2 areas: a region, and boxes from a few streets to the whole world.
const BOXES: [(&str, &str); 4] = [
    ("small", "14.42,50.07,14.44,50.09"),
    ("city", "14.2,49.9,14.7,50.25"),
    ("multi-city", "5,44,15,54"),
    ("world", "-180,-90,180,90"),
];

/// What a weekly average is asked over (`WeeklyQuery` without the weeks mode).
#[derive(Default)]
struct Area {
    region: Option<String>,
    bbox: Option<String>,
    match_: Option<&'static str>,
}

const MATCHES: [&str; 4] = ["origin", "destination", "both", "either"];

/// Prints each weekly average, in `weeks=active` (the default; the name as given) and in
/// `weeks=span` (the name with `&weeks=span`).
fn weekly(ctx: &Ctx, repeats: usize, queries: Vec<(String, Area)>) -> anyhow::Result<()> {
    for (name, area) in queries {
        for (suffix, weeks) in [("", None), ("&weeks=span", Some("span"))] {
            let name = format!("{name}{suffix}");
            let q = WeeklyQuery {
                region: area.region.clone(),
                bbox: area.bbox.clone(),
                match_: area.match_.map(str::to_string),
                weeks: weeks.map(str::to_string),
                ..Default::default()
            };
            let req = WeeklyRequest::parse(&q).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
            let (p50, p95, a) = timed(repeats, || {
                store::read(&ctx.db, |c| req.run(c)).map_err(|e| anyhow::anyhow!("{name}: {e:?}"))
            })?;
            println!(
                "{}",
                serde_json::json!({"query": name, "bbox": q.bbox, "p50_ms": p50, "p95_ms": p95,
                    "trips": a.result.trips, "weeks": a.result.weeks, "average": a.result.average})
            );
        }
    }
    Ok(())
}

/// Runs `f` `repeats` times; returns (p50, p95) in ms and the last answer.
fn timed<T>(
    repeats: usize,
    mut f: impl FnMut() -> anyhow::Result<T>,
) -> anyhow::Result<(f64, f64, T)> {
    let mut times = Vec::with_capacity(repeats);
    let mut answer = None;
    for _ in 0..repeats.max(1) {
        let t = Instant::now();
        answer = Some(f()?);
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| times[((times.len() - 1) as f64 * p).round() as usize];
    Ok((pct(0.5), pct(0.95), answer.expect("ran at least once")))
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (dir, repeats, boxes) = match &args[1..] {
        [dir, repeats] => (dir, repeats, None),
        [dir, repeats, flag, file] if flag == "--boxes" => (dir, repeats, Some(file)),
        _ => anyhow::bail!("usage: trips_bench <data_dir> <repeats> [--boxes FILE]"),
    };
    let mut settings = Settings::with_data_dir(dir);
    // The database the `sluice` under test wrote (bench/trips/run.sh's PostgreSQL runs).
    if let Ok(url) = std::env::var("SLUICE_DATABASE") {
        settings.database = url.parse().map_err(|e: String| anyhow::anyhow!(e))?;
    }
    let ctx = Ctx::open(settings)?;
    let repeats: usize = repeats.parse()?;
    if let Some(file) = boxes {
        let mut queries = Vec::new();
        for line in std::fs::read_to_string(file)?.lines() {
            if line.trim().is_empty() {
                continue;
            }
            let b: serde_json::Value = serde_json::from_str(line)?;
            let field = |k: &str| {
                b[k].as_str()
                    .map(str::to_string)
                    .ok_or_else(|| anyhow::anyhow!("{file}: no \"{k}\" in {line}"))
            };
            let (name, bbox) = (field("name")?, field("bbox")?);
            for m in MATCHES {
                queries.push((
                    format!("box={name}&match={m}"),
                    Area {
                        bbox: Some(bbox.clone()),
                        match_: Some(m),
                        ..Default::default()
                    },
                ));
            }
        }
        return weekly(&ctx, repeats, queries);
    }

    let mut queries: Vec<(String, Area)> = vec![
        (
            "region=Prague".into(),
            Area {
                region: Some("Prague".into()),
                ..Default::default()
            },
        ),
        ("all".into(), Area::default()),
    ];
    for (name, b) in BOXES {
        for m in MATCHES {
            queries.push((
                format!("bbox={name}&match={m}"),
                Area {
                    bbox: Some(b.into()),
                    match_: Some(m),
                    ..Default::default()
                },
            ));
        }
    }
    weekly(&ctx, repeats, queries)?;

    // `/vehicles`: the middle trip, then listings (the first 10 ids of each filter).
    let total: u64 = store::read(&ctx.db, |c| store::counts(c, store::CountBy::Region))?
        .iter()
        .map(|r| r.1)
        .sum();
    let mid = (total / 2).max(1) as i64;
    let (p50, p95, t) = timed(repeats, || {
        Ok(store::read(&ctx.db, |c| store::trip(c, mid))?)
    })?;
    let t = t.ok_or_else(|| anyhow::anyhow!("trip {mid} not found"))?;
    println!(
        "{}",
        serde_json::json!({"query": format!("vehicles/{mid}"), "p50_ms": p50, "p95_ms": p95,
            "ids": [t.id], "origin": [t.origin_lon, t.origin_lat]})
    );
    let day = |s: &str| Timestamp::parse(s).map_err(|e| anyhow::anyhow!(e));
    let listings = [
        ("vehicles?limit=10".to_string(), TripFilter::default()),
        (
            "vehicles?region=Prague&limit=10".into(),
            TripFilter {
                region: Some("Prague".into()),
                ..TripFilter::default()
            },
        ),
        (
            "vehicles?datasource=cheap_mobile&date=2017-06-01&limit=10".into(),
            TripFilter {
                datasource: Some("cheap_mobile".into()),
                from: Some(day("2017-06-01 00:00:00")?),
                to: Some(day("2017-06-02 00:00:00")?),
                ..TripFilter::default()
            },
        ),
        (
            format!("vehicles?origin_coord_x&origin_coord_y of trip {mid}&limit=10"),
            TripFilter {
                origin: [
                    Some(CoordPrefix::new(&t.origin_lon.to_string())),
                    Some(CoordPrefix::new(&t.origin_lat.to_string())),
                ],
                ..TripFilter::default()
            },
        ),
    ];
    for (name, f) in listings {
        let f = TripFilter { limit: 10, ..f };
        let (p50, p95, rows) = timed(repeats, || {
            Ok(store::read(&ctx.db, |c| store::trips(c, &f))?)
        })?;
        let ids: Vec<i64> = rows.iter().map(|t| t.id).collect();
        println!(
            "{}",
            serde_json::json!({"query": name, "p50_ms": p50, "p95_ms": p95, "ids": ids})
        );
    }
    Ok(())
}
