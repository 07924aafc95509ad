//! Conformance with the Django REST system adnanmuttaleb/network-analysis (originals/001):
//! its README's requests replayed against a real server loaded with the two sample files of
//! its repository. Those files are named for the period ending 2021-07-18T00:05:00Z but carry
//! rows of 2017-03-01 08:00–08:05; the Django system took the period from the name, which
//! `period_from = "file-name"` reproduces.

mod common;

use common::{compact, get_ok, get_raw, seed, server, upload};
use serde_json::Value;
use sluice_network::NetworkDomain;
use sluice_server::testing::TestServer;

const SYSTEM: &str = "adnanmuttaleb-network-analysis";
const FILES: [&str; 2] = [
    "ipflow_data.ts-1626566700000.1.txt",
    "ipflow_data.ts-1626566700000.2.txt",
];

/// README, API Design 1.
const README_LIST: &str = r#"[
    {
        "id": 1,
        "name": "ServiceTrafficVolume"
    },
    {
        "id": 2,
        "name": "CellUniqueUsers"
    }
]"#;

/// README, API Design 2.
const README_QUERY: &str = "/api/KPIs/1/?interval_start_timestamp__gte=2021-07-17T23%3A10%3A00Z&interval_end_timestamp__lte=&interval=1";
const README_ROWS: &str = r#"[
    {
        "id": 1,
        "interval_start_timestamp": "2021-07-18T00:00:00Z",
        "interval_end_timestamp": "2021-07-18T00:05:00Z",
        "interval": 1,
        "service_id": 1,
        "total_bytes": 16100
    },
    {
        "id": 2,
        "interval_start_timestamp": "2021-07-18T00:00:00Z",
        "interval_end_timestamp": "2021-07-18T00:05:00Z",
        "interval": 1,
        "service_id": 3,
        "total_bytes": 11500
    },
    {
        "id": 3,
        "interval_start_timestamp": "2021-07-18T00:00:00Z",
        "interval_end_timestamp": "2021-07-18T00:05:00Z",
        "interval": 1,
        "service_id": 2,
        "total_bytes": 9260
    }
]"#;

/// The README's ids 1, 2, 3 were a fresh table's auto-increment; sluice's ids are stable,
/// derived from the row (5-minute slot × 10 000 + granularity × 1000 + kpi × 100 + rank).
fn stable_ids(readme: &str) -> String {
    let slot = 1_626_566_400_000_i64 / 300_000;
    let mut out = compact(readme);
    for rank in 1..=3 {
        out = out.replace(
            &format!("{{\"id\":{rank},"),
            &format!("{{\"id\":{},", slot * 10_000 + 1000 + 100 + rank),
        );
    }
    out
}

async fn loaded(period_from: Option<&str>) -> (TestServer, Vec<Value>) {
    let settings: Vec<(&str, &str)> = period_from
        .map(|p| ("period_from", p))
        .into_iter()
        .collect();
    let s = server(&settings).await;
    let mut jobs = Vec::new();
    for f in FILES {
        jobs.push(upload(&s, f, seed(SYSTEM, f)).await);
    }
    (s, jobs)
}

