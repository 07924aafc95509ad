//! The per-run report, computed from a run's facts and its events. Pure: no I/O, so every
//! rule (time order, successful streams, start rate, ages) is unit-tested here.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::parse::{age, amsterdam, EventKind, Stream};

/// What the report needs of one stored event.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportEvent {
    /// Arrival order in the run; breaks ties between events of the same millisecond.
    pub seq: i64,
    pub stream: Stream,
    pub kind: EventKind,
    pub at: DateTime<Utc>,
    pub user_id: i64,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub date_of_birth: Option<NaiveDate>,
    pub show_id: String,
    pub platform: String,
    pub title: Option<String>,
    pub first_actor: Option<String>,
    pub release_year: Option<i64>,
}

/// A harvest run as stored.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Run {
    /// The run id, which is also its job id.
    pub run_id: String,
    /// `running`, `succeeded` or `failed`.
    pub state: String,
    pub source: String,
    /// ISO 8601 UTC.
    pub started_at: String,
    #[schema(required = true)]
    pub finished_at: Option<String>,
    #[schema(required = true)]
    pub stop_reason: Option<String>,
    #[schema(required = true)]
    pub error: Option<String>,
    pub consumption_ms: Consumption,
    pub events_total: u64,
    pub malformed_total: u64,
}

/// How long each stream was consumed, and the whole run, in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, ToSchema)]
pub struct Consumption {
    #[schema(required = true)]
    pub sytflix: Option<u64>,
    #[schema(required = true)]
    pub sytazon: Option<u64>,
    #[schema(required = true)]
    pub sysney: Option<u64>,
    #[schema(required = true)]
    pub total: Option<u64>,
}

/// A count per stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct PerStream {
    pub sytflix: u64,
    pub sytazon: u64,
    pub sysney: u64,
}

