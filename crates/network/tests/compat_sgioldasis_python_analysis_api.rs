//! Conformance with the Flask system sgioldasis/python-analysis-api (originals/000): its
//! README's requests and its six API tests, replayed against a real server loaded with the
//! four sample files of its repository. The README and the tests were written on a UTC+2
//! host, so the server runs with `compat_time_zone` = Europe/Athens (UTC+2 on 2017-03-01,
//! before the 26 March change to summer time).

mod common;

use std::sync::Arc;

use common::{compact, get_ok, get_raw, seed, server, upload};
use serde_json::Value;
use sluice_core::Domain;
use sluice_network::NetworkDomain;
use sluice_server::testing::TestServer;

const SYSTEM: &str = "sgioldasis-python-analysis-api";
const FILES: [&str; 4] = [
    "ipflow_data.ts-1488355500000.1.txt",
    "ipflow_data.ts-1488355500000.2.txt",
    "ipflow_data.ts-1488355800000.1.txt",
    "ipflow_data.ts-1488355800000.2.txt",
];
const ZONE: &str = "Europe/Athens";

/// README, "Example results for KPI1", for
/// `/kpi1/?from=2017-03-01_10:00:00&to=2017-03-01_10:05:00&interval=5-minute`.
const README_KPI1: &str = r#"[
  {
    "interval_start_timestamp": "2017-03-01 10:00:00",
    "interval_end_timestamp": "2017-03-01 10:05:00",
    "service_id": 1,
    "total_bytes": 16100,
    "interval": "5-minute"
  },
  {
    "interval_start_timestamp": "2017-03-01 10:00:00",
    "interval_end_timestamp": "2017-03-01 10:05:00",
    "service_id": 3,
    "total_bytes": 11500,
    "interval": "5-minute"
  },
  {
    "interval_start_timestamp": "2017-03-01 10:00:00",
    "interval_end_timestamp": "2017-03-01 10:05:00",
    "service_id": 2,
    "total_bytes": 9260,
    "interval": "5-minute"
  }
]"#;

/// README, "Example results for KPI2", for the same query on `/kpi2/`.
const README_KPI2: &str = r#"[
  {
    "interval_start_timestamp": "2017-03-01 10:00:00",
    "interval_end_timestamp": "2017-03-01 10:05:00",
    "cell_id": 1001,
    "number_of_unique_users": 4,
    "interval": "5-minute"
  },
  {
    "interval_start_timestamp": "2017-03-01 10:00:00",
    "interval_end_timestamp": "2017-03-01 10:05:00",
    "cell_id": 5005,
    "number_of_unique_users": 3,
    "interval": "5-minute"
  },
  {
    "interval_start_timestamp": "2017-03-01 10:00:00",
    "interval_end_timestamp": "2017-03-01 10:05:00",
    "cell_id": 1000,
    "number_of_unique_users": 3,
    "interval": "5-minute"
  }
]"#;

const README_QUERY: &str = "?from=2017-03-01_10:00:00&to=2017-03-01_10:05:00&interval=5-minute";

async fn loaded(settings: &[(&str, &str)]) -> TestServer {
    let s = server(settings).await;
    for f in FILES {
        upload(&s, f, seed(SYSTEM, f)).await;
    }
    s
}

