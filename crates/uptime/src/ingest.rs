//! File ingestion: each CSV is recognised by its header (polls, hours or zones), parsed row
//! by row and written in one transaction with its ledger entry. Bad rows are rejected with
//! file, line and reason while the rest lands.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use csv::ByteRecord;
use sluice_core::jobs::{FileResult, FileStatus, MAX_REJECTIONS};
use sluice_core::ledger::{self, ContentHash, Counts, InputMeta, Outcome};
use sluice_core::{Ctx, FileIngest, IngestError, JobHandle, Summary};

use crate::parse::{Layout, Row};
use crate::store::FileWriter;
use crate::DOMAIN;

/// Progress is published every this many rows.
const PROGRESS_ROWS: u64 = 65_536;

/// The uptime domain's inbox, uploads and CLI ingestion.
pub struct UptimeIngest;

impl FileIngest for UptimeIngest {
    fn domain(&self) -> &'static str {
        DOMAIN
    }

    /// Any `.csv`: the header tells the three sources apart.
    fn accepts(&self, path: &Path) -> bool {
        path.extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
    }

    fn ingest(
        &self,
        ctx: &Ctx,
        files: &[PathBuf],
        job: &JobHandle,
    ) -> Result<Summary, IngestError> {
        let mut summary = Summary::default();
        let mut done = 0;
        for path in files {
            let io = |source| IngestError::Io {
                path: path.clone(),
                source,
            };
            let meta = InputMeta::of_file(path).map_err(io)?;
            let file = File::open(path).map_err(io)?;
            ingest_one(ctx, &meta, file, job, done, &mut summary)?;
            done += meta.size;
            job.set_done(done);
            job.set_summary(summary.clone());
        }
        Ok(summary)
    }

    /// Spools the stream to disk while hashing it (the ledger needs the hash before the
    /// first write), then ingests the spooled copy under `name`.
    fn ingest_reader(
        &self,
        ctx: &Ctx,
        name: &str,
        reader: &mut (dyn std::io::BufRead + Send),
        job: &JobHandle,
    ) -> Result<Summary, IngestError> {
        let dir = ctx.settings.spool_dir(DOMAIN);
        let io = |source| IngestError::Io {
            path: dir.clone(),
            source,
        };
        std::fs::create_dir_all(&dir).map_err(io)?;
        let mut spool = tempfile_in(&dir).map_err(io)?;
        let mut hasher = blake3::Hasher::new();
        let mut buf = vec![0u8; 1 << 16];
        let mut size = 0u64;
        loop {
            let n = reader.read(&mut buf).map_err(io)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            spool.1.write_all(&buf[..n]).map_err(io)?;
            size += n as u64;
        }
        spool.1.flush().map_err(io)?;
        let meta = InputMeta {
            name: name.to_owned(),
            hash: ContentHash(hasher.finalize().to_hex().to_string()),
            size,
        };
        let file = File::open(&spool.0).map_err(io)?;
        let mut summary = Summary::default();
        let result = ingest_one(ctx, &meta, file, job, 0, &mut summary);
        let _ = std::fs::remove_file(&spool.0);
        result.map(|_| summary)
    }
}

/// A fresh file in `dir` (removed by the caller).
fn tempfile_in(dir: &Path) -> std::io::Result<(PathBuf, File)> {
    let path = dir.join(format!("stdin-{}.csv.part", uuid::Uuid::new_v4()));
    let file = File::create(&path)?;
    Ok((path, file))
}

fn kind_name(layout: Layout) -> &'static str {
    match layout {
        Layout::Polls { .. } => "status polls",
        Layout::Hours { .. } => "business hours",
        Layout::Zones { .. } => "time zones",
    }
}

/// Ingests one input atomically; a file without a usable header is rejected as a whole.
fn ingest_one(
    ctx: &Ctx,
    meta: &InputMeta,
    input: impl Read,
    job: &JobHandle,
    done_before: u64,
    summary: &mut Summary,
) -> Result<(), IngestError> {
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(BufReader::with_capacity(1 << 20, input));
    let file_result = |status, accepted, rejected, detail: String| FileResult {
        name: meta.name.clone(),
        status,
        bytes: meta.size,
        rows_accepted: accepted,
        rows_rejected: rejected,
        warnings: 0,
        detail: Some(detail),
    };
    let layout = match rdr.byte_headers() {
        Ok(h) => Layout::detect(h),
        Err(e) => Err(format!("unreadable header: {e}")),
    };
    let layout = match layout {
        Ok(l) => l,
        Err(reason) => {
            summary.add_file(file_result(FileStatus::Rejected, 0, 0, reason));
            return Ok(());
        }
    };
    let mut rejections: Vec<(u64, String)> = Vec::new();
    let outcome = ctx.db.write(|conn| {
        ledger::ingest_atomically(
            conn,
            crate::DOMAIN,
            meta,
            Some(job.id()),
            |tx, file, replaced| {
                rejections.clear();
                let mut w = FileWriter::new(tx, file, replaced)?;
                let mut counts = Counts::default();
                let mut rec = ByteRecord::new();
                while read_record(&mut rdr, &mut rec, &meta.name)? {
                    match layout.parse(&rec) {
                        Ok(Row::Poll(p)) => w.poll(&p)?,
                        Ok(Row::Hours(h)) => w.hours(&h)?,
                        Ok(Row::Zone(z)) => w.zone(&z)?,
                        Err(reason) => {
                            counts.rejected += 1;
                            if rejections.len() < MAX_REJECTIONS {
                                let line = rec.position().map_or(0, |p| p.line());
                                rejections.push((line, reason));
                            }
                            continue;
                        }
                    }
                    counts.accepted += 1;
                    if counts.accepted % PROGRESS_ROWS == 0 {
                        job.set_done(done_before + rdr.position().byte());
                    }
                }
                w.finish()?;
                Ok::<_, IngestError>(counts)
            },
        )
    })?;
    let detail = kind_name(layout).to_owned();
    match outcome {
        Outcome::Duplicate { previous_name } => summary.add_file(file_result(
            FileStatus::Duplicate,
            0,
            0,
            format!("same content as {previous_name}, already ingested"),
        )),
        Outcome::Done { status, counts, .. } => {
            for (line, reason) in rejections.drain(..) {
                summary.reject(&meta.name, line, reason);
            }
            let listed = counts.rejected.min(MAX_REJECTIONS as u64);
            summary.rows_rejected += counts.rejected - listed;
            summary.add_file(file_result(
                status,
                counts.accepted,
                counts.rejected,
                detail,
            ));
        }
    }
    Ok(())
}

/// The next record; a broken line is an error of the file, not of a row.
fn read_record<R: Read>(
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
