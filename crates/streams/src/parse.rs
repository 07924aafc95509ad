//! Source messages → domain types. A message either becomes an [`Event`] whose every field
//! the report needs is valid, or a [`Malformed`] reason; nothing downstream re-checks.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::sse::SseMessage;

/// One of the three source streams.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Sytflix,
    Sytazon,
    Sysney,
}

impl Stream {
    pub const ALL: [Stream; 3] = [Stream::Sytflix, Stream::Sytazon, Stream::Sysney];

    /// The stream's path on the source and its name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Stream::Sytflix => "sytflix",
            Stream::Sytazon => "sytazon",
            Stream::Sysney => "sysney",
        }
    }

    /// The platform name events of this stream carry.
    pub fn platform(self) -> &'static str {
        match self {
            Stream::Sytflix => "Sytflix",
            Stream::Sytazon => "Sytazon",
            Stream::Sysney => "Sysney",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Stream {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Stream::ALL
            .into_iter()
            .find(|st| st.name() == s)
            .ok_or_else(|| format!("unknown stream `{s}`; expected sytflix, sytazon or sysney"))
    }
}

/// The event types; `stream-ended` (older servers) is the same as `stream-finished`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    Started,
    Finished,
    Liked,
    Interrupted,
}

impl EventKind {
    pub const ALL: [EventKind; 4] = [
        EventKind::Started,
        EventKind::Finished,
        EventKind::Liked,
        EventKind::Interrupted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Started => "stream-started",
            EventKind::Finished => "stream-finished",
            EventKind::Liked => "show-liked",
            EventKind::Interrupted => "stream-interrupted",
        }
    }
}

impl FromStr for EventKind {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Ok(match s {
            "stream-started" => EventKind::Started,
            "stream-finished" | "stream-ended" => EventKind::Finished,
            "show-liked" => EventKind::Liked,
            "stream-interrupted" => EventKind::Interrupted,
            _ => return Err(()),
        })
    }
}

/// The zone `event_date` is written in, by the user's country (ISO alpha-2).
pub fn zone_for(country: Option<&str>) -> Tz {
    match country {
        Some("PT") => chrono_tz::UTC,
        Some("CA") => chrono_tz::America::Toronto,
        Some("US") => chrono_tz::America::Los_Angeles,
        Some("RU") => chrono_tz::Europe::Moscow,
        Some("ID") => chrono_tz::Asia::Jakarta,
        Some("CN") => chrono_tz::Asia::Shanghai,
        _ => chrono_tz::Europe::Amsterdam,
    }
}

/// `dd-MM-yyyy HH:mm:ss.SSS`, the format of `event_date` and of report times.
pub const EVENT_DATE_FORMAT: &str = "%d-%m-%Y %H:%M:%S%.3f";

/// A report time: the instant in Europe/Amsterdam, milliseconds always three digits.
pub fn amsterdam(at: DateTime<Utc>) -> String {
    at.with_timezone(&chrono_tz::Europe::Amsterdam)
        .format(EVENT_DATE_FORMAT)
        .to_string()
}

/// Local `event_date` text in `zone` → the instant. An ambiguous time (the hour repeated
/// when summer time ends) is the earlier one; a time skipped by summer time is an error.
pub fn event_instant(text: &str, zone: Tz) -> Result<DateTime<Utc>, Malformed> {
    let bad = || Malformed::BadEventDate(text.to_owned());
    let naive = NaiveDateTime::parse_from_str(text, "%d-%m-%Y %H:%M:%S%.f").map_err(|_| bad())?;
    zone.from_local_datetime(&naive)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(bad)
}

/// Age in completed years on `on`.
pub fn age(born: NaiveDate, on: NaiveDate) -> i32 {
    let years = on.year() - born.year();
    if (on.month(), on.day()) < (born.month(), born.day()) {
        years - 1
    } else {
        years
    }
}

/// Text before the first comma of `cast`, trimmed; `None` for no cast.
pub fn first_actor(cast: Option<&str>) -> Option<String> {
    let first = cast?.split(',').next()?.trim();
    (!first.is_empty()).then(|| first.to_owned())
}

