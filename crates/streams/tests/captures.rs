//! The SSE parser and event parsing on the real captures: every chunking gives the same
//! messages, and malformed messages are skipped with a reason without stopping the stream.

use std::path::PathBuf;

use rand::{Rng, SeedableRng};
use sluice_streams::parse::{amsterdam, parse_message, EventKind, Malformed};
use sluice_streams::sse::{parse_all, SseMessage, SseParser};

fn seed(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/seed-data/streams")
        .join(rel)
}

const RAZI: &str = "razi-ahmad+Java-razi-ahmad-1/data-harvester/src/test/resources";
const ROSFRAN: &str = "rosfran+reactive-server-sent-events/src/test/resources/data";

fn captures() -> Vec<(String, Vec<u8>)> {
    [
        format!("{RAZI}/sytflix-events.stream"),
        format!("{RAZI}/sytazon-events.stream"),
        format!("{RAZI}/sysney-events.stream"),
        format!("{ROSFRAN}/events_sample.txt"),
        format!("{ROSFRAN}/events_sample_2_fully_watched.txt"),
        format!("{ROSFRAN}/events_sample_error_sse.txt"),
        format!("{ROSFRAN}/events_sample_error_sse_no_data.txt"),
    ]
    .into_iter()
    .map(|p| {
        let bytes = std::fs::read(seed(&p)).unwrap_or_else(|e| panic!("{p}: {e}"));
        (p, bytes)
    })
    .collect()
}

/// Feeds `bytes` cut at `cuts` (ascending offsets), then ends the input.
fn chunked(bytes: &[u8], cuts: &[usize]) -> Vec<SseMessage> {
    let mut p = SseParser::new();
    let mut got = Vec::new();
    let mut from = 0;
    for &c in cuts.iter().chain(std::iter::once(&bytes.len())) {
        p.feed(&bytes[from..c], &mut |m| got.push(m));
        from = c;
    }
    p.finish(&mut |m| got.push(m));
    got
}

#[test]
fn capture_message_counts() {
    let counts: Vec<(usize, usize)> = captures()
        .iter()
        .map(|(_, b)| {
            let msgs = parse_all(b);
            let good = msgs
                .into_iter()
                .filter(|m| parse_message(m.clone()).is_ok())
                .count();
            (parse_all(b).len(), good)
        })
        .collect();
    assert_eq!(
        counts,
        [
            (74, 74),
            (56, 56),
            (10, 10),
            (9, 9),
            (12, 12),
            (1, 0),
            (1, 0)
        ]
    );
}

#[test]
fn one_byte_at_a_time_cuts_at_every_offset_at_once() {
    for (name, bytes) in captures() {
        let cuts: Vec<usize> = (1..bytes.len()).collect();
        assert_eq!(chunked(&bytes, &cuts), parse_all(&bytes), "{name}");
    }
}

#[test]
fn two_chunks_split_at_every_byte_offset() {
    // Every offset of the three smaller captures (sizes 7 to 10 kB) and of the first 12 kB of
    // the large ones: a cut inside every kind of line, field and multi-byte character.
    for (name, bytes) in captures() {
        let whole = parse_all(&bytes);
        for k in 0..=bytes.len().min(12_000) {
            assert_eq!(chunked(&bytes, &[k]), whole, "{name} split at {k}");
        }
    }
}

#[test]
fn random_chunkings_and_crlf() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
    for (name, bytes) in captures() {
        let whole = parse_all(&bytes);
        let crlf: Vec<u8> = String::from_utf8(bytes.clone())
            .unwrap()
            .replace('\n', "\r\n")
            .into_bytes();
        for input in [&bytes, &crlf] {
            for _ in 0..20 {
                let mut cuts: Vec<usize> = (0..rng.random_range(1..200))
                    .map(|_| rng.random_range(0..=input.len()))
                    .collect();
                cuts.sort_unstable();
                let got = chunked(input, &cuts);
                let strip =
                    |m: &[SseMessage]| -> Vec<(Option<String>, Option<String>, Option<String>)> {
                        m.iter()
                            .map(|m| (m.id.clone(), m.event.clone(), m.data.clone()))
                            .collect()
                    };
                assert_eq!(strip(&got), strip(&whole), "{name}");
            }
        }
    }
}

