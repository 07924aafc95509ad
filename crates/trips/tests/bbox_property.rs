//! Box answers, of all trips and of one region's, equal a brute-force scan of the raw trips,
//! for random boxes (many cutting through rollup cells, some aligned to cell edges) and all
//! four match modes; listings equal the input, in input order. The data is loaded in many small batches, some added
//! to the rollups mid-stream, as a large stream would be.

mod common;

use std::collections::BTreeMap;

use proptest::prelude::*;
use sluice_trips::engine::{BBox, Match, Week};
use sluice_trips::generate::{write_csv, Generator};
use sluice_trips::ingest::Limits;
use sluice_trips::parse::{Header, Timestamp};
use sluice_trips::store::{self, CoordPrefix, TripFilter, WeekRange};

struct Trip {
    region: String,
    ts: Timestamp,
    o: (f64, f64),
    d: (f64, f64),
    week: Week,
}

/// The weekly counts of the trips (of `region`, when given) matching the box.
fn brute(
    trips: &[Trip],
    region: Option<&str>,
    b: &BBox,
    m: Match,
    range: WeekRange,
) -> BTreeMap<Week, u64> {
    let mut out = BTreeMap::new();
    for t in trips {
        if region.is_some_and(|r| t.region != r) {
            continue;
        }
        if range.from.is_some_and(|f| t.week < f) || range.to.is_some_and(|x| t.week > x) {
            continue;
        }
        let (o, d) = (b.contains(t.o.0, t.o.1), b.contains(t.d.0, t.d.1));
        let hit = match m {
            Match::Origin => o,
            Match::Destination => d,
            Match::Both => o && d,
            Match::Either => o || d,
        };
        if hit {
            *out.entry(t.week).or_default() += 1;
        }
    }
    out
}

/// Snaps a coordinate to a grid edge of 1/1024, 1/256, 1/64 or 1/16 degree (the level-0
/// cells, the finest cell rollups and the blocks' directory, the blocks, the pair rollups)
/// four times in five; otherwise the edge cuts a cell of every level.
fn snap(v: f64, how: u8) -> f64 {
    match how % 5 {
        0 => (v * 1024.0).round() / 1024.0,
        1 => (v * 256.0).round() / 256.0,
        2 => (v * 64.0).round() / 64.0,
        3 => (v * 16.0).round() / 16.0,
        _ => v,
    }
}

