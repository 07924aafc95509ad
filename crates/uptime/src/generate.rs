//! Deterministic, realistic data of the 2023 export's shape from a seed: 19-digit store ids,
//! polls roughly every hour (45–75 min apart, random microseconds, trailing fraction zeros
//! dropped) with outages, several US zones (some stores without one), business hours with
//! split shifts, overnight hours, closed days and stores without hours (24×7). Polls are
//! written in time order across stores, like a polling log, while each store's generator
//! state is all that is held in memory.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::parse::{LocalTime, Micros, DAY, MINUTE, SECOND};
use crate::UptimeError;
use sluice_core::time::days_from_civil;

/// What to generate.
#[derive(Clone, Debug)]
pub struct Config {
    pub stores: usize,
    pub days: u32,
    pub seed: u64,
    /// First instant of the polls (default 2023-01-18T00:00:00Z, like the 2023 export).
    pub start: Micros,
}

impl Config {
    pub fn new(stores: usize, days: u32, seed: u64) -> Config {
        Config {
            stores,
            days,
            seed,
            start: Micros(days_from_civil(2023, 1, 18) * DAY),
        }
    }
}

pub const POLLS_FILE: &str = "store_status.csv";
pub const HOURS_FILE: &str = "menu_hours.csv";
pub const ZONES_FILE: &str = "timezones.csv";

/// Zones with their weights (roughly the 2023 export's mix).
const ZONES: &[(&str, u32)] = &[
    ("America/New_York", 55),
    ("America/Los_Angeles", 22),
    ("America/Chicago", 11),
    ("America/Phoenix", 4),
    ("America/Denver", 3),
    ("America/Detroit", 2),
    ("America/Boise", 1),
    ("America/Indiana/Indianapolis", 1),
    ("Pacific/Honolulu", 1),
];

fn pick_zone(rng: &mut ChaCha8Rng) -> &'static str {
    let total: u32 = ZONES.iter().map(|z| z.1).sum();
    let mut x = rng.random_range(0..total);
    for &(z, w) in ZONES {
        if x < w {
            return z;
        }
        x -= w;
    }
    ZONES[0].0
}

/// One store's polling state.
struct PollState {
    rng: ChaCha8Rng,
    up: bool,
    /// How likely an up store goes down at the next poll, in thousandths.
    flakiness: u32,
}

