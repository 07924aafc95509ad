//! Deterministic, realistic trips from a seed: per-city hot spots, commute pairs travelled
//! home→work in the morning peak and back in the evening peak, other trips between hot
//! spots spread over the day, three years of dates, every datasource, and an optional share
//! of malformed rows (one of each kind in turn).

use std::io::Write;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub const HEADER: &str = "region,origin_coord,destination_coord,datetime,datasource\n";

pub const DATASOURCES: [&str; 5] = [
    "funny_car",
    "baba_car",
    "cheap_mobile",
    "bad_diesel_vehicles",
    "pt_search_app",
];

/// (name, centre lon, centre lat, weight).
const CITIES: [(&str, f64, f64, u32); 6] = [
    ("Turin", 7.68, 45.07, 4),
    ("Prague", 14.43, 50.08, 4),
    ("Hamburg", 9.99, 53.55, 3),
    ("Berlin", 13.40, 52.52, 3),
    ("Milan", 9.19, 45.46, 2),
    ("Lisbon", -9.14, 38.72, 1),
];

const HOT_SPOTS: usize = 24;
const COMMUTE_PAIRS: usize = 40;
/// 2016-01-04 00:00:00 UTC (a Monday), and three years of days.
const FIRST_DAY_SECS: i64 = 1_451_865_600;
const DAYS: i64 = 3 * 364;

struct City {
    name: &'static str,
    spots: Vec<(f64, f64, f64)>,
    pairs: Vec<(usize, usize)>,
}

/// The generator: an endless, deterministic sequence of CSV rows.
pub struct Generator {
    rng: ChaCha8Rng,
    cities: Vec<City>,
    weights: Vec<u32>,
    malformed_per_million: u32,
    row: u64,
    line: Vec<u8>,
    floats: ryu::Buffer,
}

impl Generator {
    /// `malformed` is the share (0..=1) of rows that are deliberately invalid.
    pub fn new(seed: u64, malformed: f64) -> Generator {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let cities = CITIES
            .iter()
            .map(|&(name, lon, lat, _)| {
                let spots: Vec<(f64, f64, f64)> = (0..HOT_SPOTS)
                    .map(|_| {
                        let r = 0.12 * rng.random::<f64>().sqrt();
                        let a = rng.random::<f64>() * std::f64::consts::TAU;
                        let spread = 0.002 + 0.012 * rng.random::<f64>();
                        (lon + r * a.cos() * 1.4, lat + r * a.sin(), spread)
                    })
                    .collect();
                let pairs = (0..COMMUTE_PAIRS)
                    .map(|_| {
                        (
                            rng.random_range(0..HOT_SPOTS),
                            rng.random_range(0..HOT_SPOTS),
                        )
                    })
                    .collect();
                City { name, spots, pairs }
            })
            .collect();
        Generator {
            rng,
            cities,
            weights: CITIES.iter().map(|c| c.3).collect(),
            malformed_per_million: (malformed.clamp(0.0, 1.0) * 1e6) as u32,
            row: 0,
            line: Vec::with_capacity(160),
            floats: ryu::Buffer::new(),
        }
    }

