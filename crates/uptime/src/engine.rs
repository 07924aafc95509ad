//! The report computation, pure and store by store. All instants are microseconds since the
//! Unix epoch (UTC); a span is `[start, end)`.
//!
//! # The documented rules
//! - **Business time.** An instant is business time when the store's local wall-clock time at
//!   that instant lies inside one of its intervals for that local weekday; an interval whose
//!   end is before its start continues past midnight into the next local day, and one whose
//!   end equals its start lasts 24 hours. A store with no intervals at all is open 24×7 (it is
//!   closed on days without intervals otherwise). Local times are taken from the store's zone
//!   (America/Chicago when it has none), converted day by day: within each stretch of constant
//!   UTC offset the local day is mapped to UTC with that offset.
//! - **Daylight saving, deterministically.** A consequence of the wall-clock rule: local times
//!   skipped by a spring-forward change never occur (an interval 02:00–03:00 on that night is
//!   empty, 01:00–03:00 lasts one hour), and local times repeated by a fall-back change count
//!   both times (01:00–02:00 lasts two hours).
//! - **Status between polls.** Every instant takes the status of the nearest poll in time, so
//!   the status switches half-way between two polls (at an exact tie, the later poll wins);
//!   before the first poll and after the last the nearest poll holds. So for a store with at
//!   least one poll, uptime + downtime = business time in every window.
//! - **Coverage.** The business time of a window whose nearest poll is at most the configured
//!   distance away (default 2 h): how much of a figure rests on a nearby poll rather than on
//!   extrapolation.

use chrono::{DateTime, Offset, TimeZone};
use chrono_tz::Tz;
use serde::Serialize;

use crate::parse::{LocalTime, Weekday, DAY, HOUR, MINUTE, SECOND};

/// `[start, end)` in microseconds since the epoch.
pub type Span = (i64, i64);

/// A store's weekly business hours, in local seconds since midnight per weekday.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BusinessHours {
    /// No hours delivered: open 24×7.
    Always,
    /// Intervals per weekday (0 = Monday); a day without intervals is closed.
    Weekly(Box<[Vec<(u32, u32)>; 7]>),
}

impl BusinessHours {
    /// Collects intervals; none at all means 24×7.
    pub fn from_intervals(
        intervals: impl IntoIterator<Item = (Weekday, LocalTime, LocalTime)>,
    ) -> BusinessHours {
        let mut days: Box<[Vec<(u32, u32)>; 7]> = Box::default();
        let mut any = false;
        for (day, start, end) in intervals {
            days[day.index()].push((start.secs(), end.secs()));
            any = true;
        }
        if any {
            BusinessHours::Weekly(days)
        } else {
            BusinessHours::Always
        }
    }
}

/// The zone's UTC offset at an instant, in microseconds.
pub fn offset_at(tz: Tz, at: i64) -> i64 {
    let utc = DateTime::from_timestamp_micros(at)
        .unwrap_or_default()
        .naive_utc();
    i64::from(tz.offset_from_utc_datetime(&utc).fix().local_minus_utc()) * SECOND
}