#[tokio::test]
async fn readme_requests_with_periods_from_file_names() {
    let (s, _) = loaded(Some("file-name")).await;
    assert_eq!(get_ok(&s, "/api/KPIs/").await, compact(README_LIST));
    assert_eq!(get_ok(&s, "/api/KPIs").await, compact(README_LIST));

    let body = get_ok(&s, README_QUERY).await;
    assert_eq!(body, stable_ids(README_ROWS));
    let unslashed = README_QUERY.replacen("/1/?", "/1?", 1);
    assert_eq!(get_ok(&s, &unslashed).await, body);

    // KPI 2 of the same period, keys and types as KPI 1's.
    let cells: Value = serde_json::from_str(
        &get_ok(
            &s,
            "/api/KPIs/2/?interval_start_timestamp__gte=2021-07-17T23%3A10%3A00Z&interval_end_timestamp__lte=&interval=1",
        )
        .await,
    )
    .unwrap();
    let got: Vec<(i64, i64, i64)> = cells
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let keys: Vec<&str> = r.as_object().unwrap().keys().map(|k| k.as_str()).collect();
            assert_eq!(keys.len(), 6, "{r}");
            assert_eq!(r["interval_start_timestamp"], "2021-07-18T00:00:00Z");
            assert_eq!(r["interval_end_timestamp"], "2021-07-18T00:05:00Z");
            assert_eq!(r["interval"], 1);
            (
                r["id"].as_i64().unwrap(),
                r["cell_id"].as_i64().unwrap(),
                r["number_of_unique_users"].as_i64().unwrap(),
            )
        })
        .collect();
    let slot = 1_626_566_400_000_i64 / 300_000;
    assert_eq!(
        got,
        vec![
            (slot * 10_000 + 1201, 1001, 4),
            (slot * 10_000 + 1202, 5005, 3),
            (slot * 10_000 + 1203, 1000, 3)
        ]
    );

    // The hour of that period, interval 2.
    let hour: Value = serde_json::from_str(&get_ok(&s, "/api/KPIs/1/?interval=2").await).unwrap();
    assert_eq!(hour[0]["interval_start_timestamp"], "2021-07-18T00:00:00Z");
    assert_eq!(hour[0]["interval_end_timestamp"], "2021-07-18T01:00:00Z");
    assert_eq!(hour[0]["interval"], 2);
    assert_eq!(hour[0]["total_bytes"], 16100);
}

#[tokio::test]
async fn both_period_sources_warn_about_the_disagreement() {
    for (period_from, readme_rows, own_rows) in [(None, 0, 3), (Some("file-name"), 3, 0)] {
        let (s, jobs) = loaded(period_from).await;
        // Every row of both files disagrees with its file name: each file says so.
        for (job, rows) in jobs.iter().zip([10, 10]) {
            let file = &job["summary"]["files"][0];
            assert_eq!(file["warnings"], rows, "{job}");
            let detail = file["detail"].as_str().unwrap();
            let setting = period_from.unwrap_or("rows");
            assert!(
                detail.contains(&format!("period_from = {setting}")),
                "{detail}"
            );
        }
        let readme: Value = serde_json::from_str(&get_ok(&s, README_QUERY).await).unwrap();
        assert_eq!(
            readme.as_array().unwrap().len(),
            readme_rows,
            "{period_from:?}"
        );
        let own: Value = serde_json::from_str(
            &get_ok(
                &s,
                "/api/KPIs/1/?interval_start_timestamp__gte=2017-03-01&interval_end_timestamp__lte=2017-03-01T08:05:00&interval=1",
            )
            .await,
        )
        .unwrap();
        assert_eq!(own.as_array().unwrap().len(), own_rows, "{period_from:?}");
    }
}

#[tokio::test]
async fn errors_are_problems() {
    let (s, _) = loaded(Some("file-name")).await;
    for (path, status) in [
        ("/api/KPIs/3/", 404),
        ("/api/KPIs/x", 404),
        ("/api/KPIs/1/?interval=3", 400),
        (
            "/api/KPIs/1/?interval_start_timestamp__gte=2021-07-17T25:00:00Z",
            400,
        ),
        ("/api/KPIs/2/?interval_end_timestamp__lte=July", 400),
    ] {
        let (got, ct, body) = get_raw(&s, path).await;
        assert_eq!(
            (got, ct.as_str()),
            (status, "application/problem+json"),
            "{path}: {body}"
        );
    }
}

#[tokio::test]
async fn an_unknown_period_source_is_refused_at_start_naming_it() {
    let mut settings = sluice_core::Settings::default();
    let mut table = toml::Table::new();
    table.insert("period_from".into(), "filename".into());
    settings.domains.insert("network".into(), table);
    let err = sluice_core::Domain::check_settings(&NetworkDomain, &settings).unwrap_err();
    assert!(err.contains("`filename`"), "{err}");
}
