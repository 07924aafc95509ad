//! Input → domain types. A CSV row becomes a [`TripRow`] or a reason why not; the newtypes
//! here ([`Point`], [`Timestamp`], [`Name`]) can only be built valid.

use std::fmt;

/// A WGS84 point with longitude in −180..=180 and latitude in −90..=90, kept at full precision.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    lon: f64,
    lat: f64,
}

impl Point {
    pub fn new(lon: f64, lat: f64) -> Result<Point, String> {
        if !lon.is_finite() || !(-180.0..=180.0).contains(&lon) {
            return Err(format!("longitude {lon} is outside -180..180"));
        }
        if !lat.is_finite() || !(-90.0..=90.0).contains(&lat) {
            return Err(format!("latitude {lat} is outside -90..90"));
        }
        Ok(Point { lon, lat })
    }
    /// A point read back from storage, where it was validated when written.
    pub(crate) fn stored(lon: f64, lat: f64) -> Point {
        Point { lon, lat }
    }
    pub fn lon(self) -> f64 {
        self.lon
    }
    pub fn lat(self) -> f64 {
        self.lat
    }

    /// WKT `POINT (<lon> <lat>)`, liberal in spacing and case, with an optional `SRID=…;`.
    pub fn parse_wkt(s: &str) -> Result<Point, String> {
        let bad = || format!("`{s}` is not a WKT point; expected POINT (<lon> <lat>)");
        let mut t = s.trim();
        if t.len() >= 5 && t[..5].eq_ignore_ascii_case("SRID=") {
            let (srid, rest) = t.split_once(';').ok_or_else(bad)?;
            if srid[5..].trim() != "4326" {
                return Err(format!("`{s}`: only SRID=4326 (WGS84) is accepted"));
            }
            t = rest.trim_start();
        }
        if t.len() < 5 || !t[..5].eq_ignore_ascii_case("POINT") {
            return Err(bad());
        }
        let inner = t[5..]
            .trim_start()
            .strip_prefix('(')
            .and_then(|r| r.trim_end().strip_suffix(')'))
            .ok_or_else(bad)?;
        let mut parts = inner.split_ascii_whitespace();
        let (Some(x), Some(y), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        let lon: f64 = x.parse().map_err(|_| bad())?;
        let lat: f64 = y.parse().map_err(|_| bad())?;
        Point::new(lon, lat).map_err(|e| format!("`{s}`: {e}"))
    }
}

/// Seconds since the Unix epoch, UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    pub fn from_secs(secs: i64) -> Timestamp {
        Timestamp(secs)
    }
    pub fn secs(self) -> i64 {
        self.0
    }

    /// `YYYY-MM-DD HH:MM:SS` (naive, UTC) on a fast path; any form of
    /// [`sluice_core::time::parse_utc`] otherwise.
    pub fn parse(s: &str) -> Result<Timestamp, String> {
        if let Some(t) = fast_datetime(s.as_bytes()) {
            return Ok(Timestamp(t));
        }
        sluice_core::time::parse_utc(s).map(|t| Timestamp(t.timestamp()))
    }

    pub fn to_datetime(self) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp(self.0, 0).unwrap_or_default()
    }
}

impl fmt::Display for Timestamp {
    /// The input form, `YYYY-MM-DD HH:MM:SS`, used by the compat routes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_datetime().format("%Y-%m-%d %H:%M:%S"))
    }
}

fn fast_datetime(b: &[u8]) -> Option<i64> {
    if b.len() != 19 || b[4] != b'-' || b[7] != b'-' || b[10] != b' ' || b[13] != b':' {
        return None;
    }
    if b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        b[r].iter().try_fold(0i64, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
        })
    };
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) || hh > 23 || mm > 59 || ss > 59 {
        return None;
    }
    Some(sluice_core::time::days_from_civil(y, m, d) * 86_400 + hh * 3600 + mm * 60 + ss)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// A non-empty, trimmed region or datasource name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Name<'a>(&'a str);

impl<'a> Name<'a> {
    pub fn parse(field: &'static str, s: &'a str) -> Result<Name<'a>, String> {
        let t = s.trim();
        if t.is_empty() {
            return Err(format!("{field} is empty"));
        }
        Ok(Name(t))
    }
    pub fn as_str(self) -> &'a str {
        self.0
    }
}

/// One valid input row, borrowing its names from the CSV record.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TripRow<'a> {
    pub region: Name<'a>,
    pub origin: Point,
    pub destination: Point,
    pub ts: Timestamp,
    pub datasource: Name<'a>,
}

pub const COLUMNS: [&str; 5] = [
    "region",
    "origin_coord",
    "destination_coord",
    "datetime",
    "datasource",
];

/// Where each column sits in the file, from its header (matched by name, any order).
#[derive(Clone, Copy, Debug)]
pub struct Header {
    idx: [usize; 5],
    width: usize,
}

