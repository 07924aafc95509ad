//! UTC timestamps as the APIs accept them: ISO 8601 (with `Z` or an offset), and the naive
//! `YYYY-MM-DD HH:MM:SS[.ffffff]`, `YYYY-MM-DD_HH:MM:SS` and `YYYY-MM-DDTHH:MM:SS` forms, which
//! are taken as UTC.

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, Utc};

/// Parses a timestamp in any accepted form. The error says which forms are accepted.
pub fn parse_utc(s: &str) -> Result<DateTime<Utc>, String> {
    let t = s.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
        return Ok(dt.with_timezone(&Utc));
    }
    let t = t.strip_suffix(" UTC").unwrap_or(t);
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d_%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(t, fmt) {
            return Ok(n.and_utc());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc());
    }
    Err(format!(
        "`{s}` is not a timestamp; expected ISO 8601 (2017-03-01T08:00:00Z) or YYYY-MM-DD HH:MM:SS (UTC)"
    ))
}

/// ISO 8601 with `Z`, seconds precision unless there are sub-seconds.
pub fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Epoch milliseconds to a UTC time (None when out of chrono's range).
pub fn from_millis(ms: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(ms)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm): the
/// allocation-free core of the hot timestamp parsers of the domains.
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian (year, month, day) of a day count since 1970-01-01: the inverse
/// of [`days_from_civil`] (Howard Hinnant's algorithm).
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    #[test]
    fn days_from_civil_matches_chrono() {
        for (y, m, d) in [
            (1970, 1, 1),
            (2000, 2, 29),
            (2000, 3, 1),
            (1969, 12, 31),
            (2024, 12, 31),
        ] {
            let want = chrono::NaiveDate::from_ymd_opt(y as i32, m as u32, d as u32)
                .unwrap()
                .signed_duration_since(chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap())
                .num_days();
            assert_eq!(super::days_from_civil(y, m, d), want, "{y}-{m}-{d}");
            assert_eq!(super::civil_from_days(want), (y, m, d), "{want}");
        }
    }

    use super::*;

    #[test]
    fn accepted_forms() {
        let want = from_millis(1_488_355_200_000).unwrap();
        for s in [
            "2017-03-01T08:00:00Z",
            "2017-03-01T09:00:00+01:00",
            "2017-03-01 08:00:00",
            "2017-03-01_08:00:00",
            "2017-03-01T08:00:00",
            "2017-03-01 08:00:00.000 UTC",
        ] {
            assert_eq!(parse_utc(s).unwrap(), want, "{s}");
        }
        assert!(parse_utc("2017-13-01").unwrap_err().contains("ISO 8601"));
        assert_eq!(iso(want), "2017-03-01T08:00:00Z");
    }
}
