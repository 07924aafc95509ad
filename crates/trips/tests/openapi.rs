//! The domain's OpenAPI document tells the truth about its routes: every route the router
//! answers is there, query parameters are in the query, path parameters are exactly the
//! path's placeholders, errors are problem+json, and every reference resolves.

use serde_json::Value;
use sluice_core::Domain;
use sluice_trips::TripsDomain;

const ROUTES: &[(&str, &str)] = &[
    ("get", "/api/v1/trips/trips"),
    ("get", "/api/v1/trips/trips/{id}"),
    ("get", "/api/v1/trips/groups"),
    ("get", "/api/v1/trips/groups/{id}"),
    ("get", "/api/v1/trips/groups/{id}/trips"),
    ("get", "/api/v1/trips/weekly-average"),
    ("get", "/api/v1/trips/counts"),
    ("get", "/api/v1/trips/density"),
    ("get", "/vehicles"),
    ("post", "/vehicles"),
    ("get", "/vehicles/{id}"),
    ("get", "/vehicles/{column}/count"),
    ("get", "/vehicles/weekly_trips/region"),
    ("get", "/vehicles/weekly_avg_trips/region"),
    ("get", "/vehicles/ingest-data/status"),
];

fn doc() -> Value {
    serde_json::to_value(TripsDomain.openapi()).unwrap()
}

fn placeholders(path: &str) -> Vec<&str> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .collect()
}

#[test]
fn every_route_is_documented_with_its_parameters_where_they_are() {
    let doc = doc();
    let paths = doc["paths"].as_object().unwrap();
    for (method, path) in ROUTES {
        let op = &paths.get(*path).unwrap_or_else(|| panic!("{path} missing"))[method];
        assert!(op.is_object(), "{method} {path} missing");
        let params = op["parameters"].as_array().cloned().unwrap_or_default();
        let mut in_path: Vec<&str> = params
            .iter()
            .filter(|p| p["in"] == "path")
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        in_path.sort_unstable();
        let mut want = placeholders(path);
        want.sort_unstable();
        assert_eq!(in_path, want, "{method} {path}: path parameters");
        for p in &params {
            assert!(
                p["in"] == "path" || p["in"] == "query",
                "{method} {path}: {p}"
            );
            if p["in"] == "query" {
                assert_ne!(p["required"], true, "{method} {path}: {p}");
            }
        }
    }
    // Nothing documented that the router does not answer.
    let documented: usize = paths
        .values()
        .map(|item| {
            ["get", "post", "put", "delete", "patch"]
                .iter()
                .filter(|m| item.get(**m).is_some())
                .count()
        })
        .sum();
    assert_eq!(documented, ROUTES.len());
}

#[test]
fn errors_are_problem_json_and_references_resolve() {
    let doc = doc();
    let text = doc.to_string();
    for (_, item) in doc["paths"].as_object().unwrap() {
        for (_, op) in item.as_object().unwrap() {
            for (status, resp) in op["responses"].as_object().unwrap() {
                if status.starts_with('4') {
                    let content = resp["content"].as_object().unwrap();
                    assert_eq!(
                        content.keys().collect::<Vec<_>>(),
                        ["application/problem+json"],
                        "{status}"
                    );
                    assert_eq!(
                        content["application/problem+json"]["schema"]["$ref"],
                        "#/components/schemas/Problem"
                    );
                }
            }
        }
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("#/components/schemas/") {
        rest = &rest[at + "#/components/schemas/".len()..];
        let name = &rest[..rest.find('"').unwrap()];
        assert!(schemas.contains_key(name), "unresolved reference {name}");
    }
}

#[test]
fn compat_content_types_are_the_originals() {
    let doc = doc();
    let post = &doc["paths"]["/vehicles"]["post"]["responses"]["200"];
    assert!(post["content"]["text/html"].is_object(), "{post}");
    let status = &doc["paths"]["/vehicles/ingest-data/status"]["get"]["responses"]["200"];
    assert!(status["content"]["application/json"].is_object());
    assert!(status["content"]["text/event-stream"].is_object());
    let id = &doc["paths"]["/vehicles/{id}"]["get"]["parameters"][0]["schema"];
    assert_eq!(id["minimum"], 0);
}
