//! Input → domain types. The three sources are told apart by their header (any column
//! order, `day` or `dayOfWeek`, optional UTF-8 byte-order mark); each row becomes one
//! [`Row`] or a reason why not. The newtypes here are the only way to get a valid value.

use std::fmt;
use std::str::FromStr;

use chrono_tz::Tz;
use csv::ByteRecord;

/// A store's id as delivered: an opaque, non-empty string (integers in the 2023 export,
/// UUIDs in the 2024 one).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StoreId(String);

/// Longest store id accepted; real ids are at most 36 bytes.
const MAX_STORE_ID: usize = 128;

impl StoreId {
    pub fn parse(s: &str) -> Result<StoreId, String> {
        StoreId::check(s).map(|s| StoreId(s.to_owned()))
    }

    /// The id [`StoreId::parse`] makes of `s`, borrowed: ingestion looks millions of them up
    /// and keeps none.
    pub fn check(s: &str) -> Result<&str, String> {
        // Printable ASCII without spaces needs neither trimming nor the character checks.
        if !s.is_empty() && s.len() <= MAX_STORE_ID && s.bytes().all(|c| c.is_ascii_graphic()) {
            return Ok(s);
        }
        let s = s.trim();
        if s.is_empty() {
            return Err("empty store_id".into());
        }
        if s.len() > MAX_STORE_ID || s.chars().any(char::is_control) {
            return Err(format!(
                "invalid store_id (expected at most {MAX_STORE_ID} printable characters)"
            ));
        }
        Ok(s)
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StoreId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A UTC instant in microseconds since the Unix epoch (polls carry 0 to 6 fraction digits).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Micros(pub i64);

pub const SECOND: i64 = 1_000_000;
pub const MINUTE: i64 = 60 * SECOND;
pub const HOUR: i64 = 60 * MINUTE;
pub const DAY: i64 = 24 * HOUR;

impl Micros {
    /// Parses `YYYY-MM-DD HH:MM:SS[.f{0,6}][ UTC]` on a fast path, anything else the
    /// platform accepts (ISO 8601 with `Z` or an offset) on the slow one.
    pub fn parse(s: &str) -> Result<Micros, String> {
        // The export's spelling has nothing to trim (it starts with a digit and ends with
        // one, `C` or `Z`).
        if let Some(m) = parse_fast(s.as_bytes()) {
            return Ok(m);
        }
        let t = s.trim();
        if let Some(m) = parse_fast(t.as_bytes()) {
            return Ok(m);
        }
        sluice_core::time::parse_utc(t)
            .map(Micros::from_datetime)
            .map_err(|_| {
                format!(
                    "bad timestamp `{s}` (expected YYYY-MM-DD HH:MM:SS[.ffffff] UTC or ISO 8601)"
                )
            })
    }

    /// Parses an instant taken from a request, in exactly the language of
    /// [`INSTANT_PATTERN`]: `YYYY-MM-DD`, `T` or a space, `HH:MM:SS`, 1 to 6 fraction digits
    /// or none, then `Z`, ` UTC`, an offset `±HH:MM` or nothing (UTC). Stricter than
    /// [`Micros::parse`] (no trimming, no other spellings) so that the OpenAPI pattern and
    /// the server accept the same strings.
    pub fn parse_request(s: &str) -> Result<Micros, String> {
        let bad = || {
            format!(
                "bad timestamp `{s}` (expected YYYY-MM-DDTHH:MM:SS[.ffffff] with Z, ` UTC`, \
                 an offset ±HH:MM or nothing for UTC)"
            )
        };
        let b = s.as_bytes();
        let (base, offset) = if let Some(base) = b.strip_suffix(b" UTC") {
            (base, 0)
        } else if let Some(base) = b.strip_suffix(b"Z") {
            (base, 0)
        } else if let [base @ .., sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] = b {
            let (h, m) = (
                digits(&[*h1, *h2]).ok_or_else(bad)?,
                digits(&[*m1, *m2]).ok_or_else(bad)?,
            );
            if h > 23 || m > 59 {
                return Err(bad());
            }
            let minutes = h * 60 + m;
            (base, if *sign == b'-' { -minutes } else { minutes })
        } else {
            (b, 0)
        };
        // parse_fast would also take a second suffix (`Z UTC`): the base has none.
        if base.last().is_some_and(|c| !c.is_ascii_digit()) {
            return Err(bad());
        }
        let m = parse_fast(base).ok_or_else(bad)?;
        Ok(Micros(m.0 - offset * MINUTE))
    }

    pub fn from_datetime(t: chrono::DateTime<chrono::Utc>) -> Micros {
        Micros(t.timestamp_micros())
    }

    pub fn to_datetime(self) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp_micros(self.0).unwrap_or_default()
    }

    /// ISO 8601 with `Z`, as native routes answer.
    pub fn iso(self) -> String {
        sluice_core::time::iso(self.to_datetime())
    }
}

/// The ECMA-262 (and Python `re`) pattern of [`Micros::parse_request`]: valid calendar dates
/// of years 0000–9999 (leap years included), times up to 23:59:59.999999.
pub const INSTANT_PATTERN: &str = r"^(?:[0-9]{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))|(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)-02-29)[T ](?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,6})?(?:Z| UTC|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])?$";

fn digits(b: &[u8]) -> Option<i64> {
    let mut v = 0i64;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(c - b'0');
    }
    Some(v)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

/// The export's own format, byte by byte: millions of rows go through here.
fn parse_fast(b: &[u8]) -> Option<Micros> {
    let b = b.strip_suffix(b" UTC").unwrap_or(b);
    let b = b.strip_suffix(b"Z").unwrap_or(b);
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if b[10] != b' ' && b[10] != b'T' {
        return None;
    }
    let (y, mo, d) = (digits(&b[0..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
    let (h, mi, s) = (
        digits(&b[11..13])?,
        digits(&b[14..16])?,
        digits(&b[17..19])?,
    );
    if !(1..=12).contains(&mo) || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 59 {
        return None;
    }
    let frac = match &b[19..] {
        [] => 0,
        [b'.', f @ ..] if !f.is_empty() && f.len() <= 6 => {
            digits(f)? * 10i64.pow(6 - f.len() as u32)
        }
        _ => return None,
    };
    let secs = sluice_core::time::days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s;
    Some(Micros(secs * SECOND + frac))
}

/// `active` or `inactive`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Active,
    Inactive,
}

impl Status {
    pub fn parse(s: &str) -> Result<Status, String> {
        // The exact spellings first: every row of a polls file has one.
        match s {
            "active" => return Ok(Status::Active),
            "inactive" => return Ok(Status::Inactive),
            _ => {}
        }
        match s.trim() {
            "active" => Ok(Status::Active),
            "inactive" => Ok(Status::Inactive),
            other => Err(format!(
                "unknown status `{other}` (expected active or inactive)"
            )),
        }
    }
    pub fn is_active(self) -> bool {
        self == Status::Active
    }
}

/// Day of the week, 0 = Monday … 6 = Sunday.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Weekday(u8);

impl Weekday {
    pub fn parse(s: &str) -> Result<Weekday, String> {
        match s.trim().parse::<u8>() {
            Ok(d) if d <= 6 => Ok(Weekday(d)),
            _ => Err(format!("bad day `{s}` (expected 0 = Monday … 6 = Sunday)")),
        }
    }
    pub fn new(d: u8) -> Option<Weekday> {
        (d <= 6).then_some(Weekday(d))
    }
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

/// A local time of day in seconds since midnight; `24:00:00` (86 400) is accepted as an end.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LocalTime(u32);

impl LocalTime {
    pub fn parse(s: &str) -> Result<LocalTime, String> {
        let bad = || format!("bad time `{s}` (expected HH:MM:SS local time, 00:00:00 to 24:00:00)");
        let parts: Vec<&str> = s.trim().split(':').collect();
        if parts.len() < 2 || parts.len() > 3 {
            return Err(bad());
        }
        let field = |p: &str, max: u32| -> Result<u32, String> {
            if p.is_empty() || p.len() > 2 || !p.bytes().all(|c| c.is_ascii_digit()) {
                return Err(bad());
            }
            p.parse::<u32>().ok().filter(|v| *v <= max).ok_or_else(bad)
        };
        let h = field(parts[0], 24)?;
        let m = field(parts[1], 59)?;
        // Seconds are optional (`HH:MM`).
        let sec = match parts.get(2) {
            Some(p) => field(p, 59)?,
            None => 0,
        };
        let v = h * 3600 + m * 60 + sec;
        if v > 86_400 {
            return Err(bad());
        }
        Ok(LocalTime(v))
    }
    pub fn from_secs(secs: u32) -> Option<LocalTime> {
        (secs <= 86_400).then_some(LocalTime(secs))
    }
    pub fn secs(self) -> u32 {
        self.0
    }
}

impl fmt::Display for LocalTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02}:{:02}:{:02}",
            self.0 / 3600,
            self.0 / 60 % 60,
            self.0 % 60
        )
    }
}

