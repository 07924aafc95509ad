//! Malformed rows are rejected with file, line and reason; the rest lands. Changed content
//! under the same name replaces the earlier contribution.

mod common;

use common::*;

const BAD: &str = "region,origin_coord,destination_coord,datetime,datasource
Turin,POINT (7.6 45.0),POINT (7.7 45.1),2018-05-21 02:54:04,baba_car
Turin,POINT (7.6 45.0,POINT (7.7 45.1),2018-05-21 02:54:04,baba_car
Turin,POINT (7.6 95.0),POINT (7.7 45.1),2018-05-21 02:54:04,baba_car
Turin,POINT (7.6 45.0),POINT (200 45.1),2018-05-21 02:54:04,baba_car
Turin,POINT (7.6 45.0),POINT (7.7 45.1),2018-02-30 02:54:04,baba_car
,POINT (7.6 45.0),POINT (7.7 45.1),2018-05-21 02:54:04,baba_car
Turin,POINT (7.6 45.0),POINT (7.7 45.1),2018-05-21 02:54:04,
Turin,POINT (7.6 45.0),2018-05-21 02:54:04,baba_car
Turin,SRID=4326;POINT(7.6 45.0),point( 7.7  45.1 ),2018-05-21T02:54:04Z,baba_car
";

#[tokio::test]
async fn bad_rows_are_rejected_with_reasons() {
    let s = server().await;
    let job = upload(&s, "bad.csv", BAD.as_bytes().to_vec()).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let sum = &job["summary"];
    assert_eq!(sum["rows_accepted"], 2);
    assert_eq!(sum["rows_rejected"], 7);
    let rej: Vec<(u64, String)> = sum["rejections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["file"], "bad.csv");
            (
                r["line"].as_u64().unwrap(),
                r["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let lines: Vec<u64> = rej.iter().map(|r| r.0).collect();
    assert_eq!(lines, vec![3, 4, 5, 6, 7, 8, 9]);
    assert!(
        rej[0]
            .1
            .starts_with("origin_coord: `POINT (7.6 45.0` is not a WKT point"),
        "{}",
        rej[0].1
    );
    assert!(rej[1].1.contains("latitude 95 is outside"), "{}", rej[1].1);
    assert!(
        rej[2].1.contains("destination_coord") && rej[2].1.contains("longitude 200"),
        "{}",
        rej[2].1
    );
    assert!(rej[3].1.starts_with("datetime:"), "{}", rej[3].1);
    assert_eq!(rej[4].1, "region is empty");
    assert_eq!(rej[5].1, "datasource is empty");
    assert_eq!(rej[6].1, "expected 5 fields, found 4");

    // No header: the file is rejected as a whole, nothing lands.
    let job = upload(&s, "noheader.csv", b"a,b,c\n1,2,3\n".to_vec()).await;
    assert_eq!(job["summary"]["files"][0]["status"], "rejected");
    assert!(job["summary"]["files"][0]["detail"]
        .as_str()
        .unwrap()
        .contains("region"));

    // Same name, new content: replaces the earlier rows.
    let fixed = BAD.lines().take(2).collect::<Vec<_>>().join("\n") + "\n";
    let job = upload(&s, "bad.csv", fixed.into_bytes()).await;
    assert_eq!(job["summary"]["files"][0]["status"], "replaced");
    let (_, v) = get(&s, "/api/v1/trips/weekly-average?region=Turin").await;
    assert_eq!(v["trips"], 1);
    let (_, v) = get(&s, "/vehicles/region/count").await;
    assert_eq!(
        v["data"],
        serde_json::json!([{"count": 1, "region": "Turin"}])
    );
    let (_, g) = get(&s, "/api/v1/trips/groups").await;
    assert_eq!(g.as_array().unwrap().len(), 1);
}

#[test]
fn the_bundled_sample_is_the_seed_file() {
    let shared = std::path::Path::new("/work/shared/seed-data/trips/trips.csv");
    if shared.exists() {
        assert_eq!(
            std::fs::read(shared).unwrap(),
            std::fs::read(SAMPLE).unwrap()
        );
    }
}