impl Header {
    pub fn parse(fields: &csv::ByteRecord) -> Result<Header, String> {
        let names: Vec<String> = fields
            .iter()
            .map(|f| {
                String::from_utf8_lossy(f)
                    .trim()
                    .trim_start_matches('\u{feff}')
                    .to_ascii_lowercase()
            })
            .collect();
        let mut idx = [0; 5];
        for (slot, col) in idx.iter_mut().zip(COLUMNS) {
            *slot = names.iter().position(|n| n == col).ok_or_else(|| {
                format!(
                    "the header lacks column `{col}`; expected {}",
                    COLUMNS.join(",")
                )
            })?;
        }
        Ok(Header {
            idx,
            width: names.len(),
        })
    }

    /// Parses one record, or says why it is rejected.
    pub fn row<'r>(&self, rec: &'r csv::ByteRecord) -> Result<TripRow<'r>, String> {
        if rec.len() != self.width {
            return Err(format!(
                "expected {} fields, found {}",
                self.width,
                rec.len()
            ));
        }
        let field = |i: usize| -> Result<&'r str, String> {
            std::str::from_utf8(&rec[self.idx[i]])
                .map_err(|_| format!("{} is not valid UTF-8", COLUMNS[i]))
        };
        let point = |i: usize| -> Result<Point, String> {
            Point::parse_wkt(field(i)?).map_err(|e| format!("{}: {e}", COLUMNS[i]))
        };
        Ok(TripRow {
            region: Name::parse("region", field(0)?)?,
            origin: point(1)?,
            destination: point(2)?,
            ts: Timestamp::parse(field(3)?.trim()).map_err(|e| format!("datetime: {e}"))?,
            datasource: Name::parse("datasource", field(4)?)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wkt_forms() {
        let p = Point::parse_wkt("POINT (14.4973794438195 50.00136875782316)").unwrap();
        assert_eq!((p.lon(), p.lat()), (14.4973794438195, 50.00136875782316));
        for s in [
            "POINT(1 2)",
            "  point ( 1   2 ) ",
            "SRID=4326;POINT (1 2)",
            "srid=4326; POINT(1 2)",
        ] {
            assert_eq!(
                Point::parse_wkt(s).unwrap(),
                Point::new(1.0, 2.0).unwrap(),
                "{s}"
            );
        }
        for s in [
            "POINT (1)",
            "POINT (1 2 3)",
            "POINT 1 2",
            "LINESTRING (1 2, 3 4)",
            "SRID=3857;POINT (1 2)",
            "POINT (x 2)",
        ] {
            assert!(Point::parse_wkt(s).is_err(), "{s}");
        }
        assert!(Point::parse_wkt("POINT (181 0)")
            .unwrap_err()
            .contains("longitude"));
        assert!(Point::parse_wkt("POINT (0 -90.5)")
            .unwrap_err()
            .contains("latitude"));
        assert!(Point::parse_wkt("POINT (NaN 0)").is_err());
    }

    #[test]
    fn datetimes() {
        let t = Timestamp::parse("2018-05-28 09:03:40").unwrap();
        assert_eq!(t.secs(), 1_527_498_220);
        assert_eq!(t.to_string(), "2018-05-28 09:03:40");
        assert_eq!(Timestamp::parse("2018-05-28T09:03:40Z").unwrap(), t);
        assert_eq!(
            Timestamp::parse("2000-02-29 00:00:00").unwrap().secs(),
            951_782_400
        );
        assert_eq!(Timestamp::parse("1969-12-31 23:59:59").unwrap().secs(), -1);
        for bad in [
            "2018-02-30 00:00:00",
            "2018-05-28 24:00:00",
            "yesterday",
            "",
        ] {
            assert!(Timestamp::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn header_by_name_and_rows() {
        let h = Header::parse(&csv::ByteRecord::from(vec![
            "datasource",
            "datetime",
            "destination_coord",
            "origin_coord",
            "region",
        ]))
        .unwrap();
        let rec = csv::ByteRecord::from(vec![
            "cheap_mobile",
            "2018-05-01 11:50:58",
            "POINT (2 3)",
            "POINT (1 2)",
            " Prague ",
        ]);
        let row = h.row(&rec).unwrap();
        assert_eq!(row.region.as_str(), "Prague");
        assert_eq!(row.origin, Point::new(1.0, 2.0).unwrap());
        assert_eq!(row.destination, Point::new(2.0, 3.0).unwrap());
        let short = csv::ByteRecord::from(vec!["a", "b"]);
        assert_eq!(h.row(&short).unwrap_err(), "expected 5 fields, found 2");
        let missing = csv::ByteRecord::from(vec!["region", "origin_coord"]);
        assert!(Header::parse(&missing)
            .unwrap_err()
            .contains("destination_coord"));
    }
}
