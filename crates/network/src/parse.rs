//! Flow files → typed flows, with a reason for every rejected row.
//!
//! The format is fixed and all-integer, so rows are split and parsed from bytes without
//! allocating per field: this is the hot path of ingestion.

use std::fmt;
use std::io::{self, Read};

/// Length of every interval, in milliseconds.
pub const PERIOD_MS: i64 = 300_000;
/// Length of an hour, in milliseconds.
pub const HOUR_MS: i64 = 3_600_000;
/// Longer lines are rejected (and skipped without being buffered).
pub const MAX_LINE: usize = 64 * 1024;

/// Start of a 5-minute interval, epoch milliseconds UTC, aligned to 5 minutes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeriodStart(i64);

impl PeriodStart {
    /// The aligned interval starting at `ms`, if `ms` is on a 5-minute boundary.
    pub fn new(ms: i64) -> Option<PeriodStart> {
        (ms.rem_euclid(PERIOD_MS) == 0).then_some(PeriodStart(ms))
    }
    pub fn millis(self) -> i64 {
        self.0
    }
    pub fn end(self) -> i64 {
        self.0 + PERIOD_MS
    }
    /// Start of the UTC hour holding this interval.
    pub fn hour(self) -> i64 {
        self.0 - self.0.rem_euclid(HOUR_MS)
    }
}

/// A file name `ipflow_data.ts-<epoch_ms of the period END>.<part>.(txt|csv)[.gz]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowFileName {
    pub period_end: i64,
    pub part: u32,
    pub gzip: bool,
}

impl FlowFileName {
    pub fn parse(name: &str) -> Option<FlowFileName> {
        let rest = name.strip_prefix("ipflow_data.ts-")?;
        let (rest, gzip) = match rest.strip_suffix(".gz") {
            Some(r) => (r, true),
            None => (rest, false),
        };
        let rest = rest
            .strip_suffix(".txt")
            .or_else(|| rest.strip_suffix(".csv"))?;
        let (ts, part) = rest.split_once('.')?;
        let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(ts) || !all_digits(part) {
            return None;
        }
        Some(FlowFileName {
            period_end: ts.parse().ok()?,
            part: part.parse().ok()?,
            gzip,
        })
    }
}

/// One accepted flow row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flow {
    pub period: PeriodStart,
    pub msisdn: u64,
    pub bytes_uplink: u64,
    pub bytes_downlink: u64,
    pub service_id: i64,
    pub cell_id: i64,
}

impl Flow {
    pub fn total_bytes(&self) -> u128 {
        u128::from(self.bytes_uplink) + u128::from(self.bytes_downlink)
    }
}

/// The columns, in the order of [`Header::positions`].
pub const COLUMNS: [&str; 7] = [
    "interval_start_timestamp",
    "interval_end_timestamp",
    "msisdn",
    "bytes_uplink",
    "bytes_downlink",
    "service_id",
    "cell_id",
];

/// Where each required column is, by header name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    positions: [usize; 7],
    fields: usize,
}

impl Header {
    /// Parses the header line (UTF-8 BOM, CR and spaces around names tolerated).
    pub fn parse(line: &[u8]) -> Result<Header, String> {
        let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
        let text = std::str::from_utf8(line)
            .map_err(|_| "the header line is not valid UTF-8".to_owned())?;
        let names: Vec<String> = text
            .trim_end_matches(['\r', '\n'])
            .split(',')
            .map(|n| n.trim().to_ascii_lowercase())
            .collect();
        let mut positions = [usize::MAX; 7];
        for (i, name) in names.iter().enumerate() {
            let canonical = match name.as_str() {
                "uplink_bytes" => "bytes_uplink",
                "downlink_bytes" => "bytes_downlink",
                other => other,
            };
            if let Some(c) = COLUMNS.iter().position(|c| *c == canonical) {
                if positions[c] != usize::MAX {
                    return Err(format!("the header names column `{canonical}` twice"));
                }
                positions[c] = i;
            }
        }
        let missing: Vec<&str> = COLUMNS
            .iter()
            .zip(positions)
            .filter(|(_, p)| *p == usize::MAX)
            .map(|(c, _)| *c)
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "the header lacks required column(s) {} (found: {})",
                missing.join(", "),
                text.trim()
            ));
        }
        Ok(Header {
            positions,
            fields: names.len(),
        })
    }

    pub fn fields(&self) -> usize {
        self.fields
    }
}

