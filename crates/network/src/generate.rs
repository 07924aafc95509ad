//! A realistic day of flow files, deterministic from a seed: skewed service and cell
//! popularity, subscribers that come back (and mostly stay in a home cell), byte volumes that
//! depend on the service, and optionally a share of malformed rows of every kind.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::parse::PERIOD_MS;

#[derive(Clone, Debug, clap::Args)]
pub struct GenerateArgs {
    /// The UTC day to generate (YYYY-MM-DD).
    #[arg(long, default_value = "2017-03-01")]
    pub day: NaiveDate,
    /// Rows in each part file.
    #[arg(long, default_value_t = 50_000)]
    pub rows_per_file: u64,
    /// Part files per 5-minute period.
    #[arg(long, default_value_t = 2)]
    pub parts: u32,
    /// Number of 5-minute periods from midnight (288 = the whole day).
    #[arg(long, default_value_t = 288, value_parser = clap::value_parser!(u32).range(1..=288))]
    pub periods: u32,
    /// Share of malformed rows, 0.0 to 1.0.
    #[arg(long, default_value_t = 0.0)]
    pub malformed: f64,
    /// Seed of the random generator: the same seed gives the same bytes.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Output folder (created if needed).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("--malformed must be between 0 and 1, got {0}")]
    Share(f64),
}

const SERVICES: u64 = 40;
const CELLS: u64 = 3_000;
const SUBSCRIBERS: u64 = 250_000;

/// An index in 0..n with small indexes far more likely (power-law-like popularity).
fn skewed(rng: &mut ChaCha8Rng, n: u64, exponent: i32) -> u64 {
    let u: f64 = rng.random();
    ((u.powi(exponent) * n as f64) as u64).min(n - 1)
}

/// The cell a subscriber usually uses.
fn home_cell(subscriber: u64) -> u64 {
    let h = subscriber.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 33;
    // Fold the hash through the same skew as random picks so busy cells have more residents.
    let u = (h % 1_000_003) as f64 / 1_000_003.0;
    ((u * u * CELLS as f64) as u64).min(CELLS - 1)
}

/// Writes the files; returns their paths in period order.
pub fn generate(args: &GenerateArgs) -> Result<Vec<PathBuf>, GenerateError> {
    generate_periods(args, 0..args.periods)
}

/// Writes the files of the 5-minute periods `periods` counted from the day's midnight (past
/// 288 into the next days); a period's files are the same bytes whichever range made them.
pub fn generate_periods(
    args: &GenerateArgs,
    periods: std::ops::Range<u32>,
) -> Result<Vec<PathBuf>, GenerateError> {
    if !(0.0..=1.0).contains(&args.malformed) {
        return Err(GenerateError::Share(args.malformed));
    }
    std::fs::create_dir_all(&args.out).map_err(|source| GenerateError::Io {
        path: args.out.clone(),
        source,
    })?;
    let midnight = args
        .day
        .and_hms_opt(0, 0, 0)
        .expect("midnight exists")
        .and_utc()
        .timestamp_millis();
    let jobs: Vec<(u32, u32)> = periods
        .flat_map(|p| (1..=args.parts).map(move |part| (p, part)))
        .collect();
    jobs.par_iter()
        .map(|&(p, part)| {
            let start = midnight + i64::from(p) * PERIOD_MS;
            let path = args
                .out
                .join(format!("ipflow_data.ts-{}.{part}.txt", start + PERIOD_MS));
            write_file(&path, args, start, u64::from(p) << 8 | u64::from(part)).map_err(
                |source| GenerateError::Io {
                    path: path.clone(),
                    source,
                },
            )?;
            Ok(path)
        })
        .collect()
}

fn write_file(path: &Path, args: &GenerateArgs, start: i64, stream: u64) -> std::io::Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(args.seed ^ stream.wrapping_mul(0xA24B_AED4_963E_E407));
    // Written under a temporary name and renamed, so an inbox never sees half a file.
    let tmp = path.with_extension("txt.part");
    let mut w = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
    w.write_all(b"interval_start_timestamp,interval_end_timestamp,msisdn,bytes_uplink,bytes_downlink,service_id,cell_id\n")?;
    let mut buf = itoa::Buffer::new();
    let end = start + PERIOD_MS;
    for _ in 0..args.rows_per_file {
        if args.malformed > 0.0 && rng.random_bool(args.malformed) {
            let bad: &[u8] = match rng.random_range(0..5) {
                0 => b"1488355200000,1488355500000,31600000000,1,2,3\n",
                1 => b"1488355200000,1488355500000,316000x0000,1,2,3,4\n",
                2 => b"1488355200000,1488355500000,31600000000,-1,2,3,4\n",
                3 => b"1488355200001,1488355500001,31600000000,1,2,3,4\n",
                _ => b"1488355200000,1488355800000,31600000000,1,2,3,4\n",
            };
            w.write_all(bad)?;
            continue;
        }
        let subscriber = skewed(&mut rng, SUBSCRIBERS, 3);
        let msisdn = 31_600_000_000 + subscriber * 7;
        let service = skewed(&mut rng, SERVICES, 3) + 1;
        let cell = if rng.random_bool(0.7) {
            home_cell(subscriber)
        } else {
            skewed(&mut rng, CELLS, 2)
        } + 1000;
        // Low service ids are the heavy ones (video, updates): larger downloads.
        let scale = 200_000.0 / (service as f64).sqrt();
        let down = (scale * -(1.0 - rng.random::<f64>()).ln()) as u64;
        let up = down / rng.random_range(4..40) + rng.random_range(0..500);
        for (i, v) in [start as u64, end as u64, msisdn, up, down, service, cell]
            .into_iter()
            .enumerate()
        {
            if i > 0 {
                w.write_all(b",")?;
            }
            w.write_all(buf.format(v).as_bytes())?;
        }
        w.write_all(b"\n")?;
    }
    w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_parseable() {
        let dir = tempfile::tempdir().unwrap();
        let args = GenerateArgs {
            day: NaiveDate::from_ymd_opt(2017, 3, 1).unwrap(),
            rows_per_file: 300,
            parts: 2,
            periods: 2,
            malformed: 0.1,
            seed: 7,
            out: dir.path().join("a"),
        };
        let a = generate(&args).unwrap();
        let b = generate(&GenerateArgs {
            out: dir.path().join("b"),
            ..args.clone()
        })
        .unwrap();
        assert_eq!(a.len(), 4);
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(std::fs::read(x).unwrap(), std::fs::read(y).unwrap());
        }
        let f = std::fs::File::open(&a[0]).unwrap();
        let s = crate::engine::fold_file(
            "x",
            std::io::BufReader::new(f),
            None,
            crate::settings::PeriodFrom::Rows,
            |_| {},
        )
        .unwrap();
        assert_eq!(s.accepted + s.rejected, 300);
        assert!(s.rejected > 0 && s.rejected < 100, "{}", s.rejected);
    }
}
