//! The time parameters of every network route, in one grammar that the OpenAPI document
//! states as a pattern: `YYYY-MM-DD`, optionally followed by `T`, `_` or a space and
//! `HH:MM[:SS[.fraction]]`, optionally followed by `Z` or `±HH:MM`. A time without an offset
//! is read in the route's zone (UTC, or the Flask routes' `compat_time_zone`).
//!
//! The parser accepts exactly what [`PATTERN`] matches — every calendar day, no more — so a
//! client that follows the document is never refused and one that does not is always told.

use chrono::{FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone};
use chrono_tz::Tz;

/// The grammar as an ECMA-262 regular expression (leap years included), empty = no filter.
pub const PATTERN: &str = concat!(
    "^$|^(",
    // a day of a 31-day month, of a 30-day month, of February up to the 28th …
    "[0-9]{4}-((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8]))",
    // … or February 29th of a leap year
    "|([0-9]{2}(0[48]|[2468][048]|[13579][26])|([02468][048]|[13579][26])00)-02-29",
    ")",
    "([T_ ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\\.[0-9]{1,9})?)?",
    "(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?)?$"
);

/// Longest text [`PATTERN`] matches.
pub const MAX_LEN: usize = 35;

fn expected(s: &str) -> String {
    format!(
        "`{s}` is not a time; expected YYYY-MM-DD, optionally followed by T, _ or a space and \
         HH:MM[:SS[.fraction]], and optionally by Z or ±HH:MM (e.g. 2017-03-01_10:00:00)"
    )
}

