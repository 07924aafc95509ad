//! Ingestion of flow files: files are hashed and folded in parallel (CPU), then written one
//! transaction per file with its ledger entry (the single writer), and the KPIs of the touched
//! intervals are recomputed from the stored per-file state.

use std::cell::Cell;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rayon::prelude::*;
use sluice_core::jobs::{FileResult, FileStatus, JobId};
use sluice_core::ledger::{self, Counts, InputMeta, Outcome};
use sluice_core::{Ctx, Database, FileIngest, IngestError, JobHandle, Summary};

use crate::engine::{fold_file, FileError, FileState};
use crate::parse::FlowFileName;
use crate::settings::{NetworkSettings, PeriodFrom};
use crate::{postgres, store};

pub const DOMAIN: &str = "network";

/// Files folded at once: enough to keep every core busy, few enough to bound memory.
const CHUNK: usize = 4;
/// KPIs are brought up to date at least this often during a long job.
const RECOMPUTE_EVERY: Duration = Duration::from_secs(5);

pub struct NetworkIngest;

impl From<store::StoreError> for IngestError {
    fn from(e: store::StoreError) -> Self {
        match e {
            store::StoreError::Db(d) => IngestError::Db(d),
            other => IngestError::Invalid(other.to_string()),
        }
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Hashes the delivered bytes while they are parsed, saving a second pass over the file, and
/// counts them in `read`: the file's own bytes (compressed for `.gz`) are the unit of a job's
/// progress, whose total is the files' sizes.
struct Hashing<'c, R> {
    inner: R,
    hasher: blake3::Hasher,
    read: &'c Cell<u64>,
}

impl<R: Read> Read for Hashing<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.read.set(self.read.get() + n as u64);
        Ok(n)
    }
}

/// A decompressed stream longer than `max_decompressed_bytes`.
#[derive(Debug, thiserror::Error)]
#[error("expands past max_decompressed_bytes = {0} bytes")]
struct TooLarge(u64);

/// Fails with [`TooLarge`] once more than `limit` bytes come out, so a small compressed
/// upload cannot keep a core parsing for ever.
struct Capped<R> {
    inner: R,
    left: u64,
    limit: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            // Exactly `limit` bytes are fine: fail only if there is one more.
            return match self.inner.read(&mut [0u8])? {
                0 => Ok(0),
                _ => Err(std::io::Error::other(TooLarge(self.limit))),
            };
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
    }
}

/// The file's text, decompressed (at most `limit` bytes) when gzip; the line reader does its
/// own buffering.
fn open<'a>(file: &'a mut Hashing<'_, File>, gzip: bool, limit: u64) -> Box<dyn Read + 'a> {
    if gzip {
        Box::new(Capped {
            inner: flate2::read::MultiGzDecoder::new(file),
            left: limit,
            limit,
        })
    } else {
        Box::new(file)
    }
}

enum Folded {
    Ready(InputMeta, FileState),
    Rejected(InputMeta, String),
}

/// Folds one file; `progress` is given the file's bytes as they are read (deltas that sum to
/// its size).
fn fold(
    path: &Path,
    name: &FlowFileName,
    period_from: PeriodFrom,
    max_decompressed: u64,
    progress: &mut dyn FnMut(u64),
) -> Result<Folded, IngestError> {
    let io = |source| IngestError::Io {
        path: path.to_owned(),
        source,
    };
    let size = std::fs::metadata(path).map_err(io)?.len();
    let read = Cell::new(0);
    let mut file = Hashing {
        inner: File::open(path).map_err(io)?,
        hasher: blake3::Hasher::new(),
        read: &read,
    };
    let mut reported = 0u64;
    let mut report = |progress: &mut dyn FnMut(u64)| {
        // Capped at the size the job's total counted, should the file grow meanwhile.
        let now = read.get().min(size);
        progress(now - reported);
        reported = now;
    };
    let shown = file_name(path);
    let result = fold_file(
        &shown,
        open(&mut file, name.gzip, max_decompressed),
        Some(name.period_end),
        period_from,
        // The file's bytes read so far, not the decompressed ones the fold counts.
        |_| report(progress),
    );
    // A file rejected early was not read to its end; its hash is never used.
    if result.is_ok() {
        std::io::copy(&mut file, &mut std::io::sink()).map_err(io)?;
    }
    report(progress);
    progress(size - reported);
    let meta = InputMeta {
        name: shown,
        hash: ledger::ContentHash(file.hasher.finalize().to_hex().to_string()),
        size: read.get().max(size),
    };
    match result {
        Ok(state) => {
            if state.warnings > 0 {
                // The replaced systems disagreed on which one to trust: say so whichever
                // is configured.
                tracing::warn!(
                    file = %meta.name,
                    rows = state.warnings,
                    period_from = period_from.as_str(),
                    "rows of the file belong to another 5-minute period than its name says"
                );
            }
            Ok(Folded::Ready(meta, state))
        }
        Err(FileError::Header(reason)) => Ok(Folded::Rejected(meta, reason)),
        Err(e @ FileError::Misaligned(_)) => Ok(Folded::Rejected(meta, e.to_string())),
        Err(FileError::Io(e)) => {
            let reason = match e.get_ref().and_then(|e| e.downcast_ref::<TooLarge>()) {
                Some(too_large) => format!(
                    "`{}` {too_large} when decompressed: rejected as a whole, none of its rows kept",
                    meta.name
                ),
                None => format!("unreadable: {e}"),
            };
            Ok(Folded::Rejected(meta, reason))
        }
    }
}

