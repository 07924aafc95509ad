//! Jobs: every ingestion, harvest and report. A job is persisted in `core_jobs` on each
//! state change and published on the in-process bus on every state or progress change;
//! SSE, WebSocket and webhooks all read from that bus. On PostgreSQL every event is also
//! sent with `NOTIFY`, and each instance republishes other instances' events on its own bus,
//! so a client of any instance follows every job, pushed.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::database::Database;
use crate::db::{is_storage_full, DbError, Migration, STORAGE_FULL};

mod postgres;
use crate::webhook::{Delivery, WebhookSender};

pub(crate) fn migrations() -> Vec<Migration> {
    vec![
        Migration {
            name: "V1__jobs_and_ledger",
            sql: include_str!("../migrations/V1__jobs_and_ledger.sql"),
        },
        Migration {
            name: "V2__owner",
            sql: include_str!("../migrations/V2__owner.sql"),
        },
    ]
}

/// The same schema on PostgreSQL (one migration: it starts where SQLite's ended).
pub(crate) fn postgres_migrations() -> Vec<Migration> {
    vec![Migration {
        name: "V1__jobs_and_ledger",
        sql: include_str!("../migrations/postgres/V1__jobs_and_ledger.sql"),
    }]
}

use crate::pg::JOBS as JOBS_CHANNEL;

/// A job event as sent to other instances: whole when it fits in a notification, else its
/// job's id, to be read back from the database.
#[derive(Serialize, Deserialize)]
struct Wire {
    owner: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    job: Option<Job>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<JobId>,
}

/// PostgreSQL's limit on a payload is 8000 bytes.
const MAX_PAYLOAD: usize = 7900;

/// A job id (UUID v4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(transparent)]
pub struct JobId(Uuid);

impl JobId {
    pub fn new() -> Self {
        JobId(Uuid::new_v4())
    }
}

impl Default for JobId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for JobId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(JobId)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

impl JobState {
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        )
    }
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        }
    }
}

impl FromStr for JobState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "queued" => JobState::Queued,
            "running" => JobState::Running,
            "succeeded" => JobState::Succeeded,
            "failed" => JobState::Failed,
            "cancelled" => JobState::Cancelled,
            other => {
                return Err(format!(
                    "unknown job state `{other}` (expected queued, running, succeeded, failed or cancelled)"
                ))
            }
        })
    }
}

/// How far a job got, in `unit`s (bytes, rows, events, stores).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Progress {
    pub done: u64,
    pub total: Option<u64>,
    pub unit: String,
}

/// One rejected input row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Rejection {
    pub file: String,
    pub line: u64,
    pub reason: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FileStatus {
    /// New content, ingested.
    Ingested,
    /// Same name as an earlier file, other content: the earlier contribution was replaced.
    Replaced,
    /// Content identical to a file ingested before: nothing changed.
    Duplicate,
    /// Rejected as a whole (no usable header, unreadable): nothing changed.
    Rejected,
}

/// The outcome of one input file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FileResult {
    pub name: String,
    pub status: FileStatus,
    pub bytes: u64,
    pub rows_accepted: u64,
    pub rows_rejected: u64,
    #[serde(default)]
    pub warnings: u64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub detail: Option<String>,
}

/// At most this many rejections are kept in a summary; the counts stay exact.
pub const MAX_REJECTIONS: usize = 100;