/// Splits `[from, to)` into stretches of constant UTC offset: `(start, end, offset)`.
/// Offsets are probed every hour (no zone changes twice within an hour) and each change is
/// located to the microsecond by bisection. Computed once per zone and report.
pub fn offset_spans(tz: Tz, from: i64, to: i64) -> Vec<(i64, i64, i64)> {
    let mut spans = Vec::new();
    if from >= to {
        return spans;
    }
    let (mut start, mut off) = (from, offset_at(tz, from));
    let mut probe = from;
    while probe < to {
        let next = (probe + HOUR).min(to - 1);
        let next_off = offset_at(tz, next);
        if next_off != off {
            // offset_at(lo) == off, offset_at(hi) != off.
            let (mut lo, mut hi) = (probe, next);
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if offset_at(tz, mid) == off {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            spans.push((start, hi, off));
            start = hi;
            off = offset_at(tz, hi);
        }
        if next == to - 1 {
            break;
        }
        probe = next;
    }
    spans.push((start, to, off));
    spans
}

/// Weekday (0 = Monday) of a day counted from 1970-01-01, a Thursday.
fn weekday_of(day: i64) -> usize {
    (day + 3).rem_euclid(7) as usize
}

/// The store's business time inside the zone stretches (from [`offset_spans`]) as sorted,
/// disjoint UTC spans, written to `out` (cleared first).
pub fn business_spans(hours: &BusinessHours, zone: &[(i64, i64, i64)], out: &mut Vec<Span>) {
    out.clear();
    match hours {
        BusinessHours::Always => out.extend(zone.iter().map(|&(a, b, _)| (a, b))),
        BusinessHours::Weekly(days) => {
            for &(a, b, off) in zone {
                // The local days this stretch touches, and the day before for overnight hours.
                let first = (a + off).div_euclid(DAY) - 1;
                let last = (b - 1 + off).div_euclid(DAY);
                for d in first..=last {
                    for &(s, e) in &days[weekday_of(d)] {
                        let ls = d * DAY + i64::from(s) * SECOND;
                        let le = if e > s {
                            d * DAY + i64::from(e) * SECOND
                        } else {
                            (d + 1) * DAY + i64::from(e) * SECOND
                        };
                        let (u, v) = ((ls - off).max(a), (le - off).min(b));
                        if u < v {
                            out.push((u, v));
                        }
                    }
                }
            }
        }
    }
    merge(out);
}

/// Sorts spans and merges overlapping or touching ones (several intervals may overlap).
fn merge(spans: &mut Vec<Span>) {
    spans.sort_unstable();
    let mut w = 0;
    for r in 0..spans.len() {
        if w > 0 && spans[r].0 <= spans[w - 1].1 {
            spans[w - 1].1 = spans[w - 1].1.max(spans[r].1);
        } else {
            spans[w] = spans[r];
            w += 1;
        }
    }
    spans.truncate(w);
}

/// One poll as the engine sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PollPoint {
    pub at: i64,
    pub up: bool,
}

/// Keeps, from a store's polls in time order, only those that decide the status inside
/// `[from, to)`: the last one before, all inside, the first one at or after `to`.
#[derive(Debug)]
pub struct RelevantPolls {
    from: i64,
    to: i64,
    polls: Vec<PollPoint>,
    complete: bool,
}

impl RelevantPolls {
    pub fn new(from: i64, to: i64) -> RelevantPolls {
        RelevantPolls {
            from,
            to,
            polls: Vec::new(),
            complete: false,
        }
    }

    /// Starts over for the next store, keeping the allocation.
    pub fn clear(&mut self) {
        self.polls.clear();
        self.complete = false;
    }

    /// Takes the next poll (in time order); false once later polls cannot matter.
    pub fn push(&mut self, p: PollPoint) -> bool {
        if self.complete {
            return false;
        }
        if p.at < self.from {
            self.polls.clear();
        } else if p.at >= self.to {
            self.complete = true;
        }
        self.polls.push(p);
        !self.complete
    }

    pub fn polls(&self) -> &[PollPoint] {
        &self.polls
    }
}

/// The instant where the status switches from poll `a` to poll `b`: half-way, ties to `b`.
fn switch(a: i64, b: i64) -> i64 {
    a + (b - a + 1) / 2
}

/// The status cells of sorted polls: `(start, end, poll)`, covering all time.
pub fn cells(polls: &[PollPoint]) -> impl Iterator<Item = (i64, i64, PollPoint)> + '_ {
    polls.iter().enumerate().map(move |(i, p)| {
        let lo = if i == 0 {
            i64::MIN
        } else {
            switch(polls[i - 1].at, p.at)
        };
        let hi = match polls.get(i + 1) {
            Some(n) => switch(p.at, n.at),
            None => i64::MAX,
        };
        (lo, hi, *p)
    })
}

/// Business, up, down and covered time of one window, in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct WindowFigures {
    pub business: i64,
    pub up: i64,
    pub down: i64,
    pub covered: i64,
}

/// The report's three windows ending at `now`: last hour, day and week.
pub fn report_windows(now: i64) -> [i64; 3] {
    [now - HOUR, now - DAY, now - 7 * DAY]
}

