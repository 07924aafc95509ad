//! Streaming ingestion of trip CSVs: every input (a file or stdin) is loaded in committed
//! batches under a staging load that becomes a ledger entry at the end, in one transaction
//! with the last rollups, or is removed if the process dies first.
//!
//! Why batches: one transaction for 100 M rows would grow the WAL to the size of the
//! database, and the content hash of a stream, so the ledger's duplicate check, is only known
//! at its end (a file's is known first, so a duplicate file is not even parsed). A batch is
//! committed invisible; the transaction that adds batches to the rollups makes them visible
//! (at the end, or earlier when the rollup deltas in memory grow past
//! [`Limits::spill_keys`]). The staging load keeps "exactly one copy" true: an input that
//! does not finish is removed before the next ingestion, and one whose content turns out to
//! be a duplicate removes itself.

use std::collections::HashMap;
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::time::Instant;

use sluice_core::jobs::{FileResult, FileStatus};
use sluice_core::ledger::{self, ContentHash, Counts, InputMeta, Outcome};
use sluice_core::{Ctx, Database, DbError, IngestError, JobHandle, Summary};

use crate::engine::GroupConfig;
use crate::parse::Header;
use crate::store::{self, LoadId, Prepared, Writer};

pub const DOMAIN: &str = "trips";

/// Key of a job summary's `extra` naming the input being read while the job runs.
pub const CURRENT_FILE: &str = "current_file";
/// Key of a job summary's `extra` holding each finished input's duration: an object from
/// input name to microseconds (the compat status shows it per file).
pub const LEAD_TIMES: &str = "lead_times_us";

/// How an input is cut into batches and rollup spills (tests use small limits).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Trips per batch (one committed transaction each).
    pub batch_rows: usize,
    /// Rollup keys held in memory (about 40 bytes each, counting the hash tables' slack)
    /// before the batches so far are added to the rollups and made visible.
    pub spill_keys: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            batch_rows: crate::batch::BATCH_ROWS,
            spill_keys: 4_000_000,
        }
    }
}

/// Counts bytes and, for a stream, hashes them as the CSV reader pulls them.
struct Tap<R> {
    inner: R,
    hasher: Option<blake3::Hasher>,
    bytes: u64,
}

impl<R: Read> Read for Tap<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(h) = &mut self.hasher {
            h.update(&buf[..n]);
        }
        self.bytes += n as u64;
        Ok(n)
    }
}

/// Where an input comes from: a file is hashed before it is read (so that a duplicate is
/// not parsed), a stream while it is read.
enum Source<'a> {
    File(&'a InputMeta),
    Stream(&'a str),
}

impl Source<'_> {
    fn name(&self) -> &str {
        match self {
            Source::File(meta) => &meta.name,
            Source::Stream(name) => name,
        }
    }
}

/// Per-input progress: rows, rejections, bytes and rows/s in the job's live summary.
struct Progress<'a> {
    job: &'a JobHandle,
    summary: Summary,
    file: FileResult,
    started: Instant,
    reported_bytes: u64,
}

impl<'a> Progress<'a> {
    fn new(job: &'a JobHandle, summary: Summary, name: &str) -> Self {
        Progress {
            job,
            summary,
            file: FileResult {
                name: name.to_owned(),
                status: FileStatus::Ingested,
                bytes: 0,
                rows_accepted: 0,
                rows_rejected: 0,
                warnings: 0,
                detail: None,
            },
            started: Instant::now(),
            reported_bytes: 0,
        }
    }

    fn reject(&mut self, line: u64, reason: String) {
        self.file.rows_rejected += 1;
        self.summary.reject(&self.file.name, line, reason);
    }

