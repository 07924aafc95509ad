//! The OpenAPI document of the whole server tells the truth: every route family is in it,
//! parameters are where they are sent, and every documented operation is answered by a route
//! (not by the 404/405 fallbacks, which answer problem+json like every other error).

use std::sync::Arc;

use serde_json::Value;
use sluice_core::Domain;
use sluice_server::testing::TestServer;

fn domains() -> Vec<Arc<dyn Domain>> {
    vec![
        Arc::new(sluice_network::NetworkDomain),
        Arc::new(sluice_trips::TripsDomain),
        Arc::new(sluice_streams::StreamsDomain),
        Arc::new(sluice_uptime::UptimeDomain),
    ]
}

async fn document(server: &TestServer) -> Value {
    let resp = reqwest::get(server.url("/api/v1/openapi.json"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

#[tokio::test]
async fn every_route_family_is_documented() {
    let server = TestServer::start(domains()).await;
    let doc = document(&server).await;
    let paths = doc["paths"].as_object().unwrap();
    let mut expected = vec![
        ("get", "/health"),
        ("get", "/metrics"),
        ("get", "/api/v1/openapi.json"),
        ("get", "/api/v1/jobs"),
        ("get", "/api/v1/jobs/{id}"),
        ("get", "/api/v1/jobs/{id}/events"),
        ("get", "/api/v1/events"),
        ("get", "/api/v1/ws"),
        ("get", "/kpi1"),
        ("get", "/kpi2/"),
        ("get", "/api/KPIs/{id}/"),
        ("get", "/vehicles"),
        ("post", "/vehicles"),
        ("get", "/vehicles/ingest-data/status"),
        ("get", "/user_report"),
        ("post", "/trigger_report"),
        ("get", "/get_report/{report_id}"),
    ];
    for d in ["network", "trips", "uptime"] {
        for (m, route) in [("post", "ingest"), ("post", "uploads"), ("get", "files")] {
            expected.push((
                m,
                Box::leak(format!("/api/v1/{d}/{route}").into_boxed_str()),
            ));
        }
    }
    let missing: Vec<_> = expected
        .iter()
        .filter(|(m, p)| paths.get(*p).and_then(|item| item.get(*m)).is_none())
        .collect();
    assert!(missing.is_empty(), "not in the document: {missing:?}");
}

#[tokio::test]
async fn parameters_are_where_they_are_sent() {
    let server = TestServer::start(domains()).await;
    let doc = document(&server).await;
    let mut wrong = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in METHODS {
            let Some(op) = item.get(m) else { continue };
            let params = op["parameters"].as_array().cloned().unwrap_or_default();
            for p in &params {
                let name = p["name"].as_str().unwrap();
                let placeholder = path.contains(&format!("{{{name}}}"));
                match p["in"].as_str().unwrap() {
                    "path" if !placeholder => {
                        wrong.push(format!("{m} {path}: `{name}` is no path segment"))
                    }
                    "path" => {}
                    _ if placeholder => {
                        wrong.push(format!("{m} {path}: `{name}` is a path segment"))
                    }
                    _ => {}
                }
            }
            for seg in path.split('/').filter(|s| s.starts_with('{')) {
                let name = seg.trim_matches(|c| c == '{' || c == '}');
                if !params
                    .iter()
                    .any(|p| p["name"] == name && p["in"] == "path")
                {
                    wrong.push(format!("{m} {path}: `{name}` is not declared"));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// Each documented operation reaches a handler: its answer is not the fallback's.
#[tokio::test]
async fn every_documented_operation_has_a_route() {
    let server = TestServer::start(domains()).await;
    let doc = document(&server).await;
    let client = reqwest::Client::new();
    let mut unrouted = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let concrete: String = path
            .split('/')
            .map(|s| if s.starts_with('{') { "0" } else { s })
            .collect::<Vec<_>>()
            .join("/");
        for m in METHODS {
            if item.get(m).is_none() {
                continue;
            }
            let method = reqwest::Method::from_bytes(m.to_uppercase().as_bytes()).unwrap();
            // Only the head is awaited, so never-ending streams answer too.
            let resp = client
                .request(method, server.url(&concrete))
                .send()
                .await
                .unwrap();
            let status = resp.status().as_u16();
            let body = if status == 404 || status == 405 {
                resp.text().await.unwrap()
            } else {
                String::new()
            };
            if status == 405 || body.contains("\"no route ") {
                unrouted.push(format!("{m} {path} → {status} {body}"));
            }
        }
    }
    assert!(unrouted.is_empty(), "{unrouted:#?}");
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_problem_json() {
    let server = TestServer::start(domains()).await;
    let client = reqwest::Client::new();
    let resp = client
        .get(server.url("/no/such/route"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(
        resp.headers()["content-type"],
        sluice_core::http::PROBLEM_JSON
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["detail"], "no route /no/such/route");
    let resp = client.delete(server.url("/health")).send().await.unwrap();
    assert_eq!(resp.status(), 405);
    assert_eq!(
        resp.headers()["content-type"],
        sluice_core::http::PROBLEM_JSON
    );
}
