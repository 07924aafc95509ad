//! Reports as jobs: register, compute store by store from sorted reads (two reader
//! connections in parallel, each on half of the stores), write the CSV and the native rows
//! atomically, and answer the state of a report from its job.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::Utc;
use chrono_tz::Tz;
use serde::Serialize;
use sluice_core::jobs::NewJob;
use sluice_core::{Ctx, Database, JobHandle, JobId, JobState, Summary};

use crate::engine::{self, BusinessHours, RelevantPolls, WindowFigures};
use crate::parse::{Micros, Zone, DEFAULT_ZONE, MINUTE};
use crate::store::{self, ReportRow, StoreRow};
use crate::{UptimeError, DOMAIN};

/// The header of the native CSV: uptime of the three windows, then downtime (the compat
/// route reorders it into the replaced system's columns, `compat::COMPAT_COLUMNS`).
pub const CSV_HEADER: &str = "store_id,uptime_last_hour,uptime_last_day,uptime_last_week,downtime_last_hour,downtime_last_day,downtime_last_week";

/// Default distance within which a poll counts as covering business time.
pub const DEFAULT_COVERAGE_MINUTES: i64 = 120;

/// What a report is asked for.
#[derive(Clone, Debug, Default)]
pub struct ReportRequest {
    /// End of the windows; the latest poll when absent.
    pub now: Option<Micros>,
    /// Only these stores (all when absent).
    pub stores: Option<Vec<String>>,
    /// Coverage distance in microseconds; from the `[uptime] coverage_minutes` setting when
    /// absent.
    pub coverage: Option<i64>,
    pub callback_url: Option<String>,
}

/// The configured coverage distance in microseconds.
pub fn configured_coverage(ctx: &Ctx) -> i64 {
    ctx.settings
        .domain(DOMAIN)
        .get("coverage_minutes")
        .and_then(|v| v.as_integer())
        .filter(|m| *m > 0)
        .unwrap_or(DEFAULT_COVERAGE_MINUTES)
        * MINUTE
}

pub fn csv_path(ctx: &Ctx, id: &str) -> PathBuf {
    ctx.settings.reports_dir(DOMAIN).join(format!("{id}.csv"))
}

pub fn rows_path(ctx: &Ctx, id: &str) -> PathBuf {
    ctx.settings.reports_dir(DOMAIN).join(format!("{id}.jsonl"))
}

/// Checks that every requested store is known.
pub fn validate(ctx: &Ctx, req: &ReportRequest) -> Result<(), UptimeError> {
    let Some(stores) = &req.stores else {
        return Ok(());
    };
    let unknown: Vec<&String> = store::read(&ctx.db, |r| {
        let mut v = Vec::new();
        for s in stores {
            if r.store(s)?.is_none() {
                v.push(s);
            }
        }
        Ok::<_, UptimeError>(v)
    })?;
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(UptimeError::NotFound {
            param: "stores",
            detail: format!("unknown store ids: {unknown:?}"),
        })
    }
}

/// Validates the request and creates its queued job.
pub fn create_job(ctx: &Ctx, req: &ReportRequest) -> Result<JobHandle, UptimeError> {
    validate(ctx, req)?;
    Ok(ctx
        .jobs
        .create(NewJob::new(DOMAIN, "report", "stores").callback(req.callback_url.clone()))?)
}

/// Registers the report of a created job.
pub fn register(ctx: &Ctx, req: &ReportRequest, job: JobId) -> Result<(), UptimeError> {
    let row = ReportRow {
        id: job.to_string(),
        created_at: Utc::now().to_rfc3339(),
        requested_now: req.now.map(|n| n.0),
        stores: req.stores.clone(),
        coverage: req.coverage.unwrap_or_else(|| configured_coverage(ctx)),
        now: None,
        rows: None,
    };
    store::insert_report_on(&ctx.db, &row)?;
    Ok(())
}

/// Starts a report in the background and returns its id at once.
pub fn spawn(ctx: &Ctx, req: ReportRequest) -> Result<JobId, UptimeError> {
    let job = create_job(ctx, &req)?;
    let id = job.id();
    register(ctx, &req, id)?;
    let ctx = ctx.clone();
    tokio::task::spawn_blocking(move || run_job(&ctx, &req, job));
    Ok(id)
}