/// What a job did. `extra` carries domain-specific figures.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Summary {
    #[serde(default)]
    pub files: Vec<FileResult>,
    #[serde(default)]
    pub rows_accepted: u64,
    #[serde(default)]
    pub rows_rejected: u64,
    #[serde(default)]
    pub warnings: u64,
    /// The first rejections (file, line, reason).
    #[serde(default)]
    pub rejections: Vec<Rejection>,
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    #[schema(value_type = Object)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Summary {
    /// Records a rejection; only the first [`MAX_REJECTIONS`] keep their details.
    pub fn reject(&mut self, file: &str, line: u64, reason: impl Into<String>) {
        self.rows_rejected += 1;
        if self.rejections.len() < MAX_REJECTIONS {
            self.rejections.push(Rejection {
                file: file.to_owned(),
                line,
                reason: reason.into(),
            });
        }
    }

    /// Adds a file's result (and its counts) to the summary.
    pub fn add_file(&mut self, file: FileResult) {
        self.rows_accepted += file.rows_accepted;
        self.warnings += file.warnings;
        self.files.push(file);
    }

    /// Folds another summary in.
    pub fn merge(&mut self, other: Summary) {
        self.rows_accepted += other.rows_accepted;
        self.rows_rejected += other.rows_rejected;
        self.warnings += other.warnings;
        self.files.extend(other.files);
        for r in other.rejections {
            if self.rejections.len() < MAX_REJECTIONS {
                self.rejections.push(r);
            }
        }
        self.extra.extend(other.extra);
    }
}

/// A job snapshot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Job {
    pub id: JobId,
    pub domain: String,
    pub kind: String,
    pub state: JobState,
    pub progress: Progress,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub summary: Summary,
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub callback_url: Option<String>,
}

impl Job {
    /// Seconds from start to end, once the job has ended.
    pub fn elapsed_secs(&self) -> Option<f64> {
        let (a, b) = (self.started_at?, self.finished_at?);
        Some((b - a).num_milliseconds() as f64 / 1000.0)
    }
}

/// What is published on the bus: `type` is `job.<state>` or `job.progress`.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct JobEvent {
    #[serde(rename = "type")]
    pub kind: String,
    pub job: Job,
}

/// A job to create.
#[derive(Clone, Debug)]
pub struct NewJob {
    pub domain: String,
    pub kind: String,
    pub unit: String,
    pub total: Option<u64>,
    pub callback_url: Option<String>,
}

impl NewJob {
    pub fn new(domain: &str, kind: &str, unit: &str) -> Self {
        NewJob {
            domain: domain.to_owned(),
            kind: kind.to_owned(),
            unit: unit.to_owned(),
            total: None,
            callback_url: None,
        }
    }
    pub fn total(mut self, total: Option<u64>) -> Self {
        self.total = total;
        self
    }
    pub fn callback(mut self, url: Option<String>) -> Self {
        self.callback_url = url;
        self
    }
}

/// Filter of [`Jobs::list`].
#[derive(Clone, Debug, Default)]
pub struct JobFilter {
    pub domain: Option<String>,
    pub kind: Option<String>,
    pub state: Option<JobState>,
    pub limit: u32,
    /// Only jobs created before this one (cursor pagination, newest first).
    pub before: Option<JobId>,
}

/// The error of a job whose owner stopped before it ended.
const INTERRUPTED: &str = "interrupted: the process running this job stopped before it finished";

/// Progress is published at most this often; state changes always are.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// The job registry: persisted jobs, live snapshots of jobs of this process, and the bus.
#[derive(Clone)]
pub struct Jobs {
    inner: Arc<JobsInner>,
}

struct JobsInner {
    db: Database,
    live: Mutex<HashMap<JobId, Job>>,
    bus: broadcast::Sender<JobEvent>,
    /// One per registry, so every webhook shares one HTTP client and one bounded queue.
    webhooks: WebhookSender,
}

impl Jobs {
    pub fn new(db: Database, webhook_secret: Option<String>) -> Jobs {
        let (bus, _) = broadcast::channel(4096);
        let jobs = Jobs {
            inner: Arc::new(JobsInner {
                db,
                live: Mutex::new(HashMap::new()),
                bus,
                webhooks: WebhookSender::new(webhook_secret),
            }),
        };
        if let Database::Postgres(pg) = &jobs.inner.db {
            let weak = Arc::downgrade(&jobs.inner);
            let me = pg.owner().id().as_str().to_owned();
            pg.on_notify(JOBS_CHANNEL, move |payload| {
                let Some(inner) = weak.upgrade() else { return };
                let jobs = Jobs { inner };
                let Ok(wire) = serde_json::from_str::<Wire>(payload) else {
                    tracing::warn!("an unreadable job event from another instance");
                    return;
                };
                if wire.owner == me {
                    return;
                }
                let job = match (wire.job, wire.id) {
                    (Some(job), _) => Some(job),
                    (None, Some(id)) => jobs.get(id).ok().flatten(),
                    (None, None) => None,
                };
                if let Some(job) = job {
                    let _ = jobs.inner.bus.send(JobEvent {
                        kind: wire.kind,
                        job,
                    });
                }
            });
        }
        jobs
    }