/// Stores one folded file's state with its ledger entry in one transaction, without
/// recomputing the KPIs of its intervals (they stay dirty), on either backend.
pub fn store_file(
    db: &Database,
    meta: &InputMeta,
    job: Option<JobId>,
    state: &mut FileState,
) -> Result<Outcome, IngestError> {
    let counts = Counts {
        accepted: state.accepted,
        rejected: state.rejected,
    };
    Ok(match db {
        Database::Sqlite(db) => db.write(|conn| {
            ledger::ingest_atomically(conn, DOMAIN, meta, job, |tx, id, replaced| {
                store::write_file(tx, id, replaced, state)?;
                Ok::<_, IngestError>(counts)
            })
        })?,
        Database::Postgres(pg) => pg.write(|tx| {
            ledger::postgres::ingest_atomically(tx, DOMAIN, meta, job, |tx, id, old| {
                postgres::write_file(tx, id, old, state)?;
                Ok::<_, IngestError>(counts)
            })
        })?,
    })
}

/// Writes one folded file; returns its result line.
fn commit(
    ctx: &Ctx,
    job: &JobHandle,
    meta: &InputMeta,
    state: &mut FileState,
    period_from: PeriodFrom,
) -> Result<FileResult, IngestError> {
    let outcome = store_file(&ctx.db, meta, Some(job.id()), state)?;
    Ok(match outcome {
        Outcome::Done { status, .. } => FileResult {
            name: meta.name.clone(),
            status,
            bytes: meta.size,
            rows_accepted: state.accepted,
            rows_rejected: state.rejected,
            warnings: state.warnings,
            detail: (state.warnings > 0).then(|| {
                format!(
                    "{} row(s) belong to another interval than the file name's period \
                     (counted in {}: period_from = {})",
                    state.warnings,
                    match period_from {
                        PeriodFrom::Rows => "their own interval",
                        PeriodFrom::FileName => "the file name's period",
                    },
                    period_from.as_str()
                )
            }),
        },
        Outcome::Duplicate { previous_name } => FileResult {
            name: meta.name.clone(),
            status: FileStatus::Duplicate,
            bytes: meta.size,
            rows_accepted: 0,
            rows_rejected: 0,
            warnings: 0,
            detail: Some(format!(
                "same content as `{previous_name}`, already ingested"
            )),
        },
    })
}

/// Brings the KPIs of intervals touched by earlier files up to date.
pub fn recompute(ctx: &Ctx) -> Result<usize, IngestError> {
    recompute_before(ctx, None)
}

/// The same for intervals before `before` (an hour boundary) only.
fn recompute_before(ctx: &Ctx, before: Option<i64>) -> Result<usize, IngestError> {
    Ok(match &ctx.db {
        Database::Sqlite(db) => db.write(|c| {
            if store::has_dirty(c)? {
                store::recompute_dirty(c, before)
            } else {
                Ok(0)
            }
        })?,
        Database::Postgres(pg) => {
            if postgres::has_dirty(pg)? {
                postgres::recompute_dirty(pg, before)?
            } else {
                0
            }
        }
    })
}

