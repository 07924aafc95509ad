//! Without a token the server serves local clients only: a web page the user has open can
//! neither read it through a rebound DNS name nor make it act through a cross-site request.
//! With a token, the bearer scheme is read as RFC 9110 says (case-insensitively).

use std::sync::Arc;

use sluice_core::Domain;
use sluice_server::testing::TestServer;

fn domains() -> Vec<Arc<dyn Domain>> {
    vec![
        Arc::new(sluice_network::NetworkDomain),
        Arc::new(sluice_streams::StreamsDomain),
        Arc::new(sluice_uptime::UptimeDomain),
    ]
}

async fn jobs(server: &TestServer) -> Vec<serde_json::Value> {
    reqwest::get(server.url("/api/v1/jobs"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_rebound_host_name_is_refused() {
    let server = TestServer::start(domains()).await;
    let client = reqwest::Client::new();
    let resp = client
        .get(server.url("/api/v1/jobs"))
        .header("host", "evil.example:8080")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("evil.example"),
        "{body}"
    );
    for ok in ["localhost:8080", "127.0.0.1", "[::1]:1"] {
        let resp = client
            .get(server.url("/health"))
            .header("host", ok)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{ok}");
    }
}

#[tokio::test]
async fn allowed_hosts_extend_the_loopback_names() {
    let server = TestServer::start_with(domains(), |s| {
        s.allowed_hosts = vec!["sluice.lan".into()];
    })
    .await;
    let resp = reqwest::Client::new()
        .get(server.url("/health"))
        .header("host", "sluice.lan:8080")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn cross_site_posts_are_refused_and_start_nothing() {
    let server = TestServer::start(domains()).await;
    let client = reqwest::Client::new();
    // A page's form or fetch in no-cors mode: Origin of the page, a "simple" content type.
    let resp = client
        .post(server.url("/api/v1/streams/harvests"))
        .header("origin", "http://evil.example")
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let resp = client
        .post(server.url("/trigger_report"))
        .header("origin", "null")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    // JSON sent as text/plain (no preflight) is not JSON to this server.
    let resp = client
        .post(server.url("/api/v1/uptime/reports"))
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 415);
    assert!(
        jobs(&server).await.is_empty(),
        "a refused request started a job"
    );

    // The server's own origin is fine.
    let own = server.base.clone();
    let resp = client
        .post(server.url("/api/v1/network/ingest"))
        .header("origin", own)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let server = TestServer::start_with(domains(), |s| s.token = Some("t0ken".into())).await;
    let client = reqwest::Client::new();
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let resp = client
            .post(server.url("/api/v1/network/ingest"))
            .header("authorization", format!("{scheme} t0ken"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 202, "{scheme}");
    }
    let resp = client
        .post(server.url("/api/v1/network/ingest"))
        .header("authorization", "Basic t0ken")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}