    /// Marks jobs left `queued` or `running` by an owner that no longer runs as failed, and
    /// publishes their new state. Returns how many were marked. On PostgreSQL every instance
    /// does this periodically ([`Jobs::sweep_every`]), so a dead instance's jobs fail soon
    /// after its lease expires.
    pub fn recover_interrupted(&self) -> Result<usize, DbError> {
        let marked = match &self.inner.db {
            Database::Sqlite(_) => self.recover_sqlite()?,
            Database::Postgres(pg) => postgres::recover(pg)?,
        };
        for id in &marked {
            if let Some(job) = self.get(*id)? {
                self.publish("job.failed", job);
            }
        }
        Ok(marked.len())
    }

    /// Runs [`Jobs::recover_interrupted`] every `period` on a thread of its own, for as long
    /// as the registry lives.
    pub fn sweep_every(&self, period: Duration) {
        let weak = Arc::downgrade(&self.inner);
        std::thread::Builder::new()
            .name("sluice-sweep".into())
            .spawn(move || loop {
                std::thread::sleep(period);
                let Some(inner) = weak.upgrade() else { return };
                if let Err(e) = (Jobs { inner }).recover_interrupted() {
                    tracing::warn!("marking interrupted jobs failed: {e}");
                }
            })
            .expect("spawn the sweeper");
    }

    fn recover_sqlite(&self) -> Result<Vec<JobId>, DbError> {
        let db = self.inner.db.sqlite()?;
        db.write(|c| {
            let mut stmt =
                c.prepare("SELECT id, owner FROM core_jobs WHERE state IN ('queued','running')")?;
            let rows: Vec<(String, String)> = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            let mut marked = Vec::new();
            for (id, owner) in rows {
                if db.owner().is_alive(&owner) {
                    continue;
                }
                let n = c.execute(
                    "UPDATE core_jobs SET state='failed', finished_at=?2, error=?3 WHERE id=?1",
                    params![id, Utc::now().to_rfc3339(), INTERRUPTED],
                )?;
                if let (1, Ok(id)) = (n, id.parse()) {
                    marked.push(id);
                }
            }
            Ok(marked)
        })
    }

    /// Creates a queued job, persists and publishes it.
    pub fn create(&self, new: NewJob) -> Result<JobHandle, DbError> {
        let job = Job {
            id: JobId::new(),
            domain: new.domain,
            kind: new.kind,
            state: JobState::Queued,
            progress: Progress {
                done: 0,
                total: new.total,
                unit: new.unit,
            },
            created_at: Utc::now(),
            started_at: None,
            finished_at: None,
            summary: Summary::default(),
            error: None,
            callback_url: new.callback_url,
        };
        self.persist(&job)?;
        self.lock_live().insert(job.id, job.clone());
        self.publish("job.queued", job.clone());
        Ok(JobHandle {
            jobs: self.clone(),
            id: job.id,
            last_publish: Mutex::new(Instant::now()),
        })
    }

    /// The newest snapshot of a job: live if this process runs it, else from the database.
    pub fn get(&self, id: JobId) -> Result<Option<Job>, DbError> {
        if let Some(job) = self.lock_live().get(&id) {
            return Ok(Some(job.clone()));
        }
        match &self.inner.db {
            Database::Sqlite(db) => db.read(|c| load(c, id)),
            Database::Postgres(pg) => pg.read_primary(|tx| postgres::load(tx, id)),
        }
    }

