//! Box answers equal a brute-force scan of the raw trips, for random boxes (many cutting
//! through rollup cells, some aligned to cell edges) and all four match modes.

mod common;

use std::collections::BTreeMap;

use proptest::prelude::*;
use sluice_trips::engine::{BBox, Match, Week};
use sluice_trips::generate::{write_csv, Generator};
use sluice_trips::parse::Header;
use sluice_trips::store::{self, WeekRange};

struct Trip {
    o: (f64, f64),
    d: (f64, f64),
    week: Week,
}

fn brute(trips: &[Trip], b: &BBox, m: Match, range: WeekRange) -> BTreeMap<Week, u64> {
    let mut out = BTreeMap::new();
    for t in trips {
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

/// Snaps a coordinate to a grid edge of 1/256 or 1/64 degree half of the time.
fn snap(v: f64, how: u8) -> f64 {
    match how % 4 {
        0 => (v * 256.0).round() / 256.0,
        1 => (v * 64.0).round() / 64.0,
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
    common::ingest_stream(&ctx, "gen.csv", &csv);
    common::ingest_stream(&ctx, "sample.csv", &std::fs::read(common::SAMPLE).unwrap());

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
                o: (r.origin.lon(), r.origin.lat()),
                d: (r.destination.lon(), r.destination.lat()),
                week: Week::of(r.ts),
            });
        }
    }
    assert_eq!(trips.len(), 6102);

    // Cities of the generator and the sample: boxes around them, from tiny to wide.
    let centres = [(7.68, 45.07), (14.43, 50.08), (9.99, 53.55), (13.4, 52.52)];
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 48,
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
                min_lat: snap(cy + dy - h, how >> 2),
                max_lon: snap(cx + dx + w, how >> 4),
                max_lat: snap(cy + dy + h, how >> 6),
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
                let got = ctx
                    .db
                    .read(|conn| store::weekly_bbox(conn, &b, m, range))
                    .unwrap();
                prop_assert_eq!(got, brute(&trips, &b, m, range), "{:?} {:?}", b, m);
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
            let got = ctx
                .db
                .read(|conn| store::weekly_bbox(conn, &b, m, WeekRange::default()))
                .unwrap();
            assert_eq!(
                got,
                brute(&trips, &b, m, WeekRange::default()),
                "{b:?} {m:?}"
            );
        }
    }
}