#[test]
fn boxes_match_brute_force() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = common::ctx(dir.path());
    let mut csv = Vec::new();
    write_csv(&mut Generator::new(11, 0.0), 6000, &mut csv).unwrap();
    // Points on exact cell edges and the sample file, too.
    csv.extend_from_slice(
        b"Prague,POINT (14.25 50.0),POINT (14.3125 50.0625),2018-05-01 10:00:00,x\n",
    );
    csv.extend_from_slice(
        b"Prague,POINT (14.375 50.03125),POINT (14.25 50.0),2018-05-01 10:00:00,x\n",
    );
    let limits = Limits {
        batch_rows: 700,
        spill_keys: 20_000,
    };
    common::ingest_stream_with(&ctx, "gen.csv", &csv, limits);
    common::ingest_stream(&ctx, "sample.csv", &std::fs::read(common::SAMPLE).unwrap());
    assert!(common::count(&ctx, "SELECT count(*) FROM trips_batch WHERE visible") >= 9);
    // Boxes below use the finest rollups.
    assert!(common::count(&ctx, "SELECT count(*) FROM trips_cell WHERE level = 1") > 100);

    let mut trips = Vec::new();
    for data in [csv.clone(), std::fs::read(common::SAMPLE).unwrap()] {
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(&data[..]);
        let mut rec = csv::ByteRecord::new();
        rdr.read_byte_record(&mut rec).unwrap();
        let h = Header::parse(&rec).unwrap();
        while rdr.read_byte_record(&mut rec).unwrap() {
            let r = h.row(&rec).unwrap();
            trips.push(Trip {
                region: r.region.as_str().to_owned(),
                o: (r.origin.lon(), r.origin.lat()),
                d: (r.destination.lon(), r.destination.lat()),
                ts: r.ts,
                week: Week::of(r.ts),
            });
        }
    }
    assert_eq!(trips.len(), 6102);
    let regions: Vec<String> = trips
        .iter()
        .map(|t| t.region.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert!(regions.len() >= 3, "{regions:?}");

    // Cities of the generator and the sample: boxes around them, from tiny to wide.
    let centres = [(7.68, 45.07), (14.43, 50.08), (9.99, 53.55), (13.4, 52.52)];
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 64,
        ..ProptestConfig::default()
    });
    let strategy = (
        0..centres.len(),
        -0.3f64..0.3,
        -0.3f64..0.3,
        0.0005f64..0.5,
        0.0005f64..0.5,
        any::<u8>(),
        prop::option::of(0i64..160),
    );
    runner
        .run(&strategy, |(c, dx, dy, w, h, how, from)| {
            let (cx, cy) = centres[c];
            let b = BBox {
                min_lon: snap(cx + dx - w, how),
                min_lat: snap(cy + dy - h, how / 5),
                max_lon: snap(cx + dx + w, how / 25),
                max_lat: snap(cy + dy + h, how / 125 + how % 3),
            };
            prop_assume!(b.min_lon <= b.max_lon && b.min_lat <= b.max_lat);
            let range = WeekRange {
                from: from.map(|f| Week(2400 + f)),
                to: from.map(|f| Week(2400 + f + 40)),
            };
            for m in [
                Match::Origin,
                Match::Destination,
                Match::Both,
                Match::Either,
            ] {
                let got =
                    store::read(&ctx.db, |conn| store::weekly_bbox(conn, &b, m, range)).unwrap();
                prop_assert_eq!(got, brute(&trips, None, &b, m, range), "{:?} {:?}", b, m);
                let region = &regions[usize::from(how) % regions.len()];
                let got = store::read(&ctx.db, |conn| {
                    store::weekly_region_bbox(conn, region, &b, m, range)
                })
                .unwrap();
                let want = brute(&trips, Some(region), &b, m, range);
                prop_assert_eq!(got, want, "{} {:?} {:?}", region, b, m);
            }
            Ok(())
        })
        .unwrap();

    // The whole world and the spec's box with its exact edges.
    let world = BBox::parse("-180,-90,180,90").unwrap();
    let spec = BBox::parse("14.2,49.9,14.45,50.2").unwrap();
    for b in [world, spec] {
        for m in [
            Match::Origin,
            Match::Destination,
            Match::Both,
            Match::Either,
        ] {
            let got = store::read(&ctx.db, |conn| {
                store::weekly_bbox(conn, &b, m, WeekRange::default())
            })
            .unwrap();
            assert_eq!(
                got,
                brute(&trips, None, &b, m, WeekRange::default()),
                "{b:?} {m:?}"
            );
        }
    }

    // Listings: ids follow the input order across batches; filters and cursors agree with
    // a scan of the input.
    let expect = |keep: &dyn Fn(&Trip) -> bool, after: i64, limit: usize| -> Vec<i64> {
        (1..=trips.len() as i64)
            .filter(|&id| id > after && keep(&trips[id as usize - 1]))
            .take(limit)
            .collect()
    };
    let list = |f: TripFilter| -> Vec<i64> {
        store::read(&ctx.db, |c| store::trips(c, &f))
            .unwrap()
            .iter()
            .map(|t| t.id)
            .collect()
    };
    let may = Timestamp::parse("2017-05-01 00:00:00").unwrap();
    let june = Timestamp::parse("2018-06-01 00:00:00").unwrap();
    assert!(expect(&|t| t.region == "Lisbon" && t.ts >= june, 0, 25).len() >= 10);
    for after in [0, 650, 699, 700, 5990, 6100] {
        let all = TripFilter {
            after: Some(after),
            limit: 25,
            ..TripFilter::default()
        };
        assert_eq!(
            list(all.clone()),
            expect(&|_| true, after, 25),
            "after {after}"
        );
        let berlin_since_may = TripFilter {
            region: Some("Berlin".into()),
            from: Some(may),
            ..all.clone()
        };
        assert_eq!(
            list(berlin_since_may),
            expect(&|t| t.region == "Berlin" && t.ts >= may, after, 25),
            "after {after}"
        );
        // Rare enough that the listing goes past its trip-by-trip probe.
        let lisbon_june = TripFilter {
            region: Some("Lisbon".into()),
            from: Some(june),
            ..all.clone()
        };
        assert_eq!(
            list(lisbon_june),
            expect(&|t| t.region == "Lisbon" && t.ts >= june, after, 25),
            "after {after}"
        );
    }
    // An exact origin goes through its cell's block; every trip is found by its id.
    for id in [1, 699, 700, 701, 3333, 6002, 6003, 6102] {
        let t = &trips[id as usize - 1];
        let got = store::read(&ctx.db, |c| store::trip(c, id))
            .unwrap()
            .unwrap();
        assert_eq!((got.origin_lon, got.origin_lat), t.o);
        assert_eq!((got.destination_lon, got.destination_lat), t.d);
        // Its full text, and its text less the last digit (as the replaced system printed it).
        for cut in [0, 1] {
            let prefix = |v: f64| {
                let text = v.to_string();
                CoordPrefix::new(&text[..text.len() - cut])
            };
            let by_origin = TripFilter {
                origin: [Some(prefix(t.o.0)), Some(prefix(t.o.1))],
                limit: 10_000,
                ..TripFilter::default()
            };
            assert!(list(by_origin).contains(&id), "trip {id} by its origin");
        }
    }
    assert!(store::read(&ctx.db, |c| store::trip(c, 6103))
        .unwrap()
        .is_none());
}
