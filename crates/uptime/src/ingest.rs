//! File ingestion: each CSV is recognised by its header (polls, hours or zones), parsed row
//! by row and written in one transaction with its ledger entry. Bad rows are rejected with
//! file, line and reason while the rest lands.

use std::fs::File;
use std::io::{BufReader, Cursor, Read, Write};
use std::path::{Path, PathBuf};

use csv::ByteRecord;
use sluice_core::jobs::{FileResult, FileStatus, MAX_REJECTIONS};
use sluice_core::ledger::{self, ContentHash, Counts, InputMeta, Outcome};
use sluice_core::{Ctx, Database, FileIngest, IngestError, JobHandle, Summary};

use crate::parse::{Layout, PollColumns, Row};
use crate::polls::{self, PollSink};
use crate::store::{FileWriter, Writer, BATCH_POLLS};
use crate::DOMAIN;

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

/// How a file is read: polls whose header the splitter found go to the fast reader, every
/// other file to the csv reader.
enum Source<R: Read> {
    Polls {
        cols: PollColumns,
        first: Vec<u8>,
        head: polls::Header,
        input: BufReader<R>,
    },
    Csv {
        layout: Layout,
        rdr: csv::Reader<std::io::Chain<Cursor<Vec<u8>>, BufReader<R>>>,
    },
}

/// The file's counts and first rejections, and the writer that polls go to.
struct Sink<'a> {
    w: &'a mut dyn Writer,
    counts: Counts,
    rejections: &'a mut Vec<(u64, String)>,
    job: &'a JobHandle,
    done_before: u64,
}

impl PollSink for Sink<'_> {
    fn slot(&mut self, store: &str) -> Result<u32, IngestError> {
        Ok(self.w.poll_slot(store)?)
    }

    fn push(&mut self, slot: u32, value: i64) {
        self.w.poll(slot, value);
        self.counts.accepted += 1;
    }

    fn reject(&mut self, line: u64, reason: String) {
        self.counts.rejected += 1;
        if self.rejections.len() < MAX_REJECTIONS {
            self.rejections.push((line, reason));
        }
    }

    fn unlisted(&mut self, rejected: u64) {
        self.counts.rejected += rejected;
    }

    fn progress(&mut self, bytes: u64) -> Result<(), IngestError> {
        if self.w.batched() >= BATCH_POLLS {
            self.w.write_polls()?;
        }
        self.job.set_done(self.done_before + bytes);
        Ok(())
    }
}

/// Ingests one input atomically; a file without a usable header is rejected as a whole.
fn ingest_one(
    ctx: &Ctx,
    meta: &InputMeta,
    input: impl Read + Send,
    job: &JobHandle,
    done_before: u64,
    summary: &mut Summary,
) -> Result<(), IngestError> {
    let mut input = BufReader::with_capacity(1 << 20, input);
    let mut first = Vec::new();
    polls::read_chunk(&mut input, polls::CHUNK, &mut first).map_err(|source| IngestError::Io {
        path: PathBuf::from(&meta.name),
        source,
    })?;
    let file_result = |status, accepted, rejected, detail: String| FileResult {
        name: meta.name.clone(),
        status,
        bytes: meta.size,
        rows_accepted: accepted,
        rows_rejected: rejected,
        warnings: 0,
        detail: Some(detail),
    };
    let fast = polls::header(&first)
        .and_then(|head| Some((Layout::detect(&head.record).ok()?.polls()?, head)));
    let mut source = match fast {
        Some((cols, head)) => Source::Polls {
            cols,
            first,
            head,
            input,
        },
        None => {
            let mut rdr = csv::ReaderBuilder::new()
                .flexible(true)
                .from_reader(Cursor::new(first).chain(input));
            let layout = match rdr.byte_headers() {
                Ok(h) => Layout::detect(h),
                Err(e) => Err(format!("unreadable header: {e}")),
            };
            match layout {
                Ok(layout) => Source::Csv { layout, rdr },
                Err(reason) => {
                    summary.add_file(file_result(FileStatus::Rejected, 0, 0, reason));
                    return Ok(());
                }
            }
        }
    };
    let detail = match &source {
        Source::Polls { .. } => "status polls",
        Source::Csv { layout, .. } => kind_name(*layout),
    };
    let mut rejections: Vec<(u64, String)> = Vec::new();
    let mut fill = |w: &mut dyn Writer| {
        let mut sink = Sink {
            w,
            counts: Counts::default(),
            rejections: &mut rejections,
            job,
            done_before,
        };
        match &mut source {
            Source::Polls {
                cols,
                first,
                head,
                input,
            } => polls::read(
                *cols,
                std::mem::take(first),
                head,
                input,
                polls::CHUNK,
                &meta.name,
                &mut sink,
            )?,
            Source::Csv { layout, rdr } => read_rows(*layout, rdr, &meta.name, &mut sink)?,
        }
        Ok::<_, IngestError>(sink.counts)
    };
    let job_id = Some(job.id());
    let outcome = match &ctx.db {
        Database::Sqlite(db) => db.write(|conn| {
            ledger::ingest_atomically(conn, DOMAIN, meta, job_id, |tx, file, replaced| {
                let mut w = FileWriter::new(tx, file, replaced)?;
                let counts = fill(&mut w)?;
                w.finish()?;
                Ok::<_, IngestError>(counts)
            })
        })?,
        Database::Postgres(pg) => pg.write(|tx| {
            ledger::postgres::ingest_atomically(tx, DOMAIN, meta, job_id, |tx, file, replaced| {
                let mut w = crate::postgres::FileWriter::new(tx, file, replaced)?;
                let counts = fill(&mut w)?;
                w.finish()?;
                Ok::<_, IngestError>(counts)
            })
        })?,
    };
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
                detail.to_owned(),
            ));
        }
    }
    Ok(())
}

/// Every row of a file through the csv reader.
fn read_rows<R: Read>(
    layout: Layout,
    rdr: &mut csv::Reader<R>,
    name: &str,
    sink: &mut Sink<'_>,
) -> Result<(), IngestError> {
    let mut rec = ByteRecord::new();
    while polls::read_record(rdr, &mut rec, name)? {
        match layout.parse(&rec) {
            Ok(Row::Poll(p)) => {
                let slot = sink.slot(p.store)?;
                sink.push(slot, polls::value(&p));
            }
            Ok(Row::Hours(h)) => {
                sink.w.hours(&h)?;
                sink.counts.accepted += 1;
            }
            Ok(Row::Zone(z)) => {
                sink.w.zone(&z)?;
                sink.counts.accepted += 1;
            }
            Err(reason) => {
                let line = rec.position().map_or(0, |p| p.line());
                sink.reject(line, reason);
                continue;
            }
        }
        if sink.counts.accepted.is_multiple_of(polls::PROGRESS_ROWS) {
            sink.progress(rdr.position().byte())?;
        }
    }
    Ok(())
}
