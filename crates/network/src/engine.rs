//! The computation: a file is folded into mergeable per-interval state (byte sums per
//! service, the sorted set of subscribers per cell), and KPIs are the top entries of merged
//! state. Hourly unique users are the size of the union of the hour's sets — exact, never a
//! sum of 5-minute counts.

use std::collections::BTreeMap;
use std::io::Read;

use sluice_core::jobs::{Rejection, MAX_REJECTIONS};

use crate::parse::{parse_row, parse_row_fast, Header, Line, Lines, PeriodStart, RowError};
use crate::settings::PeriodFrom;

/// Ids are small integers chosen by the data supplier, not an attacker: a fast non-keyed hash
/// is safe here and is the largest single saving of the parse loop.
pub type Map<K, V> = rustc_hash::FxHashMap<K, V>;

/// Mergeable state of one 5-minute interval (from one file).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct IntervalState {
    pub rows: u64,
    pub service_bytes: Map<i64, u128>,
    /// Subscribers (msisdn) per cell, as stored: [`codec::cells`] reads it.
    pub cells: Vec<u8>,
}

/// A cell's subscriber buffer is first deduplicated when it is full at this many entries.
/// Below it, buffers grow as plain vectors (a 5-minute file rarely holds that many rows of
/// one cell, so ordinary files pay nothing); from it on, the buffer is sorted and
/// deduplicated whenever it is full, and doubles only when more than half of it is distinct.
/// A buffer's capacity therefore stays below `max(DEDUP_FROM, 4 × its distinct subscribers)`
/// whatever the input repeats: memory follows the answer, not the input.
pub const DEDUP_FROM: usize = 1024;

/// Buffered subscriber entries (8 bytes each) of all cells of a file together: past it, every
/// buffer is merged into its cell's compact sorted base. 5-minute files never come near it;
/// a file with tens of millions of distinct (cell, subscriber) pairs then holds them at the
/// ~2 bytes each of the stored form, not 8 bytes plus slack.
pub const BUFFER_BUDGET: usize = 1 << 21;

/// Subscribers of one cell while a file is folded.
#[derive(Debug, Default)]
struct CellFold {
    /// Where the sorted distinct subscribers merged so far lie in the interval's `bases`.
    base: std::ops::Range<usize>,
    /// Entries of the base.
    count: u64,
    /// Subscribers since the last merge, unsorted.
    buf: Vec<u64>,
}

/// What the cells of a file hold, in bytes, and the most they held at once.
#[derive(Debug, Default)]
struct Held {
    buffered: usize,
    bases: usize,
    peak: usize,
}

impl Held {
    fn note(&mut self, transient: usize) {
        self.peak = self.peak.max(self.buffered * 8 + self.bases + transient);
    }
}

impl CellFold {
    /// Makes room for one more subscriber; out of line: reached about once per doubling of
    /// a busy cell, never for most cells.
    #[inline(never)]
    fn grow(&mut self, held: &mut Held) {
        let before = self.buf.capacity();
        if self.buf.len() >= DEDUP_FROM {
            self.buf.sort_unstable();
            self.buf.dedup();
            if self.buf.len() > before / 2 {
                // Mostly distinct: without room to spare the next deduplication would come
                // after a few rows, each sorting the whole buffer again.
                self.buf.reserve_exact(2 * before - self.buf.len());
            }
        } else {
            self.buf.reserve(1);
        }
        held.buffered += self.buf.capacity() - before;
        held.note(0);
    }
}

/// One interval while a file is folded.
#[derive(Debug, Default)]
struct IntervalFold {
    rows: u64,
    service_bytes: Map<i64, u128>,
    cells: Map<i64, CellFold>,
    /// The bases of all cells, delta-varint coded as stored, in one buffer: a few large
    /// allocations that the allocator gives back when freed, where thousands of per-cell
    /// ones stayed resident as free heap (glibc kept ~50 MB of them through the commit).
    bases: Vec<u8>,
}

impl IntervalFold {
    /// Merges every cell's buffer into its base, into a new buffer of bases.
    fn merge_all(&mut self, held: &mut Held) {
        let size = self.bases.len() + self.cells.values().map(|c| c.buf.len() * 3).sum::<usize>();
        let old = std::mem::replace(&mut self.bases, Vec::with_capacity(size));
        held.note(self.bases.capacity());
        for c in self.cells.values_mut() {
            c.buf.sort_unstable();
            c.buf.dedup();
            let start = self.bases.len();
            c.count = codec::merge(&old[c.base.clone()], c.count, &c.buf, &mut self.bases);
            c.base = start..self.bases.len();
            held.buffered -= c.buf.capacity();
            c.buf = Vec::new();
        }
        held.bases = held.bases - old.capacity() + self.bases.capacity();
    }