/// (start, end, id, value, interval) of every row, every value of its JSON type.
fn rows(body: &str, id: &str, value: &str) -> Vec<(String, String, i64, i64, String)> {
    let v: Value = serde_json::from_str(body).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r.as_object().unwrap().len(), 5, "{r}");
            (
                r["interval_start_timestamp"].as_str().unwrap().to_owned(),
                r["interval_end_timestamp"].as_str().unwrap().to_owned(),
                r[id].as_i64().unwrap(),
                r[value].as_i64().unwrap(),
                r["interval"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn row(
    start: &str,
    end: &str,
    id: i64,
    value: i64,
    interval: &str,
) -> (String, String, i64, i64, String) {
    (
        format!("2017-03-01 {start}"),
        format!("2017-03-01 {end}"),
        id,
        value,
        interval.to_owned(),
    )
}

#[tokio::test]
async fn readme_examples_byte_for_byte() {
    let s = loaded(&[("compat_time_zone", ZONE)]).await;
    for (route, readme) in [("/kpi1/", README_KPI1), ("/kpi2/", README_KPI2)] {
        let body = get_ok(&s, &format!("{route}{README_QUERY}")).await;
        assert_eq!(body, compact(readme), "{route}");
        // The README links both spellings of the routes.
        let unslashed = get_ok(
            &s,
            &format!("{}{README_QUERY}", route.trim_end_matches('/')),
        )
        .await;
        assert_eq!(unslashed, body);
    }
}

#[tokio::test]
async fn the_systems_six_api_tests() {
    let s = loaded(&[("compat_time_zone", ZONE)]).await;
    let five = |start, end, id, value| row(start, end, id, value, "5-minute");
    let hour = |id, value| row("10:00:00", "11:00:00", id, value, "1-hour");
    for (route, id, value, per_5, per_hour) in [
        (
            "/kpi1/",
            "service_id",
            "total_bytes",
            [(1, 16100), (3, 11500), (2, 9260)],
            [(1, 32200), (3, 23000), (2, 18520)],
        ),
        (
            "/kpi2/",
            "cell_id",
            "number_of_unique_users",
            [(1001, 4), (5005, 3), (1000, 3)],
            [(1001, 4), (5005, 3), (1000, 3)],
        ),
    ] {
        // All filters.
        let all = get_ok(&s, &format!("{route}{README_QUERY}")).await;
        let first: Vec<_> = per_5
            .iter()
            .map(|&(i, v)| five("10:00:00", "10:05:00", i, v))
            .collect();
        assert_eq!(rows(&all, id, value), first, "{route} all filters");

        // One filter.
        let one = get_ok(&s, &format!("{route}?interval=1-hour")).await;
        let hourly: Vec<_> = per_hour.iter().map(|&(i, v)| hour(i, v)).collect();
        assert_eq!(rows(&one, id, value), hourly, "{route} one filter");

        // No filter: the original's ORDER BY interval (as text, so `1-hour` first), start,
        // end, value DESC, id DESC.
        let none = get_ok(&s, route).await;
        let second = per_5
            .iter()
            .map(|&(i, v)| five("10:05:00", "10:10:00", i, v));
        let everything: Vec<_> = hourly
            .iter()
            .cloned()
            .chain(first.iter().cloned())
            .chain(second)
            .collect();
        assert_eq!(rows(&none, id, value), everything, "{route} no filter");
    }
}

#[tokio::test]
async fn without_a_zone_times_are_utc() {
    let s = loaded(&[]).await;
    let body = get_ok(
        &s,
        "/kpi1?from=2017-03-01_08:00:00&to=2017-03-01_08:05:00&interval=5-minute",
    )
    .await;
    assert_eq!(
        body,
        compact(README_KPI1)
            .replace("10:00:00", "08:00:00")
            .replace("10:05:00", "08:05:00")
    );
    // The README's local query names 10:00 UTC here: no data.
    assert_eq!(get_ok(&s, &format!("/kpi1/{README_QUERY}")).await, "[]");
}

#[tokio::test]
async fn bad_parameters_are_problems_naming_them() {
    let s = loaded(&[("compat_time_zone", ZONE)]).await;
    for (query, param) in [
        ("?from=yesterday", "from"),
        ("?to=2017-02-30_10:00:00", "to"),
        ("?interval=10-minute", "interval"),
    ] {
        let (status, ct, body) = get_raw(&s, &format!("/kpi1/{query}")).await;
        assert_eq!(
            (status, ct.as_str()),
            (400, "application/problem+json"),
            "{query}"
        );
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["param"], param, "{body}");
    }
}

#[tokio::test]
async fn an_unknown_zone_is_refused_at_start_naming_it() {
    let mut settings = sluice_core::Settings::default();
    let mut table = toml::Table::new();
    table.insert("compat_time_zone".into(), "Europe/Atlantis".into());
    settings.domains.insert("network".into(), table);
    let err = NetworkDomain.check_settings(&settings).unwrap_err();
    assert!(err.contains("`Europe/Atlantis`"), "{err}");
    let err = sluice_server::check_settings(&settings, &[Arc::new(NetworkDomain)]).unwrap_err();
    assert!(err.starts_with("invalid [network] setting:"), "{err}");

    let mut good = settings.clone();
    good.domains.get_mut("network").unwrap()["compat_time_zone"] = ZONE.into();
    assert_eq!(NetworkDomain.check_settings(&good), Ok(()));
}
