//! The worked examples of uptime.md, end to end: CSV files in, report out, exact values.

mod common;

use common::{env, figures, row, Env, HOURS_HEADER, POLLS_HEADER, ZONES_HEADER};

fn dataset() -> Env {
    let e = env();
    let polls = format!(
        "{POLLS_HEADER}\
s1,active,2023-01-23 16:14:00 UTC
s1,inactive,2023-01-23 17:15:00 UTC
night,active,2023-01-24 02:30:00 UTC
night,inactive,2023-01-24 06:00:00 UTC
dst,active,2024-03-10 05:30:00 UTC
dst,inactive,2024-03-10 08:30:00 UTC
always,active,2023-01-25 09:00:00 UTC
always,inactive,2023-01-25 11:00:00 UTC
nozone,active,2023-01-23 16:00:00 UTC
quiet,active,2023-01-22 12:00:00 UTC
quiet,inactive,2023-01-24 06:00:00 UTC
"
    );
    let mut hours = format!("{HOURS_HEADER}s1,0,09:00:00,12:00:00\nnight,0,22:00:00,02:00:00\nnozone,0,09:00:00,12:00:00\n");
    for d in 0..7 {
        hours.push_str(&format!("dst,{d},01:00:00,04:00:00\n"));
    }
    let zones = format!(
        "{ZONES_HEADER}s1,America/Chicago\nnight,America/New_York\ndst,America/New_York\nalways,America/Los_Angeles\nquiet,America/Chicago\nnopolls,America/Denver\n"
    );
    let s = e.ingest(&[
        ("polls.csv", &polls),
        ("hours.csv", &hours),
        ("zones.csv", &zones),
    ]);
    assert_eq!(s.rows_accepted, 11 + 10 + 6);
    assert_eq!(s.rows_rejected, 0);
    e
}

/// Every polled store: uptime + downtime = business time, in every window.
fn assert_balanced(rows: &[sluice_uptime::report::NativeRow]) {
    for r in rows.iter().filter(|r| r.polled) {
        for w in [&r.last_hour, &r.last_day, &r.last_week] {
            assert!((w.uptime + w.downtime - w.business).abs() < 0.011, "{r:?}");
        }
    }
}

#[test]
fn monday_store_switches_half_way_between_polls() {
    let e = dataset();
    // now = Monday 2023-01-23 12:00 in Chicago: 09:00–10:44:30 up, 10:44:30–12:00 down.
    let (csv, rows) = e.report(Some("2023-01-23 18:00:00 UTC"), &["s1"]);
    assert_eq!(
        csv,
        "store_id,uptime_last_hour,uptime_last_day,uptime_last_week,downtime_last_hour,downtime_last_day,downtime_last_week\n\
         s1,0.00,1.74,1.74,60.00,1.26,1.26\n"
    );
    let r = row(&rows, "s1");
    assert_eq!(r.last_day.business, 3.0);
    assert_eq!(r.last_day.covered, 3.0);
    // At 11:30 local the last hour is 10:30–10:44:30 up (14.5 min), then down (45.5 min);
    // the week now also holds 11:30–12:00 of the previous Monday, up like the first poll.
    let (_, rows) = e.report(Some("2023-01-23T17:30:00Z"), &["s1"]);
    assert_eq!(
        figures(row(&rows, "s1")),
        [[14.5, 45.5], [1.74, 0.76], [2.24, 0.76]]
    );
    assert_balanced(&rows);
}

#[test]
fn overnight_store_open_22_to_02() {
    let e = dataset();
    // now = Tuesday 01:30 in New York. Polls Monday 21:30 up and Tuesday 01:00 down switch at
    // 23:15. The week also holds the last half hour of the previous Monday night (01:30–02:00
    // on Tuesday 17th), taken from the nearest poll (up).
    let (csv, rows) = e.report(Some("2023-01-24 06:30:00 UTC"), &["night"]);
    assert!(
        csv.ends_with("\nnight,0.00,1.25,1.75,60.00,2.25,2.25\n"),
        "{csv}"
    );
    assert_eq!(row(&rows, "night").last_week.business, 4.0);
    assert_balanced(&rows);
}

