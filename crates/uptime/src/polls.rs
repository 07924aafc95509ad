//! Reading a polls file fast. The input is cut into chunks at line ends; worker threads split
//! and parse the chunks while the caller's thread reads ahead and merges their results in
//! file order. What a [`PollSink`] receives is exactly what the csv reader gives row by row:
//! the same rows, the same rejections with the same line numbers. The splitter knows only
//! commas and line ends, so a chunk with a quote or with a carriage return not followed by a
//! line feed, and everything after it, goes through the csv reader instead.
//!
//! Line numbers are the csv reader's: a row is numbered by the line where the reading of the
//! previous row (or the header) ended, which is the line after it for a `\n` and the same
//! line for a `\r\n` (the reader stops after the `\r`), whatever empty lines come between.

use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, Cursor, Read};
use std::path::PathBuf;
use std::sync::{mpsc, Arc};

use csv::ByteRecord;
use rustc_hash::FxHashMap;
use sluice_core::jobs::MAX_REJECTIONS;
use sluice_core::IngestError;

use crate::parse::{PollColumns, PollRef};

/// Bytes read per chunk (then up to the end of the line).
pub const CHUNK: usize = 4 << 20;

/// Where the parsed polls go, on the caller's thread.
pub trait PollSink {
    /// The slot of a store id, for [`PollSink::push`]. Called once per distinct store of a
    /// chunk, in order of first appearance.
    fn slot(&mut self, store: &str) -> Result<u32, IngestError>;
    /// One accepted poll, as `at << 1 | active`.
    fn push(&mut self, slot: u32, value: i64);
    /// A rejected row with its line; the sink lists the first ones.
    fn reject(&mut self, line: u64, reason: String);
    /// Rejected rows beyond a chunk's list (which is as long as the sink's).
    fn unlisted(&mut self, rejected: u64);
    /// `bytes` of the input (header included) are read and handed over.
    fn progress(&mut self, bytes: u64) -> Result<(), IngestError>;
}

/// A poll as it is stored: the instant with the status in the lowest bit.
pub fn value(p: &PollRef<'_>) -> i64 {
    (p.at.0 << 1) | i64::from(p.status.is_active())
}

/// Reads `size` bytes into `chunk`, then on to the end of that line (or of the input).
pub fn read_chunk(
    input: &mut impl BufRead,
    size: usize,
    chunk: &mut Vec<u8>,
) -> std::io::Result<()> {
    chunk.clear();
    input.by_ref().take(size as u64).read_to_end(chunk)?;
    if chunk.len() == size && chunk.last() != Some(&b'\n') {
        input.read_until(b'\n', chunk)?;
    }
    Ok(())
}

/// Whether the splitter reads `chunk` exactly as the csv reader would.
fn plain(chunk: &[u8]) -> bool {
    memchr::memchr(b'"', chunk).is_none()
        && memchr::memchr_iter(b'\r', chunk).all(|i| chunk.get(i + 1) == Some(&b'\n'))
}

/// The non-empty lines of a plain chunk: `(start, end, index of the line, ended by \r\n)`,
/// the end before the line end.
fn lines(chunk: &[u8]) -> impl Iterator<Item = (usize, usize, u64, bool)> + '_ {
    let ends = memchr::memchr_iter(b'\n', chunk).chain(std::iter::once(chunk.len()));
    ends.enumerate()
        .scan(0, |start, (i, end)| {
            let line = (*start, end, i as u64);
            *start = end + 1;
            Some(line)
        })
        .filter_map(|(start, end, i)| {
            let crlf = end > start && chunk[end - 1] == b'\r';
            let content_end = end - usize::from(crlf);
            (content_end > start).then_some((start, content_end, i, crlf))
        })
}

/// Line feeds before the point where the csv reader stops after a line.
fn end_of(line: u64, crlf: bool) -> u64 {
    if crlf {
        line
    } else {
        line + 1
    }
}

/// A header found by the splitter in the first chunk.
pub struct Header {
    pub record: ByteRecord,
    /// Where the data rows start in the chunk.
    pub data: usize,
    /// Line feeds before `data`.
    pub newlines: u64,
    /// Line feeds before the end of the header as the csv reader reads it.
    pub end: u64,
}