/// Runs a registered report's job to its end on this thread.
pub fn run_job(ctx: &Ctx, req: &ReportRequest, job: JobHandle) {
    if let Err(e) = job.start() {
        let _ = job.fail(Summary::default(), e.to_string());
        return;
    }
    let ended = match generate(ctx, req, &job) {
        Ok(out) => job.succeed(out.summary()),
        Err(e) => {
            let summary = job.snapshot().summary;
            job.fail(summary, e.to_string())
        }
    };
    if let Err(e) = ended {
        tracing::error!(error = %e, "could not persist the end of a report job");
    }
}

/// What a finished report produced.
#[derive(Clone, Debug)]
pub struct ReportOutput {
    pub now: Micros,
    pub rows: u64,
    pub csv: PathBuf,
}

impl ReportOutput {
    fn summary(&self) -> Summary {
        let mut s = Summary {
            rows_accepted: self.rows,
            ..Summary::default()
        };
        s.extra.insert("now".into(), self.now.iso().into());
        s.extra.insert("stores".into(), self.rows.into());
        s.extra
            .insert("csv".into(), self.csv.display().to_string().into());
        s
    }
}

/// One window of a native report row; minutes for the hour, hours for day and week.
#[derive(Clone, Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[schema(as = UptimeWindowRow)]
pub struct WindowRow {
    pub business: f64,
    pub uptime: f64,
    pub downtime: f64,
    /// Business time with a poll within the coverage distance.
    pub covered: f64,
}

/// A native report row.
#[derive(Clone, Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
#[schema(as = UptimeNativeRow)]
pub struct NativeRow {
    pub store_id: String,
    pub zone: String,
    /// False when the store has no zone and the default applies.
    pub zone_given: bool,
    /// False for stores open 24×7 for want of business hours.
    pub hours_given: bool,
    /// False for stores without any poll (uptime and downtime are then 0).
    pub polled: bool,
    /// In minutes.
    pub last_hour: WindowRow,
    /// In hours.
    pub last_day: WindowRow,
    /// In hours.
    pub last_week: WindowRow,
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// A window's figures in `unit`, rounded to 2 decimals.
pub fn window_row(f: &WindowFigures, unit: fn(i64) -> f64) -> WindowRow {
    WindowRow {
        business: round2(unit(f.business)),
        uptime: round2(unit(f.up)),
        downtime: round2(unit(f.down)),
        covered: round2(unit(f.covered)),
    }
}

/// One store's computed figures.
struct Computed {
    store_id: String,
    zone: Zone,
    zone_given: bool,
    hours_given: bool,
    polled: bool,
    figures: [WindowFigures; 3],
}

impl Computed {
    fn csv_line(&self, out: &mut impl Write) -> std::io::Result<()> {
        let [h, d, w] = &self.figures;
        writeln!(
            out,
            "{},{:.2},{:.2},{:.2},{:.2},{:.2},{:.2}",
            csv_field(&self.store_id),
            engine::minutes(h.up),
            engine::hours(d.up),
            engine::hours(w.up),
            engine::minutes(h.down),
            engine::hours(d.down),
            engine::hours(w.down)
        )
    }

    fn native(&self) -> NativeRow {
        let [h, d, w] = &self.figures;
        NativeRow {
            store_id: self.store_id.clone(),
            zone: self.zone.name().to_owned(),
            zone_given: self.zone_given,
            hours_given: self.hours_given,
            polled: self.polled,
            last_hour: window_row(h, engine::minutes),
            last_day: window_row(d, engine::hours),
            last_week: window_row(w, engine::hours),
        }
    }
}

/// Quotes a store id that would break the CSV (ids are opaque strings).
fn csv_field(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\"")).into()
    } else {
        s.into()
    }
}

