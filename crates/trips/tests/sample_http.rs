//! The sample file of the replaced system over real HTTP: the exact values of trips.md.

mod common;

use common::*;
use serde_json::Value;

fn avg(v: &Value) -> f64 {
    v["average"].as_f64().unwrap()
}

#[tokio::test]
async fn sample_gives_the_spec_values() {
    let s = server().await;
    let job = upload(&s, "trips.csv", std::fs::read(SAMPLE).unwrap()).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["summary"]["rows_accepted"], 100);
    assert_eq!(job["summary"]["rows_rejected"], 0);
    assert_eq!(job["summary"]["files"][0]["status"], "ingested");

    for (region, want) in [("Hamburg", 5.6), ("Prague", 6.8), ("Turin", 7.6)] {
        let (st, v) = get(&s, &format!("/api/v1/trips/weekly-average?region={region}")).await;
        assert_eq!(st, 200);
        assert_eq!(avg(&v), want, "{region}: {v}");
        assert_eq!(v["weeks"], 5);
        assert_eq!(v["weeks_mode"], "active");
    }
    let (_, all) = get(&s, "/api/v1/trips/weekly-average").await;
    assert_eq!(
        (avg(&all), all["trips"].as_u64(), all["weeks"].as_u64()),
        (20.0, Some(100), Some(5))
    );
    assert_eq!(all["from_week"], "2018-W18");
    assert_eq!(all["to_week"], "2018-W22");

    // Week 2018-W18 per region.
    for (region, want) in [("Hamburg", 5), ("Prague", 10), ("Turin", 8)] {
        let (_, v) = get(&s, &format!("/api/v1/trips/weekly-average?region={region}")).await;
        let w18 = v["series"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["label"] == "2018-W18")
            .unwrap();
        assert_eq!(w18["trips"], want, "{region}");
        assert_eq!(w18["week_start"], "2018-04-30");
    }
    // The box of the spec in all four match modes.
    for (m, want, trips) in [
        ("origin", 3.6, 18),
        ("destination", 2.75, 11),
        ("both", 2.0, 8),
        ("either", 4.2, 21),
    ] {
        let (st, v) = get(
            &s,
            &format!("/api/v1/trips/weekly-average?bbox=14.2,49.9,14.45,50.2&match={m}"),
        )
        .await;
        assert_eq!(st, 200);
        assert_eq!(avg(&v), want, "{m}: {v}");
        assert_eq!(v["trips"], trips, "{m}");
        // The corners in the other order are the same box.
        let (st, w) = get(
            &s,
            &format!("/api/v1/trips/weekly-average?bbox=14.45,50.2,14.2,49.9&match={m}"),
        )
        .await;
        assert_eq!(st, 200);
        assert_eq!(w["series"], v["series"], "{m}");
        // Regions partition the trips: the box's trips of each region add up to the box's.
        let mut sum = 0;
        for region in ["Hamburg", "Prague", "Turin"] {
            let (st, r) = get(
                &s,
                &format!(
                    "/api/v1/trips/weekly-average?region={region}&bbox=14.2,49.9,14.45,50.2&match={m}"
                ),
            )
            .await;
            assert_eq!(st, 200);
            assert_eq!(r["region"], region);
            sum += r["trips"].as_u64().unwrap();
        }
        assert_eq!(sum, trips, "{m}");
    }
    // Span: the dataset's five weeks.
    let (_, v) = get(
        &s,
        "/api/v1/trips/weekly-average?bbox=14.2,49.9,14.45,50.2&match=destination&weeks=span",
    )
    .await;
    assert_eq!((avg(&v), v["weeks"].as_u64()), (2.2, Some(5)));
    // A box without trips: zero, not an error.
    let (st, v) = get(&s, "/api/v1/trips/weekly-average?bbox=0,0,1,1").await;
    assert_eq!(st, 200);
    assert_eq!(
        (avg(&v), v["trips"].as_u64(), v["weeks"].as_u64()),
        (0.0, Some(0), Some(0))
    );
    // from/to select whole ISO weeks.
    let (_, v) = get(
        &s,
        "/api/v1/trips/weekly-average?region=Prague&from=2018-05-01&to=2018-05-06",
    )
    .await;
    assert_eq!(
        (v["trips"].as_u64(), v["weeks"].as_u64()),
        (Some(10), Some(1))
    );
    // A time with an offset: 2018-05-07T01:00+02:00 is still in W18 (Sunday 23:00 UTC).
    let (_, w) = get(
        &s,
        "/api/v1/trips/weekly-average?region=Prague&from=2018-05-01T00:00:00.5Z&to=2018-05-07T01:00%2B02:00",
    )
    .await;
    assert_eq!(w["series"], v["series"]);
    // `to` before `from`: no weeks, in both modes; without a box, `match` changes nothing.
    for weeks in ["active", "span"] {
        let (st, v) = get(
            &s,
            &format!("/api/v1/trips/weekly-average?from=2018-05-20&to=2018-05-01&weeks={weeks}"),
        )
        .await;
        assert_eq!(st, 200);
        assert_eq!(
            (v["trips"].as_u64(), v["weeks"].as_u64()),
            (Some(0), Some(0)),
            "{v}"
        );
    }
    let (_, turin) = get(&s, "/api/v1/trips/weekly-average?region=Turin").await;
    let (st, both) = get(&s, "/api/v1/trips/weekly-average?region=Turin&match=both").await;
    assert_eq!(st, 200);
    assert_eq!(both["series"], turin["series"]);

    let (_, v) = get(&s, "/api/v1/trips/counts?by=datasource").await;
    let total: u64 = v
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["trips"].as_u64().unwrap())
        .sum();
    assert_eq!(total, 100);

    // Row 1 with its full precision.
    let (_, v) = get(&s, "/api/v1/trips/trips/1").await;
    assert_eq!(v["datetime"], "2018-05-28T09:03:40Z");
    assert_eq!(
        v["origin"],
        serde_json::json!([14.4973794438195, 50.00136875782316])
    );
    // Native list with a cursor.
    let (_, p1) = get(&s, "/api/v1/trips/trips?limit=60").await;
    assert_eq!(p1["items"].as_array().unwrap().len(), 60);
    let next = p1["next_after"].as_i64().unwrap();
    let (_, p2) = get(&s, &format!("/api/v1/trips/trips?limit=60&after={next}")).await;
    assert_eq!(p2["items"].as_array().unwrap().len(), 40);
    assert!(p2["next_after"].is_null());

    // Groups: sizes add up to the trips, largest first, and a group lists its own trips.
    let (_, g) = get(&s, "/api/v1/trips/groups?limit=1000").await;
    let groups = g.as_array().unwrap();
    let sizes: Vec<u64> = groups
        .iter()
        .map(|g| g["trips"].as_u64().unwrap())
        .collect();
    assert_eq!(sizes.iter().sum::<u64>(), 100);
    assert!(sizes.windows(2).all(|w| w[0] >= w[1]));
    let first = &groups[0];
    let (_, t) = get(&s, &format!("/api/v1/trips/groups/{}/trips", first["id"])).await;
    assert_eq!(t["items"].as_array().unwrap().len() as u64, sizes[0]);
    let ds: u64 = first["datasources"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(ds, sizes[0]);

    // Re-ingesting the same bytes is a no-op.
    let again = upload(&s, "trips-copy.csv", std::fs::read(SAMPLE).unwrap()).await;
    assert_eq!(again["summary"]["files"][0]["status"], "duplicate");
    assert_eq!(again["summary"]["rows_accepted"], 0);
    let (_, v) = get(&s, "/api/v1/trips/weekly-average").await;
    assert_eq!(v["trips"], 100);
}