impl FileIngest for NetworkIngest {
    fn domain(&self) -> &'static str {
        DOMAIN
    }

    fn accepts(&self, path: &Path) -> bool {
        FlowFileName::parse(&file_name(path)).is_some()
    }

    fn ingest(
        &self,
        ctx: &Ctx,
        files: &[PathBuf],
        job: &JobHandle,
    ) -> Result<Summary, IngestError> {
        let max_decompressed = ctx.settings.max_decompressed_bytes;
        let period_from = NetworkSettings::from_settings(&ctx.settings)
            .map_err(|e| IngestError::Invalid(format!("invalid [network] setting: {e}")))?
            .period_from;
        // Left dirty by a crash between a file's transaction and its recomputation.
        recompute(ctx)?;
        let mut summary = Summary::default();
        let mut named = Vec::with_capacity(files.len());
        for path in files {
            let name = file_name(path);
            match FlowFileName::parse(&name) {
                Some(n) => named.push((path.clone(), n)),
                None => summary.add_file(FileResult {
                    name,
                    status: FileStatus::Rejected,
                    bytes: std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
                    rows_accepted: 0,
                    rows_rejected: 0,
                    warnings: 0,
                    detail: Some(
                        "file name must be ipflow_data.ts-<period end, epoch ms>.<part>.(txt|csv)[.gz]"
                            .into(),
                    ),
                }),
            }
        }
        let started = Instant::now();
        let mut last_recompute = Instant::now();
        let mut newest_hour = None;
        // Folding (all cores) runs ahead of committing (the single writer) through a bounded
        // channel, so the cores do not idle while files are written.
        std::thread::scope(|scope| -> Result<(), IngestError> {
            let (tx, rx) = std::sync::mpsc::sync_channel(CHUNK);
            let named = &named;
            scope.spawn(move || {
                for chunk in named.chunks(CHUNK) {
                    let folded: Vec<Result<Folded, IngestError>> = chunk
                        .par_iter()
                        .map(|(p, n)| {
                            fold(p, n, period_from, max_decompressed, &mut |d| {
                                job.add_done(d)
                            })
                        })
                        .collect();
                    for f in folded {
                        if tx.send(f).is_err() {
                            return; // the committer stopped on an error
                        }
                    }
                }
            });
            for f in rx {
                match f? {
                    Folded::Rejected(meta, reason) => summary.add_file(FileResult {
                        name: meta.name,
                        status: FileStatus::Rejected,
                        bytes: meta.size,
                        rows_accepted: 0,
                        rows_rejected: 0,
                        warnings: 0,
                        detail: Some(reason),
                    }),
                    Folded::Ready(meta, mut state) => {
                        if let Some(p) = state.intervals.keys().next_back() {
                            newest_hour = newest_hour.max(Some(p.hour()));
                        }
                        let result = commit(ctx, job, &meta, &mut state, period_from)?;
                        if result.status != FileStatus::Duplicate {
                            summary.rows_rejected += state.rejected;
                            for r in state.rejections {
                                if summary.rejections.len() < sluice_core::jobs::MAX_REJECTIONS {
                                    summary.rejections.push(r);
                                }
                            }
                        }
                        summary.add_file(result);
                    }
                }
                job.set_summary(summary.clone());
                // KPIs of hours before the newest one become visible during a long job;
                // the newest hour may still get files, so it waits for the end.
                if last_recompute.elapsed() >= RECOMPUTE_EVERY {
                    recompute_before(ctx, newest_hour)?;
                    last_recompute = Instant::now();
                }
            }
            Ok(())
        })?;
        let intervals = recompute(ctx)?;
        let secs = started.elapsed().as_secs_f64();
        summary
            .extra
            .insert("intervals_recomputed".into(), intervals.into());
        if secs > 0.0 {
            summary.extra.insert(
                "rows_per_second".into(),
                ((summary.rows_accepted as f64 / secs).round() as u64).into(),
            );
        }
        Ok(summary)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::engine::{top_k, DEDUP_FROM};

    const HEADER: &[u8] = b"interval_start_timestamp,interval_end_timestamp,msisdn,bytes_uplink,bytes_downlink,service_id,cell_id\n";
    const ROW: &[u8] = b"1488355200000,1488355500000,31619690654,100,200,1,1001\n";
    const NAME: &str = "ipflow_data.ts-1488355500000.1.txt.gz";
    /// Rows in one gzip member: about 1 MiB of text.
    const BLOCK_ROWS: usize = 1 << 20 >> 6;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(data).unwrap();
        gz.finish().unwrap()
    }

    /// A gzip of the header and `ROW` repeated `blocks × BLOCK_ROWS` times, written as
    /// concatenated members (valid gzip, as `cat a.gz b.gz` is) so that building hundreds of
    /// MB of text costs one compression of 1 MiB. Returns its path and its decompressed size.
    fn repeated_gz(dir: &Path, blocks: usize) -> (PathBuf, u64) {
        let block = ROW.repeat(BLOCK_ROWS);
        let path = dir.join(NAME);
        let mut out = std::io::BufWriter::new(File::create(&path).unwrap());
        out.write_all(&gzip(&[HEADER, &block].concat())).unwrap();
        let member = gzip(&block);
        for _ in 1..blocks {
            out.write_all(&member).unwrap();
        }
        out.flush().unwrap();
        let plain = HEADER.len() + blocks * block.len();
        (path, plain as u64)
    }

    fn leb128(mut v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        while v >= 0x80 {
            out.push(v as u8 | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
        out
    }

    fn fold_at(path: &Path, limit: u64, progress: &mut dyn FnMut(u64)) -> Folded {
        let name = FlowFileName::parse(NAME).unwrap();
        fold(path, &name, PeriodFrom::Rows, limit, progress).unwrap()
    }

    #[test]
    fn one_row_repeated_folds_in_constant_state() {
        let dir = tempfile::tempdir().unwrap();
        let blocks = 64; // 64 MiB of text, 1 M rows
        let (path, plain) = repeated_gz(dir.path(), blocks);
        let Folded::Ready(meta, state) = fold_at(&path, plain, &mut |_| {}) else {
            panic!("rejected");
        };
        let rows = (blocks * BLOCK_ROWS) as u64;
        assert_eq!((state.accepted, state.rejected), (rows, 0));
        assert_eq!(meta.size, std::fs::metadata(&path).unwrap().len());
        let s = &state.intervals[&crate::parse::PeriodStart::new(1_488_355_200_000).unwrap()];
        assert_eq!(s.rows, rows);
        assert_eq!(
            top_k(s.service_bytes.clone(), 3),
            vec![(1, u128::from(rows) * 300)]
        );
        // Cell 1001 (delta 1001, zigzag 2002), one subscriber.
        let mut cells = vec![0xD2, 0x0F, 1];
        cells.extend(leb128(31_619_690_654));
        assert_eq!(s.cells, cells);
        // Buffering every row until the end of the file held one slot per row (1 M here).
        assert!(
            state.peak_cell_bytes <= DEDUP_FROM * 8,
            "{} bytes for one distinct subscriber",
            state.peak_cell_bytes
        );
    }

    #[test]
    fn progress_of_a_gzip_counts_its_compressed_bytes() {
        let dir = tempfile::tempdir().unwrap();
        // The decoder reads the file 32 KiB at a time: enough members for several reads.
        let (path, plain) = repeated_gz(dir.path(), 64);
        let size = std::fs::metadata(&path).unwrap().len();
        let mut done = Vec::new();
        let mut sum = 0;
        let folded = fold_at(&path, plain, &mut |d| {
            sum += d;
            done.push(sum);
        });
        assert!(matches!(folded, Folded::Ready(..)));
        assert_eq!(sum, size, "progress ends at the compressed size");
        // Counting decompressed bytes capped at the file size, the first report was already
        // 100 % (the text is ~400 times the file); counted in compressed bytes, progress rises
        // read by read (32 KiB each) to the end.
        assert!(done[0] < size / 2, "{done:?} of {size}");
        let mut between: Vec<u64> = done.iter().copied().filter(|d| *d < size).collect();
        between.dedup();
        assert!(between.len() >= 4, "{done:?} of {size}");
    }

    #[test]
    fn a_gzip_expanding_past_the_limit_is_rejected_naming_file_and_limit() {
        let dir = tempfile::tempdir().unwrap();
        let (path, plain) = repeated_gz(dir.path(), 4);
        let size = std::fs::metadata(&path).unwrap().len();
        let mut sum = 0;
        match fold_at(&path, plain - 1, &mut |d| sum += d) {
            Folded::Rejected(meta, reason) => {
                assert_eq!(meta.name, NAME);
                assert!(reason.contains(NAME), "{reason}");
                assert!(
                    reason.contains(&format!("max_decompressed_bytes = {}", plain - 1)),
                    "{reason}"
                );
            }
            Folded::Ready(..) => panic!("a file past the limit was accepted"),
        }
        assert_eq!(
            sum, size,
            "a rejected file still completes its share of progress"
        );
        // Exactly the limit is within it.
        assert!(matches!(
            fold_at(&path, plain, &mut |_| {}),
            Folded::Ready(..)
        ));
    }
}
