//! The engine against a brute-force reference on thousands of random stores: every minute of
//! the week is classified on its own (local wall-clock time → business or not, nearest poll →
//! up or down, distance → covered) and counted. Inputs are whole minutes (polls on even
//! minutes, so half-way switches are whole minutes too) and the zones change offset on
//! quarter hours, so both sides must agree to the microsecond.

use chrono::{Offset, TimeZone};
use chrono_tz::Tz;
use proptest::prelude::*;
use sluice_uptime::engine::{self, BusinessHours, PollPoint, RelevantPolls, WindowFigures};
use sluice_uptime::parse::{LocalTime, Weekday, DAY, MINUTE};

/// Zones with US, European and southern-hemisphere DST, a 30-minute DST change (Lord Howe),
/// 45-minute offsets (Kathmandu, Chatham) and none at all (Phoenix).
const ZONES: &[Tz] = &[
    Tz::America__Chicago,
    Tz::America__New_York,
    Tz::America__Los_Angeles,
    Tz::America__Phoenix,
    Tz::Europe__London,
    Tz::Australia__Lord_Howe,
    Tz::Asia__Kathmandu,
    Tz::Pacific__Chatham,
];

/// Weeks around DST changes: US spring and autumn 2024, Europe spring 2024, southern
/// hemisphere April 2024, plus a quiet week.
const ANCHORS: &[&str] = &[
    "2024-03-08T00:00:00Z",
    "2024-11-01T00:00:00Z",
    "2024-03-29T00:00:00Z",
    "2024-04-05T00:00:00Z",
    "2024-09-27T00:00:00Z",
    "2023-01-20T00:00:00Z",
];

const COVERAGE: i64 = 120 * MINUTE;

#[derive(Clone, Debug)]
struct Store {
    zone: Tz,
    /// (day, start minute, end minute), end up to 24:00.
    hours: Vec<(u8, u32, u32)>,
    now: i64,
    /// Sorted, distinct, on even minutes.
    polls: Vec<PollPoint>,
}

fn store() -> impl Strategy<Value = Store> {
    (
        0..ZONES.len(),
        prop::collection::vec((0u8..7, 0u32..1440, 0u32..=1440), 0..6),
        0..ANCHORS.len(),
        0i64..10 * 1440,
        prop::collection::vec((-5i64 * 1440..6 * 1440, any::<bool>()), 0..40),
    )
        .prop_map(|(z, hours, a, shift, raw)| {
            let anchor = chrono::DateTime::parse_from_rfc3339(ANCHORS[a])
                .unwrap()
                .timestamp_micros();
            let now = anchor + shift * MINUTE;
            let mut polls: Vec<PollPoint> = raw
                .into_iter()
                .map(|(m, up)| PollPoint {
                    // Relative to now: from 9 days before to 1 day after, on even minutes.
                    at: now + (m - 4 * 1440) / 2 * 2 * MINUTE,
                    up,
                })
                .collect();
            polls.sort_by_key(|p| p.at);
            polls.dedup_by_key(|p| p.at);
            Store {
                zone: ZONES[z],
                hours,
                now,
                polls,
            }
        })
}

fn engine_figures(s: &Store) -> [WindowFigures; 3] {
    let starts = engine::report_windows(s.now);
    let hours = BusinessHours::from_intervals(s.hours.iter().map(|&(d, a, b)| {
        (
            Weekday::new(d).unwrap(),
            LocalTime::from_secs(a * 60).unwrap(),
            LocalTime::from_secs(b * 60).unwrap(),
        )
    }));
    let mut business = Vec::new();
    engine::business_spans(
        &hours,
        &engine::offset_spans(s.zone, starts[2], s.now),
        &mut business,
    );
    let mut relevant = RelevantPolls::new(starts[2], s.now);
    for p in &s.polls {
        if !relevant.push(*p) {
            break;
        }
    }
    engine::compute(starts, s.now, &business, relevant.polls(), COVERAGE)
}

/// Minute by minute. Offsets are looked up once per quarter hour (every zone here changes
/// offset on a UTC quarter hour).
fn reference(s: &Store) -> [WindowFigures; 3] {
    let starts = engine::report_windows(s.now);
    let mut out = [WindowFigures::default(); 3];
    let mut offset = 0;
    let mut next = 0;
    let mut m = starts[2];
    while m < s.now {
        if (m / MINUTE) % 15 == 0 || m == starts[2] {
            let t = chrono::DateTime::from_timestamp_micros(m)
                .unwrap()
                .naive_utc();
            offset =
                i64::from(s.zone.offset_from_utc_datetime(&t).fix().local_minus_utc()) * 1_000_000;
        }
        let local = m + offset;
        let day = local.div_euclid(DAY);
        let weekday = (day + 3).rem_euclid(7) as u8; // 1970-01-01 was a Thursday
        let minute = (local.rem_euclid(DAY) / MINUTE) as u32;
        let business = s.hours.is_empty()
            || s.hours.iter().any(|&(d, a, b)| {
                if b > a {
                    d == weekday && a <= minute && minute < b
                } else {
                    (d == weekday && minute >= a) || ((d + 1) % 7 == weekday && minute < b)
                }
            });
        // The nearest poll; at a tie the later one.
        while next + 1 < s.polls.len() && s.polls[next + 1].at - m <= m - s.polls[next].at {
            next += 1;
        }
        let nearest = s.polls.get(next);
        if business {
            for (w, &start) in out.iter_mut().zip(&starts) {
                if m < start {
                    continue;
                }
                w.business += MINUTE;
                if let Some(p) = nearest {
                    if p.up {
                        w.up += MINUTE;
                    } else {
                        w.down += MINUTE;
                    }
                    if m >= p.at - COVERAGE && m < p.at + COVERAGE {
                        w.covered += MINUTE;
                    }
                }
            }
        }
        m += MINUTE;
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn engine_equals_minute_by_minute_reference(s in store()) {
        let got = engine_figures(&s);
        prop_assert_eq!(got, reference(&s));
        if !s.polls.is_empty() {
            for w in got {
                prop_assert_eq!(w.up + w.down, w.business);
            }
        }
    }
}
