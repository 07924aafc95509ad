//! The OpenAPI document of the domain tells the truth about its routes: every route the
//! router answers is there, query parameters are in the query, errors are problem+json, and
//! the bounds and patterns it declares are the ones the server enforces (checked against a
//! real server at and just past each bound).

use std::sync::Arc;

use serde_json::{json, Value};
use sluice_core::Domain;
use sluice_server::testing::TestServer;
use sluice_uptime::api::MAX_OFFSET;
use sluice_uptime::compat::REPORT_ID_PATTERN;
use sluice_uptime::parse::INSTANT_PATTERN;
use sluice_uptime::UptimeDomain;

fn doc() -> Value {
    serde_json::to_value(UptimeDomain.openapi()).unwrap()
}

/// Every route `UptimeDomain::router` answers, with its methods.
const ROUTES: &[(&str, &[&str])] = &[
    ("/trigger_report", &["post"]),
    ("/get_report/{report_id}", &["get"]),
    ("/get_report", &["get"]),
    ("/api/v1/uptime/reports", &["get", "post"]),
    ("/api/v1/uptime/reports/{id}", &["get"]),
    ("/api/v1/uptime/reports/{id}/rows", &["get"]),
    ("/api/v1/uptime/summary", &["get"]),
    ("/api/v1/uptime/stores", &["get"]),
    ("/api/v1/uptime/stores/{store_id}/timeline", &["get"]),
];

fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            out.push((path.clone(), method.clone(), op.clone()));
        }
    }
    out
}

fn param<'a>(doc: &'a Value, path: &str, method: &str, name: &str) -> &'a Value {
    doc["paths"][path][method]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("{method} {path}: no parameter {name}"))
}

#[test]
fn every_route_is_documented_and_nothing_else() {
    let doc = doc();
    let mut documented: Vec<(String, String)> = operations(&doc)
        .into_iter()
        .map(|(p, m, _)| (p, m))
        .collect();
    documented.sort();
    let mut expected: Vec<(String, String)> = ROUTES
        .iter()
        .flat_map(|(p, ms)| ms.iter().map(|m| (p.to_string(), m.to_string())))
        .collect();
    expected.sort();
    assert_eq!(documented, expected);
}

#[test]
fn path_parameters_are_the_path_templates_and_the_rest_is_query() {
    for (path, method, op) in operations(&doc()) {
        let mut in_path: Vec<String> = Vec::new();
        for p in op["parameters"].as_array().into_iter().flatten() {
            let name = p["name"].as_str().unwrap();
            match p["in"].as_str().unwrap() {
                "path" => {
                    assert!(
                        path.contains(&format!("{{{name}}}")),
                        "{method} {path}: `{name}` is documented in the path but is a query parameter"
                    );
                    assert_eq!(p["required"], true);
                    in_path.push(name.to_owned());
                }
                "query" => {}
                other => panic!("{method} {path}: `{name}` in {other}"),
            }
        }
        let templated = path.matches('{').count();
        assert_eq!(in_path.len(), templated, "{method} {path}");
    }
}

#[test]
fn errors_are_problem_json_and_csv_is_announced() {
    let doc = doc();
    for (path, method, op) in operations(&doc) {
        for (status, resp) in op["responses"].as_object().unwrap() {
            let content = resp["content"].as_object().unwrap();
            if status.starts_with('4') {
                let types: Vec<&String> = content.keys().collect();
                assert_eq!(
                    types,
                    ["application/problem+json"],
                    "{method} {path} {status}"
                );
                assert_eq!(
                    content["application/problem+json"]["schema"]["$ref"],
                    "#/components/schemas/Problem"
                );
            }
        }
    }
    for path in [
        "/get_report/{report_id}",
        "/get_report",
        "/api/v1/uptime/reports/{id}/rows",
    ] {
        let ok = doc["paths"][path]["get"]["responses"]["200"]["content"]
            .as_object()
            .unwrap();
        assert!(ok.contains_key("application/json"), "{path}");
        assert!(ok.contains_key("text/csv"), "{path}");
    }
}

#[test]
fn declared_patterns_are_the_servers() {
    let doc = doc();
    for (path, name) in [
        ("/get_report/{report_id}", "report_id"),
        ("/get_report", "report_id"),
        ("/api/v1/uptime/reports/{id}", "id"),
        ("/api/v1/uptime/reports/{id}/rows", "id"),
    ] {
        assert_eq!(
            param(&doc, path, "get", name)["schema"]["pattern"],
            REPORT_ID_PATTERN,
            "{path}"
        );
    }
    assert_eq!(
        param(
            &doc,
            "/api/v1/uptime/stores/{store_id}/timeline",
            "get",
            "now"
        )["schema"]["pattern"],
        INSTANT_PATTERN
    );
    let body = &doc["components"]["schemas"]["UptimeTriggerBody"];
    assert_eq!(body["properties"]["now"]["pattern"], INSTANT_PATTERN);
    assert_eq!(
        body["properties"]["callback_url"]["pattern"],
        sluice_core::http::HTTP_URL_PATTERN
    );
    assert_eq!(body["additionalProperties"], false);
}