/// An IANA time zone known to the bundled database.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Zone(pub Tz);

/// Stores without a zone are in Chicago.
pub const DEFAULT_ZONE: Zone = Zone(Tz::America__Chicago);

impl Zone {
    pub fn parse(s: &str) -> Result<Zone, String> {
        Tz::from_str(s.trim()).map(Zone).map_err(|_| {
            format!("unknown time zone `{s}` (expected an IANA name such as America/Chicago)")
        })
    }
    pub fn name(self) -> &'static str {
        self.0.name()
    }
}

/// One status poll; its store id borrows from the input row (ingestion parses millions of
/// them and keeps only a key per store).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PollRef<'a> {
    pub store: &'a str,
    pub at: Micros,
    pub status: Status,
}

fn missing(name: &str, len: usize) -> String {
    format!("missing column {name} (row has {len} fields)")
}

/// The columns of a polls file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PollColumns {
    pub store: usize,
    pub status: usize,
    pub at: usize,
}

impl PollColumns {
    /// One data row of `len` fields, given by `get`, or the reason it is rejected (the
    /// fields are checked in the order store, status, timestamp).
    pub fn parse<'a>(
        self,
        get: impl Fn(usize) -> Option<&'a [u8]>,
        len: usize,
    ) -> Result<PollRef<'a>, String> {
        self.parse_fields(|i, name| {
            let b = get(i).ok_or_else(|| missing(name, len))?;
            std::str::from_utf8(b).map_err(|_| format!("column {name} is not UTF-8"))
        })
    }

    /// [`PollColumns::parse`] of a row known to be UTF-8.
    pub fn parse_text<'a>(
        self,
        get: impl Fn(usize) -> Option<&'a str>,
        len: usize,
    ) -> Result<PollRef<'a>, String> {
        self.parse_fields(|i, name| get(i).ok_or_else(|| missing(name, len)))
    }

    fn parse_fields<'a>(
        self,
        field: impl Fn(usize, &str) -> Result<&'a str, String>,
    ) -> Result<PollRef<'a>, String> {
        Ok(PollRef {
            store: StoreId::check(field(self.store, "store_id")?)?,
            status: Status::parse(field(self.status, "status")?)?,
            at: Micros::parse(field(self.at, "timestamp_utc")?)?,
        })
    }
}

