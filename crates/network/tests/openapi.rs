//! The domain's OpenAPI document describes every route it serves, with query parameters in
//! the query, errors as problem+json, and the constraints the server enforces.

use serde_json::Value;
use sluice_core::Domain;
use sluice_network::NetworkDomain;

fn doc() -> Value {
    serde_json::to_value(NetworkDomain.openapi()).unwrap()
}

const ROUTES: [&str; 10] = [
    "/kpi1",
    "/kpi1/",
    "/kpi2",
    "/kpi2/",
    "/api/KPIs",
    "/api/KPIs/",
    "/api/KPIs/{id}",
    "/api/KPIs/{id}/",
    "/api/v1/network/kpis",
    "/api/v1/network/kpis/{kpi}",
];

fn params<'a>(doc: &'a Value, path: &str) -> Vec<&'a Value> {
    doc["paths"][path]["get"]["parameters"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

#[test]
fn every_route_is_documented_once_with_unique_operation_ids() {
    let doc = doc();
    let paths = doc["paths"].as_object().unwrap();
    let mut documented: Vec<&str> = paths.keys().map(|k| k.as_str()).collect();
    documented.sort_unstable();
    let mut want = ROUTES.to_vec();
    want.sort_unstable();
    assert_eq!(documented, want);
    let mut ids: Vec<&str> = paths
        .values()
        .map(|p| p["get"]["operationId"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    let n = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), n, "{ids:?}");
}

#[test]
fn path_parameters_are_the_paths_placeholders_and_the_rest_is_query() {
    let doc = doc();
    for route in ROUTES {
        for p in params(&doc, route) {
            let name = p["name"].as_str().unwrap();
            let placeholder = route.contains(&format!("{{{name}}}"));
            let want = if placeholder { "path" } else { "query" };
            assert_eq!(p["in"], want, "{route} {name}");
            assert_eq!(
                p["required"].as_bool().unwrap_or(false),
                placeholder,
                "{route} {name}"
            );
        }
    }
    let names = |route| -> Vec<String> {
        params(&doc, route)
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names("/kpi1/"), ["from", "to", "interval"]);
    assert_eq!(
        names("/api/KPIs/{id}"),
        [
            "id",
            "interval_start_timestamp__gte",
            "interval_end_timestamp__lte",
            "interval"
        ]
    );
    assert_eq!(
        names("/api/v1/network/kpis/{kpi}"),
        [
            "kpi",
            "from",
            "to",
            "interval",
            "limit",
            "page_size",
            "offset",
            "format"
        ]
    );
}

#[test]
fn parameters_carry_the_servers_constraints() {
    let doc = doc();
    let schema = |route: &str, name: &str| -> Value {
        params(&doc, route)
            .into_iter()
            .find(|p| p["name"] == name)
            .map(|p| p["schema"].clone())
            .unwrap_or_else(|| panic!("{route} has no {name}"))
    };
    assert_eq!(
        schema("/kpi2", "interval")["enum"],
        serde_json::json!(["5-minute", "1-hour", ""])
    );
    assert_eq!(
        schema("/api/KPIs/{id}/", "interval")["enum"],
        serde_json::json!(["1", "2", ""])
    );
    assert_eq!(
        schema("/api/KPIs/{id}/", "id")["enum"],
        serde_json::json!(["1", "2"])
    );
    assert_eq!(
        schema("/kpi1/", "from")["pattern"],
        sluice_network::time::PATTERN
    );
    let limit = schema("/api/v1/network/kpis/{kpi}", "limit");
    assert_eq!(
        (limit["minimum"].as_i64(), limit["maximum"].as_i64()),
        (Some(1), Some(20))
    );
    let page = schema("/api/v1/network/kpis/{kpi}", "page_size");
    assert_eq!(
        (page["minimum"].as_i64(), page["maximum"].as_i64()),
        (Some(1), Some(1000))
    );
}

#[test]
fn errors_are_problem_json_and_bodies_are_typed() {
    let doc = doc();
    for (route, statuses) in [
        ("/kpi1", &["200", "400"][..]),
        ("/kpi2/", &["200", "400"]),
        ("/api/KPIs/", &["200"]),
        ("/api/KPIs/{id}", &["200", "400", "404"]),
        ("/api/v1/network/kpis", &["200"]),
        ("/api/v1/network/kpis/{kpi}", &["200", "400", "404"]),
    ] {
        let responses = doc["paths"][route]["get"]["responses"].as_object().unwrap();
        let mut got: Vec<&str> = responses.keys().map(|k| k.as_str()).collect();
        got.sort_unstable();
        assert_eq!(got, statuses, "{route}");
        for (status, r) in responses {
            let content = r["content"].as_object().unwrap();
            let cts: &[&str] = match (status.as_str(), route) {
                // The native KPI route also exports its page as CSV.
                ("200", "/api/v1/network/kpis/{kpi}") => &["application/json", "text/csv"],
                ("200", _) => &["application/json"],
                _ => &["application/problem+json"],
            };
            assert_eq!(content.keys().collect::<Vec<_>>(), cts, "{route} {status}");
            for ct in cts {
                assert!(content[*ct]["schema"].is_object(), "{route} {status}");
            }
        }
    }
    let row = &doc["components"]["schemas"]["FlaskServiceRow"];
    let mut required: Vec<&str> = row["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    required.sort_unstable();
    assert_eq!(
        required,
        [
            "interval",
            "interval_end_timestamp",
            "interval_start_timestamp",
            "service_id",
            "total_bytes"
        ]
    );
    assert_eq!(row["properties"]["total_bytes"]["type"], "integer");
    assert!(doc["components"]["schemas"]["Problem"].is_object());
}