    /// The stored form: cells by ascending id.
    fn finish(self) -> IntervalState {
        let mut cells: Vec<(i64, CellFold)> = self.cells.into_iter().collect();
        cells.sort_unstable_by_key(|c| c.0);
        let size = self.bases.len()
            + cells
                .iter()
                .map(|(_, c)| c.buf.len() * 3 + 4)
                .sum::<usize>();
        let mut out = Vec::with_capacity(size);
        let mut merged = Vec::new();
        let mut prev = 0;
        for (id, mut c) in cells {
            c.buf.sort_unstable();
            c.buf.dedup();
            let base = &self.bases[c.base];
            if c.count == 0 {
                codec::put_cell(&mut out, &mut prev, id, c.buf.len() as u64);
                codec::put_users(&mut out, &c.buf);
            } else if c.buf.is_empty() {
                codec::put_cell(&mut out, &mut prev, id, c.count);
                out.extend_from_slice(base);
            } else {
                merged.clear();
                let n = codec::merge(base, c.count, &c.buf, &mut merged);
                codec::put_cell(&mut out, &mut prev, id, n);
                out.extend_from_slice(&merged);
            }
        }
        IntervalState {
            rows: self.rows,
            service_bytes: self.service_bytes,
            cells: out,
        }
    }
}

/// Compact binary encoding of interval state for storage: LEB128 varints; ids zigzag-encoded
/// and delta-coded in ascending order; subscribers delta-coded. A cell is its id, its count
/// and its subscribers, so the sorted subscribers of a cell can be read and merged straight
/// from the bytes.
pub mod codec {
    use super::Map;

    #[derive(Debug, thiserror::Error)]
    #[error("truncated or corrupt interval state")]
    pub struct Corrupt;