    /// Jobs newest first.
    pub fn list(&self, filter: &JobFilter) -> Result<Vec<Job>, DbError> {
        let mut jobs = match &self.inner.db {
            Database::Sqlite(db) => db.read(|c| list(c, filter))?,
            Database::Postgres(pg) => pg.read_primary(|tx| postgres::list(tx, filter))?,
        };
        let live = self.lock_live();
        for job in &mut jobs {
            if let Some(l) = live.get(&job.id) {
                *job = l.clone();
            }
        }
        Ok(jobs)
    }

    /// The jobs whose id starts with `prefix` (as `git` takes a commit by a unique prefix),
    /// at most `limit`. A prefix of anything but hex digits and dashes matches nothing.
    pub fn with_prefix(&self, prefix: &str, limit: u32) -> Result<Vec<JobId>, DbError> {
        let prefix = prefix.to_ascii_lowercase();
        if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
            return Ok(Vec::new());
        }
        let db = match &self.inner.db {
            Database::Sqlite(db) => db,
            Database::Postgres(pg) => {
                return pg.read_primary(|tx| postgres::with_prefix(tx, &prefix, limit))
            }
        };
        db.read(|c| {
            let mut stmt = c.prepare(
                "SELECT id FROM core_jobs WHERE substr(id, 1, length(?1)) = ?1
                 ORDER BY rowid DESC LIMIT ?2",
            )?;
            let ids = stmt
                .query_map(params![prefix, limit], |r| r.get::<_, String>(0))?
                .filter_map(|id| id.map(|id| id.parse().ok()).transpose())
                .collect::<Result<Vec<JobId>, _>>()?;
            Ok(ids)
        })
    }

    /// Deletes finished jobs (succeeded, failed, cancelled) that ended before `before`;
    /// returns how many. Jobs still queued or running are never pruned.
    pub fn prune_finished(&self, before: DateTime<Utc>) -> Result<usize, DbError> {
        let db = match &self.inner.db {
            Database::Sqlite(db) => db,
            Database::Postgres(pg) => return pg.write(|tx| postgres::prune(tx, before)),
        };
        db.write(|c| {
            Ok(c.execute(
                "DELETE FROM core_jobs WHERE state IN ('succeeded','failed','cancelled')
                 AND finished_at < ?1",
                [before.to_rfc3339()],
            )?)
        })
    }

    /// A receiver of every job event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<JobEvent> {
        self.inner.bus.subscribe()
    }

    fn lock_live(&self) -> std::sync::MutexGuard<'_, HashMap<JobId, Job>> {
        self.inner.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn publish(&self, kind: &str, job: Job) {
        if let Database::Postgres(pg) = &self.inner.db {
            let owner = pg.owner().id().as_str().to_owned();
            let id = job.id;
            let whole = Wire {
                owner: owner.clone(),
                kind: kind.to_owned(),
                job: Some(job.clone()),
                id: None,
            };
            let mut payload = serde_json::to_string(&whole).expect("a job serializes");
            if payload.len() > MAX_PAYLOAD {
                let short = Wire {
                    owner,
                    kind: kind.to_owned(),
                    job: None,
                    id: Some(id),
                };
                payload = serde_json::to_string(&short).expect("an id serializes");
            }
            if let Err(e) = pg.notify(JOBS_CHANNEL, &payload) {
                tracing::warn!(job = %id, "sending a job event to other instances failed: {e}");
            }
        }
        // No receiver is not an error: nobody is listening right now.
        let _ = self.inner.bus.send(JobEvent {
            kind: kind.to_owned(),
            job,
        });
    }

    fn persist(&self, job: &Job) -> Result<(), DbError> {
        let owner = self.inner.db.owner().id().as_str().to_owned();
        let db = match &self.inner.db {
            Database::Sqlite(db) => db,
            Database::Postgres(pg) => return pg.write(|tx| postgres::persist(tx, job, &owner)),
        };
        let summary = serde_json::to_string(&job.summary).expect("summary serializes");
        db.write(|c| {
            c.execute(
                "INSERT INTO core_jobs (id, domain, kind, state, progress_done, progress_total,
                   progress_unit, created_at, started_at, finished_at, summary, error,
                   callback_url, owner)
                 VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14)
                 ON CONFLICT(id) DO UPDATE SET state=excluded.state,
                   progress_done=excluded.progress_done, progress_total=excluded.progress_total,
                   started_at=excluded.started_at, finished_at=excluded.finished_at,
                   summary=excluded.summary, error=excluded.error",
                params![
                    job.id.to_string(),
                    job.domain,
                    job.kind,
                    job.state.as_str(),
                    job.progress.done as i64,
                    job.progress.total.map(|t| t as i64),
                    job.progress.unit,
                    job.created_at.to_rfc3339(),
                    job.started_at.map(|t| t.to_rfc3339()),
                    job.finished_at.map(|t| t.to_rfc3339()),
                    summary,
                    job.error,
                    job.callback_url,
                    owner,
                ],
            )?;
            Ok(())
        })
    }
}