/// Why a row was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RowError {
    FieldCount { got: usize, want: usize },
    NotInteger { column: &'static str, value: String },
    NegativeBytes { column: &'static str },
    IntervalLength { start: i64, end: i64 },
    Misaligned { start: i64 },
    LineTooLong,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RowError::FieldCount { got, want } => {
                write!(f, "expected {want} fields, found {got}")
            }
            RowError::NotInteger { column, value } => {
                write!(f, "{column} is not an integer: `{value}`")
            }
            RowError::NegativeBytes { column } => write!(f, "{column} is negative"),
            RowError::IntervalLength { start, end } => write!(
                f,
                "interval {start}..{end} is {} ms long, expected 300000",
                end.saturating_sub(*start)
            ),
            RowError::Misaligned { start } => {
                write!(f, "interval start {start} is not on a 5-minute boundary")
            }
            RowError::LineTooLong => write!(f, "line longer than {MAX_LINE} bytes"),
        }
    }
}

fn shown(raw: &[u8]) -> String {
    let s = String::from_utf8_lossy(raw);
    if s.chars().count() > 40 {
        format!("{}…", s.chars().take(40).collect::<String>())
    } else {
        s.into_owned()
    }
}

fn trim(b: &[u8]) -> &[u8] {
    b.trim_ascii()
}

/// Digits only, at most `max_digits`, without overflow: the shared core of the integer parsers.
fn digits(digits: &[u8], max_digits: usize) -> Option<u64> {
    if digits.is_empty() || digits.len() > max_digits {
        return None;
    }
    digits.iter().try_fold(0u64, |v, &c| {
        let d = c.wrapping_sub(b'0');
        (d <= 9).then_some(())?;
        v.checked_mul(10)?.checked_add(u64::from(d))
    })
}

fn parse_u64(raw: &[u8], column: &'static str) -> Result<u64, RowError> {
    let b = trim(raw);
    if let Some(rest) = b.strip_prefix(b"-") {
        if !rest.is_empty() && rest.iter().all(u8::is_ascii_digit) {
            return Err(RowError::NegativeBytes { column });
        }
    }
    digits(b.strip_prefix(b"+").unwrap_or(b), 20).ok_or_else(|| not_integer(raw, column))
}

fn parse_i64(raw: &[u8], column: &'static str) -> Result<i64, RowError> {
    let b = trim(raw);
    let (neg, rest) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        Some(b'+') => (false, &b[1..]),
        _ => (false, b),
    };
    let v = digits(rest, 19)
        .and_then(|v| i64::try_from(v).ok())
        .ok_or_else(|| not_integer(raw, column))?;
    Ok(if neg { -v } else { v })
}

fn not_integer(raw: &[u8], column: &'static str) -> RowError {
    RowError::NotInteger {
        column,
        value: shown(raw),
    }
}

/// Parses one data line (without its line break) against the header. `fields` is a reused
/// scratch buffer of field bounds.
pub fn parse_row(
    line: &[u8],
    header: &Header,
    fields: &mut Vec<(usize, usize)>,
) -> Result<Flow, RowError> {
    fields.clear();
    let mut start = 0;
    for comma in memchr::memchr_iter(b',', line) {
        fields.push((start, comma));
        start = comma + 1;
    }
    fields.push((start, line.len()));
    if fields.len() != header.fields {
        return Err(RowError::FieldCount {
            got: fields.len(),
            want: header.fields,
        });
    }
    let p = &header.positions;
    let field = |c: usize| {
        let (a, b) = fields[p[c]];
        &line[a..b]
    };
    let start = parse_i64(field(0), COLUMNS[0])?;
    let end = parse_i64(field(1), COLUMNS[1])?;
    let msisdn = parse_u64(field(2), COLUMNS[2])?;
    let up = parse_u64(field(3), COLUMNS[3])?;
    let down = parse_u64(field(4), COLUMNS[4])?;
    let service_id = parse_i64(field(5), COLUMNS[5])?;
    let cell_id = parse_i64(field(6), COLUMNS[6])?;
    if end.checked_sub(start) != Some(PERIOD_MS) {
        return Err(RowError::IntervalLength { start, end });
    }
    let period = PeriodStart::new(start).ok_or(RowError::Misaligned { start })?;
    Ok(Flow {
        period,
        msisdn,
        bytes_uplink: up,
        bytes_downlink: down,
        service_id,
        cell_id,
    })
}

/// One line from [`Lines`].
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    Text(&'a [u8]),
    /// Longer than [`MAX_LINE`]; its bytes were skipped.
    TooLong,
}

/// Splits a byte stream into lines (LF or CRLF, last line with or without a break) without
/// copying them: lines are slices of one reusable block, and a line longer than
/// [`MAX_LINE`] is skipped without being buffered.
pub struct Lines<R> {
    inner: R,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    eof: bool,
    /// 1-based number of the line last returned.
    pub number: u64,
    /// Bytes consumed so far.
    pub bytes: u64,
}