/// Writes the three CSVs into `dir` and returns their paths (polls, hours, zones).
pub fn write(dir: &Path, cfg: &Config) -> Result<Vec<PathBuf>, UptimeError> {
    std::fs::create_dir_all(dir).map_err(|e| UptimeError::io(dir, e))?;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let ids: Vec<u64> = (0..cfg.stores)
        .map(|_| rng.random_range(1_000_000_000_000_000u64..(1u64 << 63)))
        .collect();

    let zones_path = dir.join(ZONES_FILE);
    let io = |p: &Path| {
        let p = p.to_owned();
        move |e| UptimeError::io(&p, e)
    };
    let mut z = BufWriter::new(File::create(&zones_path).map_err(io(&zones_path))?);
    writeln!(z, "store_id,timezone_str").map_err(io(&zones_path))?;
    for id in &ids {
        // About 8% of stores have no zone (Chicago applies).
        if rng.random_range(0..100) >= 8 {
            writeln!(z, "{id},{}", pick_zone(&mut rng)).map_err(io(&zones_path))?;
        }
    }
    z.flush().map_err(io(&zones_path))?;

    let hours_path = dir.join(HOURS_FILE);
    let mut h = BufWriter::new(File::create(&hours_path).map_err(io(&hours_path))?);
    writeln!(h, "store_id,day,start_time_local,end_time_local").map_err(io(&hours_path))?;
    for id in &ids {
        // About 20% of stores have no hours at all (open 24×7).
        if rng.random_range(0..100) < 20 {
            continue;
        }
        let half = |r: &mut ChaCha8Rng, lo: u32, hi: u32| r.random_range(lo * 2..hi * 2) * 1800;
        let open = half(&mut rng, 6, 12);
        let kind = rng.random_range(0..100);
        for day in 0..7 {
            // Closed on about one day in ten.
            if rng.random_range(0..10) == 0 {
                continue;
            }
            let intervals: Vec<(u32, u32)> = if kind < 15 {
                // Overnight: evening to early morning.
                vec![(half(&mut rng, 17, 20), half(&mut rng, 1, 4))]
            } else if kind < 25 {
                // Split shift.
                vec![
                    (11 * 3600, 14 * 3600 + 1800),
                    (17 * 3600, half(&mut rng, 21, 23)),
                ]
            } else {
                vec![(open, half(&mut rng, 20, 24))]
            };
            for (s, e) in intervals {
                writeln!(
                    h,
                    "{id},{day},{},{}",
                    LocalTime::from_secs(s).unwrap_or_default(),
                    LocalTime::from_secs(e).unwrap_or_default()
                )
                .map_err(io(&hours_path))?;
            }
        }
    }
    h.flush().map_err(io(&hours_path))?;

    let polls_path = dir.join(POLLS_FILE);
    let mut p = BufWriter::new(File::create(&polls_path).map_err(io(&polls_path))?);
    writeln!(p, "store_id,status,timestamp_utc").map_err(io(&polls_path))?;
    let end = cfg.start.0 + i64::from(cfg.days) * DAY;
    let mut states = Vec::with_capacity(ids.len());
    let mut heap = BinaryHeap::with_capacity(ids.len());
    for i in 0..ids.len() {
        let mut r = ChaCha8Rng::seed_from_u64(
            cfg.seed ^ (i as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        );
        let first = cfg.start.0 + r.random_range(0..60 * MINUTE);
        let flakiness = r.random_range(2..60);
        states.push(PollState {
            rng: r,
            up: true,
            flakiness,
        });
        heap.push(Reverse((first, i)));
    }
    let mut line = String::with_capacity(64);
    while let Some(Reverse((at, i))) = heap.pop() {
        let s = &mut states[i];
        s.up = if s.up {
            s.rng.random_range(0..1000) >= s.flakiness
        } else {
            // Outages last a few polls.
            s.rng.random_range(0..100) < 40
        };
        line.clear();
        line.push_str(&ids[i].to_string());
        line.push_str(if s.up { ",active," } else { ",inactive," });
        line.push_str(&format_ts(Micros(at)));
        p.write_all(line.as_bytes()).map_err(io(&polls_path))?;
        p.write_all(b"\n").map_err(io(&polls_path))?;
        let next = at + s.rng.random_range(45 * MINUTE..75 * MINUTE);
        if next < end {
            heap.push(Reverse((next, i)));
        }
    }
    p.flush().map_err(io(&polls_path))?;
    Ok(vec![polls_path, hours_path, zones_path])
}

/// `YYYY-MM-DD HH:MM:SS[.f] UTC` with trailing fraction zeros dropped, as the export does.
pub fn format_ts(t: Micros) -> String {
    let dt = t.to_datetime();
    let mut s = dt.format("%Y-%m-%d %H:%M:%S").to_string();
    let frac = t.0.rem_euclid(SECOND);
    if frac != 0 {
        let f = format!("{frac:06}");
        s.push('.');
        s.push_str(f.trim_end_matches('0'));
    }
    s.push_str(" UTC");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_drop_trailing_zeros_and_parse_back() {
        for s in ["2023-01-25 18:13:22.47922 UTC", "2023-01-25 18:13:22 UTC"] {
            assert_eq!(format_ts(Micros::parse(s).unwrap()), s);
        }
    }

    #[test]
    fn same_seed_same_files() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let cfg = Config::new(20, 2, 9);
        let fa = write(a.path(), &cfg).unwrap();
        let fb = write(b.path(), &cfg).unwrap();
        for (x, y) in fa.iter().zip(&fb) {
            assert_eq!(std::fs::read(x).unwrap(), std::fs::read(y).unwrap());
        }
        let polls = std::fs::read_to_string(&fa[0]).unwrap();
        // 20 stores × 2 days of 45–75 min polls: between 20·2·19 and 20·2·33 rows.
        let n = polls.lines().count() - 1;
        assert!((760..=1320).contains(&n), "{n}");
        assert!(polls.contains(",inactive,"));
    }
}