#[test]
fn rosfran_sample_in_amsterdam_summer_time() {
    let bytes = std::fs::read(seed(&format!("{ROSFRAN}/events_sample.txt"))).unwrap();
    let times: Vec<String> = parse_all(&bytes)
        .into_iter()
        .map(|m| amsterdam(parse_message(m).unwrap().at))
        .collect();
    assert_eq!(
        times,
        [
            "19-05-2023 14:58:26.624",
            "19-05-2023 14:58:26.754",
            "19-05-2023 14:58:26.875",
            "19-05-2023 14:58:26.967",
            "19-05-2023 14:58:27.059",
            "19-05-2023 14:58:27.152",
            "19-05-2023 14:58:27.244",
            "19-05-2023 14:58:27.339",
            "19-05-2023 14:58:27.432",
        ]
    );
}

#[test]
fn captured_error_samples_give_reasons_and_keep_the_raw_text() {
    let bytes = std::fs::read(seed(&format!("{ROSFRAN}/events_sample_error_sse.txt"))).unwrap();
    let (reason, raw) = parse_message(parse_all(&bytes).remove(0)).unwrap_err();
    assert_eq!(reason, Malformed::NoEventLine);
    assert!(raw.starts_with("id:238ee0d4-6519-4211-beff-a098655e6b02\ndata:{\"show\""));
    let bytes = std::fs::read(seed(&format!(
        "{ROSFRAN}/events_sample_error_sse_no_data.txt"
    )))
    .unwrap();
    let (reason, raw) = parse_message(parse_all(&bytes).remove(0)).unwrap_err();
    assert_eq!(reason, Malformed::NoData);
    assert_eq!(
        raw,
        "id:90e642d9-9bfe-42cd-a41a-74457c3ffec2\nevent:stream-started"
    );
}

#[test]
fn malformed_messages_between_good_ones_do_not_stop_the_stream() {
    let good = parse_all(&std::fs::read(seed(&format!("{RAZI}/sysney-events.stream"))).unwrap());
    let data = good[0].data.clone().unwrap();
    let bad = [
        format!("id:b1\ndata:{data}\n\n"),            // no event line
        "id:b2\nevent:stream-started\n\n".to_owned(), // no data
        "id:b3\nevent:stream-started\ndata:{\"show\":\n\n".into(), // not JSON
        format!("id:b4\nevent:stream-started\ndata:x{data}\n\n"), // stray character
        "id:b5\nevent:show-liked\ndata:{\"event_date\":\"11-01-2024 10:40:44.000\"}\n\n".into(), // missing fields
    ];
    let mut stream = String::new();
    for (i, m) in good.iter().enumerate() {
        stream.push_str(&format!("{}\n\n", m.raw));
        if let Some(b) = bad.get(i) {
            stream.push_str(b);
        }
    }
    let (mut ok, mut reasons) = (Vec::new(), Vec::new());
    for m in parse_all(stream.as_bytes()) {
        match parse_message(m) {
            Ok(e) => ok.push(e.kind),
            Err((r, _)) => reasons.push(r),
        }
    }
    assert_eq!(ok.len(), 10);
    assert_eq!(ok.iter().filter(|k| **k == EventKind::Finished).count(), 5);
    assert_eq!(reasons.len(), 5);
    assert_eq!(reasons[0], Malformed::NoEventLine);
    assert_eq!(reasons[1], Malformed::NoData);
    assert!(matches!(reasons[2], Malformed::NotJson(_)));
    assert!(matches!(reasons[3], Malformed::NotJson(_)));
    assert_eq!(reasons[4], Malformed::MissingField("show"));
}
