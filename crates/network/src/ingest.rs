//! Ingestion of flow files: files are hashed and folded in parallel (CPU), then written one
//! transaction per file with its ledger entry (the single writer), and the KPIs of the touched
//! intervals are recomputed from the stored per-file state.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rayon::prelude::*;
use sluice_core::jobs::{FileResult, FileStatus};
use sluice_core::ledger::{self, Counts, InputMeta, Outcome};
use sluice_core::{Ctx, FileIngest, IngestError, JobHandle, Summary};

use crate::engine::{fold_file, FileError, FileState};
use crate::parse::FlowFileName;
use crate::settings::{NetworkSettings, PeriodFrom};
use crate::store;

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

/// Hashes the delivered bytes while they are parsed, saving a second pass over the file.
struct Hashing<R> {
    inner: R,
    hasher: blake3::Hasher,
    size: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
}

/// The file's text, decompressed when gzip (the line reader does its own buffering).
fn open<'a>(file: &'a mut Hashing<File>, gzip: bool) -> Box<dyn Read + 'a> {
    if gzip {
        Box::new(flate2::read::MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    }
}

enum Folded {
    Ready(InputMeta, FileState),
    Rejected(InputMeta, String),
}

fn fold(
    path: &Path,
    name: &FlowFileName,
    period_from: PeriodFrom,
    job: &JobHandle,
) -> Result<Folded, IngestError> {
    let io = |source| IngestError::Io {
        path: path.to_owned(),
        source,
    };
    let size = std::fs::metadata(path).map_err(io)?.len();
    let mut file = Hashing {
        inner: File::open(path).map_err(io)?,
        hasher: blake3::Hasher::new(),
        size: 0,
    };
    let mut reported = 0u64;
    let result = fold_file(
        &file_name(path),
        open(&mut file, name.gzip),
        Some(name.period_end),
        period_from,
        |bytes| {
            // Compressed files report decompressed bytes: cap at the file size.
            let now = bytes.min(size);
            job.add_done(now - reported);
            reported = now;
        },
    );
    job.add_done(size.saturating_sub(reported));
    // A file rejected early was not read to its end; its hash is never used.
    if result.is_ok() {
        std::io::copy(&mut file, &mut std::io::sink()).map_err(io)?;
    }
    let meta = InputMeta {
        name: file_name(path),
        hash: ledger::ContentHash(file.hasher.finalize().to_hex().to_string()),
        size: file.size.max(size),
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
        Err(FileError::Io(e)) => Ok(Folded::Rejected(meta, format!("unreadable: {e}"))),
    }
}

/// Writes one folded file; returns its result line.
fn commit(
    ctx: &Ctx,
    job: &JobHandle,
    meta: &InputMeta,
    state: &FileState,
    period_from: PeriodFrom,
) -> Result<FileResult, IngestError> {
    let outcome = ctx.db.write(|conn| {
        ledger::ingest_atomically(conn, DOMAIN, meta, Some(job.id()), |tx, id, replaced| {
            store::write_file(tx, id, replaced, state)?;
            Ok::<_, IngestError>(Counts {
                accepted: state.accepted,
                rejected: state.rejected,
            })
        })
    })?;
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
    Ok(ctx.db.write(|c| {
        if store::has_dirty(c)? {
            store::recompute_dirty(c, before)
        } else {
            Ok(0)
        }
    })?)
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
                        .map(|(p, n)| fold(p, n, period_from, job))
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
                    Folded::Ready(meta, state) => {
                        if let Some(p) = state.intervals.keys().next_back() {
                            newest_hour = newest_hour.max(Some(p.hour()));
                        }
                        let result = commit(ctx, job, &meta, &state, period_from)?;
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