const BLOCK: usize = 256 * 1024;

impl<R: Read> Lines<R> {
    pub fn new(inner: R) -> Self {
        Lines {
            inner,
            buf: vec![0; BLOCK].into_boxed_slice(),
            start: 0,
            end: 0,
            eof: false,
            number: 0,
            bytes: 0,
        }
    }

    /// Reads more input after the unconsumed part, moved to the front. False at the end.
    fn refill(&mut self) -> io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        loop {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    pub fn next_line(&mut self) -> io::Result<Option<Line<'_>>> {
        let mut scanned = 0; // bytes after `start` known to hold no line break
        loop {
            if let Some(i) = memchr::memchr(b'\n', &self.buf[self.start + scanned..self.end]) {
                let from = self.start;
                let to = from + scanned + i;
                self.start = to + 1;
                self.bytes += (to + 1 - from) as u64;
                self.number += 1;
                if to - from > MAX_LINE {
                    return Ok(Some(Line::TooLong));
                }
                let line = &self.buf[from..to];
                return Ok(Some(Line::Text(line.strip_suffix(b"\r").unwrap_or(line))));
            }
            scanned = self.end - self.start;
            if scanned > MAX_LINE {
                return self.skip_long_line().map(Some);
            }
            if !self.refill()? {
                if self.start == self.end {
                    return Ok(None);
                }
                // The last line, without a line break.
                let (from, to) = (self.start, self.end);
                self.start = self.end;
                self.bytes += (to - from) as u64;
                self.number += 1;
                let line = &self.buf[from..to];
                return Ok(Some(Line::Text(line.strip_suffix(b"\r").unwrap_or(line))));
            }
        }
    }

    /// Discards the rest of a too-long line, through its line break.
    fn skip_long_line(&mut self) -> io::Result<Line<'static>> {
        self.number += 1;
        loop {
            if let Some(i) = memchr::memchr(b'\n', &self.buf[self.start..self.end]) {
                self.bytes += (i + 1) as u64;
                self.start += i + 1;
                return Ok(Line::TooLong);
            }
            self.bytes += (self.end - self.start) as u64;
            self.start = self.end;
            if !self.refill()? {
                return Ok(Line::TooLong);
            }
        }
    }
}

