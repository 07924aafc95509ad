//! The upload limit holds per request, whatever the number of parts, and nothing a refused
//! upload sent stays in the spool; what a previous server left there is swept at start.

use std::path::Path;
use std::sync::Arc;

use sluice_core::Domain;
use sluice_server::testing::TestServer;

fn domains() -> Vec<Arc<dyn Domain>> {
    vec![Arc::new(sluice_network::NetworkDomain)]
}

/// Every file under `dir` (recursively).
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn part(name: &str, bytes: usize) -> reqwest::multipart::Part {
    reqwest::multipart::Part::bytes(vec![b'x'; bytes]).file_name(name.to_owned())
}

#[tokio::test]
async fn the_limit_is_per_request_and_a_refused_upload_leaves_nothing() {
    let server = TestServer::start_with(domains(), |s| s.max_body_bytes = 6_000).await;
    let spool = server.data_dir().join("spool");
    let client = reqwest::Client::new();
    // Three parts of 2 500 bytes: each under the limit, together over it.
    let form = reqwest::multipart::Form::new()
        .part("file", part("a.txt", 2_500))
        .part("file", part("b.txt", 2_500))
        .part("file", part("c.txt", 2_500));
    let resp = client
        .post(server.url("/api/v1/network/uploads"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(body["detail"].as_str().unwrap().contains("6000"), "{body}");
    assert_eq!(files_under(&spool), Vec::<std::path::PathBuf>::new());

    // Refused at the second part (a stray field): the first part is not kept either.
    let form = reqwest::multipart::Form::new()
        .part("file", part("a.txt", 100))
        .text("comment", "hello");
    let resp = client
        .post(server.url("/api/v1/network/uploads"))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(files_under(&spool), Vec::<std::path::PathBuf>::new());

    // A raw body over the limit is refused from its Content-Length.
    let resp = client
        .post(server.url("/api/v1/network/uploads?name=big.txt"))
        .header("content-type", "text/csv")
        .body(vec![b'x'; 7_000])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    assert_eq!(files_under(&spool), Vec::<std::path::PathBuf>::new());
    assert!(reqwest::get(server.url("/api/v1/jobs"))
        .await
        .unwrap()
        .json::<Vec<serde_json::Value>>()
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn a_restart_sweeps_what_a_previous_server_left_in_the_spool() {
    let server = TestServer::start(domains()).await;
    let left = server
        .data_dir()
        .join("spool/network/0b5d1a/ipflow_data.ts-1.1.txt");
    std::fs::create_dir_all(left.parent().unwrap()).unwrap();
    std::fs::write(&left, "half an upload").unwrap();
    let server = server.restart(domains()).await;
    assert!(!left.exists());
    assert_eq!(
        files_under(&server.data_dir().join("spool")),
        Vec::<std::path::PathBuf>::new()
    );
}