/// One business-hours interval in local time; `end <= start` runs past midnight.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hours {
    pub store: StoreId,
    pub day: Weekday,
    pub start: LocalTime,
    pub end: LocalTime,
}

/// A store's time zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreZone {
    pub store: StoreId,
    pub zone: Zone,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Row<'a> {
    Poll(PollRef<'a>),
    Hours(Hours),
    Zone(StoreZone),
}

/// Which source a file is, with the position of each column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    Polls {
        store: usize,
        status: usize,
        at: usize,
    },
    Hours {
        store: usize,
        day: usize,
        start: usize,
        end: usize,
    },
    Zones {
        store: usize,
        zone: usize,
    },
}

impl Layout {
    /// Recognises a header in any column order; extra columns are ignored.
    pub fn detect(header: &ByteRecord) -> Result<Layout, String> {
        let names: Vec<String> = header
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let s = String::from_utf8_lossy(f);
                let s = if i == 0 {
                    s.trim_start_matches('\u{feff}')
                } else {
                    &s
                };
                s.trim().to_ascii_lowercase()
            })
            .collect();
        let col = |want: &[&str]| names.iter().position(|n| want.contains(&n.as_str()));
        let store = col(&["store_id"]);
        if let (Some(store), Some(status), Some(at)) =
            (store, col(&["status"]), col(&["timestamp_utc"]))
        {
            return Ok(Layout::Polls { store, status, at });
        }
        if let (Some(store), Some(day), Some(start), Some(end)) = (
            store,
            col(&["dayofweek", "day"]),
            col(&["start_time_local"]),
            col(&["end_time_local"]),
        ) {
            return Ok(Layout::Hours {
                store,
                day,
                start,
                end,
            });
        }
        if let (Some(store), Some(zone)) = (store, col(&["timezone_str"])) {
            return Ok(Layout::Zones { store, zone });
        }
        Err(format!(
            "unrecognised header `{}`: expected the columns of status polls (store_id, status, timestamp_utc), business hours (store_id, dayOfWeek or day, start_time_local, end_time_local) or time zones (store_id, timezone_str)",
            names.join(",")
        ))
    }

    pub fn kind(self) -> &'static str {
        match self {
            Layout::Polls { .. } => "polls",
            Layout::Hours { .. } => "hours",
            Layout::Zones { .. } => "zones",
        }
    }

    /// The columns of a polls file, for other layouts None.
    pub fn polls(self) -> Option<PollColumns> {
        match self {
            Layout::Polls { store, status, at } => Some(PollColumns { store, status, at }),
            _ => None,
        }
    }

    /// One data row, or the reason it is rejected.
    pub fn parse(self, rec: &ByteRecord) -> Result<Row<'_>, String> {
        let field = |i: usize, name: &str| -> Result<&str, String> {
            let b = rec
                .get(i)
                .ok_or_else(|| format!("missing column {name} (row has {} fields)", rec.len()))?;
            std::str::from_utf8(b).map_err(|_| format!("column {name} is not UTF-8"))
        };
        Ok(match self {
            Layout::Polls { store, status, at } => {
                Row::Poll(PollColumns { store, status, at }.parse(|i| rec.get(i), rec.len())?)
            }
            Layout::Hours {
                store,
                day,
                start,
                end,
            } => Row::Hours(Hours {
                store: StoreId::parse(field(store, "store_id")?)?,
                day: Weekday::parse(field(day, "dayOfWeek")?)?,
                start: LocalTime::parse(field(start, "start_time_local")?)?,
                end: LocalTime::parse(field(end, "end_time_local")?)?,
            }),
            Layout::Zones { store, zone } => Row::Zone(StoreZone {
                store: StoreId::parse(field(store, "store_id")?)?,
                zone: Zone::parse(field(zone, "timezone_str")?)?,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_instants_are_exactly_the_pattern_language() {
        let at = |s: &str| Micros::parse_request(s).map(Micros::iso);
        for (s, want) in [
            ("2023-01-23T18:00:00Z", "2023-01-23T18:00:00Z"),
            ("2023-01-23 18:00:00 UTC", "2023-01-23T18:00:00Z"),
            ("2023-01-23 18:00:00", "2023-01-23T18:00:00Z"),
            ("2023-01-23T18:00:00.5+02:00", "2023-01-23T16:00:00.500Z"),
            ("2023-01-23T18:00:00-23:59", "2023-01-24T17:59:00Z"),
            ("2024-02-29T00:00:00Z", "2024-02-29T00:00:00Z"),
            ("2000-02-29T00:00:00Z", "2000-02-29T00:00:00Z"),
        ] {
            assert_eq!(at(s).as_deref(), Ok(want), "{s}");
        }
        for s in [
            " 2023-01-23T18:00:00Z",
            "2023-01-23T18:00:00Z ",
            "2023-01-23T18:00:00Z UTC",
            "2023-01-23T18:00:00ZZ",
            "2023-01-23T18:00:00.Z",
            "2023-01-23T18:00:00.1234567Z",
            "2023-01-23T18:00:00+24:00",
            "2023-01-23T18:00:00+0200",
            "2023-01-23T24:00:00Z",
            "2023-02-29T00:00:00Z",
            "1900-02-29T00:00:00Z",
            "2023-01-23",
            "2023-01-23T18:00Z",
            "2023-01-23_18:00:00",
        ] {
            assert!(at(s).is_err(), "{s}");
        }
    }

    #[test]
    fn store_ids_are_trimmed_printable_and_bounded() {
        let long = "9".repeat(MAX_STORE_ID);
        for (s, want) in [
            ("42", Some("42")),
            (" 42 ", Some("42")),
            ("\u{a0}5\t", Some("5")),
            ("a b", Some("a b")),
            ("é", Some("é")),
            (long.as_str(), Some(long.as_str())),
            (&format!("{long}9"), None),
            ("", None),
            ("  ", None),
            ("x\u{7}", None),
        ] {
            assert_eq!(StoreId::check(s).ok(), want, "{s:?}");
        }
    }

    fn rec(fields: &[&str]) -> ByteRecord {
        ByteRecord::from(fields.to_vec())
    }

    #[test]
    fn timestamps_with_zero_to_six_fraction_digits() {
        let base = Micros::parse("2023-01-22 12:09:39 UTC").unwrap();
        assert_eq!(base.0, 1_674_389_379 * SECOND);
        assert_eq!(
            Micros::parse("2023-01-22 12:09:39.388884 UTC").unwrap().0,
            base.0 + 388_884
        );
        assert_eq!(
            Micros::parse("2023-01-22 12:09:39.5 UTC").unwrap().0,
            base.0 + 500_000
        );
        assert_eq!(
            Micros::parse("2023-01-22T12:09:39.5Z").unwrap().0,
            base.0 + 500_000
        );
        assert_eq!(Micros::parse("2023-01-22T13:09:39+01:00").unwrap(), base);
        assert_eq!(Micros::parse("2023-01-22 12:09:39").unwrap(), base);
        for bad in [
            "2023-02-30 00:00:00 UTC",
            "2023-01-22 24:00:00",
            "yesterday",
            "",
            "2023-01-22 12:09:39,5 UTC",
        ] {
            assert!(
                Micros::parse(bad).unwrap_err().contains("bad timestamp"),
                "{bad}"
            );
        }
        assert_eq!(sluice_core::time::days_from_civil(1970, 1, 1), 0);
        assert_eq!(sluice_core::time::days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn times_days_statuses_zones() {
        assert_eq!(LocalTime::parse("09:30:15").unwrap().secs(), 34_215);
        assert_eq!(LocalTime::parse("9:30").unwrap().secs(), 34_200);
        assert_eq!(LocalTime::parse("24:00:00").unwrap().secs(), 86_400);
        for bad in [
            "24:00:01",
            "12:60:00",
            "noon",
            "12:00:00:00",
            "-1:00:00",
            "",
        ] {
            assert!(
                LocalTime::parse(bad).unwrap_err().contains("bad time"),
                "{bad}"
            );
        }
        assert_eq!(Weekday::parse("6").unwrap().index(), 6);
        assert!(Weekday::parse("7").unwrap_err().contains("bad day"));
        assert!(Status::parse("down")
            .unwrap_err()
            .contains("unknown status"));
        assert_eq!(Zone::parse("Asia/Beirut").unwrap().name(), "Asia/Beirut");
        assert!(Zone::parse("Mars/Olympus")
            .unwrap_err()
            .contains("unknown time zone"));
    }

    #[test]
    fn layouts_in_any_order_with_bom_and_day_variants() {
        let l = Layout::detect(&rec(&["\u{feff}timestamp_utc", "store_id", "status"])).unwrap();
        assert_eq!(
            l,
            Layout::Polls {
                store: 1,
                status: 2,
                at: 0
            }
        );
        let r = rec(&["2023-01-25 18:13:22.47922 UTC", " 42", "inactive"]);
        assert_eq!(
            l.parse(&r).unwrap(),
            Row::Poll(PollRef {
                store: "42",
                at: Micros::parse("2023-01-25 18:13:22.479220 UTC").unwrap(),
                status: Status::Inactive
            })
        );
        for day in ["day", "dayOfWeek"] {
            let l = Layout::detect(&rec(&[
                "store_id",
                day,
                "start_time_local",
                "end_time_local",
            ]))
            .unwrap();
            assert_eq!(l.kind(), "hours");
        }
        let l = Layout::detect(&rec(&["timezone_str", "store_id"])).unwrap();
        assert_eq!(l, Layout::Zones { store: 1, zone: 0 });
        let err = Layout::detect(&rec(&["a", "b"])).unwrap_err();
        assert!(err.contains("unrecognised header"), "{err}");
        let short = Layout::Zones { store: 1, zone: 0 }
            .parse(&rec(&["x"]))
            .unwrap_err();
        assert!(short.contains("missing column store_id"), "{short}");
    }
}