/// The common case of [`parse_row`] in one pass over the bytes: plain digits only (no signs,
/// no spaces, at most 18 digits a field, so no overflow check). `None` sends the row to
/// [`parse_row`], which accepts the rarer valid forms and names the error of invalid ones.
#[inline]
pub fn parse_row_fast(line: &[u8], header: &Header) -> Option<Flow> {
    const MAX_FIELDS: usize = 16;
    if header.fields > MAX_FIELDS {
        return None;
    }
    let mut vals = [0u64; MAX_FIELDS];
    let mut field = 0;
    let mut acc = 0u64;
    let mut digits = 0u32;
    for &b in line {
        let d = b.wrapping_sub(b'0');
        if d < 10 {
            acc = acc * 10 + u64::from(d);
            digits += 1;
            if digits > 18 {
                return None;
            }
        } else if b == b',' && digits > 0 && field + 1 < header.fields {
            vals[field] = acc;
            field += 1;
            acc = 0;
            digits = 0;
        } else {
            return None;
        }
    }
    if digits == 0 || field + 1 != header.fields {
        return None;
    }
    vals[field] = acc;
    let p = &header.positions;
    // At most 18 digits: every value fits an i64.
    let start = vals[p[0]] as i64;
    let end = vals[p[1]] as i64;
    if end - start != PERIOD_MS {
        return None;
    }
    Some(Flow {
        period: PeriodStart::new(start)?,
        msisdn: vals[p[2]],
        bytes_uplink: vals[p[3]],
        bytes_downlink: vals[p[4]],
        service_id: vals[p[5]] as i64,
        cell_id: vals[p[6]] as i64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header::parse(b"interval_start_timestamp,interval_end_timestamp,msisdn,bytes_uplink,bytes_downlink,service_id,cell_id").unwrap()
    }

    fn row(line: &str) -> Result<Flow, RowError> {
        let mut f = Vec::new();
        parse_row(line.as_bytes(), &header(), &mut f)
    }

    #[test]
    fn file_names() {
        assert_eq!(
            FlowFileName::parse("ipflow_data.ts-1488355500000.2.txt"),
            Some(FlowFileName {
                period_end: 1_488_355_500_000,
                part: 2,
                gzip: false
            })
        );
        assert!(
            FlowFileName::parse("ipflow_data.ts-1488355500000.1.csv.gz")
                .unwrap()
                .gzip
        );
        for bad in [
            "x.csv",
            "ipflow_data.ts-12.txt",
            "ipflow_data.ts-a.1.txt",
            "ipflow_data.ts-1.1.json",
        ] {
            assert_eq!(FlowFileName::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn header_by_name_with_aliases_and_any_order() {
        let h = Header::parse(b"\xEF\xBB\xBFcell_id,service_id,downlink_bytes,uplink_bytes,msisdn,interval_end_timestamp,interval_start_timestamp\r").unwrap();
        let mut f = Vec::new();
        let flow = parse_row(
            b"1001,1,200,100,31619690654,1488355500000,1488355200000",
            &h,
            &mut f,
        )
        .unwrap();
        assert_eq!(flow.cell_id, 1001);
        assert_eq!(flow.bytes_uplink, 100);
        assert_eq!(flow.bytes_downlink, 200);
        let err = Header::parse(b"a,b,msisdn").unwrap_err();
        assert!(
            err.contains("interval_start_timestamp") && err.contains("cell_id"),
            "{err}"
        );
    }

    #[test]
    fn fast_path_agrees_with_the_full_parser() {
        let h = header();
        let mut f = Vec::new();
        for line in [
            "1488355200000,1488355500000,31619690654,100,200,1,1001",
            "1488355200000,1488355500000,18446744073709551615,1,1,1,1",
            "1488355200000,1488355500000, 316,1,2,1,1001",
            "1488355200000,1488355500000,316,+1,2,1,1001",
            "1488355200000,1488355500000,316,-1,2,1,1001",
            "1488355200000,1488355500000,316,1,2,1",
            "1488355200000,1488355500000,316,1,2,1,1001,",
            "1488355200001,1488355500001,316,1,2,1,1001",
            "1488355200000,1488355400000,316,1,2,1,1001",
            ",1488355500000,316,1,2,1,1001",
            "",
        ] {
            let slow = parse_row(line.as_bytes(), &h, &mut f);
            // Where the fast path declines, the full parser decides.
            if let Some(fast) = parse_row_fast(line.as_bytes(), &h) {
                assert_eq!(Ok(fast), slow, "{line}");
            }
        }
        assert!(parse_row_fast(
            b"1488355200000,1488355500000,31619690654,100,200,1,1001",
            &h
        )
        .is_some());
    }

    #[test]
    fn row_reasons() {
        let ok = row("1488355200000,1488355500000,31619690654,100,200,1,1001").unwrap();
        assert_eq!(ok.period.millis(), 1_488_355_200_000);
        assert_eq!(ok.total_bytes(), 300);
        assert_eq!(
            row("1488355200000,1488355500000,316,100,200,1").unwrap_err(),
            RowError::FieldCount { got: 6, want: 7 }
        );
        assert!(matches!(
            row("1488355200000,1488355500000,31x,100,200,1,1001").unwrap_err(),
            RowError::NotInteger {
                column: "msisdn",
                ..
            }
        ));
        assert_eq!(
            row("1488355200000,1488355500000,316,-5,200,1,1001").unwrap_err(),
            RowError::NegativeBytes {
                column: "bytes_uplink"
            }
        );
        assert!(matches!(
            row("1488355200000,1488355400000,316,5,200,1,1001").unwrap_err(),
            RowError::IntervalLength { .. }
        ));
        assert!(matches!(
            row("1488355200001,1488355500001,316,5,200,1,1001").unwrap_err(),
            RowError::Misaligned { .. }
        ));
        assert!(matches!(
            row("1488355200000,1488355500000,99999999999999999999999,5,200,1,1001").unwrap_err(),
            RowError::NotInteger { .. }
        ));
        // 64-bit msisdn and byte counters.
        let big =
            row("1488355200000,1488355500000,18446744073709551615,18446744073709551615,1,1,1")
                .unwrap();
        assert_eq!(big.msisdn, u64::MAX);
        assert_eq!(big.total_bytes(), u128::from(u64::MAX) + 1);
    }

    #[test]
    fn lines_handle_crlf_missing_final_break_and_huge_lines() {
        let mut data = b"a\r\nb\n".to_vec();
        data.extend(std::iter::repeat_n(b'x', MAX_LINE + 10));
        data.extend(b"\nc");
        let mut lines = Lines::new(&data[..]);
        assert_eq!(lines.next_line().unwrap(), Some(Line::Text(b"a")));
        assert_eq!(lines.next_line().unwrap(), Some(Line::Text(b"b")));
        assert_eq!(lines.next_line().unwrap(), Some(Line::TooLong));
        assert_eq!(lines.next_line().unwrap(), Some(Line::Text(b"c")));
        assert_eq!(lines.number, 4);
        assert_eq!(lines.next_line().unwrap(), None);
    }
}