/// `n` ASCII digits at `at` as a number.
fn digits(b: &[u8], at: usize, n: usize) -> Option<u32> {
    let field = b.get(at..at + n)?;
    field.iter().try_fold(0u32, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

/// `HH:MM` at `at`, within a day.
fn hour_minute(b: &[u8], at: usize) -> Option<(u32, u32)> {
    let h = digits(b, at, 2).filter(|h| *h <= 23)?;
    (b.get(at + 2) == Some(&b':')).then_some(())?;
    let m = digits(b, at + 3, 2).filter(|m| *m <= 59)?;
    Some((h, m))
}

/// Where a parsed time is anchored.
enum Anchor {
    Local,
    Offset(FixedOffset),
}

fn parse_parts(b: &[u8]) -> Option<(NaiveDateTime, Anchor)> {
    let y = digits(b, 0, 4)?;
    let m = digits(b, 5, 2)?;
    let d = digits(b, 8, 2)?;
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, m, d)?;
    if b.len() == 10 {
        return Some((date.and_time(NaiveTime::MIN), Anchor::Local));
    }
    if !matches!(b.get(10), Some(b'T' | b'_' | b' ')) {
        return None;
    }
    let (hh, mm) = hour_minute(b, 11)?;
    let mut at = 16;
    let (mut ss, mut nanos) = (0, 0);
    if b.get(at) == Some(&b':') {
        ss = digits(b, at + 1, 2).filter(|s| *s <= 59)?;
        at += 3;
        if b.get(at) == Some(&b'.') {
            let n = b[at + 1..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
            if !(1..=9).contains(&n) {
                return None;
            }
            nanos = digits(b, at + 1, n)? * 10u32.pow(9 - n as u32);
            at += 1 + n;
        }
    }
    let time = NaiveTime::from_hms_nano_opt(hh, mm, ss, nanos)?;
    let anchor = match &b[at..] {
        [] => Anchor::Local,
        [b'Z'] => Anchor::Offset(FixedOffset::east_opt(0)?),
        [sign @ (b'+' | b'-'), rest @ ..] if rest.len() == 5 => {
            let (oh, om) = hour_minute(rest, 0)?;
            let secs = i32::try_from(oh * 3600 + om * 60).ok()?;
            Anchor::Offset(FixedOffset::east_opt(if *sign == b'-' {
                -secs
            } else {
                secs
            })?)
        }
        _ => return None,
    };
    Some((date.and_time(time), anchor))
}

/// Parses one time parameter to epoch milliseconds; a time without offset is in `zone`.
pub fn parse(s: &str, zone: Tz) -> Result<i64, String> {
    // Python's JSON Schema tools let `$` match before a final newline, so clients generated
    // from the document may send one; it is the only slack beyond the pattern.
    let text = s.strip_suffix('\n').unwrap_or(s);
    let (naive, anchor) = parse_parts(text.as_bytes()).ok_or_else(|| expected(s))?;
    let instant = match anchor {
        Anchor::Offset(o) => naive - o.fix(),
        // A local time skipped by a clock change has no instant: it is read with the offset
        // in force at that wall time read as UTC, so every valid text still names a time.
        Anchor::Local => match zone.from_local_datetime(&naive).earliest() {
            Some(t) => t.naive_utc(),
            None => naive - zone.offset_from_utc_datetime(&naive).fix(),
        },
    };
    Ok(instant.and_utc().timestamp_millis())
}

/// Parses an optional time parameter (empty = no filter); a bad one is a 400 naming it.
pub fn param(name: &str, v: Option<&str>, zone: Tz) -> Result<Option<i64>, sluice_core::ApiError> {
    // Python's JSON Schema tools match `^$` against a lone newline: an empty value too.
    match v.map(|s| s.strip_suffix('\n').unwrap_or(s)) {
        None | Some("") => Ok(None),
        Some(s) => parse(s, zone)
            .map(Some)
            .map_err(|e| sluice_core::ApiError::bad_param(name, e)),
    }
}

/// Epoch milliseconds as `YYYY-MM-DD HH:MM:SS` in `zone` (the Flask routes' times), empty
/// outside chrono's range: what chrono's `format("%Y-%m-%d %H:%M:%S")` of the instant in
/// `zone` prints, without its format-string interpreter and allocation (a quarter of a
/// `/kpi1` request's CPU went there).
pub fn write_local(ms: i64, zone: Tz, out: &mut impl std::fmt::Write) -> std::fmt::Result {
    let Some(utc) = sluice_core::time::from_millis(ms) else {
        return Ok(());
    };
    let offset = zone.offset_from_utc_datetime(&utc.naive_utc()).fix();
    let secs = ms.div_euclid(1000) + i64::from(offset.local_minus_utc());
    let days = secs.div_euclid(86_400);
    let (y, m, d) = sluice_core::time::civil_from_days(days);
    if !(0..=9999).contains(&y) {
        // chrono signs years outside four digits; leave them to it.
        return write!(
            out,
            "{}",
            utc.with_timezone(&zone).format("%Y-%m-%d %H:%M:%S")
        );
    }
    let t = secs.rem_euclid(86_400);
    let mut b = *b"0000-00-00 00:00:00";
    let mut put = |at: usize, v: i64, n: usize| {
        let mut v = v;
        for i in (at..at + n).rev() {
            b[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, y, 4);
    put(5, m, 2);
    put(8, d, 2);
    put(11, t / 3600, 2);
    put(14, t / 60 % 60, 2);
    put(17, t % 60, 2);
    out.write_str(std::str::from_utf8(&b).expect("ASCII digits"))
}

/// The JSON Schema of a time parameter.
pub fn schema() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .pattern(Some(PATTERN))
        .max_length(Some(MAX_LEN))
        .examples(["2017-03-01_10:00:00", "2017-03-01T08:00:00Z"])
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0800Z: i64 = 1_488_355_200_000;

    #[test]
    fn forms_and_zones() {
        let athens: Tz = "Europe/Athens".parse().unwrap();
        for (s, zone, want) in [
            ("2017-03-01_08:00:00", Tz::UTC, T0800Z),
            ("2017-03-01_10:00:00", athens, T0800Z),
            ("2017-03-01T08:00:00Z", athens, T0800Z),
            ("2017-03-01T09:00:00+01:00", Tz::UTC, T0800Z),
            ("2017-03-01 08:00", Tz::UTC, T0800Z),
            ("2017-03-01T08:00:00.250", Tz::UTC, T0800Z + 250),
            ("2017-03-01", Tz::UTC, T0800Z - 8 * 3_600_000),
            ("2017-03-01_08:00:00\n", Tz::UTC, T0800Z),
        ] {
            assert_eq!(parse(s, zone), Ok(want), "{s:?}");
        }
        assert_eq!(param("from", Some("\n"), Tz::UTC).unwrap(), None);
        assert_eq!(param("from", Some(""), Tz::UTC).unwrap(), None);
        assert!(param("from", Some(" "), Tz::UTC).is_err());
        // 03:30 on 2017-03-26 does not exist in Athens (clocks jump 03:00 → 04:00).
        assert!(parse("2017-03-26_03:30:00", athens).is_ok());
    }

    #[test]
    fn local_times_are_chronos() {
        use rand::{Rng, SeedableRng};
        let chrono_text = |ms: i64, zone: Tz| {
            sluice_core::time::from_millis(ms)
                .map(|t| {
                    t.with_timezone(&zone)
                        .format("%Y-%m-%d %H:%M:%S")
                        .to_string()
                })
                .unwrap_or_default()
        };
        let zones: Vec<Tz> = [
            "UTC",
            "Europe/Athens",
            "America/New_York",
            "Australia/Lord_Howe",
            "Asia/Kathmandu",
            "Pacific/Chatham",
        ]
        .iter()
        .map(|z| z.parse().unwrap())
        .collect();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        // Around 1970, every clock change of the 2010s, the ends of four-digit years and of
        // chrono's range, and anything in between.
        let year_ms = 31_556_952_000_i64;
        let mut instants = vec![i64::MIN, i64::MAX, -1, 0, 1, 999, 1000];
        for _ in 0..20_000 {
            instants.push(rng.random_range(-2 * year_ms..2 * year_ms));
            instants.push(rng.random_range(40 * year_ms..50 * year_ms));
            instants.push(rng.random::<i64>() >> rng.random_range(0..30));
        }
        for edge in [-1970 * year_ms, (9999 - 1970 + 1) * year_ms] {
            for _ in 0..2000 {
                instants.push(edge + rng.random_range(-3 * 86_400_000..3 * 86_400_000));
            }
        }
        for &ms in &instants {
            for &zone in &zones {
                let mut fast = String::new();
                write_local(ms, zone, &mut fast).unwrap();
                assert_eq!(fast, chrono_text(ms, zone), "{ms} in {zone}");
            }
        }
    }

    #[test]
    fn the_parser_accepts_exactly_what_the_pattern_matches() {
        let re = regex::Regex::new(PATTERN).unwrap();
        let mut texts: Vec<String> = Vec::new();
        for y in ["1900", "2000", "2016", "2017", "2100", "0000", "9999"] {
            for m in 0..=13 {
                for d in 0..=32 {
                    texts.push(format!("{y}-{m:02}-{d:02}"));
                }
            }
        }
        for t in [
            "2017-03-01_23:59:59.123456789",
            "2017-03-01_23:59:59.1234567890",
            "2017-03-01_24:00:00",
            "2017-03-01_10:60",
            "2017-03-01_10:00:60",
            "2017-03-01T10:00Z",
            "2017-03-01T10:00:00-23:59",
            "2017-03-01T10:00:00+24:00",
            "2017-03-01T10:00:00+0100",
            "2017-03-01Z",
            "2017-03-01 ",
            "2017-03-01t10:00",
            "2017-3-01",
            " 2017-03-01",
            "17-03-01",
            "2017-03-01_10:00:00.",
            "2017-03-01_10",
            "",
            "+2017-03-01",
            "２０１７-03-01",
        ] {
            texts.push(t.to_owned());
        }
        for t in &texts {
            let by_parser = t.is_empty() || parse(t, Tz::UTC).is_ok();
            assert_eq!(re.is_match(t), by_parser, "{t:?}");
            assert!(!by_parser || t.len() <= MAX_LEN, "{t:?}");
        }
    }
}
