//! CSV export of the trips listing and the weekly average: `?format=csv` or
//! `Accept: text/csv` gives the JSON's content as rows; an unknown `format` is a 400.

mod common;

use serde_json::Value;

async fn text(
    s: &sluice_server::testing::TestServer,
    path: &str,
    accept: &str,
) -> (u16, String, String) {
    let resp = reqwest::Client::new()
        .get(s.url(path))
        .header("accept", accept)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
    (status, ct, resp.text().await.unwrap())
}

#[tokio::test]
async fn trips_and_weekly_average_export_what_the_json_says() {
    let s = common::server().await;
    let job = common::upload(&s, "trips.csv", std::fs::read(common::SAMPLE).unwrap()).await;
    assert_eq!(job["state"], "succeeded", "{job}");

    let (_, page) = common::get(&s, "/api/v1/trips/trips?limit=7").await;
    let mut expected = String::from(
        "id,region,datasource,datetime,origin_lon,origin_lat,destination_lon,destination_lat\n",
    );
    for t in page["items"].as_array().unwrap() {
        expected += &format!(
            "{},{},{},{},{},{},{},{}\n",
            t["id"],
            t["region"].as_str().unwrap(),
            t["datasource"].as_str().unwrap(),
            t["datetime"].as_str().unwrap(),
            t["origin"][0],
            t["origin"][1],
            t["destination"][0],
            t["destination"][1]
        );
    }
    assert_eq!(expected.lines().count(), 8);
    let (status, ct, body) = text(&s, "/api/v1/trips/trips?limit=7&format=csv", "*/*").await;
    assert_eq!((status, ct.as_str()), (200, "text/csv; charset=utf-8"));
    assert_eq!(body, expected);

    let query = "/api/v1/trips/weekly-average?region=Turin&weeks=span";
    let (_, avg) = common::get(&s, query).await;
    let mut expected = String::from("year,week,label,week_start,trips\n");
    for w in avg["series"].as_array().unwrap() {
        expected += &format!(
            "{},{},{},{},{}\n",
            w["year"],
            w["week"],
            w["label"].as_str().unwrap(),
            w["week_start"].as_str().unwrap(),
            w["trips"]
        );
    }
    assert!(expected.lines().count() > 1, "{avg}");
    let (status, ct, body) = text(&s, query, "text/csv").await;
    assert_eq!((status, ct.as_str()), (200, "text/csv; charset=utf-8"));
    assert_eq!(body, expected);
    // JSON stays the default, also for a client that accepts anything.
    let (_, ct, _) = text(&s, query, "*/*").await;
    assert_eq!(ct, "application/json");
}

#[tokio::test]
async fn an_unknown_format_is_a_400_naming_it() {
    let s = common::server().await;
    for path in [
        "/api/v1/trips/trips?format=tsv",
        "/api/v1/trips/weekly-average?format=tsv",
    ] {
        let (status, ct, body) = text(&s, path, "*/*").await;
        assert_eq!(
            (status, ct.as_str()),
            (400, "application/problem+json"),
            "{path}"
        );
        let p: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(p["param"], "format", "{path}");
    }
}
