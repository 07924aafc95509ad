//! Compressed uploads over real HTTP: a gzip that expands past `max_decompressed_bytes` is
//! rejected as a whole, named, with nothing of it kept; progress counts compressed bytes.

mod common;

use std::io::Write;
use std::sync::Arc;

use serde_json::Value;
use sluice_network::NetworkDomain;
use sluice_server::testing::TestServer;

const HEADER: &str = "interval_start_timestamp,interval_end_timestamp,msisdn,bytes_uplink,bytes_downlink,service_id,cell_id\n";
const ROW: &str = "1488355200000,1488355500000,31619690654,100,200,1,1001\n";
const LIMIT: u64 = 1 << 20;

/// The header and `rows` copies of `ROW`, gzip-compressed; and its decompressed size.
fn repeated_gz(rows: usize) -> (Vec<u8>, u64) {
    let text = format!("{HEADER}{}", ROW.repeat(rows));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(text.as_bytes()).unwrap();
    (gz.finish().unwrap(), text.len() as u64)
}

async fn upload_gz(s: &TestServer, name: &str, body: Vec<u8>) -> Value {
    let resp = reqwest::Client::new()
        .post(s.url(&format!("/api/v1/network/uploads?name={name}")))
        .header("content-type", "application/gzip")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202, "{:?}", resp.text().await);
    common::finish(s, &resp.json().await.unwrap()).await
}

async fn kpi1(s: &TestServer) -> Value {
    reqwest::get(s.url("/kpi1?interval=5-minute"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_gzip_expanding_past_max_decompressed_bytes_is_rejected_whole_and_named() {
    let s = TestServer::start_with(vec![Arc::new(NetworkDomain)], |s| {
        s.max_decompressed_bytes = LIMIT;
    })
    .await;
    let big = "ipflow_data.ts-1488355500000.1.txt.gz";
    let (body, plain) = repeated_gz(2 * LIMIT as usize / ROW.len());
    assert!(plain > LIMIT);
    let size = body.len() as u64;
    let job = upload_gz(&s, big, body).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let file = &job["summary"]["files"][0];
    assert_eq!(file["name"], big, "{job}");
    assert_eq!(file["status"], "rejected", "{job}");
    assert_eq!(file["rows_accepted"], 0, "{job}");
    let detail = file["detail"].as_str().unwrap();
    assert!(detail.contains(big), "{detail}");
    assert!(detail.contains(&LIMIT.to_string()), "{detail}");
    // Progress counts the upload's own (compressed) bytes, to its end.
    assert_eq!(job["progress"]["total"], size, "{job}");
    assert_eq!(job["progress"]["done"], size, "{job}");
    // The first megabyte of its rows was valid: none of it is kept.
    assert_eq!(kpi1(&s).await, serde_json::json!([]));

    // A file within the limit, on the same server, is ingested.
    let small = "ipflow_data.ts-1488355500000.2.txt.gz";
    let rows = LIMIT as usize / 2 / ROW.len();
    let (body, _) = repeated_gz(rows);
    let job = upload_gz(&s, small, body).await;
    assert_eq!(job["summary"]["files"][0]["status"], "ingested", "{job}");
    assert_eq!(job["summary"]["files"][0]["rows_accepted"], rows, "{job}");
    assert_eq!(kpi1(&s).await[0]["total_bytes"], rows as u64 * 300);
}