impl PerStream {
    pub fn from_array(a: [u64; 3]) -> Self {
        PerStream {
            sytflix: a[0],
            sytazon: a[1],
            sysney: a[2],
        }
    }
    pub fn total(&self) -> u64 {
        self.sytflix + self.sytazon + self.sysney
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Report {
    #[serde(flatten)]
    pub run: Run,
    /// The date ages are computed at (the run's start, UTC).
    pub run_date: String,
    pub events_per_stream: PerStream,
    pub events_per_type: BTreeMap<String, u64>,
    pub malformed_per_stream: PerStream,
    pub users_total: u64,
    /// Distinct (platform, show id) with release year 2020 or later.
    pub recent_shows: u64,
    /// `stream-started` on Sytflix / all Sytflix events × 100, divided before multiplied (as
    /// the replaced system did, so both give the same float); null without Sytflix events.
    #[schema(required = true)]
    pub sytflix_start_rate: Option<f64>,
    pub successful_streams_total: u64,
    /// Every user, zeros included, by user id.
    pub successful_streams: Vec<UserStreams>,
    /// Every user by id, with their events in time order.
    pub users: Vec<UserReport>,
}

#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct UserStreams {
    pub user_id: i64,
    pub successful_streams: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct UserReport {
    pub user_id: i64,
    /// "first last".
    pub user_name: String,
    /// Completed years at the run date; null without a date of birth.
    #[schema(required = true)]
    pub age: Option<i32>,
    pub events: Vec<UserEvent>,
}

#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct UserEvent {
    pub event: String,
    pub platform: String,
    #[schema(required = true)]
    pub show_title: Option<String>,
    #[schema(required = true)]
    pub first_actor: Option<String>,
    pub show_id: String,
    /// Europe/Amsterdam, `dd-MM-yyyy HH:mm:ss.SSS`.
    pub event_date: String,
}

/// Successful streams in one user's time-ordered events: a start immediately followed by a
/// finish of the same show on the same platform.
pub fn successful_streams(events: &[ReportEvent]) -> u64 {
    events
        .windows(2)
        .filter(|w| {
            w[0].kind == EventKind::Started
                && w[1].kind == EventKind::Finished
                && w[0].show_id == w[1].show_id
                && w[0].platform == w[1].platform
        })
        .count() as u64
}

/// The report of a run. `events` may come in any order.
pub fn report(run: Run, malformed: PerStream, mut events: Vec<ReportEvent>) -> Report {
    let run_date = chrono::DateTime::parse_from_rfc3339(&run.started_at)
        .map(|t| t.with_timezone(&Utc).date_naive())
        .unwrap_or_else(|_| Utc::now().date_naive());
    events.sort_by_key(|e| (e.user_id, e.at, e.seq));

    let mut per_stream = [0u64; 3];
    let mut per_type: BTreeMap<String, u64> = EventKind::ALL
        .iter()
        .map(|k| (k.as_str().to_owned(), 0))
        .collect();
    let mut recent = BTreeSet::new();
    let (mut sytflix, mut sytflix_started) = (0u64, 0u64);
    for e in &events {
        per_stream[e.stream.index()] += 1;
        *per_type.entry(e.kind.as_str().to_owned()).or_default() += 1;
        if e.release_year.is_some_and(|y| y >= 2020) {
            recent.insert((e.platform.as_str(), e.show_id.as_str()));
        }
        if e.platform == Stream::Sytflix.platform() {
            sytflix += 1;
            sytflix_started += u64::from(e.kind == EventKind::Started);
        }
    }
    let recent_shows = recent.len() as u64;

    let mut users = Vec::new();
    let mut streams = Vec::new();
    for group in events.chunk_by(|a, b| a.user_id == b.user_id) {
        let first = &group[0];
        let n = successful_streams(group);
        streams.push(UserStreams {
            user_id: first.user_id,
            successful_streams: n,
        });
        // The latest event names the user, should a name have changed during the run.
        let last = &group[group.len() - 1];
        users.push(UserReport {
            user_id: first.user_id,
            user_name: [last.first_name.as_deref(), last.last_name.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" "),
            age: last.date_of_birth.map(|d| age(d, run_date)),
            events: group
                .iter()
                .map(|e| UserEvent {
                    event: e.kind.as_str().to_owned(),
                    platform: e.platform.clone(),
                    show_title: e.title.clone(),
                    first_actor: e.first_actor.clone(),
                    show_id: e.show_id.clone(),
                    event_date: amsterdam(e.at),
                })
                .collect(),
        });
    }
    Report {
        run,
        run_date: run_date.format("%Y-%m-%d").to_string(),
        events_per_stream: PerStream::from_array(per_stream),
        events_per_type: per_type,
        malformed_per_stream: malformed,
        users_total: users.len() as u64,
        recent_shows,
        sytflix_start_rate: (sytflix > 0).then(|| sytflix_started as f64 / sytflix as f64 * 100.0),
        successful_streams_total: streams.iter().map(|s| s.successful_streams).sum(),
        successful_streams: streams,
        users,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(seq: i64, kind: EventKind, show: &str, platform: &str) -> ReportEvent {
        ReportEvent {
            seq,
            stream: Stream::Sytflix,
            kind,
            at: DateTime::from_timestamp_millis(1_700_000_000_000 + seq).unwrap(),
            user_id: 1,
            first_name: Some("Ann".into()),
            last_name: Some("Lee".into()),
            date_of_birth: NaiveDate::from_ymd_opt(2000, 6, 1),
            show_id: show.into(),
            platform: platform.into(),
            title: None,
            first_actor: None,
            release_year: Some(2019),
        }
    }

    use EventKind::{Finished, Liked, Started};

    #[test]
    fn the_five_defining_cases() {
        let f = "Sytflix";
        let cases: [(Vec<ReportEvent>, u64); 5] = [
            (
                vec![ev(0, Started, "s_01", f), ev(1, Finished, "s_01", f)],
                1,
            ),
            (
                vec![
                    ev(0, Started, "s_01", f),
                    ev(1, Finished, "s_01", "Sytazon"),
                ],
                0,
            ),
            (
                vec![ev(0, Started, "s_01", f), ev(1, Finished, "s_02", f)],
                0,
            ),
            (
                vec![
                    ev(0, Started, "s_01", f),
                    ev(1, Liked, "s_01", f),
                    ev(2, Finished, "s_01", f),
                ],
                0,
            ),
            (
                vec![ev(0, Finished, "s_01", f), ev(1, Started, "s_01", f)],
                0,
            ),
        ];
        for (i, (events, want)) in cases.into_iter().enumerate() {
            assert_eq!(successful_streams(&events), want, "case {}", i + 1);
        }
    }

    fn run() -> Run {
        Run {
            run_id: "r".into(),
            state: "succeeded".into(),
            source: "http://x".into(),
            started_at: "2024-06-01T10:00:00Z".into(),
            finished_at: None,
            stop_reason: None,
            error: None,
            consumption_ms: Consumption::default(),
            events_total: 0,
            malformed_total: 0,
        }
    }

    #[test]
    fn report_orders_by_time_not_arrival_and_counts() {
        // Arrival order differs from time order: the finish arrived first.
        let mut finish = ev(0, Finished, "s_01", "Sytflix");
        finish.at = DateTime::from_timestamp_millis(1_700_000_000_500).unwrap();
        let mut start = ev(1, Started, "s_01", "Sytflix");
        start.release_year = Some(2020);
        let r = report(run(), PerStream::default(), vec![finish, start]);
        assert_eq!(r.successful_streams_total, 1);
        assert_eq!(r.users[0].events[0].event, "stream-started");
        assert_eq!(r.users[0].user_name, "Ann Lee");
        assert_eq!(r.users[0].age, Some(24));
        assert_eq!(r.recent_shows, 1);
        assert_eq!(r.sytflix_start_rate, Some(50.0));
        assert_eq!(r.events_per_type["show-liked"], 0);
        assert_eq!(r.run_date, "2024-06-01");
    }

    #[test]
    fn start_rate_divides_before_it_multiplies() {
        // The replaced system's order: 4 / 12 * 100 is 33.33333333333333, where
        // 4 * 100 / 12 is 33.333333333333336.
        let events = (0..12)
            .map(|i| ev(i, if i < 4 { Started } else { Liked }, "s", "Sytflix"))
            .collect();
        let r = report(run(), PerStream::default(), events);
        assert_eq!(r.sytflix_start_rate, Some(4.0 / 12.0 * 100.0));
        assert_ne!(r.sytflix_start_rate, Some(4.0 * 100.0 / 12.0));
    }

    #[test]
    fn no_sytflix_events_no_rate() {
        let r = report(
            run(),
            PerStream::default(),
            vec![ev(0, Liked, "s", "Sysney")],
        );
        assert_eq!(r.sytflix_start_rate, None);
    }
}