/// GETs `path?name=value` and returns the status and the problem's `param`, if any.
async fn probe(ts: &TestServer, path: &str, name: &str, value: &str) -> (u16, Value) {
    let sep = if path.contains('?') { '&' } else { '?' };
    let resp = reqwest::get(ts.url(&format!("{path}{sep}{name}={value}")))
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    (status, body["param"].clone())
}

#[tokio::test]
async fn integer_bounds_are_enforced_exactly_as_declared() {
    let ts = TestServer::start(vec![Arc::new(UptimeDomain) as Arc<dyn Domain>]).await;
    let resp = reqwest::Client::new()
        .post(ts.url("/api/v1/uptime/uploads?name=polls.csv"))
        .header("content-type", "text/csv")
        .body("store_id,status,timestamp_utc\ns1,active,2023-01-23 16:14:00 UTC\n")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let doc = doc();
    let cases = [
        ("/api/v1/uptime/stores", "limit"),
        ("/api/v1/uptime/stores", "offset"),
        ("/api/v1/uptime/reports", "limit"),
        ("/api/v1/uptime/reports", "offset"),
        ("/api/v1/uptime/stores/s1/timeline", "coverage_minutes"),
    ];
    for (path, name) in cases {
        let doc_path = path.replace("s1", "{store_id}");
        let schema = &param(&doc, &doc_path, "get", name)["schema"];
        let (min, max) = (
            schema["minimum"].as_i64().unwrap(),
            schema["maximum"].as_i64().unwrap(),
        );
        for ok in [min, max] {
            let (status, _) = probe(&ts, path, name, &ok.to_string()).await;
            assert!(
                status == 200 || status == 404,
                "{path} {name}={ok}: {status}"
            );
        }
        let below = (i128::from(min) - 1).to_string();
        let above = (i128::from(max) + 1).to_string();
        for bad in [below.as_str(), above.as_str(), "1.5", "x", ""] {
            let (status, p) = probe(&ts, path, name, bad).await;
            assert_eq!((status, p), (400, json!(name)), "{path} {name}={bad}");
        }
    }
    // The one the issue names: 2^63 used to wrap to the first page.
    assert_eq!(MAX_OFFSET, i64::MAX);
    let (status, p) = probe(
        &ts,
        "/api/v1/uptime/stores",
        "offset",
        "9223372036854775808",
    )
    .await;
    assert_eq!((status, p), (400, json!("offset")));
    let far: Value = reqwest::get(ts.url("/api/v1/uptime/stores?offset=9223372036854775807"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(far, json!([]));
}

/// Waits for a job to end (no timing assertion: it only bounds a hang).
async fn wait_job(ts: &TestServer, id: sluice_core::JobId) -> sluice_core::Job {
    for _ in 0..3000 {
        let job = ts.ctx.jobs.get(id).unwrap().unwrap();
        if job.state.is_terminal() {
            return job;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("job {id} did not end");
}

/// The ends of the declared `now` language are computed, not failed: 2xx for a valid value.
#[tokio::test]
async fn extreme_instants_inside_the_pattern_are_answered() {
    let ts = TestServer::start(vec![Arc::new(UptimeDomain) as Arc<dyn Domain>]).await;
    let resp = reqwest::Client::new()
        .post(ts.url("/api/v1/uptime/uploads?name=polls.csv"))
        .header("content-type", "text/csv")
        .body("store_id,status,timestamp_utc\ns1,active,2023-01-23 16:14:00 UTC\n")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let job: Value = resp.json().await.unwrap();
    let job_id: sluice_core::JobId = job["id"].as_str().unwrap().parse().unwrap();
    wait_job(&ts, job_id).await;
    for now in [
        "0000-01-01T00:00:00+23:59",
        "0000-02-29 00:00:00 UTC",
        "9999-12-31T23:59:59.999999-23:59",
    ] {
        let resp = reqwest::get(ts.url(&format!(
            "/api/v1/uptime/stores/s1/timeline?window=week&coverage_minutes=4294967295&now={}",
            now.replace('+', "%2B").replace(' ', "%20")
        )))
        .await
        .unwrap();
        assert_eq!(resp.status(), 200, "{now}");
        let resp = reqwest::Client::new()
            .post(ts.url("/api/v1/uptime/reports"))
            .json(&json!({"now": now, "coverage_minutes": 4294967295u32}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 202, "{now}");
        let id: sluice_core::JobId = resp.json::<Value>().await.unwrap()["report_id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        let job = wait_job(&ts, id).await;
        assert_eq!(
            job.state,
            sluice_core::JobState::Succeeded,
            "{now}: {:?}",
            job.error
        );
    }
}