const JOB_COLUMNS: &str = "id, domain, kind, state, progress_done, progress_total, progress_unit,
    created_at, started_at, finished_at, summary, error, callback_url";

fn row_to_job(r: &rusqlite::Row<'_>) -> rusqlite::Result<Job> {
    let text_err = |i: usize, e: String| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Text,
            Box::<dyn std::error::Error + Send + Sync>::from(e),
        )
    };
    let time = |i: usize| -> rusqlite::Result<Option<DateTime<Utc>>> {
        let s: Option<String> = r.get(i)?;
        s.map(|s| {
            DateTime::parse_from_rfc3339(&s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| text_err(i, e.to_string()))
        })
        .transpose()
    };
    let id: String = r.get(0)?;
    let state: String = r.get(3)?;
    let summary: String = r.get(10)?;
    Ok(Job {
        id: id
            .parse()
            .map_err(|e: uuid::Error| text_err(0, e.to_string()))?,
        domain: r.get(1)?,
        kind: r.get(2)?,
        state: state.parse().map_err(|e| text_err(3, e))?,
        progress: Progress {
            done: r.get::<_, i64>(4)? as u64,
            total: r.get::<_, Option<i64>>(5)?.map(|t| t as u64),
            unit: r.get(6)?,
        },
        created_at: time(7)?.unwrap_or_default(),
        started_at: time(8)?,
        finished_at: time(9)?,
        summary: serde_json::from_str(&summary).map_err(|e| text_err(10, e.to_string()))?,
        error: r.get(11)?,
        callback_url: r.get(12)?,
    })
}

fn load(c: &Connection, id: JobId) -> Result<Option<Job>, DbError> {
    Ok(c.query_row(
        &format!("SELECT {JOB_COLUMNS} FROM core_jobs WHERE id = ?1"),
        [id.to_string()],
        row_to_job,
    )
    .optional()?)
}

fn list(c: &Connection, f: &JobFilter) -> Result<Vec<Job>, DbError> {
    let before = match f.before {
        Some(id) => c
            .query_row(
                "SELECT rowid FROM core_jobs WHERE id = ?1",
                [id.to_string()],
                |r| r.get::<_, i64>(0),
            )
            .optional()?,
        None => None,
    };
    let mut stmt = c.prepare(&format!(
        "SELECT {JOB_COLUMNS} FROM core_jobs
         WHERE (?1 IS NULL OR domain = ?1) AND (?2 IS NULL OR kind = ?2)
           AND (?3 IS NULL OR state = ?3) AND (?4 IS NULL OR rowid < ?4)
         ORDER BY rowid DESC LIMIT ?5"
    ))?;
    let jobs = stmt
        .query_map(
            params![
                f.domain,
                f.kind,
                f.state.map(JobState::as_str),
                before,
                f.limit
            ],
            row_to_job,
        )?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(jobs)
}

