//! The OpenAPI document of the domain: every route the router answers, with its parameters
//! where they really are.

use serde_json::Value;
use sluice_core::Domain;
use sluice_streams::StreamsDomain;

fn doc() -> Value {
    serde_json::to_value(StreamsDomain.openapi()).unwrap()
}

#[test]
fn every_route_is_documented_with_its_methods() {
    let doc = doc();
    if let Ok(path) = std::env::var("STREAMS_OPENAPI_DUMP") {
        std::fs::write(path, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    }
    let paths = doc["paths"].as_object().unwrap();
    let want = [
        ("/api/v1/streams/harvests", "post"),
        ("/api/v1/streams/runs", "get"),
        ("/api/v1/streams/runs/{run_id}", "get"),
        ("/api/v1/streams/runs/{run_id}/report", "get"),
        ("/api/v1/streams/runs/{run_id}/events", "get"),
        ("/api/v1/streams/runs/{run_id}/malformed", "get"),
        ("/user_report", "get"),
        ("/recent_shows", "get"),
        ("/successful_streams", "get"),
        ("/start_events", "get"),
    ];
    for (path, method) in want {
        assert!(paths[path][method].is_object(), "{method} {path}");
    }
    assert_eq!(paths.len(), want.len(), "{:?}", paths.keys());
}

#[test]
fn query_parameters_are_in_the_query_and_path_parameters_in_the_path() {
    let doc = doc();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let mut seen = std::collections::BTreeSet::new();
            for p in op["parameters"].as_array().into_iter().flatten() {
                assert!(
                    seen.insert(p["name"].to_string() + &p["in"].to_string()),
                    "{method} {path} {p}"
                );
                let name = p["name"].as_str().unwrap();
                let in_path = path.contains(&format!("{{{name}}}"));
                let want = if in_path { "path" } else { "query" };
                assert_eq!(p["in"], want, "{method} {path} {name}");
            }
        }
    }
    let events = &doc["paths"]["/api/v1/streams/runs/{run_id}/events"]["get"]["parameters"];
    let names: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["run_id", "limit", "offset", "stream"]);
}

#[test]
fn every_error_is_a_documented_problem() {
    let doc = doc();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            let has = |s: &str| responses.contains_key(s);
            // A bad run id is a 400, an unknown one a 404; compat routes 404 without a run.
            if path.contains("{run_id}") {
                assert!(has("400") && has("404"), "{method} {path}");
            }
            if !path.starts_with("/api/") {
                assert!(has("404"), "{method} {path}");
            }
            if op["parameters"].is_array() || op["requestBody"].is_object() {
                assert!(has("400"), "{method} {path}");
            }
            for (status, r) in responses {
                if status.starts_with('4') {
                    let schema = &r["content"]["application/problem+json"]["schema"]["$ref"];
                    assert_eq!(
                        schema, "#/components/schemas/Problem",
                        "{method} {path} {status}"
                    );
                }
            }
        }
    }
    assert!(doc["components"]["schemas"]["Problem"].is_object());
}