    fn put(out: &mut Vec<u8>, mut v: u128) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }

    fn get(buf: &mut &[u8]) -> Result<u128, Corrupt> {
        let mut v: u128 = 0;
        for shift in (0..128).step_by(7) {
            let (&b, rest) = buf.split_first().ok_or(Corrupt)?;
            *buf = rest;
            v |= u128::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(Corrupt)
    }

    fn get_u64(buf: &mut &[u8]) -> Result<u64, Corrupt> {
        u64::try_from(get(buf)?).map_err(|_| Corrupt)
    }

    /// Ids ascend, so deltas are non-negative except the first, which is stored as is.
    fn put_id(out: &mut Vec<u8>, prev: &mut i64, id: i64) {
        let delta = id.wrapping_sub(*prev);
        put(out, u128::from(((delta << 1) ^ (delta >> 63)) as u64));
        *prev = id;
    }

    fn get_id(buf: &mut &[u8], prev: &mut i64) -> Result<i64, Corrupt> {
        let z = get_u64(buf)?;
        let delta = ((z >> 1) as i64) ^ -((z & 1) as i64);
        *prev = prev.wrapping_add(delta);
        Ok(*prev)
    }

    pub fn encode_services(map: &Map<i64, u128>) -> Vec<u8> {
        let mut ids: Vec<i64> = map.keys().copied().collect();
        ids.sort_unstable();
        let mut out = Vec::with_capacity(map.len() * 6);
        let mut prev = 0;
        for id in ids {
            put_id(&mut out, &mut prev, id);
            put(&mut out, map[&id]);
        }
        out
    }

    pub fn decode_services(mut buf: &[u8], mut f: impl FnMut(i64, u128)) -> Result<(), Corrupt> {
        let mut prev = 0;
        while !buf.is_empty() {
            let id = get_id(&mut buf, &mut prev)?;
            f(id, get(&mut buf)?);
        }
        Ok(())
    }

    /// A cell's header; its `count` subscribers follow ([`put_users`], or a merged base).
    pub(super) fn put_cell(out: &mut Vec<u8>, prev: &mut i64, id: i64, count: u64) {
        put_id(out, prev, id);
        put(out, u128::from(count));
    }

    /// Sorted distinct subscribers, delta-coded from 0.
    pub(super) fn put_users(out: &mut Vec<u8>, users: &[u64]) {
        let mut last = 0u64;
        for &u in users {
            put(out, u128::from(u - last));
            last = u;
        }
    }

    /// Writes the union of `base` (`count` subscribers as [`put_users`] writes them) and
    /// `sorted` (ascending, distinct) to `out` in the same form; returns its size.
    pub(super) fn merge(mut base: &[u8], count: u64, sorted: &[u64], out: &mut Vec<u8>) -> u64 {
        let mut base = users(&mut base, count).map(|r| r.expect("a base the fold wrote"));
        let mut next = base.next();
        let mut last = 0u64;
        let mut n = 0;
        let mut emit = |u: u64| {
            put(out, u128::from(u - last));
            last = u;
            n += 1;
        };
        for &u in sorted {
            while let Some(b) = next.filter(|&b| b < u) {
                emit(b);
                next = base.next();
            }
            if next == Some(u) {
                next = base.next();
            }
            emit(u);
        }
        while let Some(b) = next {
            emit(b);
            next = base.next();
        }
        n
    }

    /// The subscribers of one cell, ascending.
    pub struct Users<'a, 'b> {
        bytes: &'b mut &'a [u8],
        left: u64,
        last: u64,
    }

    impl Iterator for Users<'_, '_> {
        type Item = Result<u64, Corrupt>;

        fn next(&mut self) -> Option<Self::Item> {
            if self.left == 0 {
                return None;
            }
            self.left -= 1;
            Some(get_u64(self.bytes).and_then(|d| {
                self.last = self.last.checked_add(d).ok_or(Corrupt)?;
                Ok(self.last)
            }))
        }
    }

    /// Calls `f(id, count, subscribers)` for every cell of an encoded blob, `subscribers`
    /// being the bytes of its `count` delta-coded subscribers (read them with [`users`]).
    pub fn cells<'a>(
        mut buf: &'a [u8],
        mut f: impl FnMut(i64, u64, &'a [u8]),
    ) -> Result<(), Corrupt> {
        let mut prev = 0;
        while !buf.is_empty() {
            let id = get_id(&mut buf, &mut prev)?;
            let n = get_u64(&mut buf)?;
            // A varint ends at each byte below 0x80: the cell ends after the n-th such byte.
            let mut left = n;
            let mut end = 0;
            if left > 0 {
                end = buf
                    .iter()
                    .position(|&b| {
                        left -= u64::from(b < 0x80);
                        left == 0
                    })
                    .ok_or(Corrupt)?
                    + 1;
            }
            let (users, rest) = buf.split_at(end);
            f(id, n, users);
            buf = rest;
        }
        Ok(())
    }

    /// The `count` subscribers of a cell's bytes from [`cells`].
    pub fn users<'a, 'b>(bytes: &'b mut &'a [u8], count: u64) -> Users<'a, 'b> {
        Users {
            bytes,
            left: count,
            last: 0,
        }
    }
}