/// The running side of a job. Progress calls are cheap (no database write) and may be made
/// from any thread, also inside a domain's ingestion transaction.
pub struct JobHandle {
    jobs: Jobs,
    id: JobId,
    last_publish: Mutex<Instant>,
}

impl JobHandle {
    pub fn id(&self) -> JobId {
        self.id
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Job {
        self.jobs
            .lock_live()
            .get(&self.id)
            .cloned()
            .expect("a live handle has a live job")
    }

    fn update(&self, f: impl FnOnce(&mut Job)) -> Job {
        let mut live = self.jobs.lock_live();
        let job = live
            .get_mut(&self.id)
            .expect("a live handle has a live job");
        f(job);
        job.clone()
    }

    /// queued → running.
    pub fn start(&self) -> Result<(), DbError> {
        let job = self.update(|j| {
            j.state = JobState::Running;
            j.started_at = Some(Utc::now());
        });
        self.jobs.persist(&job)?;
        tracing::info!(target: LOG_TARGET, job = %job.id, domain = %job.domain, kind = %job.kind, "job started");
        self.jobs.publish("job.running", job);
        Ok(())
    }

    /// Sets the total once it is known.
    pub fn set_total(&self, total: Option<u64>) {
        let job = self.update(|j| j.progress.total = total);
        self.jobs.publish("job.progress", job);
    }

    /// Sets the amount done; published at most every 100 ms.
    pub fn set_done(&self, done: u64) {
        self.update(|j| j.progress.done = done);
        self.maybe_publish();
    }

    /// Adds to the amount done; published at most every 100 ms.
    pub fn add_done(&self, delta: u64) {
        self.update(|j| j.progress.done += delta);
        self.maybe_publish();
    }

    /// Replaces the live summary (shown in progress events).
    pub fn set_summary(&self, summary: Summary) {
        self.update(|j| j.summary = summary);
        self.maybe_publish();
    }

    /// Replaces the live summary and publishes it at once: for changes a follower must not
    /// miss (a new file started), unlike the throttled progress counts.
    pub fn publish_summary(&self, summary: Summary) {
        let job = self.update(|j| j.summary = summary);
        self.jobs.publish("job.progress", job);
    }

    fn maybe_publish(&self) {
        let mut last = self.last_publish.lock().unwrap_or_else(|p| p.into_inner());
        if last.elapsed() >= PROGRESS_EVERY {
            *last = Instant::now();
            drop(last);
            self.jobs.publish("job.progress", self.snapshot());
        }
    }

    /// Starts the job, runs `work` and ends the job with its outcome: the returned summary on
    /// success; on error, the live summary and the error's text ([`STORAGE_FULL`] for a full
    /// disk or database, whatever the domain's wording). Every job of the process is driven
    /// to its end here.
    pub fn run<E: std::error::Error + 'static>(
        self,
        work: impl FnOnce(&JobHandle) -> Result<Summary, E>,
    ) -> Result<Job, DbError> {
        if let Err(e) = self.start() {
            return self.fail(Summary::default(), failure(&e));
        }
        match work(&self) {
            Ok(summary) => self.succeed(summary),
            Err(e) => {
                let summary = self.snapshot().summary;
                self.fail(summary, failure(&e))
            }
        }
    }

    /// running → succeeded with its summary.
    pub fn succeed(self, summary: Summary) -> Result<Job, DbError> {
        self.finish(JobState::Succeeded, summary, None)
    }

    /// → failed with a reason (and whatever was done before).
    pub fn fail(self, summary: Summary, reason: impl Into<String>) -> Result<Job, DbError> {
        self.finish(JobState::Failed, summary, Some(reason.into()))
    }

    /// → cancelled.
    pub fn cancel(self, summary: Summary, reason: impl Into<String>) -> Result<Job, DbError> {
        self.finish(JobState::Cancelled, summary, Some(reason.into()))
    }