/// Computes a registered report (job id = report id) and writes its files. Progress is
/// reported in stores on `job`; the caller starts and ends the job.
pub fn generate(
    ctx: &Ctx,
    req: &ReportRequest,
    job: &JobHandle,
) -> Result<ReportOutput, UptimeError> {
    let id = job.id().to_string();
    let coverage = req.coverage.unwrap_or_else(|| configured_coverage(ctx));
    let (now, stores) = store::read(&ctx.db, |r| {
        let now = match req.now {
            Some(n) => n,
            None => r
                .latest_poll()?
                .map(Micros)
                .unwrap_or_else(|| Micros::from_datetime(Utc::now())),
        };
        let stores = match &req.stores {
            None => r.stores()?,
            Some(ids) => {
                let mut v = Vec::new();
                for s in ids {
                    v.extend(r.store(s)?);
                }
                v.sort_by(|a, b| a.store_id.cmp(&b.store_id));
                v.dedup_by(|a, b| a.key == b.key);
                v
            }
        };
        Ok::<_, UptimeError>((now, stores))
    })?;
    job.set_total(Some(stores.len() as u64));
    // Computed in key order (the order of the poll blocks and hours), written in store id
    // order.
    let all = req.stores.is_none();
    let mut stores = stores;
    stores.sort_unstable_by_key(|s| s.key);
    let done = AtomicU64::new(0);
    let parts = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    let chunk = stores.len().div_ceil(parts).max(1);
    let results: Vec<Result<Part, UptimeError>> = std::thread::scope(|s| {
        let handles: Vec<_> = stores
            .chunks(chunk)
            .map(|part| {
                let done = &done;
                s.spawn(move || {
                    let (Some(lo), Some(hi)) = (part.first(), part.last()) else {
                        return Ok(Part::default());
                    };
                    // Each worker reads in a snapshot of its own, as on SQLite: a file
                    // committed meanwhile may count in some parts and not in others. On
                    // PostgreSQL the primary's: a report is stored, and one computed on a
                    // lagging replica would keep missing a file ingested just before it.
                    let keys = (lo.key, hi.key);
                    let from = engine::report_windows(now.0)[2];
                    let compute = |r: &mut dyn store::PartReads| {
                        compute_part(r, part, now.0, coverage, job, done)
                    };
                    match &ctx.db {
                        Database::Sqlite(db) => {
                            db.read(|c| store::part_reads(c, all, keys, from, compute)?)
                        }
                        Database::Postgres(pg) => pg.read_primary(|tx| {
                            crate::postgres::part_reads(tx, all, keys, from, compute)?
                        }),
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(UptimeError::Internal("a report worker panicked".into()))
                })
            })
            .collect()
    });
    let parts = results.into_iter().collect::<Result<Vec<Part>, _>>()?;
    let dir = ctx.settings.reports_dir(DOMAIN);
    std::fs::create_dir_all(&dir).map_err(|e| UptimeError::io(&dir, e))?;
    let (csv, rows) = (csv_path(ctx, &id), rows_path(ctx, &id));
    let (csv_tmp, rows_tmp) = (
        csv.with_extension("csv.part"),
        rows.with_extension("jsonl.part"),
    );
    let mut n = 0u64;
    {
        let io_csv = |e| UptimeError::io(&csv_tmp, e);
        let io_rows = |e| UptimeError::io(&rows_tmp, e);
        let mut c = BufWriter::new(File::create(&csv_tmp).map_err(io_csv)?);
        let mut r = BufWriter::new(File::create(&rows_tmp).map_err(io_rows)?);
        writeln!(c, "{CSV_HEADER}").map_err(io_csv)?;
        // The parts' rows merged by store id.
        let mut next = vec![0usize; parts.len()];
        while let Some(p) = (0..parts.len())
            .filter(|&p| next[p] < parts[p].rows.len())
            .min_by(|&a, &b| parts[a].rows[next[a]].0.cmp(&parts[b].rows[next[b]].0))
        {
            let (part, i) = (&parts[p], next[p]);
            let (csv_from, rows_from) = i.checked_sub(1).map_or((0, 0), |j| {
                let prev = &part.rows[j];
                (prev.1, prev.2)
            });
            let (_, csv_to, rows_to) = part.rows[i];
            c.write_all(&part.csv[csv_from..csv_to]).map_err(io_csv)?;
            r.write_all(&part.jsonl[rows_from..rows_to])
                .map_err(io_rows)?;
            next[p] += 1;
            n += 1;
        }
        c.flush().map_err(io_csv)?;
        r.flush().map_err(io_rows)?;
    }
    // The rows first: a report is complete once its CSV exists.
    std::fs::rename(&rows_tmp, &rows).map_err(|e| UptimeError::io(&rows, e))?;
    std::fs::rename(&csv_tmp, &csv).map_err(|e| UptimeError::io(&csv, e))?;
    store::finish_report_on(&ctx.db, &id, now.0, n as i64)?;
    Ok(ReportOutput { now, rows: n, csv })
}

/// Stores done are published every this many stores.
const PROGRESS_STORES: u64 = 256;

/// A worker's rows, formatted (by the workers, in parallel), in store id order.
#[derive(Default)]
struct Part {
    /// Each row's store id and where its lines end in `csv` and `jsonl`.
    rows: Vec<(String, usize, usize)>,
    csv: Vec<u8>,
    jsonl: Vec<u8>,
}

fn compute_part(
    reads: &mut dyn store::PartReads,
    stores: &[StoreRow],
    now: i64,
    coverage: i64,
    job: &JobHandle,
    done: &AtomicU64,
) -> Result<Part, UptimeError> {
    let starts = engine::report_windows(now);
    let week = starts[2];
    // Zones by name as stored, and each zone's offsets over the windows.
    let mut names: HashMap<&str, Option<Zone>> = HashMap::new();
    let mut zones: HashMap<Tz, Vec<(i64, i64, i64)>> = HashMap::new();
    let mut relevant = RelevantPolls::new(week, now);
    let mut business = Vec::new();
    let mut out = Vec::with_capacity(stores.len());
    let mut pending = 0;
    for (i, s) in stores.iter().enumerate() {
        let given = s
            .zone
            .as_deref()
            .and_then(|z| *names.entry(z).or_insert_with(|| Zone::parse(z).ok()));
        let zone = given.unwrap_or(DEFAULT_ZONE);
        let spans = zones
            .entry(zone.0)
            .or_insert_with(|| engine::offset_spans(zone.0, week, now));
        let store_hours = reads.hours(s.key)?;
        engine::business_spans(
            store_hours.as_ref().unwrap_or(&BusinessHours::Always),
            spans,
            &mut business,
        );
        relevant.clear();
        reads.polls(s.key, &mut |p| relevant.push(p))?;
        out.push(Computed {
            store_id: s.store_id.clone(),
            zone,
            zone_given: given.is_some(),
            hours_given: store_hours.is_some(),
            polled: !relevant.polls().is_empty(),
            figures: engine::compute(starts, now, &business, relevant.polls(), coverage),
        });
        pending += 1;
        if pending == PROGRESS_STORES || i + 1 == stores.len() {
            job.set_done(done.fetch_add(pending, Ordering::Relaxed) + pending);
            pending = 0;
        }
    }
    out.sort_unstable_by(|a, b| a.store_id.cmp(&b.store_id));
    let mut part = Part {
        rows: Vec::with_capacity(out.len()),
        csv: Vec::with_capacity(out.len() * 64),
        jsonl: Vec::with_capacity(out.len() * 512),
    };
    let in_memory = |e: std::io::Error| UptimeError::Internal(format!("formatting a row: {e}"));
    for row in out {
        row.csv_line(&mut part.csv).map_err(in_memory)?;
        serde_json::to_writer(&mut part.jsonl, &row.native()).map_err(|e| in_memory(e.into()))?;
        part.jsonl.push(b'\n');
        part.rows
            .push((row.store_id, part.csv.len(), part.jsonl.len()));
    }
    Ok(part)
}

/// Where a report stands, from its job.
#[derive(Clone, Debug)]
pub enum ReportState {
    Running,
    Complete,
    Failed(String),
}

/// A report's registration and state; None for an unknown id.
pub fn state(ctx: &Ctx, id: JobId) -> Result<Option<(ReportRow, ReportState)>, UptimeError> {
    let key = id.to_string();
    // On the primary: a report is asked for right after it is registered.
    let Some(row) = store::read_primary(&ctx.db, |r| r.report(&key))? else {
        return Ok(None);
    };
    let state = match ctx.jobs.get(id)? {
        Some(j) if !j.state.is_terminal() => ReportState::Running,
        Some(j) if j.state == JobState::Succeeded && csv_path(ctx, &key).is_file() => {
            ReportState::Complete
        }
        Some(j) => ReportState::Failed(
            j.error
                .unwrap_or_else(|| "the report's file is missing".to_owned()),
        ),
        None => ReportState::Failed("the report's job is unknown".to_owned()),
    };
    Ok(Some((row, state)))
}

/// A page of a complete report's native rows.
pub fn native_rows(
    ctx: &Ctx,
    id: &str,
    offset: u64,
    limit: u32,
) -> Result<Vec<NativeRow>, UptimeError> {
    let path = rows_path(ctx, id);
    let file = File::open(&path).map_err(|e| UptimeError::io(&path, e))?;
    let mut rows = Vec::new();
    for line in BufReader::new(file)
        .lines()
        .skip(offset as usize)
        .take(limit as usize)
    {
        let line = line.map_err(|e| UptimeError::io(&path, e))?;
        rows.push(
            serde_json::from_str(&line)
                .map_err(|e| UptimeError::Internal(format!("{}: {e}", path.display())))?,
        );
    }
    Ok(rows)
}
