//! The network domain over real HTTP: a server on a random port with a fresh database.

use std::sync::Arc;

use serde_json::{json, Value};
use sluice_network::NetworkDomain;
use sluice_server::testing::TestServer;

mod common;
use common::finish;

const SAMPLES: [&str; 4] = [
    "ipflow_data.ts-1488355500000.1.txt",
    "ipflow_data.ts-1488355500000.2.txt",
    "ipflow_data.ts-1488355800000.1.txt",
    "ipflow_data.ts-1488355800000.2.txt",
];
const HEADER: &str = "interval_start_timestamp,interval_end_timestamp,msisdn,bytes_uplink,bytes_downlink,service_id,cell_id\n";

fn sample(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/data/sgioldasis-python-analysis-api/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

async fn server() -> TestServer {
    TestServer::start(vec![Arc::new(NetworkDomain)]).await
}

async fn upload(s: &TestServer, name: &str, body: Vec<u8>) -> Value {
    let resp = reqwest::Client::new()
        .post(s.url(&format!("/api/v1/network/uploads?name={name}")))
        .header("content-type", "text/csv")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202, "{:?}", resp.text().await);
    resp.json().await.unwrap()
}

async fn ingest_samples(s: &TestServer) -> Value {
    let inbox = s.ctx.settings.inbox_dir("network");
    std::fs::create_dir_all(&inbox).unwrap();
    for f in SAMPLES {
        // Written under a temporary name first so the watcher does not race the explicit job.
        std::fs::write(inbox.join(format!(".{f}")), sample(f)).unwrap();
        std::fs::rename(inbox.join(format!(".{f}")), inbox.join(f)).unwrap();
    }
    let resp = reqwest::Client::new()
        .post(s.url("/api/v1/network/ingest"))
        .json(&json!({"files": SAMPLES}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let job: Value = resp.json().await.unwrap();
    finish(s, &job).await
}

async fn get(s: &TestServer, path: &str) -> Value {
    let resp = reqwest::get(s.url(path)).await.unwrap();
    assert_eq!(resp.status(), 200, "{path}: {:?}", resp.text().await);
    resp.json().await.unwrap()
}

fn pairs(v: &Value, id: &str, value: &str) -> Vec<(i64, i64)> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| (r[id].as_i64().unwrap(), r[value].as_i64().unwrap()))
        .collect()
}

#[tokio::test]
async fn sample_files_give_the_spec_table_through_both_compat_apis() {
    let s = server().await;
    let job = ingest_samples(&s).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["summary"]["rows_accepted"], 40);

    let five = get(
        &s,
        "/kpi1?from=2017-03-01_08:00:00&to=2017-03-01_08:05:00&interval=5-minute",
    )
    .await;
    assert_eq!(
        pairs(&five, "service_id", "total_bytes"),
        vec![(1, 16100), (3, 11500), (2, 9260)]
    );
    assert_eq!(five[0]["interval_start_timestamp"], "2017-03-01 08:00:00");
    assert_eq!(five[0]["interval_end_timestamp"], "2017-03-01 08:05:00");
    assert_eq!(five[0]["interval"], "5-minute");

    let second = get(
        &s,
        "/kpi2/?from=2017-03-01_08:05:00&to=2017-03-01_08:10:00&interval=5-minute",
    )
    .await;
    assert_eq!(
        pairs(&second, "cell_id", "number_of_unique_users"),
        vec![(1001, 4), (5005, 3), (1000, 3)]
    );

    let hour = get(&s, "/kpi1?interval=1-hour").await;
    assert_eq!(
        pairs(&hour, "service_id", "total_bytes"),
        vec![(1, 32200), (3, 23000), (2, 18520)]
    );
    let hour_cells = get(&s, "/kpi2?interval=1-hour").await;
    assert_eq!(
        pairs(&hour_cells, "cell_id", "number_of_unique_users"),
        vec![(1001, 4), (5005, 3), (1000, 3)]
    );

    // Everything: two 5-minute intervals and one hour, 3 rows each, by start then rank.
    let all = get(&s, "/kpi1").await;
    assert_eq!(all.as_array().unwrap().len(), 9);

    let django = get(&s, "/api/KPIs/2/?interval=2").await;
    assert_eq!(
        pairs(&django, "cell_id", "number_of_unique_users"),
        vec![(1001, 4), (5005, 3), (1000, 3)]
    );
    assert_eq!(
        django[0]["interval_start_timestamp"],
        "2017-03-01T08:00:00Z"
    );
    assert_eq!(django[0]["interval_end_timestamp"], "2017-03-01T09:00:00Z");
    assert_eq!(django[0]["interval"], 2);
    assert!(django[0]["id"].is_i64());
    let django5 = get(
        &s,
        "/api/KPIs/1/?interval_start_timestamp__gte=2017-03-01T08:00:00Z&interval_end_timestamp__lte=2017-03-01T08:05:00Z&interval=1",
    )
    .await;
    assert_eq!(
        pairs(&django5, "service_id", "total_bytes"),
        vec![(1, 16100), (3, 11500), (2, 9260)]
    );
    let empty_filters = get(
        &s,
        "/api/KPIs/1/?interval_start_timestamp__gte=&interval_end_timestamp__lte=&interval=2",
    )
    .await;
    assert_eq!(empty_filters.as_array().unwrap().len(), 3);
    assert_eq!(
        get(&s, "/api/KPIs/").await,
        json!([{"id":1,"name":"ServiceTrafficVolume"},{"id":2,"name":"CellUniqueUsers"}])
    );
    assert_eq!(
        reqwest::get(s.url("/api/KPIs/3/")).await.unwrap().status(),
        404
    );

    // Native: ranks 4 and 5 are kept too; the hour reports its coverage.
    let native = get(
        &s,
        "/api/v1/network/kpis/top_services?interval=5m&limit=5&page_size=1",
    )
    .await;
    let top: Vec<(i64, i64)> = native["items"][0]["top"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["service_id"].as_i64().unwrap(),
                t["total_bytes"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        top,
        vec![(1, 16100), (3, 11500), (2, 9260), (4, 6550), (5, 2910)]
    );
    assert_eq!(native["next_offset"], 1);
    let hourly = get(&s, "/api/v1/network/kpis/top_cells?interval=1h").await;
    assert_eq!(hourly["items"][0]["coverage"], 2);
    assert_eq!(hourly["items"][0]["rows"], 40);
    assert_eq!(hourly["items"][0]["interval_start"], "2017-03-01T08:00:00Z");
}