    fn finish(
        self,
        state: JobState,
        summary: Summary,
        error: Option<String>,
    ) -> Result<Job, DbError> {
        let job = self.update(|j| {
            j.state = state;
            j.finished_at = Some(Utc::now());
            if j.started_at.is_none() {
                j.started_at = j.finished_at;
            }
            if state == JobState::Succeeded {
                if let Some(total) = j.progress.total {
                    j.progress.done = total;
                }
            }
            j.summary = summary;
            j.error = error;
        });
        let persisted = self.jobs.persist(&job);
        log_end(&job);
        self.jobs.lock_live().remove(&self.id);
        self.jobs
            .publish(&format!("job.{}", state.as_str()), job.clone());
        if let Some(url) = job.callback_url.clone() {
            let body = serde_json::to_vec(&job).expect("a job serializes: plain data, string keys");
            self.jobs.inner.webhooks.send(Delivery {
                url,
                event: format!("job.{}", state.as_str()),
                job_id: job.id.to_string(),
                body: body.into(),
            });
        }
        persisted.map(|_| job)
    }
}

/// The tracing target of the one line per job start and end (`sluice` CLI commands that show
/// their own progress turn it down).
pub const LOG_TARGET: &str = "sluice::jobs";

fn log_end(job: &Job) {
    let secs = job.elapsed_secs().unwrap_or_default();
    let s = &job.summary;
    let (id, domain, kind, state) = (job.id, &job.domain, &job.kind, job.state.as_str());
    match &job.error {
        None => tracing::info!(target: LOG_TARGET, job = %id, %domain, %kind, state, secs,
            files = s.files.len(), rows_accepted = s.rows_accepted, rows_rejected = s.rows_rejected,
            "job ended"),
        Some(error) => tracing::warn!(target: LOG_TARGET, job = %id, %domain, %kind, state, secs,
            files = s.files.len(), rows_accepted = s.rows_accepted, rows_rejected = s.rows_rejected,
            %error, "job ended"),
    }
}