    fn report(&mut self, bytes: u64) {
        self.job.add_done(bytes - self.reported_bytes);
        self.reported_bytes = bytes;
        let mut live = self.summary.clone();
        live.rows_accepted += self.file.rows_accepted;
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        live.extra.insert(
            "rows_per_s".into(),
            serde_json::json!((self.file.rows_accepted as f64 / secs).round()),
        );
        live.extra
            .insert(CURRENT_FILE.into(), serde_json::json!(self.file.name));
        self.job.set_summary(live);
    }

    fn duplicate(self, bytes: u64, previous: &str) -> Summary {
        let detail = format!("same content as `{previous}`");
        self.done(FileStatus::Duplicate, bytes, Some(detail))
    }

    fn done(mut self, status: FileStatus, bytes: u64, detail: Option<String>) -> Summary {
        if status == FileStatus::Duplicate || status == FileStatus::Rejected {
            // Nothing of this input counts; its per-row rejections are not news either.
            let name = self.file.name.clone();
            self.summary.rows_rejected -= self.file.rows_rejected;
            self.summary.rejections.retain(|r| r.file != name);
            self.file.rows_accepted = 0;
            self.file.rows_rejected = 0;
        }
        self.file.status = status;
        self.file.bytes = bytes;
        self.file.detail = detail;
        let micros = u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX);
        if let serde_json::Value::Object(times) = self
            .summary
            .extra
            .entry(LEAD_TIMES)
            .or_insert_with(|| serde_json::json!({}))
        {
            times.insert(self.file.name.clone(), micros.into());
        }
        self.summary.add_file(self.file);
        self.summary
    }
}

fn csv_reader<R: Read>(r: R) -> csv::Reader<R> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .buffer_capacity(1 << 20)
        .from_reader(r)
}

/// Reads the header; `Err` is why the whole input is rejected.
fn header<R: Read>(rdr: &mut csv::Reader<R>, rec: &mut csv::ByteRecord) -> Result<Header, String> {
    match rdr.read_byte_record(rec) {
        Ok(true) => Header::parse(rec),
        Ok(false) => Err("the input is empty (no header)".into()),
        Err(e) => Err(format!("unreadable header: {e}")),
    }
}

/// A CSV input past its header.
struct Input<R> {
    rdr: csv::Reader<Tap<R>>,
    rec: csv::ByteRecord,
    header: Header,
}

impl<R: Read> Input<R> {
    /// Reads the header; `Err` is why the whole input is rejected (with the bytes read).
    fn open(r: R, hash: bool) -> Result<Input<R>, (String, u64)> {
        let mut rdr = csv_reader(Tap {
            inner: r,
            hasher: hash.then(blake3::Hasher::new),
            bytes: 0,
        });
        let mut rec = csv::ByteRecord::new();
        match header(&mut rdr, &mut rec) {
            Ok(header) => Ok(Input { rdr, rec, header }),
            Err(why) => Err((why, rdr.get_ref().bytes)),
        }
    }

    fn bytes(&self) -> u64 {
        self.rdr.get_ref().bytes
    }
}

/// Rows per chunk handed from the parser thread to the writer.
const CHUNK_ROWS: usize = 8192;
/// Chunks in flight between the two threads.
const CHUNKS_IN_FLIGHT: usize = 64;

/// Parsed trips, with the names seen first in this chunk in the order of the parser's ids.
#[derive(Default)]
struct Chunk {
    trips: Vec<Prepared>,
    regions: Vec<String>,
    sources: Vec<String>,
}

/// The parser's id of `name`, recording a name seen for the first time in `new`.
fn local_id(ids: &mut HashMap<String, u32>, new: &mut Vec<String>, name: &str) -> u32 {
    if let Some(&id) = ids.get(name) {
        return id;
    }
    let id = ids.len() as u32;
    ids.insert(name.to_owned(), id);
    new.push(name.to_owned());
    id
}