/// What one file contributes, and what it rejected.
#[derive(Debug, Default)]
pub struct FileState {
    pub intervals: BTreeMap<PeriodStart, IntervalState>,
    pub accepted: u64,
    pub rejected: u64,
    /// Rows whose interval is not the period of the file name.
    pub warnings: u64,
    pub rejections: Vec<Rejection>,
    /// The most bytes the cells' subscribers held at once while the file was folded
    /// (buffer capacity and compact bases): a deterministic measure of the fold's memory.
    pub peak_cell_bytes: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{0}")]
    Header(String),
    #[error("read error: {0}")]
    Io(#[from] std::io::Error),
    #[error("the file name's period ends at {0}, not on a 5-minute boundary")]
    Misaligned(i64),
}

/// Folds a whole flow file. `period_end` is the period named by the file: rows of another
/// interval are counted as warnings, and kept in their own interval or moved to the named
/// one as `period_from` says. `on_bytes` is told how many bytes were read so far, for
/// progress.
pub fn fold_file(
    name: &str,
    reader: impl Read,
    period_end: Option<i64>,
    period_from: PeriodFrom,
    on_bytes: impl FnMut(u64),
) -> Result<FileState, FileError> {
    fold_within(
        name,
        reader,
        period_end,
        period_from,
        on_bytes,
        BUFFER_BUDGET,
    )
}

/// [`fold_file`] with `budget` buffered subscribers before buffers are merged into bases.
fn fold_within(
    name: &str,
    reader: impl Read,
    period_end: Option<i64>,
    period_from: PeriodFrom,
    mut on_bytes: impl FnMut(u64),
    budget: usize,
) -> Result<FileState, FileError> {
    let named = match (period_from, period_end) {
        (PeriodFrom::FileName, Some(end)) => Some(
            end.checked_sub(crate::parse::PERIOD_MS)
                .and_then(PeriodStart::new)
                .ok_or(FileError::Misaligned(end))?,
        ),
        _ => None,
    };
    let mut lines = Lines::new(reader);
    let mut state = FileState::default();
    let header = match lines.next_line()? {
        None => return Ok(state), // an empty file is fine
        Some(Line::TooLong) => return Err(FileError::Header("the header line is too long".into())),
        Some(Line::Text(h)) => Header::parse(h).map_err(FileError::Header)?,
    };
    let mut fields = Vec::with_capacity(header.fields());
    // Intervals in order of appearance, found by index: rows of one file almost always share
    // one interval, so the row loop compares one period and rarely looks anything up.
    let mut intervals: Vec<(PeriodStart, IntervalFold)> = Vec::new();
    let mut held = Held::default();
    let mut index: Map<PeriodStart, usize> = Map::default();
    let mut current: Option<usize> = None;
    loop {
        let line_no = lines.number + 1;
        let flow = match lines.next_line()? {
            None => break,
            Some(Line::Text(l)) if l.trim_ascii().is_empty() => continue,
            Some(Line::Text(l)) => match parse_row_fast(l, &header) {
                Some(flow) => Ok(flow),
                None => parse_row(l, &header, &mut fields),
            },
            Some(Line::TooLong) => Err(RowError::LineTooLong),
        };
        let mut flow = match flow {
            Ok(f) => f,
            Err(e) => {
                state.rejected += 1;
                if state.rejections.len() < MAX_REJECTIONS {
                    state.rejections.push(Rejection {
                        file: name.to_owned(),
                        line: line_no,
                        reason: e.to_string(),
                    });
                }
                continue;
            }
        };
        state.accepted += 1;
        if period_end.is_some_and(|end| end != flow.period.end()) {
            state.warnings += 1;
        }
        if let Some(p) = named {
            flow.period = p;
        }
        let i = match current {
            Some(i) if intervals[i].0 == flow.period => i,
            _ => {
                let i = *index.entry(flow.period).or_insert_with(|| {
                    intervals.push((flow.period, IntervalFold::default()));
                    intervals.len() - 1
                });
                current = Some(i);
                i
            }
        };
        let slot = &mut intervals[i].1;
        slot.rows += 1;
        *slot.service_bytes.entry(flow.service_id).or_default() += flow.total_bytes();
        let cell = slot.cells.entry(flow.cell_id).or_default();
        let full = cell.buf.len() == cell.buf.capacity();
        if full {
            cell.grow(&mut held);
        }
        cell.buf.push(flow.msisdn);
        if full && held.buffered > budget {
            for (_, s) in &mut intervals {
                s.merge_all(&mut held);
            }
        }
        if state.accepted % 65_536 == 0 {
            on_bytes(lines.bytes);
        }
    }
    state.intervals = intervals
        .into_iter()
        .map(|(p, s)| (p, s.finish()))
        .collect();
    state.peak_cell_bytes = held.peak;
    on_bytes(lines.bytes);
    Ok(state)
}

/// The `k` largest values, ties broken by the larger id first.
pub fn top_k<V: Ord + Copy>(values: impl IntoIterator<Item = (i64, V)>, k: usize) -> Vec<(i64, V)> {
    let mut all: Vec<(i64, V)> = values.into_iter().collect();
    let cmp = |a: &(i64, V), b: &(i64, V)| b.1.cmp(&a.1).then(b.0.cmp(&a.0));
    if all.len() > k {
        all.select_nth_unstable_by(k, cmp);
        all.truncate(k);
    }
    all.sort_unstable_by(cmp);
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::collections::{BTreeMap, BTreeSet};

    use rand::{Rng, SeedableRng};

    /// The stored form of plain sets, written the simple way: what the fold must produce.
    fn encode(cells: &BTreeMap<i64, BTreeSet<u64>>) -> Vec<u8> {
        let mut out = Vec::new();
        let mut prev = 0;
        for (&id, users) in cells {
            codec::put_cell(&mut out, &mut prev, id, users.len() as u64);
            codec::put_users(&mut out, &users.iter().copied().collect::<Vec<_>>());
        }
        out
    }

    fn decode(blob: &[u8]) -> BTreeMap<i64, Vec<u64>> {
        let mut cells = BTreeMap::new();
        codec::cells(blob, |id, n, mut bytes| {
            let users = codec::users(&mut bytes, n)
                .collect::<Result<_, _>>()
                .unwrap();
            assert!(bytes.is_empty());
            cells.insert(id, users);
        })
        .unwrap();
        cells
    }

    #[test]
    fn codec_round_trips() {
        let mut services = Map::default();
        services.insert(-3, u128::from(u64::MAX) * 3);
        services.insert(7, 1);
        let mut back = Map::default();
        codec::decode_services(&codec::encode_services(&services), |k, v| {
            back.insert(k, v);
        })
        .unwrap();
        assert_eq!(back, services);
        let cells = BTreeMap::from([
            (1001, BTreeSet::from([5, 31_619_690_654, u64::MAX])),
            (-1, BTreeSet::from([0])),
        ]);
        let decoded = decode(&encode(&cells));
        assert_eq!(decoded[&1001], vec![5, 31_619_690_654, u64::MAX]);
        assert_eq!(decoded[&-1], vec![0]);
        // The stored format: zigzag id deltas, count, subscriber deltas from 0.
        let small = BTreeMap::from([(-1, BTreeSet::from([0])), (1001, BTreeSet::from([5, 7]))]);
        assert_eq!(encode(&small), [1, 1, 0, 0xD4, 0x0F, 2, 5, 2]);
        assert!(codec::cells(&[0x80], |_, _, _| {}).is_err());
        assert!(codec::cells(&[2, 200], |_, _, _| {}).is_err());
    }

    const HEADER: &str = "interval_start_timestamp,interval_end_timestamp,msisdn,bytes_uplink,bytes_downlink,service_id,cell_id\n";
    const START: i64 = 1_488_355_200_000;

    /// A flow file of `rows` random rows over `cells` cells and `subscribers` subscribers
    /// (spread over `spread` msisdn values each), in one or two intervals; and the sets the
    /// fold must find, by interval start.
    fn random_file(
        seed: u64,
        rows: usize,
        cells: i64,
        subscribers: u64,
        spread: u64,
        periods: i64,
    ) -> (String, BTreeMap<i64, BTreeMap<i64, BTreeSet<u64>>>) {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut csv = String::from(HEADER);
        let mut want: BTreeMap<i64, BTreeMap<i64, BTreeSet<u64>>> = BTreeMap::new();
        for _ in 0..rows {
            let start = START + rng.random_range(0..periods) * 300_000;
            let msisdn = 31_600_000_000 + rng.random_range(0..subscribers) * spread;
            let cell = 1000 + rng.random_range(0..cells);
            csv += &format!("{start},{},{msisdn},1,2,3,{cell}\n", start + 300_000);
            want.entry(start)
                .or_default()
                .entry(cell)
                .or_default()
                .insert(msisdn);
        }
        (csv, want)
    }

    fn fold_csv(csv: &str, budget: usize) -> FileState {
        fold_within("f", csv.as_bytes(), None, PeriodFrom::Rows, |_| {}, budget).unwrap()
    }

    #[test]
    fn compact_fold_gives_the_state_of_the_simple_one() {
        // (rows, cells, subscribers, spread, periods): heavy repetition, many distinct, one
        // busy cell, many small cells, huge gaps between ids.
        let shapes = [
            (20_000, 1, 3, 7, 1),
            (20_000, 3, 40, 7, 2),
            (20_000, 2, 1_000_000, 7, 1),
            (20_000, 1, 5_000, 1, 1),
            (5_000, 2_000, 250_000, 7, 2),
            (10_000, 10, 1 << 40, 1 << 20, 1),
            (0, 1, 1, 1, 1),
        ];
        for (seed, &(rows, cells, subscribers, spread, periods)) in shapes.iter().enumerate() {
            let (csv, want) = random_file(seed as u64, rows, cells, subscribers, spread, periods);
            let simple = fold_csv(&csv, usize::MAX);
            let found: BTreeMap<i64, Vec<u8>> = simple
                .intervals
                .iter()
                .map(|(p, s)| (p.millis(), s.cells.clone()))
                .collect();
            let expected: BTreeMap<i64, Vec<u8>> =
                want.iter().map(|(p, c)| (*p, encode(c))).collect();
            assert_eq!(found, expected, "shape {seed}");
            for budget in [16, 1_000] {
                let compact = fold_csv(&csv, budget);
                assert_eq!(
                    compact.intervals, simple.intervals,
                    "shape {seed}, budget {budget}"
                );
            }
        }
    }

    #[test]
    fn distinct_pairs_are_held_compactly() {
        // 400 000 rows, nearly all distinct pairs: the generator's 250 000 subscribers, 7
        // apart, over 20 cells. As sorted u64 per pair this is 3.2 MB (more with buffer slack).
        let rows = 400_000;
        let budget = 1 << 14;
        let (csv, want) = random_file(1, rows, 20, 250_000, 7, 1);
        let distinct: usize = want
            .values()
            .flat_map(|c| c.values())
            .map(BTreeSet::len)
            .sum();
        assert!(distinct > rows * 9 / 10, "{distinct}");
        let s = fold_csv(&csv, budget);
        let stored: usize = s.intervals.values().map(|i| i.cells.len()).sum();
        // The compact bases (here < 2 bytes a pair), twice while a merge round rebuilds them,
        // and at most the budget of buffers (8 bytes an entry, and up to 3 more reserved for
        // its bases); the old fold held 8 bytes and more a pair.
        assert!(stored < distinct * 2, "{stored} bytes for {distinct} pairs");
        assert!(
            s.peak_cell_bytes <= 2 * stored + 11 * budget,
            "peak {} for {distinct} pairs stored in {stored} bytes",
            s.peak_cell_bytes
        );
        assert!(s.peak_cell_bytes < distinct * 4, "{}", s.peak_cell_bytes);
    }

    #[test]
    fn ties_go_to_the_larger_id() {
        assert_eq!(
            top_k([(1000, 3u64), (1001, 4), (5005, 3), (7, 1)], 3),
            vec![(1001, 4), (5005, 3), (1000, 3)]
        );
        assert_eq!(top_k([(1, 1u64)], 3), vec![(1, 1)]);
    }

    #[test]
    fn folds_rows_and_reports_reasons_with_line_numbers() {
        let data = "interval_start_timestamp,interval_end_timestamp,msisdn,bytes_uplink,bytes_downlink,service_id,cell_id\n\
            1488355200000,1488355500000,1,100,200,1,1001\n\
            1488355200000,1488355500000,2,1,1,1,1001\n\
            bad,row\n\
            1488355200000,1488355500000,1,5,5,2,1001\n\
            1488355500000,1488355800000,1,5,5,2,1001\n";
        let s = fold_file(
            "f",
            data.as_bytes(),
            Some(1_488_355_500_000),
            PeriodFrom::Rows,
            |_| {},
        )
        .unwrap();
        assert_eq!((s.accepted, s.rejected, s.warnings), (4, 1, 1));
        assert_eq!(s.rejections[0].line, 4);
        assert!(s.rejections[0].reason.contains("expected 7 fields"));
        let first = &s.intervals[&PeriodStart::new(1_488_355_200_000).unwrap()];
        assert_eq!(first.service_bytes[&1], 302);
        assert_eq!(decode(&first.cells)[&1001].len(), 2);
    }

    #[test]
    fn with_period_from_file_name_rows_count_in_the_named_period() {
        let data = "interval_start_timestamp,interval_end_timestamp,msisdn,bytes_uplink,bytes_downlink,service_id,cell_id\n\
            1488355200000,1488355500000,1,100,200,1,1001\n\
            1626566400000,1626566700000,2,1,1,1,1001\n";
        let named = 1_626_566_700_000;
        let s = fold_file(
            "f",
            data.as_bytes(),
            Some(named),
            PeriodFrom::FileName,
            |_| {},
        )
        .unwrap();
        assert_eq!((s.accepted, s.warnings), (2, 1));
        let periods: Vec<i64> = s.intervals.keys().map(|p| p.millis()).collect();
        assert_eq!(periods, vec![named - 300_000]);
        assert_eq!(s.intervals.values().next().unwrap().service_bytes[&1], 302);
        assert!(matches!(
            fold_file(
                "f",
                data.as_bytes(),
                Some(named + 1),
                PeriodFrom::FileName,
                |_| {}
            ),
            Err(FileError::Misaligned(_))
        ));
    }

    #[test]
    fn header_errors_reject_the_file_and_empty_files_are_fine() {
        assert!(matches!(
            fold_file("f", &b"a,b\n1,2\n"[..], None, PeriodFrom::Rows, |_| {}),
            Err(FileError::Header(_))
        ));
        let s = fold_file("f", &b""[..], None, PeriodFrom::Rows, |_| {}).unwrap();
        assert_eq!(s.accepted, 0);
    }
}