#[test]
fn zone_entering_summer_time_inside_the_week() {
    let e = dataset();
    // New York, open 01:00–04:00 every day; 2024-03-10 02:00 EST jumps to 03:00 EDT, so that
    // day has 2 business hours (06:00–08:00 UTC) and later days are an hour earlier in UTC.
    // The switch between the polls (05:30 up, 08:30 down) is at 07:00 UTC.
    let (csv, rows) = e.report(Some("2024-03-14T04:00:00Z"), &["dst"]);
    assert!(
        csv.ends_with("\ndst,0.00,0.00,10.00,0.00,3.00,10.00\n"),
        "{csv}"
    );
    let r = row(&rows, "dst");
    assert_eq!(r.last_week.business, 20.0);
    assert_eq!(r.zone, "America/New_York");
    // Within 2 h of a poll: all of the 10th's business time (06:00–08:00 UTC, polls at
    // 05:30 and 08:30); the other days are further from both polls.
    assert_eq!(r.last_week.covered, 2.0);
    assert_balanced(&rows);
}

#[test]
fn store_without_hours_is_open_all_week() {
    let e = dataset();
    let (csv, rows) = e.report(Some("2023-01-25 12:00:00 UTC"), &["always"]);
    assert!(
        csv.ends_with("\nalways,0.00,22.00,166.00,60.00,2.00,2.00\n"),
        "{csv}"
    );
    let r = row(&rows, "always");
    assert!(!r.hours_given);
    assert_eq!(r.last_week.business, 168.0);
    assert_balanced(&rows);
}

#[test]
fn store_without_zone_is_in_chicago() {
    let e = dataset();
    // Open 09:00–12:00 Chicago time = 15:00–18:00 UTC on Monday the 23rd; read as UTC the
    // last hour would hold no business time at all.
    let (csv, rows) = e.report(Some("2023-01-23 18:00:00 UTC"), &["nozone"]);
    assert!(
        csv.ends_with("\nnozone,60.00,3.00,3.00,0.00,0.00,0.00\n"),
        "{csv}"
    );
    let r = row(&rows, "nozone");
    assert_eq!(r.zone, "America/Chicago");
    assert!(!r.zone_given);
}

#[test]
fn store_without_polls_in_the_window() {
    let e = dataset();
    // Polls 3 days (up) and 30 hours (down) before now: the last hour and day take the
    // nearest poll (down); the week switches half-way, 51 hours before now.
    let (csv, rows) = e.report(Some("2023-01-25 12:00:00 UTC"), &["quiet", "nopolls"]);
    assert_eq!(
        csv.lines().skip(1).collect::<Vec<_>>(),
        vec![
            "nopolls,0.00,0.00,0.00,0.00,0.00,0.00",
            "quiet,0.00,0.00,117.00,60.00,24.00,51.00"
        ]
    );
    let quiet = row(&rows, "quiet");
    assert_eq!(quiet.last_day.covered, 0.0);
    assert_eq!(quiet.last_week.covered, 8.0);
    // A store known only from the zone file has business time but no poll to judge it by.
    let none = row(&rows, "nopolls");
    assert!(!none.polled);
    assert_eq!(none.last_week.business, 168.0);
    assert_balanced(&rows);
    // Two weeks later the last poll (down, 24 January) still decides the whole week.
    let (csv, _) = e.report(Some("2023-02-10 12:00:00 UTC"), &["quiet"]);
    assert!(
        csv.ends_with("\nquiet,0.00,0.00,0.00,60.00,24.00,168.00\n"),
        "{csv}"
    );
}

#[test]
fn default_report_has_one_row_per_store_of_any_source() {
    let e = dataset();
    let (csv, rows) = e.report(None, &[]);
    let ids: Vec<&str> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec!["always", "dst", "night", "nopolls", "nozone", "quiet", "s1"]
    );
    assert_eq!(rows.len(), 7);
    // "now" is the latest poll: 2024-03-10 08:30 UTC (04:30 EDT), dst's inactive poll; its
    // last hour holds 03:30–04:00 EDT of business time, down since the 07:00 UTC switch.
    let dst = row(&rows, "dst");
    assert_eq!(figures(dst)[0], [0.0, 30.0]);
    // Stores last polled in January 2023 keep their last poll's status all week.
    assert_eq!(
        figures(row(&rows, "always")),
        [[0.0, 60.0], [0.0, 24.0], [0.0, 168.0]]
    );
    assert_eq!(figures(row(&rows, "s1"))[2], [0.0, 3.0]);
    assert_balanced(&rows);
}