/// Parses and keys every row of the input into chunks for the writer. Stops quietly when
/// the writer hangs up (its error is the one reported).
fn parse<R: Read>(
    input: &mut Input<R>,
    p: &mut Progress<'_>,
    cfg: GroupConfig,
    out: SyncSender<Chunk>,
) -> Result<(), IngestError> {
    let Input {
        rdr,
        rec,
        header: h,
    } = input;
    let (mut regions, mut sources) = (HashMap::new(), HashMap::new());
    let mut h3 = crate::engine::H3Cache::new(cfg);
    let mut chunk = Chunk::default();
    loop {
        let more = match rdr.read_byte_record(rec) {
            Ok(more) => more,
            Err(e) => match e.kind() {
                csv::ErrorKind::Io(_) => {
                    return Err(IngestError::Invalid(format!("{}: {e}", p.file.name)))
                }
                _ => {
                    let line = e.position().map_or(0, |pos| pos.line());
                    p.reject(line, format!("malformed CSV: {e}"));
                    continue;
                }
            },
        };
        if !more {
            // Sent even when empty: it may carry names.
            let _ = out.send(chunk);
            return Ok(());
        }
        match h.row(rec) {
            Ok(row) => {
                let r = local_id(&mut regions, &mut chunk.regions, row.region.as_str());
                let d = local_id(&mut sources, &mut chunk.sources, row.datasource.as_str());
                let t = Prepared::new(&mut h3, r, d, row.ts, row.origin, row.destination);
                chunk.trips.push(t);
                p.file.rows_accepted += 1;
            }
            Err(reason) => {
                let line = rec.position().map_or(0, |pos| pos.line());
                p.reject(line, reason)
            }
        }
        let seen = p.file.rows_accepted + p.file.rows_rejected;
        if seen.is_multiple_of(65_536) {
            p.report(rdr.get_ref().bytes);
        }
        if chunk.trips.len() >= CHUNK_ROWS && out.send(std::mem::take(&mut chunk)).is_err() {
            return Ok(());
        }
    }
}

/// Runs [`parse`] on a thread of its own and `write` (which drains the chunks) on this one,
/// so parsing and keying overlap with the writes.
fn pipelined<R: Read + Send, T>(
    input: &mut Input<R>,
    p: &mut Progress<'_>,
    cfg: GroupConfig,
    write: impl FnOnce(Receiver<Chunk>) -> Result<T, IngestError>,
) -> Result<T, IngestError> {
    std::thread::scope(|s| {
        let (tx, rx) = sync_channel(CHUNKS_IN_FLIGHT);
        let parser = std::thread::Builder::new()
            .name("trips-parser".into())
            .spawn_scoped(s, move || parse(input, p, cfg, tx))
            .map_err(|e| IngestError::Invalid(format!("cannot start the CSV parser: {e}")))?;
        // `write` hangs up when it returns, so that a parser blocked on a full channel ends.
        let written = write(rx);
        let parsed = parser
            .join()
            .unwrap_or_else(|_| Err(IngestError::Invalid("the CSV parser panicked".into())));
        let out = written?;
        parsed?;
        Ok(out)
    })
}

/// Adds one chunk to the writer.
fn add(c: &mut dyn store::Sql, w: &mut Writer, chunk: &Chunk) -> Result<(), DbError> {
    w.add_names(c, &chunk.regions, &chunk.sources)?;
    for t in &chunk.trips {
        w.push(c, t)?;
    }
    Ok(())
}

/// Builds the rollups an upgrade left pending (see [`store::complete_levels`]), in one
/// transaction; a no-op on a database without any.
pub fn complete_levels(ctx: &Ctx) -> Result<(), DbError> {
    let built = store::write(&ctx.db, |c| store::complete_levels(c))?;
    if built {
        tracing::info!("built the trips rollups of level 1 (1/256°) for the stored trips");
    }
    Ok(())
}

/// Removes staging loads whose owner no longer runs, each in its own transaction.
pub fn cleanup(ctx: &Ctx) -> Result<u64, DbError> {
    let owner = ctx.db.owner();
    let stale = store::read_primary(&ctx.db, |c| store::stale_loads(c, owner))?;
    let mut removed = 0;
    for load in stale {
        removed += discard(ctx, load)?;
    }
    if removed > 0 {
        tracing::warn!(rows = removed, "removed rows of interrupted trips streams");
    }
    Ok(removed)
}

