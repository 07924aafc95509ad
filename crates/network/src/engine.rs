//! The computation: a file is folded into mergeable per-interval state (byte sums per
//! service, subscriber bitmaps per cell), and KPIs are the top entries of merged state.
//! Hourly unique users are the cardinality of the union of the hour's bitmaps — exact, never
//! a sum of 5-minute counts.

use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;

use roaring::RoaringTreemap;
use sluice_core::jobs::{Rejection, MAX_REJECTIONS};

use crate::parse::{parse_row, Header, Line, Lines, PeriodStart, RowError};

/// Mergeable state of one 5-minute interval (from one file, or merged).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct IntervalState {
    pub rows: u64,
    pub service_bytes: HashMap<i64, u128>,
    pub cell_users: HashMap<i64, RoaringTreemap>,
}

impl IntervalState {
    pub fn merge(&mut self, other: &IntervalState) {
        self.rows += other.rows;
        for (s, b) in &other.service_bytes {
            *self.service_bytes.entry(*s).or_default() += b;
        }
        for (c, users) in &other.cell_users {
            *self.cell_users.entry(*c).or_default() |= users;
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
}

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("{0}")]
    Header(String),
    #[error("read error: {0}")]
    Io(#[from] std::io::Error),
}

/// Folds a whole flow file. `period_end` is the period named by the file (rows of another
/// interval are kept but counted as warnings). `on_bytes` is told how many bytes were read so
/// far, for progress.
pub fn fold_file(
    name: &str,
    reader: impl BufRead,
    period_end: Option<i64>,
    mut on_bytes: impl FnMut(u64),
) -> Result<FileState, FileError> {
    let mut lines = Lines::new(reader);
    let mut state = FileState::default();
    let header = match lines.next_line()? {
        None => return Ok(state), // an empty file is fine
        Some(Line::TooLong) => {
            return Err(FileError::Header("the header line is too long".into()))
        }
        Some(Line::Text(h)) => Header::parse(h).map_err(FileError::Header)?,
    };
    let mut fields = Vec::with_capacity(header.fields());
    let mut current: Option<(PeriodStart, IntervalState)> = None;
    loop {
        let line_no = lines.number + 1;
        let flow = match lines.next_line()? {
            None => break,
            Some(Line::Text(l)) if l.trim_ascii().is_empty() => continue,
            Some(Line::Text(l)) => parse_row(l, &header, &mut fields),
            Some(Line::TooLong) => Err(RowError::LineTooLong),
        };
        let flow = match flow {
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
        // Rows of one file almost always share one interval: keep it out of the map.
        let slot = match &mut current {
            Some((p, s)) if *p == flow.period => s,
            _ => {
                if let Some((p, s)) = current.take() {
                    state.intervals.entry(p).or_default().merge(&s);
                }
                &mut current.insert((flow.period, IntervalState::default())).1
            }
        };
        slot.rows += 1;
        *slot.service_bytes.entry(flow.service_id).or_default() += flow.total_bytes();
        slot.cell_users
            .entry(flow.cell_id)
            .or_default()
            .insert(flow.msisdn);
        if state.accepted % 65_536 == 0 {
            on_bytes(lines.bytes);
        }
    }
    if let Some((p, s)) = current {
        match state.intervals.entry(p) {
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(s);
            }
            std::collections::btree_map::Entry::Occupied(mut o) => o.get_mut().merge(&s),
        }
    }
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
        let s = fold_file("f", data.as_bytes(), Some(1_488_355_500_000), |_| {}).unwrap();
        assert_eq!((s.accepted, s.rejected, s.warnings), (4, 1, 1));
        assert_eq!(s.rejections[0].line, 4);
        assert!(s.rejections[0].reason.contains("expected 7 fields"));
        let first = &s.intervals[&PeriodStart::new(1_488_355_200_000).unwrap()];
        assert_eq!(first.service_bytes[&1], 302);
        assert_eq!(first.cell_users[&1001].len(), 2);
    }

    #[test]
    fn header_errors_reject_the_file_and_empty_files_are_fine() {
        assert!(matches!(
            fold_file("f", &b"a,b\n1,2\n"[..], None, |_| {}),
            Err(FileError::Header(_))
        ));
        let s = fold_file("f", &b""[..], None, |_| {}).unwrap();
        assert_eq!(s.accepted, 0);
    }
}