/// Why a message was skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Malformed {
    NoEventLine,
    UnknownEventType(String),
    NoData,
    NotJson(String),
    MissingField(&'static str),
    BadEventDate(String),
    BadDateOfBirth(String),
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Malformed::NoEventLine => f.write_str("no `event:` line"),
            Malformed::UnknownEventType(t) => write!(
                f,
                "unknown event type `{t}`; expected stream-started, stream-finished, stream-ended, show-liked or stream-interrupted"
            ),
            Malformed::NoData => f.write_str("no `data:` line"),
            Malformed::NotJson(e) => write!(f, "data is not a JSON object: {e}"),
            Malformed::MissingField(name) => write!(f, "data lacks the required field `{name}`"),
            Malformed::BadEventDate(t) => write!(
                f,
                "event_date `{t}` is not a valid dd-MM-yyyy HH:mm:ss.SSS time in the user's zone"
            ),
            Malformed::BadDateOfBirth(t) => {
                write!(f, "user.date_of_birth `{t}` is not a dd/MM/yyyy date")
            }
        }
    }
}

/// A well-formed event.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub id: Option<String>,
    pub kind: EventKind,
    /// `event_date` as sent (the user's local time).
    pub event_date: String,
    pub at: DateTime<Utc>,
    pub user: User,
    pub show: Show,
    /// The `data:` JSON as received.
    pub raw: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct User {
    pub id: i64,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub date_of_birth: Option<NaiveDate>,
    pub country: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Show {
    pub show_id: String,
    pub platform: String,
    pub title: Option<String>,
    pub first_actor: Option<String>,
    pub release_year: Option<i64>,
}

// Fields only read while parsing borrow from the data (Cow: owned only when escaped).
#[derive(Deserialize)]
struct PayloadJson<'a> {
    #[serde(borrow)]
    show: Option<ShowJson<'a>>,
    event_date: Option<String>,
    #[serde(borrow)]
    user: Option<UserJson<'a>>,
}

#[derive(Deserialize)]
struct ShowJson<'a> {
    show_id: Option<String>,
    platform: Option<String>,
    title: Option<String>,
    #[serde(borrow)]
    cast: Option<Cow<'a, str>>,
    release_year: Option<i64>,
}

#[derive(Deserialize)]
struct UserJson<'a> {
    id: Option<i64>,
    first_name: Option<String>,
    last_name: Option<String>,
    #[serde(borrow)]
    date_of_birth: Option<Cow<'a, str>>,
    country: Option<String>,
}

/// A message → an event, or why not (with the raw text kept by the caller).
pub fn parse_message(msg: SseMessage) -> Result<Event, (Malformed, String)> {
    match parse_fields(&msg) {
        Ok((kind, p)) => Ok(Event {
            id: msg.id,
            kind,
            event_date: p.event_date,
            at: p.at,
            user: p.user,
            show: p.show,
            raw: msg.data.unwrap_or_default(),
        }),
        Err(reason) => Err((reason, msg.raw)),
    }
}

struct Parsed {
    event_date: String,
    at: DateTime<Utc>,
    user: User,
    show: Show,
}