/// A failed job's `error`: one wording for a full disk or database, the error's own text
/// otherwise.
fn failure(e: &(dyn std::error::Error + 'static)) -> String {
    if is_storage_full(e) {
        tracing::warn!(cause = %e, "job failed: storage full");
        STORAGE_FULL.to_owned()
    } else {
        e.to_string()
    }
}

impl Drop for JobHandle {
    fn drop(&mut self) {
        // A handle dropped without finishing (a panic in the job, an early return) must not
        // leave the job running forever.
        let still_live = self.jobs.lock_live().contains_key(&self.id);
        if still_live {
            let handle = JobHandle {
                jobs: self.jobs.clone(),
                id: self.id,
                last_publish: Mutex::new(Instant::now()),
            };
            let summary = handle.snapshot().summary;
            let _ = handle.fail(summary, "the job stopped without reporting a result");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jobs() -> (tempfile::TempDir, Jobs) {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::Db::open(&dir.path().join("t.db")).unwrap();
        db.migrate("core", &migrations()).unwrap();
        (dir, Jobs::new(Database::Sqlite(db), None))
    }

    #[test]
    fn lifecycle_is_published_and_persisted() {
        let (_d, jobs) = jobs();
        let mut rx = jobs.subscribe();
        let h = jobs
            .create(NewJob::new("network", "ingest", "bytes").total(Some(10)))
            .unwrap();
        let id = h.id();
        h.start().unwrap();
        h.set_done(5);
        let mut s = Summary::default();
        s.reject("f.csv", 3, "bad");
        h.succeed(s).unwrap();
        let kinds: Vec<String> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|e| e.kind)
            .collect();
        assert_eq!(kinds.first().map(String::as_str), Some("job.queued"));
        assert!(kinds.contains(&"job.running".to_owned()));
        assert_eq!(kinds.last().map(String::as_str), Some("job.succeeded"));
        let job = jobs.get(id).unwrap().unwrap();
        assert_eq!(job.state, JobState::Succeeded);
        assert_eq!(job.progress.done, 10);
        assert_eq!(job.summary.rejections[0].line, 3);
        let listed = jobs
            .list(&JobFilter {
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(listed.len(), 1);
    }

    /// The `error` of a job that failed with `e`.
    fn error_of<E: std::error::Error + 'static>(jobs: &Jobs, e: E) -> Option<String> {
        let h = jobs.create(NewJob::new("x", "y", "rows")).unwrap();
        let job = h.run(|_| Err(e)).unwrap();
        assert_eq!(job.state, JobState::Failed);
        job.error
    }

    #[test]
    fn a_full_disk_fails_the_job_with_the_one_message_whatever_the_wording() {
        let (_d, jobs) = jobs();
        let full = || {
            rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
                Some("database or disk is full".into()),
            )
        };
        let one = Some(STORAGE_FULL.to_owned());
        // Wrapped as domains wrap it: in a `DbError`, inside an I/O error, or plain ENOSPC.
        assert_eq!(error_of(&jobs, DbError::Sqlite(full())), one);
        let wrapped = std::io::Error::other(DbError::Sqlite(full()));
        assert_eq!(error_of(&jobs, wrapped), one);
        assert_eq!(error_of(&jobs, std::io::Error::from_raw_os_error(28)), one);
        assert_eq!(
            error_of(&jobs, DbError::Task("the worker panicked".into())).as_deref(),
            Some("background task failed: the worker panicked")
        );
    }

    #[test]
    fn dropped_handle_fails_the_job() {
        let (_d, jobs) = jobs();
        let h = jobs.create(NewJob::new("x", "y", "rows")).unwrap();
        let id = h.id();
        h.start().unwrap();
        drop(h);
        let job = jobs.get(id).unwrap().unwrap();
        assert_eq!(job.state, JobState::Failed);
    }

    #[test]
    fn pruning_removes_only_finished_jobs_that_ended_before_the_cutoff() {
        let (_d, jobs) = jobs();
        let done = jobs.create(NewJob::new("x", "y", "rows")).unwrap();
        let done_id = done.id();
        done.start().unwrap();
        done.succeed(Summary::default()).unwrap();
        let running = jobs.create(NewJob::new("x", "y", "rows")).unwrap();
        running.start().unwrap();
        let hour = chrono::Duration::hours(1);
        assert_eq!(jobs.prune_finished(Utc::now() - hour).unwrap(), 0);
        assert_eq!(jobs.prune_finished(Utc::now() + hour).unwrap(), 1);
        assert!(jobs.get(done_id).unwrap().is_none());
        assert_eq!(
            jobs.get(running.id()).unwrap().unwrap().state,
            JobState::Running
        );
    }

    #[test]
    fn only_jobs_of_owners_that_stopped_are_marked_failed() {
        let (dir, jobs) = jobs();
        let h = jobs.create(NewJob::new("x", "y", "rows")).unwrap();
        let id = h.id();
        h.start().unwrap();
        // A second handle on the same database, as a second process (or a second container,
        // both pid 1) has: the first owner runs, so its job is left alone.
        let other = Jobs::new(
            Database::Sqlite(crate::Db::open(&dir.path().join("t.db")).unwrap()),
            None,
        );
        assert_eq!(other.recover_interrupted().unwrap(), 0);
        assert_eq!(other.get(id).unwrap().unwrap().state, JobState::Running);
        // What SIGKILL leaves: the job running, its owner's lock file there but not held.
        std::mem::forget(h);
        let dead = "0123456789abcdef0123456789abcdef";
        std::fs::write(dir.path().join(format!("owners/{dead}.lock")), b"").unwrap();
        let db = other.inner.db.sqlite().unwrap();
        db.write(|c| {
            c.execute("UPDATE core_jobs SET owner = ?1", [dead])
                .map_err(DbError::from)
        })
        .unwrap();
        assert_eq!(other.recover_interrupted().unwrap(), 1);
        let job = db.read(|c| load(c, id)).unwrap().unwrap();
        assert_eq!(job.state, JobState::Failed);
        assert!(job.error.unwrap().contains("interrupted"));
    }
}