/// Figures of windows `[starts[i], end)` for one store. `business` must cover at least the
/// earliest window (sorted, disjoint, ending at or before `end`); `polls` sorted by time.
pub fn compute<const N: usize>(
    starts: [i64; N],
    end: i64,
    business: &[Span],
    polls: &[PollPoint],
    coverage: i64,
) -> [WindowFigures; N] {
    let mut out = [WindowFigures::default(); N];
    for &(a, b) in business {
        let b = b.min(end);
        for (w, &ws) in out.iter_mut().zip(&starts) {
            w.business += (b - a.max(ws)).max(0);
        }
    }
    let mut j = 0;
    for (lo, hi, p) in cells(polls) {
        while j < business.len() && business[j].1 <= lo {
            j += 1;
        }
        for &(a, b) in business[j..].iter().take_while(|s| s.0 < hi) {
            let (x, y) = (a.max(lo), b.min(hi).min(end));
            for (w, &ws) in out.iter_mut().zip(&starts) {
                let x = x.max(ws);
                if x >= y {
                    continue;
                }
                if p.up {
                    w.up += y - x;
                } else {
                    w.down += y - x;
                }
                let (cx, cy) = (x.max(p.at - coverage), y.min(p.at + coverage));
                w.covered += (cy - cx).max(0);
            }
        }
    }
    out
}

/// A stretch of one status, for timelines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub start: i64,
    pub end: i64,
    pub up: bool,
    /// The poll the status comes from.
    pub poll_at: i64,
}

/// The status cells clipped to `[from, to)`.
pub fn segments(polls: &[PollPoint], from: i64, to: i64) -> Vec<Segment> {
    cells(polls)
        .filter_map(|(lo, hi, p)| {
            let (s, e) = (lo.max(from), hi.min(to));
            (s < e).then_some(Segment {
                start: s,
                end: e,
                up: p.up,
                poll_at: p.at,
            })
        })
        .collect()
}

/// Microseconds as minutes, for the hour window.
pub fn minutes(us: i64) -> f64 {
    us as f64 / MINUTE as f64
}

/// Microseconds as hours, for the day and week windows.
pub fn hours(us: i64) -> f64 {
    us as f64 / HOUR as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_joins_overlaps() {
        let mut v = vec![(5, 8), (1, 3), (2, 4), (8, 9)];
        merge(&mut v);
        assert_eq!(v, vec![(1, 4), (5, 9)]);
    }

    #[test]
    fn switch_is_half_way_ties_to_the_later_poll() {
        assert_eq!(switch(0, 10), 5);
        assert_eq!(switch(0, 11), 6);
        let polls = [
            PollPoint { at: 0, up: true },
            PollPoint { at: 10, up: false },
        ];
        let c: Vec<_> = cells(&polls).map(|(a, b, _)| (a, b)).collect();
        assert_eq!(c, vec![(i64::MIN, 5), (5, i64::MAX)]);
    }

    #[test]
    fn relevant_polls_keep_one_on_each_side() {
        let mut r = RelevantPolls::new(100, 200);
        for at in [10, 50, 120, 150] {
            assert!(r.push(PollPoint { at, up: true }));
        }
        // The first poll at or after the end still counts; later ones are not wanted.
        assert!(!r.push(PollPoint { at: 210, up: true }));
        assert!(!r.push(PollPoint { at: 250, up: true }));
        let ats: Vec<i64> = r.polls().iter().map(|p| p.at).collect();
        assert_eq!(ats, vec![50, 120, 150, 210]);
    }

    #[test]
    fn chicago_offsets_change_at_the_spring_transition() {
        // 2024-03-10 08:00 UTC: CST (-6 h) becomes CDT (-5 h).
        let t = 1_710_057_600 * SECOND;
        let spans = offset_spans(Tz::America__Chicago, t - DAY, t + DAY);
        assert_eq!(
            spans,
            vec![(t - DAY, t, -6 * HOUR), (t, t + DAY, -5 * HOUR)]
        );
    }
}
