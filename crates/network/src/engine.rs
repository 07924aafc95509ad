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

/// Mergeable state of one 5-minute interval (from one file, or merged).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct IntervalState {
    pub rows: u64,
    pub service_bytes: Map<i64, u128>,
    /// Subscribers (msisdn) per cell: sorted and without duplicates after [`Self::normalize`].
    pub cell_users: Map<i64, Vec<u64>>,
}

impl IntervalState {
    /// Sorts and deduplicates every cell's subscribers (a union of the merged sets).
    pub fn normalize(&mut self) {
        for users in self.cell_users.values_mut() {
            users.sort_unstable();
            users.dedup();
        }
    }
}

/// A cell's subscriber buffer is first deduplicated when it is full at this many entries.
/// Below it, buffers grow as plain vectors (a 5-minute file rarely holds that many rows of
/// one cell, so ordinary files pay nothing); from it on, the buffer is sorted and
/// deduplicated whenever it is full, and doubles only when more than half of it is distinct.
/// A buffer's capacity therefore stays below `max(DEDUP_FROM, 4 × its distinct subscribers)`
/// whatever the input repeats: memory follows the answer, not the input.
pub const DEDUP_FROM: usize = 1024;

/// Adds one subscriber to a cell's buffer, keeping the bound of [`DEDUP_FROM`].
#[inline]
fn add_user(users: &mut Vec<u64>, msisdn: u64) {
    if users.len() == users.capacity() && users.len() >= DEDUP_FROM {
        dedup_full(users);
    }
    users.push(msisdn);
}

/// Out of line: reached about once per doubling of a busy cell, never for most cells.
#[inline(never)]
fn dedup_full(users: &mut Vec<u64>) {
    users.sort_unstable();
    users.dedup();
    let cap = users.capacity();
    if users.len() > cap / 2 {
        // Mostly distinct: without room to spare the next deduplication would come after a
        // few rows, each sorting the whole buffer again.
        users.reserve_exact(2 * cap - users.len());
    }
}

/// Compact binary encoding of interval state for storage: LEB128 varints; ids zigzag-encoded
/// and delta-coded in ascending order; subscribers delta-coded.
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

    fn sorted_ids<V>(map: &Map<i64, V>) -> Vec<i64> {
        let mut ids: Vec<i64> = map.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// Ids ascend, so deltas are non-negative except the first, which is stored as is.
    fn put_id(out: &mut Vec<u8>, prev: &mut i64, id: i64) {
        let delta = id.wrapping_sub(*prev);
        put(out, u128::from(((delta << 1) ^ (delta >> 63)) as u64));
        *prev = id;
    }

    fn get_id(buf: &mut &[u8], prev: &mut i64) -> Result<i64, Corrupt> {
        let z = u64::try_from(get(buf)?).map_err(|_| Corrupt)?;
        let delta = ((z >> 1) as i64) ^ -((z & 1) as i64);
        *prev = prev.wrapping_add(delta);
        Ok(*prev)
    }

    pub fn encode_services(map: &Map<i64, u128>) -> Vec<u8> {
        let mut out = Vec::with_capacity(map.len() * 6);
        let mut prev = 0;
        for id in sorted_ids(map) {
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

    /// `map` must be normalized (sorted, deduplicated subscribers).
    pub fn encode_cells(map: &Map<i64, Vec<u64>>) -> Vec<u8> {
        let mut out = Vec::with_capacity(map.values().map(|u| u.len() * 3 + 4).sum());
        let mut prev = 0;
        for id in sorted_ids(map) {
            put_id(&mut out, &mut prev, id);
            let users = &map[&id];
            put(&mut out, users.len() as u128);
            let mut last = 0u64;
            for &u in users {
                put(&mut out, u128::from(u - last));
                last = u;
            }
        }
        out
    }

    /// Appends each cell's subscribers to `into` (unsorted across calls: normalize after).
    pub fn decode_cells(mut buf: &[u8], into: &mut Map<i64, Vec<u64>>) -> Result<(), Corrupt> {
        let mut prev = 0;
        while !buf.is_empty() {
            let id = get_id(&mut buf, &mut prev)?;
            let n = usize::try_from(get(&mut buf)?).map_err(|_| Corrupt)?;
            if n > buf.len() {
                return Err(Corrupt); // every subscriber takes at least one byte
            }
            let users = into.entry(id).or_default();
            users.reserve(n);
            let mut last = 0u64;
            for _ in 0..n {
                let d = u64::try_from(get(&mut buf)?).map_err(|_| Corrupt)?;
                last = last.checked_add(d).ok_or(Corrupt)?;
                users.push(last);
            }
        }
        Ok(())
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
}

impl FileState {
    /// Subscriber entries the cell buffers have room for: a deterministic measure of the
    /// fold's memory. Buffers never shrink while a file is folded, so this is also the most
    /// the fold held at once.
    pub fn subscriber_slots(&self) -> usize {
        self.intervals
            .values()
            .flat_map(|s| s.cell_users.values())
            .map(Vec::capacity)
            .sum()
    }
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
    mut on_bytes: impl FnMut(u64),
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
    let mut intervals: Vec<(PeriodStart, IntervalState)> = Vec::new();
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
                    intervals.push((flow.period, IntervalState::default()));
                    intervals.len() - 1
                });
                current = Some(i);
                i
            }
        };
        let slot = &mut intervals[i].1;
        slot.rows += 1;
        *slot.service_bytes.entry(flow.service_id).or_default() += flow.total_bytes();
        add_user(
            slot.cell_users.entry(flow.cell_id).or_default(),
            flow.msisdn,
        );
        if state.accepted % 65_536 == 0 {
            on_bytes(lines.bytes);
        }
    }
    state.intervals = intervals
        .into_iter()
        .map(|(p, mut s)| {
            s.normalize();
            (p, s)
        })
        .collect();
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

    #[test]
    fn codec_round_trips() {
        let mut s = IntervalState::default();
        s.service_bytes.insert(-3, u128::from(u64::MAX) * 3);
        s.service_bytes.insert(7, 1);
        s.cell_users.insert(1001, vec![5, 31_619_690_654, u64::MAX]);
        s.cell_users.insert(-1, vec![0]);
        let mut services = Map::default();
        codec::decode_services(&codec::encode_services(&s.service_bytes), |k, v| {
            services.insert(k, v);
        })
        .unwrap();
        assert_eq!(services, s.service_bytes);
        let mut cells = Map::default();
        codec::decode_cells(&codec::encode_cells(&s.cell_users), &mut cells).unwrap();
        assert_eq!(cells, s.cell_users);
        assert!(codec::decode_cells(&[0x80], &mut cells).is_err());
        assert!(codec::decode_cells(&[2, 200], &mut cells).is_err());
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
        assert_eq!(first.cell_users[&1001].len(), 2);
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