/// The header of a plain first chunk; None when the csv reader must read the file.
pub fn header(first: &[u8]) -> Option<Header> {
    if !plain(first) {
        return None;
    }
    let (start, end, line, crlf) = lines(first).next()?;
    let data = memchr::memchr(b'\n', &first[end..]).map(|i| end + i + 1)?;
    Some(Header {
        record: first[start..end].split(|&b| b == b',').collect(),
        data,
        newlines: line + 1,
        end: end_of(line, crlf),
    })
}

/// What a worker makes of one plain chunk.
struct Parsed {
    /// Distinct stores in order of first appearance, as byte ranges of the chunk.
    stores: Vec<(usize, usize)>,
    /// (index into `stores`, value), in row order.
    polls: Vec<(u32, i64)>,
    /// The first rejections: line feeds before the end of the previous row, relative to the
    /// chunk (None: the previous row is in an earlier chunk), and the reason.
    rejections: Vec<(Option<u64>, String)>,
    rejected: u64,
    newlines: u64,
    /// Line feeds before the end of the chunk's last row, if it has one.
    last_end: Option<u64>,
}

/// None when the chunk is not plain.
fn parse_chunk(cols: PollColumns, chunk: &[u8]) -> Option<Parsed> {
    if !plain(chunk) {
        return None;
    }
    let mut out = Parsed {
        stores: Vec::new(),
        polls: Vec::with_capacity(chunk.len() / 48),
        rejections: Vec::new(),
        rejected: 0,
        newlines: memchr::memchr_iter(b'\n', chunk).count() as u64,
        last_end: None,
    };
    let mut index: FxHashMap<&[u8], u32> = FxHashMap::default();
    // A chunk of valid UTF-8 (the usual case) is checked once, not field by field.
    let text = std::str::from_utf8(chunk).ok();
    let (mut fields, mut texts): (Vec<&[u8]>, Vec<&str>) = (Vec::new(), Vec::new());
    for (start, end, i, crlf) in lines(chunk) {
        let parsed = match text {
            Some(text) => {
                texts.clear();
                texts.extend(text[start..end].split(','));
                cols.parse_text(|i| texts.get(i).copied(), texts.len())
            }
            None => {
                fields.clear();
                fields.extend(chunk[start..end].split(|&b| b == b','));
                cols.parse(|i| fields.get(i).copied(), fields.len())
            }
        };
        match parsed {
            Ok(p) => {
                let id = p.store.as_bytes();
                let next = out.stores.len() as u32;
                let slot = *index.entry(id).or_insert_with(|| {
                    let at = id.as_ptr() as usize - chunk.as_ptr() as usize;
                    out.stores.push((at, at + id.len()));
                    next
                });
                out.polls.push((slot, value(&p)));
            }
            Err(reason) => {
                out.rejected += 1;
                if out.rejections.len() < MAX_REJECTIONS {
                    out.rejections.push((out.last_end, reason));
                }
            }
        }
        out.last_end = Some(end_of(i, crlf));
    }
    Some(out)
}

/// The reading position in the whole input, in line feeds.
struct Lines {
    /// Line feeds before the next chunk.
    base: u64,
    /// Line feeds before the end of the last row read (or of the header).
    end: u64,
}