    fn gauss(&mut self) -> f64 {
        // Box–Muller.
        let u1: f64 = self.rng.random::<f64>().max(f64::MIN_POSITIVE);
        let u2: f64 = self.rng.random();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    fn near(&mut self, city: usize, spot: usize) -> (f64, f64) {
        let (x, y, s) = self.cities[city].spots[spot];
        let dx = self.gauss() * s * 1.4;
        let dy = self.gauss() * s;
        (x + dx, y + dy)
    }

    /// Seconds into the day: morning or evening peak for commutes, daytime otherwise.
    fn time_of_day(&mut self, peak: Option<f64>) -> i64 {
        let hours = match peak {
            Some(centre) => centre + self.gauss() * 0.75,
            None => 13.0 + self.gauss() * 4.5,
        };
        ((hours.rem_euclid(24.0)) * 3600.0) as i64
    }

    /// Writes the next row (with its newline).
    pub fn write_row(&mut self, out: &mut impl Write) -> std::io::Result<()> {
        self.row += 1;
        let total: u32 = self.weights.iter().sum();
        let mut pick = self.rng.random_range(0..total);
        let mut city = 0;
        while pick >= self.weights[city] {
            pick -= self.weights[city];
            city += 1;
        }
        let day = self.rng.random_range(0..DAYS);
        let (o, d, peak) = if self.rng.random_bool(0.6) {
            let (home, work) = self.cities[city].pairs[self.rng.random_range(0..COMMUTE_PAIRS)];
            if self.rng.random_bool(0.5) {
                (home, work, Some(8.0))
            } else {
                (work, home, Some(17.5))
            }
        } else {
            (
                self.rng.random_range(0..HOT_SPOTS),
                self.rng.random_range(0..HOT_SPOTS),
                None,
            )
        };
        let (ox, oy) = self.near(city, o);
        let (dx, dy) = self.near(city, d);
        let ts = FIRST_DAY_SECS + day * 86_400 + self.time_of_day(peak);
        let ds = DATASOURCES[self.rng.random_range(0..DATASOURCES.len())];
        let region = self.cities[city].name;
        if self.rng.random_range(0..1_000_000) >= self.malformed_per_million {
            // The common row without the formatting machinery: this runs 100 M times.
            let line = &mut self.line;
            line.clear();
            let mut num = |line: &mut Vec<u8>, v: f64, then: &[u8]| {
                line.extend_from_slice(self.floats.format_finite(v).as_bytes());
                line.extend_from_slice(then);
            };
            line.extend_from_slice(region.as_bytes());
            line.extend_from_slice(b",POINT (");
            num(line, ox, b" ");
            num(line, oy, b"),POINT (");
            num(line, dx, b" ");
            num(line, dy, b"),");
            push_datetime(line, ts);
            line.push(b',');
            line.extend_from_slice(ds.as_bytes());
            line.push(b'\n');
            return out.write_all(line);
        }
        let when = datetime(ts);
        match self.row % 5 {
            0 => writeln!(
                out,
                "{region},POINT ({ox} {oy},POINT ({dx} {dy}),{when},{ds}"
            ),
            1 => writeln!(
                out,
                "{region},POINT ({ox} 95.5),POINT ({dx} {dy}),{when},{ds}"
            ),
            2 => writeln!(
                out,
                "{region},POINT ({ox} {oy}),POINT ({dx} {dy}),2018-13-45 25:00:00,{ds}"
            ),
            3 => writeln!(out, ",POINT ({ox} {oy}),POINT ({dx} {dy}),{when},{ds}"),
            _ => writeln!(out, "{region},POINT ({ox} {oy}),{when},{ds}"),
        }
    }
}

/// `YYYY-MM-DD HH:MM:SS` of epoch seconds, without a calendar library on the hot path.
fn datetime(ts: i64) -> String {
    let mut v = Vec::with_capacity(19);
    push_datetime(&mut v, ts);
    String::from_utf8(v).expect("ASCII digits")
}

fn push_datetime(out: &mut Vec<u8>, ts: i64) {
    let days = ts.div_euclid(86_400);
    let secs = ts.rem_euclid(86_400);
    let (y, m, d) = sluice_core::time::civil_from_days(days);
    let mut digits = |v: i64, width: u32, then: u8| {
        for i in (0..width).rev() {
            out.push(b'0' + (v / 10i64.pow(i) % 10) as u8);
        }
        out.push(then);
    };
    digits(y, 4, b'-');
    digits(m, 2, b'-');
    digits(d, 2, b' ');
    digits(secs / 3600, 2, b':');
    digits(secs / 60 % 60, 2, b':');
    digits(secs % 60, 2, b'\0');
    out.pop();
}

/// Writes `rows` rows (after a header) to `out`.
pub fn write_csv(gen: &mut Generator, rows: u64, out: &mut impl Write) -> std::io::Result<()> {
    out.write_all(HEADER.as_bytes())?;
    for _ in 0..rows {
        gen.write_row(out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::Timestamp;

    #[test]
    fn datetime_matches_the_parser() {
        for ts in [
            0,
            1_527_498_220,
            FIRST_DAY_SECS + DAYS * 86_400 - 1,
            951_782_400,
        ] {
            assert_eq!(Timestamp::parse(&datetime(ts)).unwrap().secs(), ts);
        }
    }

    #[test]
    fn deterministic_from_the_seed() {
        let run = |seed| {
            let mut v = Vec::new();
            write_csv(&mut Generator::new(seed, 0.1), 200, &mut v).unwrap();
            v
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }
}