fn parse_fields(msg: &SseMessage) -> Result<(EventKind, Parsed), Malformed> {
    let kind_text = msg.event.as_deref().ok_or(Malformed::NoEventLine)?;
    let kind = kind_text
        .parse()
        .map_err(|_| Malformed::UnknownEventType(kind_text.to_owned()))?;
    let data = msg.data.as_deref().ok_or(Malformed::NoData)?;
    let p: PayloadJson =
        serde_json::from_str(data).map_err(|e| Malformed::NotJson(e.to_string()))?;
    let show = p.show.ok_or(Malformed::MissingField("show"))?;
    let user = p.user.ok_or(Malformed::MissingField("user"))?;
    let event_date = p.event_date.ok_or(Malformed::MissingField("event_date"))?;
    let at = event_instant(&event_date, zone_for(user.country.as_deref()))?;
    let date_of_birth = user
        .date_of_birth
        .map(|d| {
            NaiveDate::parse_from_str(&d, "%d/%m/%Y")
                .map_err(|_| Malformed::BadDateOfBirth(d.into_owned()))
        })
        .transpose()?;
    Ok((
        kind,
        Parsed {
            event_date,
            at,
            user: User {
                id: user.id.ok_or(Malformed::MissingField("user.id"))?,
                first_name: user.first_name,
                last_name: user.last_name,
                date_of_birth,
                country: user.country,
            },
            show: Show {
                show_id: show
                    .show_id
                    .ok_or(Malformed::MissingField("show.show_id"))?,
                platform: show
                    .platform
                    .ok_or(Malformed::MissingField("show.platform"))?,
                first_actor: first_actor(show.cast.as_deref()),
                title: show.title,
                release_year: show.release_year,
            },
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(event: Option<&str>, data: Option<&str>) -> SseMessage {
        SseMessage {
            id: Some("x".into()),
            event: event.map(str::to_owned),
            data: data.map(str::to_owned),
            raw: "raw".into(),
        }
    }

    const GOOD: &str = r#"{"show":{"show_id":"s5","cast":" Qurbra Lmgeisand , Weff","platform":"Sytflix","release_year":2020,"title":"100% Salal"},"event_date":"19-05-2023 08:58:26.754","user":{"id":22,"date_of_birth":"07/04/1975","first_name":"Sytac","country":"CA","last_name":"Blumson"}}"#;

    #[test]
    fn good_message_in_toronto_summer_time() {
        let e = parse_message(msg(Some("stream-ended"), Some(GOOD))).unwrap();
        assert_eq!(e.kind, EventKind::Finished);
        assert_eq!(amsterdam(e.at), "19-05-2023 14:58:26.754");
        assert_eq!(e.show.first_actor.as_deref(), Some("Qurbra Lmgeisand"));
        assert_eq!(e.user.date_of_birth, NaiveDate::from_ymd_opt(1975, 4, 7));
    }

    #[test]
    fn malformed_reasons() {
        let reason = |e: Option<&str>, d: Option<&str>| parse_message(msg(e, d)).unwrap_err();
        assert_eq!(reason(None, Some(GOOD)).0, Malformed::NoEventLine);
        assert_eq!(reason(Some("stream-started"), None).0, Malformed::NoData);
        assert_eq!(reason(Some("stream-started"), None).1, "raw");
        let stray = format!("x{GOOD}");
        assert!(matches!(
            reason(Some("stream-started"), Some(&stray)).0,
            Malformed::NotJson(_)
        ));
        assert_eq!(
            reason(
                Some("stream-started"),
                Some(r#"{"show":{},"user":{},"event_date":"01-01-2024 00:00:00.000"}"#)
            )
            .0,
            Malformed::MissingField("user.id")
        );
        assert!(matches!(
            reason(Some("paused"), Some(GOOD)).0,
            Malformed::UnknownEventType(_)
        ));
        let bad_date = GOOD.replace("19-05-2023", "2023-05-19");
        assert!(matches!(
            reason(Some("show-liked"), Some(&bad_date)).0,
            Malformed::BadEventDate(_)
        ));
    }

    #[test]
    fn zones_with_daylight_saving() {
        let t = |s, c| amsterdam(event_instant(s, zone_for(c)).unwrap());
        // Winter: Amsterdam UTC+1.
        assert_eq!(
            t("11-01-2024 09:40:44.000", Some("PT")),
            "11-01-2024 10:40:44.000"
        );
        assert_eq!(
            t("11-01-2024 17:40:44.035", Some("CN")),
            "11-01-2024 10:40:44.035"
        );
        assert_eq!(
            t("11-01-2024 16:40:44.000", Some("ID")),
            "11-01-2024 10:40:44.000"
        );
        assert_eq!(
            t("11-01-2024 12:40:44.000", Some("RU")),
            "11-01-2024 10:40:44.000"
        );
        assert_eq!(
            t("11-01-2024 01:40:44.000", Some("US")),
            "11-01-2024 10:40:44.000"
        );
        assert_eq!(
            t("11-01-2024 04:40:44.000", Some("CA")),
            "11-01-2024 10:40:44.000"
        );
        assert_eq!(
            t("11-01-2024 10:40:44.000", Some("NL")),
            "11-01-2024 10:40:44.000"
        );
        assert_eq!(
            t("11-01-2024 10:40:44.000", None),
            "11-01-2024 10:40:44.000"
        );
        // Summer: Amsterdam UTC+2, Los Angeles UTC-7.
        assert_eq!(
            t("19-05-2023 05:58:26.624", Some("US")),
            "19-05-2023 14:58:26.624"
        );
        // 02:30 on 26-03-2023 does not exist in Amsterdam.
        assert!(event_instant("26-03-2023 02:30:00.000", zone_for(Some("FR"))).is_err());
    }

    #[test]
    fn age_in_completed_years() {
        let d = |y, m, dd| NaiveDate::from_ymd_opt(y, m, dd).unwrap();
        assert_eq!(age(d(1975, 4, 7), d(2024, 4, 6)), 48);
        assert_eq!(age(d(1975, 4, 7), d(2024, 4, 7)), 49);
    }

    #[test]
    fn first_actor_rules() {
        assert_eq!(first_actor(Some("A B, C")).as_deref(), Some("A B"));
        assert_eq!(first_actor(Some("  ")), None);
        assert_eq!(first_actor(None), None);
    }
}