/// Reads the polls of a file whose header the splitter found (see [`header`]): the rest of
/// the first chunk, from `head.data` on, then the rest of `input` in chunks of `chunk_size`
/// bytes.
pub fn read(
    cols: PollColumns,
    mut first: Vec<u8>,
    head: &Header,
    input: &mut impl BufRead,
    chunk_size: usize,
    name: &str,
    sink: &mut impl PollSink,
) -> Result<(), IngestError> {
    let io = |source| IngestError::Io {
        path: PathBuf::from(name),
        source,
    };
    let mut bytes = head.data as u64;
    sink.progress(bytes)?;
    first.drain(..head.data);
    let mut pos = Lines {
        base: head.newlines,
        end: head.end,
    };
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    std::thread::scope(|s| {
        let (done_tx, done) = mpsc::channel::<(u64, Option<Parsed>)>();
        let mut queues = Vec::with_capacity(workers);
        for _ in 0..workers {
            let (tx, rx) = mpsc::channel::<(u64, Arc<Vec<u8>>)>();
            let done_tx = done_tx.clone();
            s.spawn(move || {
                for (seq, chunk) in rx {
                    if done_tx.send((seq, parse_chunk(cols, &chunk))).is_err() {
                        break;
                    }
                }
            });
            queues.push(tx);
        }
        drop(done_tx);
        // Chunks sent and not merged yet, oldest first, and the results that came early.
        let mut flight: VecDeque<Arc<Vec<u8>>> = VecDeque::new();
        // Buffers of merged chunks, read into again (fresh ones would be faulted in anew).
        let mut spare: Vec<Vec<u8>> = Vec::new();
        let mut early: HashMap<u64, Option<Parsed>> = HashMap::new();
        let (mut sent, mut merged) = (0u64, 0u64);
        let mut next = Some(first).filter(|f| !f.is_empty());
        loop {
            while flight.len() < 2 * workers {
                let c = match next.take() {
                    Some(c) => c,
                    None => {
                        let mut c = spare.pop().unwrap_or_default();
                        read_chunk(input, chunk_size, &mut c).map_err(io)?;
                        c
                    }
                };
                if c.is_empty() {
                    break;
                }
                let c = Arc::new(c);
                let worker = &queues[(sent % workers as u64) as usize];
                worker
                    .send((sent, Arc::clone(&c)))
                    .map_err(|_| IngestError::Invalid(format!("{name}: a parser thread died")))?;
                flight.push_back(c);
                sent += 1;
            }
            let Some(chunk) = flight.pop_front() else {
                return Ok(());
            };
            let parsed = loop {
                if let Some(p) = early.remove(&merged) {
                    break p;
                }
                let (seq, p) = done
                    .recv()
                    .map_err(|_| IngestError::Invalid(format!("{name}: a parser thread died")))?;
                early.insert(seq, p);
            };
            merged += 1;
            let Some(parsed) = parsed else {
                // This chunk is not plain: it and all after it go through the csv reader.
                let mut rest = Arc::unwrap_or_clone(chunk);
                for c in flight.drain(..) {
                    rest.extend_from_slice(&c);
                }
                return read_csv(
                    cols,
                    Cursor::new(rest).chain(input),
                    &pos,
                    bytes,
                    name,
                    sink,
                );
            };
            sink.unlisted(parsed.rejected - parsed.rejections.len() as u64);
            for (rel, reason) in parsed.rejections {
                let end = rel.map_or(pos.end, |r| pos.base + r);
                sink.reject(end + 1, reason);
            }
            let slots = parsed
                .stores
                .iter()
                .map(|&(a, b)| {
                    // The splitter cut the ids from checked UTF-8 fields.
                    let id = std::str::from_utf8(&chunk[a..b]).expect("a checked store id");
                    sink.slot(id)
                })
                .collect::<Result<Vec<u32>, _>>()?;
            for (i, v) in parsed.polls {
                sink.push(slots[i as usize], v);
            }
            if let Some(e) = parsed.last_end {
                pos.end = pos.base + e;
            }
            pos.base += parsed.newlines;
            bytes += chunk.len() as u64;
            spare.extend(Arc::into_inner(chunk));
            sink.progress(bytes)?;
        }
    })
}

/// Rows between progress reports on the csv reader's path.
pub const PROGRESS_ROWS: u64 = 65_536;

/// The rest of a polls file through the csv reader, from a row boundary at `pos` and byte
/// `bytes` of the input.
fn read_csv(
    cols: PollColumns,
    input: impl Read,
    pos: &Lines,
    bytes: u64,
    name: &str,
    sink: &mut impl PollSink,
) -> Result<(), IngestError> {
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(false)
        .from_reader(input);
    let mut rec = ByteRecord::new();
    let mut rows = 0u64;
    while read_record(&mut rdr, &mut rec, name)? {
        match cols.parse(|i| rec.get(i), rec.len()) {
            Ok(p) => {
                let slot = sink.slot(p.store)?;
                sink.push(slot, value(&p));
            }
            Err(reason) => {
                let at = rec.position().expect("a read record has a position");
                // The first row's reading started where the previous reader stopped.
                let line = if at.byte() == 0 {
                    pos.end + 1
                } else {
                    pos.base + at.line()
                };
                sink.reject(line, reason);
            }
        }
        rows += 1;
        if rows.is_multiple_of(PROGRESS_ROWS) {
            sink.progress(bytes + rdr.position().byte())?;
        }
    }
    sink.progress(bytes + rdr.position().byte())
}

