//! `GET /api/v1/trips/density` over real HTTP: per-cell counts of each end equal the counts
//! computed here from the listed trips, at every level, with and without a box; bad
//! parameters are problems naming the parameter.

mod common;

use std::collections::BTreeMap;

use common::{get, server, upload, SAMPLE};
use serde_json::Value;

/// (column, row) on level `level`'s grid of a point (cells of 4^level / 1024 degrees).
fn cell(lon: f64, lat: f64, level: u32) -> (i64, i64) {
    let side = f64::from(1u32 << (2 * level)) / 1024.0;
    (
        ((lon + 180.0) / side).floor() as i64,
        ((lat + 90.0) / side).floor() as i64,
    )
}

fn answer_cells(v: &Value) -> BTreeMap<(i64, i64), u64> {
    let side = v["cell_degrees"].as_f64().unwrap();
    v["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let x = ((c["lon"].as_f64().unwrap() + 180.0) / side).round() as i64;
            let y = ((c["lat"].as_f64().unwrap() + 90.0) / side).round() as i64;
            ((x, y), c["trips"].as_u64().unwrap())
        })
        .collect()
}

#[tokio::test]
async fn cells_count_each_end_exactly() {
    let s = server().await;
    let job = upload(&s, "trips.csv", std::fs::read(SAMPLE).unwrap()).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let (_, page) = get(&s, "/api/v1/trips/trips?limit=1000").await;
    let trips = page["items"].as_array().unwrap().clone();
    assert_eq!(trips.len(), 100);

    // A box around Prague's trips, cutting through some cells.
    let bbox = (14.3, 49.95, 14.52, 50.12);
    for end in ["origin", "destination"] {
        for level in 2..=8u32 {
            let mut want: BTreeMap<(i64, i64), u64> = BTreeMap::new();
            let mut want_box: BTreeMap<(i64, i64), u64> = BTreeMap::new();
            let (lo, hi) = (cell(bbox.0, bbox.1, level), cell(bbox.2, bbox.3, level));
            for t in &trips {
                let p = t[end].as_array().unwrap();
                let c = cell(p[0].as_f64().unwrap(), p[1].as_f64().unwrap(), level);
                *want.entry(c).or_default() += 1;
                if (lo.0..=hi.0).contains(&c.0) && (lo.1..=hi.1).contains(&c.1) {
                    *want_box.entry(c).or_default() += 1;
                }
            }
            let (st, v) = get(
                &s,
                &format!("/api/v1/trips/density?end={end}&level={level}"),
            )
            .await;
            assert_eq!(st, 200, "{v}");
            assert_eq!(v["end"], end);
            assert_eq!(v["level"], level);
            assert_eq!(v["trips"], 100, "{end} level {level}");
            assert_eq!(answer_cells(&v), want, "{end} level {level}");

            let (st, v) = get(
                &s,
                &format!(
                    "/api/v1/trips/density?end={end}&level={level}&bbox={},{},{},{}",
                    bbox.0, bbox.1, bbox.2, bbox.3
                ),
            )
            .await;
            assert_eq!(st, 200, "{v}");
            assert_eq!(answer_cells(&v), want_box, "{end} level {level} in the box");
            assert!(!want_box.is_empty());
        }
    }
    // The default: origins at level 4.
    let (_, v) = get(&s, "/api/v1/trips/density").await;
    assert_eq!(
        (v["end"].as_str(), v["level"].as_u64()),
        (Some("origin"), Some(4))
    );
}

#[tokio::test]
async fn bad_parameters_are_problems() {
    let s = server().await;
    for (query, param) in [
        ("level=1", "level"),
        ("level=9", "level"),
        ("level=x", "level"),
        ("end=middle", "end"),
        ("bbox=1,2,3", "bbox"),
        ("bbox=200,0,1,1", "bbox"),
    ] {
        let (st, v) = get(&s, &format!("/api/v1/trips/density?{query}")).await;
        assert_eq!(st, 400, "{query}: {v}");
        // Named in `param`, or (a value of the wrong type) in the detail.
        assert!(
            v["param"] == param
                || v["detail"]
                    .as_str()
                    .unwrap()
                    .starts_with(&format!("Failed to deserialize query string: {param}:")),
            "{query}: {v}"
        );
    }
    // No trips yet: no cells.
    let (st, v) = get(&s, "/api/v1/trips/density?level=8").await;
    assert_eq!(st, 200);
    assert_eq!(v["cells"], Value::Array(vec![]));
    assert_eq!(v["trips"], 0);
}