/// Ingests files, each completed by its ledger entry (see the module doc).
pub fn ingest_files(
    ctx: &Ctx,
    cfg: GroupConfig,
    files: &[PathBuf],
    job: &JobHandle,
    limits: Limits,
) -> Result<Summary, IngestError> {
    let mut summary = Summary::default();
    for path in files {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        announce(job, &summary, &name);
        match ingest_file(ctx, cfg, path, job, summary.clone(), limits) {
            Ok(s) => summary = s,
            Err(e) => return Err(failed_in(job, &summary, &name, e)),
        }
    }
    Ok(summary)
}

/// A failed input is invisible (its batches stay staging), so the job's live summary goes
/// back to what had landed before it, still naming the input it failed in.
fn failed_in(job: &JobHandle, landed: &Summary, name: &str, e: IngestError) -> IngestError {
    announce(job, landed, name);
    e
}

/// Names the input about to be read in the job's live summary ([`CURRENT_FILE`]) and
/// publishes it at once: which input is being read is news to status readers, not a
/// throttled progress figure.
fn announce(job: &JobHandle, summary: &Summary, name: &str) {
    let mut live = summary.clone();
    live.extra
        .insert(CURRENT_FILE.into(), serde_json::json!(name));
    job.publish_summary(live);
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> IngestError + '_ {
    move |source| IngestError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A file whose content is already in the ledger is reported as a duplicate without
/// parsing it; otherwise it is loaded like a stream, in committed batches, so that a file of
/// any size keeps the WAL small.
fn ingest_file(
    ctx: &Ctx,
    cfg: GroupConfig,
    path: &Path,
    job: &JobHandle,
    summary: Summary,
    limits: Limits,
) -> Result<Summary, IngestError> {
    let meta = InputMeta::of_file(path).map_err(io_err(path))?;
    let previous = match &ctx.db {
        Database::Sqlite(db) => db.read(|c| ledger::find_same_content(c, DOMAIN, &meta.hash))?,
        Database::Postgres(pg) => {
            pg.read_primary(|tx| ledger::postgres::find_same_content(tx, DOMAIN, &meta.hash))?
        }
    };
    if let Some(previous) = previous {
        job.add_done(meta.size);
        return Ok(Progress::new(job, summary, &meta.name).duplicate(meta.size, &previous));
    }
    let file = std::fs::File::open(path).map_err(io_err(path))?;
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    let source = Source::File(&meta);
    load_input(ctx, cfg, source, &mut reader, job, summary, limits)
}

/// Ingests one stream under `name`, in committed batches (see the module doc).
pub fn ingest_stream(
    ctx: &Ctx,
    cfg: GroupConfig,
    name: &str,
    reader: &mut (dyn BufRead + Send),
    job: &JobHandle,
    limits: Limits,
) -> Result<Summary, IngestError> {
    announce(job, &Summary::default(), name);
    let source = Source::Stream(name);
    load_input(ctx, cfg, source, reader, job, Summary::default(), limits)
        .map_err(|e| failed_in(job, &Summary::default(), name, e))
}

/// Loads one input under a staging load that its ledger entry completes (see the module
/// doc); returns `summary` with this input added.
fn load_input(
    ctx: &Ctx,
    cfg: GroupConfig,
    source: Source<'_>,
    reader: &mut (dyn BufRead + Send),
    job: &JobHandle,
    summary: Summary,
    limits: Limits,
) -> Result<Summary, IngestError> {
    complete_levels(ctx)?;
    cleanup(ctx)?;
    let name = source.name();
    let mut p = Progress::new(job, summary, name);
    let mut input = match Input::open(reader, matches!(source, Source::Stream(_))) {
        Ok(input) => input,
        Err((why, bytes)) => {
            p.report(bytes);
            return Ok(p.done(FileStatus::Rejected, bytes, Some(why)));
        }
    };
    let owner = ctx.db.owner().id();
    let load = store::write(&ctx.db, |c| store::create_load(c, owner, name, cfg))?;
    let mut w = store::read_primary(&ctx.db, |c| Writer::new(c, load, cfg))?;
    w.set_batch_rows(limits.batch_rows);
    let result = pipelined(&mut input, &mut p, cfg, |rx| {
        stream_batches(ctx, &mut w, rx, limits.spill_keys)
    });
    let outcome = result.and_then(|()| {
        let meta = match source {
            Source::File(meta) => meta.clone(),
            Source::Stream(name) => {
                // Drain what the CSV reader left unread so the hash covers every byte.
                let tap = input.rdr.get_mut();
                std::io::copy(tap, &mut std::io::sink())
                    .map_err(|e| IngestError::Invalid(format!("{name}: {e}")))?;
                let hasher = tap.hasher.take().unwrap_or_default();
                InputMeta {
                    name: name.to_owned(),
                    hash: ContentHash(hasher.finalize().to_hex().to_string()),
                    size: tap.bytes,
                }
            }
        };
        let counts = Counts {
            accepted: p.file.rows_accepted,
            rejected: p.file.rows_rejected,
        };
        // Replaces the input's previous load, if any, and completes this one.
        let mut complete = |c: &mut dyn store::Sql, file_id: i64, old: Option<i64>| {
            if let Some(old) = old {
                if let Some(old_load) = store::load_of_file(c, old)? {
                    store::remove_load(c, old_load)?;
                }
            }
            w.roll_up(c)?;
            store::finish_load(c, load, file_id)?;
            Ok::<_, IngestError>(counts)
        };
        let job = Some(job.id());
        match &ctx.db {
            Database::Sqlite(db) => db.write(|conn| {
                ledger::ingest_atomically(conn, DOMAIN, &meta, job, |tx, file_id, old| {
                    complete(&mut { &**tx }, file_id.0, old.map(|o| o.0))
                })
            }),
            Database::Postgres(pg) => pg.write(|tx| {
                ledger::postgres::ingest_atomically(tx, DOMAIN, &meta, job, |tx, file_id, old| {
                    complete(tx, file_id.0, old.map(|o| o.0))
                })
            }),
        }
    });
    let bytes = input.bytes();
    p.report(bytes);
    match outcome {
        Ok(Outcome::Done { status, .. }) => Ok(p.done(status, bytes, None)),
        Ok(Outcome::Duplicate { previous_name }) => {
            discard(ctx, load)?;
            Ok(p.duplicate(bytes, &previous_name))
        }
        Err(e) => {
            discard(ctx, load)?;
            Err(e)
        }
    }
}

/// Removes a load in a transaction of its own; returns the trips removed.
fn discard(ctx: &Ctx, load: LoadId) -> Result<u64, DbError> {
    store::write(&ctx.db, |c| store::remove_load(c, load))
}

/// Writes the chunks of a stream, committing after each batch written.
fn stream_batches(
    ctx: &Ctx,
    w: &mut Writer,
    rx: Receiver<Chunk>,
    spill_keys: usize,
) -> Result<(), IngestError> {
    // Shared with the database's thread (PostgreSQL's work leaves the async runtime's).
    let rx = std::sync::Mutex::new(rx);
    let mut ended = false;
    while !ended {
        store::write(&ctx.db, |c| {
            let batches = w.batches();
            while w.batches() == batches {
                let next = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                let Ok(chunk) = next else {
                    ended = true;
                    break;
                };
                add(c, w, &chunk)?;
            }
            if !ended && w.rollup_keys() > spill_keys {
                w.roll_up(c)?;
            }
            Ok::<_, DbError>(())
        })?;
    }
    Ok(())
}