#[tokio::test]
async fn gzip_files_give_the_same_kpis() {
    use std::io::Write;
    let s = server().await;
    for f in &SAMPLES[..2] {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&sample(f)).unwrap();
        let job = upload(&s, &format!("{f}.gz"), gz.finish().unwrap()).await;
        let job = finish(&s, &job).await;
        assert_eq!(job["summary"]["files"][0]["rows_accepted"], 10, "{job}");
    }
    let five = get(&s, "/kpi1?interval=5-minute").await;
    assert_eq!(
        pairs(&five, "service_id", "total_bytes"),
        vec![(1, 16100), (3, 11500), (2, 9260)]
    );
}

#[tokio::test]
async fn reingestion_is_a_noop_and_late_or_changed_files_update_their_intervals() {
    let s = server().await;
    ingest_samples(&s).await;
    let again = ingest_samples(&s).await;
    let statuses: Vec<&str> = again["summary"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, vec!["duplicate"; 4]);
    assert_eq!(again["summary"]["rows_accepted"], 0);
    let hour = get(&s, "/kpi1?interval=1-hour").await;
    assert_eq!(
        pairs(&hour, "service_id", "total_bytes"),
        vec![(1, 32200), (3, 23000), (2, 18520)]
    );

    // A late third part for 08:00–08:05: service 2 jumps ahead there and in the hour; cell
    // 5005 gains one new subscriber (…999) and sees one it already had (…654) again.
    let late = format!(
        "{HEADER}1488355200000,1488355500000,31619690999,10000,0,2,5005\n1488355200000,1488355500000,31619690654,1,0,2,5005\n"
    );
    let job = upload(&s, "ipflow_data.ts-1488355500000.3.txt", late.into_bytes()).await;
    let job = finish(&s, &job).await;
    assert_eq!(job["summary"]["files"][0]["status"], "ingested");
    let five = get(
        &s,
        "/kpi1?from=2017-03-01_08:00:00&to=2017-03-01_08:05:00&interval=5-minute",
    )
    .await;
    assert_eq!(
        pairs(&five, "service_id", "total_bytes"),
        vec![(2, 19261), (1, 16100), (3, 11500)]
    );
    let hour = get(&s, "/kpi1?interval=1-hour").await;
    assert_eq!(
        pairs(&hour, "service_id", "total_bytes"),
        vec![(1, 32200), (2, 28521), (3, 23000)]
    );
    let cells = get(&s, "/kpi2?interval=5-minute&to=2017-03-01_08:05:00").await;
    assert_eq!(
        pairs(&cells, "cell_id", "number_of_unique_users"),
        vec![(5005, 4), (1001, 4), (1000, 3)]
    );
    let hour_cells = get(&s, "/kpi2?interval=1-hour").await;
    assert_eq!(
        pairs(&hour_cells, "cell_id", "number_of_unique_users"),
        vec![(5005, 4), (1001, 4), (1000, 3)]
    );

    // The same name with other content replaces the earlier contribution.
    let fixed = format!("{HEADER}1488355200000,1488355500000,31619690999,1,0,2,5005\n");
    let job = upload(&s, "ipflow_data.ts-1488355500000.3.txt", fixed.into_bytes()).await;
    let job = finish(&s, &job).await;
    assert_eq!(job["summary"]["files"][0]["status"], "replaced");
    let five = get(
        &s,
        "/kpi1?from=2017-03-01_08:00:00&to=2017-03-01_08:05:00&interval=5-minute",
    )
    .await;
    assert_eq!(
        pairs(&five, "service_id", "total_bytes"),
        vec![(1, 16100), (3, 11500), (2, 9261)]
    );
    let hour = get(&s, "/kpi1?interval=1-hour").await;
    assert_eq!(
        pairs(&hour, "service_id", "total_bytes"),
        vec![(1, 32200), (3, 23000), (2, 18521)]
    );
    let files = get(&s, "/api/v1/network/files").await;
    assert_eq!(files.as_array().unwrap().len(), 5);
}

