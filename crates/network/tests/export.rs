//! CSV export of the native KPI route: `?format=csv` or `Accept: text/csv` gives the same
//! page as the JSON, one row per ranked entry; an unknown `format` is a 400 naming it.

mod common;

use serde_json::Value;

const SYSTEM: &str = "sgioldasis-python-analysis-api";

async fn loaded() -> sluice_server::testing::TestServer {
    let s = common::server(&[]).await;
    for name in [
        "ipflow_data.ts-1488355500000.1.txt",
        "ipflow_data.ts-1488355500000.2.txt",
        "ipflow_data.ts-1488355800000.1.txt",
        "ipflow_data.ts-1488355800000.2.txt",
    ] {
        common::upload(&s, name, common::seed(SYSTEM, name)).await;
    }
    s
}

#[tokio::test]
async fn kpi_csv_holds_the_json_pages_entries() {
    let s = loaded().await;
    for (kpi, item, value) in [
        ("top_services", "service_id", "total_bytes"),
        ("top_cells", "cell_id", "unique_users"),
    ] {
        let query = format!("/api/v1/network/kpis/{kpi}?limit=5");
        let json: Value = serde_json::from_str(&common::get_ok(&s, &query).await).unwrap();
        let mut expected =
            format!("interval_start,interval_end,interval,rows,coverage,rank,{item},{value}\n");
        for i in json["items"].as_array().unwrap() {
            for e in i["top"].as_array().unwrap() {
                expected += &format!(
                    "{},{},{},{},{},{},{},{}\n",
                    i["interval_start"].as_str().unwrap(),
                    i["interval_end"].as_str().unwrap(),
                    i["interval"].as_str().unwrap(),
                    i["rows"],
                    i["coverage"],
                    e["rank"],
                    e[item],
                    e[value]
                );
            }
        }
        assert!(expected.lines().count() > 5, "{expected}");
        let (status, ct, body) = common::get_raw(&s, &format!("{query}&format=csv")).await;
        assert_eq!((status, ct.as_str()), (200, "text/csv; charset=utf-8"));
        assert_eq!(body, expected);
        let by_accept = reqwest::Client::new()
            .get(s.url(&query))
            .header("accept", "text/csv")
            .send()
            .await
            .unwrap();
        assert_eq!(
            by_accept.headers()["content-disposition"],
            format!("attachment; filename=\"{kpi}.csv\"").as_str()
        );
        assert_eq!(by_accept.text().await.unwrap(), expected);
    }
}

#[tokio::test]
async fn an_unknown_format_is_a_400_naming_it() {
    let s = common::server(&[]).await;
    let (status, ct, body) = common::get_raw(&s, "/api/v1/network/kpis/top_cells?format=xml").await;
    assert_eq!((status, ct.as_str()), (400, "application/problem+json"));
    let p: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(p["param"], "format");
    assert!(p["detail"].as_str().unwrap().contains("`xml`"), "{p}");
}