/// The next record; a broken line is an error of the file, not of a row.
pub fn read_record<R: Read>(
    rdr: &mut csv::Reader<R>,
    rec: &mut ByteRecord,
    name: &str,
) -> Result<bool, IngestError> {
    rdr.read_byte_record(rec).map_err(|e| match e.into_kind() {
        csv::ErrorKind::Io(source) => IngestError::Io {
            path: PathBuf::from(name),
            source,
        },
        other => IngestError::Invalid(format!("{name}: unreadable CSV: {other:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::Layout;
    use proptest::prelude::*;

    /// What a sink was given.
    #[derive(Debug, Default, PartialEq)]
    struct Seen {
        /// Stores in order of first appearance.
        stores: Vec<String>,
        polls: Vec<(String, i64)>,
        rejections: Vec<(u64, String)>,
        rejected: u64,
        bytes: u64,
    }

    #[derive(Default)]
    struct Recorder {
        seen: Seen,
        slots: HashMap<String, u32>,
    }

    impl PollSink for Recorder {
        fn slot(&mut self, store: &str) -> Result<u32, IngestError> {
            let next = self.seen.stores.len() as u32;
            let stores = &mut self.seen.stores;
            Ok(*self.slots.entry(store.to_owned()).or_insert_with(|| {
                stores.push(store.to_owned());
                next
            }))
        }
        fn push(&mut self, slot: u32, value: i64) {
            let store = self.seen.stores[slot as usize].clone();
            self.seen.polls.push((store, value));
        }
        fn reject(&mut self, line: u64, reason: String) {
            self.seen.rejected += 1;
            if self.seen.rejections.len() < MAX_REJECTIONS {
                self.seen.rejections.push((line, reason));
            }
        }
        fn unlisted(&mut self, rejected: u64) {
            self.seen.rejected += rejected;
        }
        fn progress(&mut self, bytes: u64) -> Result<(), IngestError> {
            assert!(bytes >= self.seen.bytes, "progress went back");
            self.seen.bytes = bytes;
            Ok(())
        }
    }

    /// The reference: the csv reader row by row, as ingestion reads any other file.
    fn by_csv(input: &[u8]) -> Option<Seen> {
        let mut rdr = csv::ReaderBuilder::new().flexible(true).from_reader(input);
        let cols = Layout::detect(rdr.byte_headers().ok()?).ok()?.polls()?;
        let mut sink = Recorder::default();
        let mut rec = ByteRecord::new();
        while read_record(&mut rdr, &mut rec, "t").unwrap() {
            match cols.parse(|i| rec.get(i), rec.len()) {
                Ok(p) => {
                    let slot = sink.slot(p.store).unwrap();
                    sink.push(slot, value(&p));
                }
                Err(reason) => sink.reject(rec.position().unwrap().line(), reason),
            }
        }
        sink.seen.bytes = input.len() as u64;
        Some(sink.seen)
    }

    /// The fast reader in chunks of `size` bytes; None when ingestion would not use it.
    fn fast(mut input: &[u8], size: usize) -> Option<Seen> {
        let mut first = Vec::new();
        read_chunk(&mut input, size, &mut first).unwrap();
        let head = header(&first)?;
        let cols = Layout::detect(&head.record).ok()?.polls()?;
        let mut sink = Recorder::default();
        read(cols, first, &head, &mut input, size, "t", &mut sink).unwrap();
        Some(sink.seen)
    }

    #[derive(Clone, Debug)]
    enum Line {
        Row([&'static str; 3], Option<&'static str>),
        Raw(Vec<u8>),
    }

    fn line() -> impl Strategy<Value = (Line, &'static str)> {
        let store = prop::sample::select(vec!["1", "22", " 3", "4 ", "x y", "é", "", "\u{7}"]);
        let status = prop::sample::select(vec!["active", "inactive", " active", "down", ""]);
        let at = prop::sample::select(vec![
            "2023-01-22 12:09:39 UTC",
            "2023-01-22 12:09:39.5 UTC",
            "2023-01-22T12:09:39Z",
            "2023-01-23 00:00:00.000001",
            " 2023-01-22 12:09:39 UTC",
            "2023-02-30 00:00:00",
            "later",
        ]);
        let extra = prop::option::of(prop::sample::select(vec!["", "x", "1,2"]));
        let raw = prop::collection::vec(
            prop::sample::select(vec![b',', b'a', b'"', b'\r', b' ', b'1', 0xff]),
            0..6,
        );
        let line = prop_oneof![
            6 => (store, status, at, extra).prop_map(|(s, st, at, e)| Line::Row([s, st, at], e)),
            1 => raw.prop_map(Line::Raw),
        ];
        let end = prop::sample::select(vec!["\n", "\n", "\n", "\r\n", "\n\n", ""]);
        (line, end)
    }

    /// A polls file: a header in some column order (maybe with a byte-order mark, an extra
    /// column, empty lines before it), then rows, broken rows and odd line ends.
    fn file() -> impl Strategy<Value = Vec<u8>> {
        let order = Just(vec![0usize, 1, 2]).prop_shuffle();
        let header_end = prop::sample::select(vec!["\n", "\r\n", "\n\n"]);
        (
            order,
            any::<bool>(),
            any::<bool>(),
            header_end,
            prop::collection::vec(line(), 0..40),
        )
            .prop_map(|(order, bom, blank, header_end, lines)| {
                let names = ["store_id", "status", "timestamp_utc"];
                let mut out = Vec::new();
                if blank {
                    out.extend_from_slice(b"\n");
                }
                if bom {
                    out.extend_from_slice("\u{feff}".as_bytes());
                }
                let head: Vec<&str> = order.iter().map(|&i| names[i]).collect();
                out.extend_from_slice(head.join(",").as_bytes());
                out.extend_from_slice(header_end.as_bytes());
                for (line, end) in lines {
                    match line {
                        Line::Row(fields, extra) => {
                            let mut row: Vec<&str> = order.iter().map(|&i| fields[i]).collect();
                            row.extend(extra);
                            out.extend_from_slice(row.join(",").as_bytes());
                        }
                        Line::Raw(bytes) => out.extend_from_slice(&bytes),
                    }
                    out.extend_from_slice(end.as_bytes());
                }
                out
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Any file, cut anywhere into chunks: the same polls, stores, rejections and line
        /// numbers as the csv reader's.
        #[test]
        fn the_fast_reader_reads_as_the_csv_reader(input in file(), size in 1usize..120) {
            let reference = by_csv(&input).expect("a polls header");
            if let Some(seen) = fast(&input, size) {
                prop_assert_eq!(seen, reference);
            }
        }
    }

    #[test]
    fn plain_files_take_the_fast_path_and_quotes_fall_back_mid_file() {
        let rows = "store_id,status,timestamp_utc\r\n1,active,2023-01-22 12:09:39 UTC\r\n\r\n";
        let input = format!("{rows}2,bad,x\n\"3\",active,2023-01-22 12:09:39 UTC\n4,down,x\n");
        let seen = fast(input.as_bytes(), 8).expect("a plain header");
        assert_eq!(seen, by_csv(input.as_bytes()).unwrap());
        assert_eq!(seen.stores, ["1", "3"]);
        // The csv reader's numbers: the line where it stopped after the row before (line 2,
        // whose `\r\n` it leaves unread; line 6, after line 5's `\n`).
        assert_eq!(
            seen.rejections.iter().map(|r| r.0).collect::<Vec<_>>(),
            [2, 6]
        );
        // A quote in the header's chunk: the csv reader reads the whole file.
        assert!(fast(b"\"store_id\",status,timestamp_utc\n", 1 << 10).is_none());
    }

    #[test]
    fn rejections_past_the_list_are_counted() {
        let mut input = String::from("store_id,status,timestamp_utc\n");
        for _ in 0..3 * MAX_REJECTIONS {
            input.push_str("1,down,2023-01-22 12:09:39 UTC\n");
        }
        input.push_str("1,active,2023-01-22 12:09:39 UTC\n");
        let seen = fast(input.as_bytes(), 300).unwrap();
        assert_eq!(seen.rejected, 3 * MAX_REJECTIONS as u64);
        assert_eq!(seen.rejections.len(), MAX_REJECTIONS);
        assert_eq!(seen.polls.len(), 1);
        assert_eq!(seen, by_csv(input.as_bytes()).unwrap());
    }
}