/// (body, file status, rows accepted, reason, line of the first rejection)
type Case = (Vec<u8>, &'static str, u64, Option<&'static str>, u64);

#[tokio::test]
async fn malformed_inputs_get_reasons_and_never_a_500() {
    let s = server().await;
    let name = |i: u32| format!("ipflow_data.ts-1488355500000.{i}.txt");
    let row = "1488355200000,1488355500000,31619690654,100,200,1,1001";
    let mut huge = format!("{HEADER}{row}\n").into_bytes();
    huge.extend(std::iter::repeat_n(b'9', 200_000));
    huge.extend(format!("\n{row}\n").as_bytes());
    let mut bad_utf8 = HEADER.as_bytes().to_vec();
    bad_utf8.extend(b"1488355200000,1488355500000,3161\xff\xfe,1,2,1,1001\n");
    bad_utf8.extend(format!("{row}\n").as_bytes());
    let cases: Vec<Case> = vec![
        (
            b"msisdn,bytes\n1,2\n".to_vec(),
            "rejected",
            0,
            Some("lacks required column"),
            0,
        ),
        (
            format!("{HEADER}{row}\n1,2,3\n").into_bytes(),
            "ingested",
            1,
            Some("expected 7 fields, found 3"),
            3,
        ),
        (
            format!("{HEADER}1488355200000,1488355500000,abc,1,2,1,1001\n{row}\n").into_bytes(),
            "ingested",
            1,
            Some("msisdn is not an integer"),
            2,
        ),
        (
            format!("{HEADER}1488355200000,1488355500000,316,-1,2,1,1001\n{row}").into_bytes(),
            "ingested",
            1,
            Some("bytes_uplink is negative"),
            2,
        ),
        (
            format!("{HEADER}1488355200100,1488355500100,316,1,2,1,1001\n{row}\r\n").into_bytes(),
            "ingested",
            1,
            Some("not on a 5-minute boundary"),
            2,
        ),
        (
            format!("{HEADER}1488355200000,1488355800000,316,1,2,1,1001\n{row}\n").into_bytes(),
            "ingested",
            1,
            Some("is 600000 ms long"),
            2,
        ),
        (bad_utf8, "ingested", 1, Some("not an integer"), 2),
        (Vec::new(), "ingested", 0, None, 0),
        (huge, "ingested", 2, Some("line longer than"), 3),
    ];
    for (i, (body, status, accepted, reason, line)) in cases.into_iter().enumerate() {
        let job = upload(&s, &name(10 + i as u32), body).await;
        let job = finish(&s, &job).await;
        assert_eq!(job["state"], "succeeded", "case {i}: {job}");
        let file = &job["summary"]["files"][0];
        assert_eq!(file["status"], status, "case {i}: {job}");
        assert_eq!(file["rows_accepted"], accepted, "case {i}: {job}");
        if let Some(reason) = reason {
            let text = job.to_string();
            assert!(text.contains(reason), "case {i}: want `{reason}` in {text}");
        }
        if status == "ingested" && reason.is_some() {
            let r = &job["summary"]["rejections"][0];
            assert_eq!(r["file"], name(10 + i as u32));
            assert_eq!(r["line"], line, "case {i}: {job}");
        }
    }
    // Bad requests are 4xx problems naming the parameter.
    for (path, status, param) in [
        ("/kpi1?from=yesterday", 400, Some("from")),
        ("/kpi1?interval=2-hour", 400, Some("interval")),
        (
            "/api/KPIs/1/?interval_start_timestamp__gte=2021-13-01",
            400,
            Some("interval_start_timestamp__gte"),
        ),
        ("/api/KPIs/abc/", 404, None),
        (
            "/api/v1/network/kpis/top_services?limit=500",
            400,
            Some("limit"),
        ),
        ("/api/v1/network/kpis/nope", 404, None),
        ("/api/v1/jobs/not-a-uuid", 400, Some("id")),
    ] {
        let resp = reqwest::get(s.url(path)).await.unwrap();
        assert_eq!(resp.status().as_u16(), status, "{path}");
        assert_eq!(
            resp.headers()["content-type"],
            "application/problem+json",
            "{path}"
        );
        let body: Value = resp.json().await.unwrap();
        if let Some(param) = param {
            assert_eq!(body["param"], param, "{path}: {body}");
        }
    }
    let resp = reqwest::Client::new()
        .post(s.url("/api/v1/network/uploads?name=../../etc/passwd"))
        .header("content-type", "text/csv")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let resp = reqwest::Client::new()
        .post(s.url("/api/v1/network/ingest"))
        .json(&json!({"files": ["../sluice.db"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}