#[tokio::test]
async fn bad_parameters_are_problems() {
    let s = server().await;
    for (path, param) in [
        ("/vehicles/color/count", "column"),
        ("/api/v1/trips/weekly-average?bbox=1,2,3", "bbox"),
        ("/api/v1/trips/weekly-average?bbox=0,0,1,95", "bbox"),
        ("/api/v1/trips/weekly-average?bbox=0,0,1e1,5", "bbox"),
        ("/api/v1/trips/weekly-average?bbox=0,0,180.001,5", "bbox"),
        ("/api/v1/trips/weekly-average?bbox=", "bbox"),
        (
            "/api/v1/trips/weekly-average?bbox=0,0,1,1&match=middle",
            "match",
        ),
        ("/api/v1/trips/weekly-average?weeks=all", "weeks"),
        ("/api/v1/trips/weekly-average?from=yesterday", "from"),
        ("/api/v1/trips/weekly-average?to=2018-02-29", "to"),
        ("/api/v1/trips/trips?from=", "from"),
        ("/api/v1/trips/trips?to=2018-05-01T24:00", "to"),
        ("/vehicles/18446744073709551616x", "id"),
        ("/vehicles?date=28-05-2018", "date"),
        ("/vehicles?limit=-1", "limit"),
        ("/vehicles/abc", "id"),
        ("/api/v1/trips/trips?limit=5000", "limit"),
        ("/api/v1/trips/counts?by=ts", "by"),
    ] {
        let resp = reqwest::get(s.url(path)).await.unwrap();
        assert_eq!(resp.status(), 400, "{path}");
        assert_eq!(
            resp.headers()["content-type"],
            "application/problem+json",
            "{path}"
        );
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["param"], param, "{path}: {v}");
    }
    let resp = reqwest::get(s.url("/vehicles?origin_coord_x=abc"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(get(&s, "/api/v1/trips/groups/99").await.0, 404);
}
