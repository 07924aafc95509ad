//! The harvest: one clock, the three streams consumed concurrently, every message admitted
//! through one [`Gate`] (arrival order, stop conditions), and one writer thread persisting
//! arrivals in batched transactions while it publishes the job's progress.
//!
//! Invariant: every admitted message is persisted, as an event or as malformed, so
//! received = persisted + malformed. Messages that arrive after the stop are not admitted.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde_json::json;
use sluice_core::jobs::NewJob;
use sluice_core::{Ctx, Database, DbError, JobHandle, JobId, Summary};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::StreamsError;
use crate::parse::{parse_message, Event, Malformed, Stream};
use crate::sse::SseParser;
use crate::store;

/// Where `sluice simulate` listens by default, so that a harvest with no source finds it
/// (the real events server's own default, `http://localhost:8080`, is `serve`'s address).
pub const DEFAULT_SIM_ADDR: &str = "127.0.0.1:8090";
pub const DEFAULT_SOURCE: &str = "http://127.0.0.1:8090";
pub const DEFAULT_USER: &str = "sytac";
pub const DEFAULT_PASSWORD: &str = "4p9g-Dv7T-u8fe-iz6y-SRW2";
pub const DEFAULT_MAX_DURATION: Duration = Duration::from_secs(20);
pub const DEFAULT_STOP_NAME: &str = "Sytac";
pub const DEFAULT_STOP_COUNT: u32 = 3;

/// What to harvest and when to stop. Built through [`HarvestParams::new`], which checks the
/// source URL.
#[derive(Clone, Debug, Serialize)]
pub struct HarvestParams {
    /// Base URL, without a trailing slash.
    pub source: String,
    pub user: String,
    #[serde(skip)]
    pub password: String,
    pub max_duration_ms: u64,
    pub stop_name: String,
    /// 0 disables the name condition.
    pub stop_count: u32,
}

/// Optional settings, each falling back to the `[streams]` config table, then the default.
#[derive(Clone, Debug, Default)]
pub struct HarvestOverrides {
    pub source: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub max_duration: Option<Duration>,
    pub stop_name: Option<String>,
    pub stop_count: Option<u32>,
}

impl HarvestParams {
    /// Resolves overrides against the `[streams]` table (`source`, `user`, `password`,
    /// `max_duration`, `stop_name`, `stop_count`) and the defaults.
    pub fn resolve(ctx: &Ctx, o: HarvestOverrides) -> Result<HarvestParams, StreamsError> {
        let table = ctx.settings.domain("streams");
        let text = |key: &str| table.get(key).and_then(|v| v.as_str()).map(str::to_owned);
        let max_duration = match o.max_duration {
            Some(d) => d,
            // A number in the file is seconds, as on the command line; any other type is
            // an error rather than silently the default.
            None => match table.get("max_duration") {
                None => DEFAULT_MAX_DURATION,
                Some(v) => {
                    let s = match (v.as_str(), v.as_integer(), v.as_float()) {
                        (Some(s), _, _) => s.to_owned(),
                        (_, Some(i), _) => i.to_string(),
                        (_, _, Some(f)) => f.to_string(),
                        _ => v.to_string(),
                    };
                    parse_duration(&s)
                        .map_err(|e| StreamsError::bad_arg("streams.max_duration", e))?
                }
            },
        };
        let stop_count = match o.stop_count {
            Some(n) => n,
            None => match table.get("stop_count").and_then(|v| v.as_integer()) {
                Some(n) => u32::try_from(n).map_err(|_| {
                    StreamsError::bad_arg("streams.stop_count", "expected a count from 0")
                })?,
                None => DEFAULT_STOP_COUNT,
            },
        };
        let source = o
            .source
            .or_else(|| text("source"))
            .unwrap_or_else(|| DEFAULT_SOURCE.to_owned());
        HarvestParams::new(
            &source,
            o.user
                .or_else(|| text("user"))
                .unwrap_or_else(|| DEFAULT_USER.into()),
            o.password
                .or_else(|| text("password"))
                .unwrap_or_else(|| DEFAULT_PASSWORD.into()),
            max_duration,
            o.stop_name
                .or_else(|| text("stop_name"))
                .unwrap_or_else(|| DEFAULT_STOP_NAME.into()),
            stop_count,
        )
    }

    pub fn new(
        source: &str,
        user: String,
        password: String,
        max_duration: Duration,
        stop_name: String,
        stop_count: u32,
    ) -> Result<HarvestParams, StreamsError> {
        let url = reqwest::Url::parse(source).map_err(|e| {
            StreamsError::bad_arg(
                "source",
                format!("`{source}` is not a URL ({e}); expected e.g. http://localhost:8080"),
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(StreamsError::bad_arg(
                "source",
                format!("`{source}` is not an http(s) URL; expected e.g. http://localhost:8080"),
            ));
        }
        if max_duration.is_zero() || max_duration > Duration::from_secs(86_400) {
            return Err(StreamsError::bad_arg(
                "max_duration",
                "expected a duration from 1 ms to 24 h",
            ));
        }
        Ok(HarvestParams {
            source: source.trim_end_matches('/').to_owned(),
            user,
            password,
            max_duration_ms: max_duration.as_millis() as u64,
            stop_name,
            stop_count,
        })
    }
}

/// `20s`, `500ms`, `2m`, `1h` or plain seconds (`20`, `1.5`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let (num, unit) = match t.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => (&t[..i], &t[i..]),
        None => (t, "s"),
    };
    let scale = match unit {
        "ms" => 0.001,
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => f64::NAN,
    };
    // `try_from_secs_f64` refuses what no Duration holds (1e300 s) instead of panicking.
    match num
        .trim()
        .parse::<f64>()
        .map(|n| Duration::try_from_secs_f64(n * scale))
    {
        Ok(Ok(d)) => Ok(d),
        Ok(Err(_)) => Err(format!(
            "`{s}` is out of range; a duration is at most 24 h (e.g. 20s, 500ms, 2m)"
        )),
        Err(_) => Err(format!(
            "`{s}` is not a duration; expected e.g. 20s, 500ms, 2m or a number of seconds"
        )),
    }
}

#[cfg(test)]
mod duration_tests {
    use super::parse_duration;

    #[test]
    fn durations_beyond_any_duration_are_errors_not_panics() {
        assert_eq!(
            parse_duration("1.5s").unwrap(),
            std::time::Duration::from_millis(1500)
        );
        for big in [
            "99999999999999999999h",
            "18446744073709551615s",
            "-1s",
            "NaN",
            "inf",
        ] {
            assert!(parse_duration(big).is_err(), "{big}");
        }
    }
}

/// A duration as people write it: `20 s`, `1.5 s`, `250 ms`.
pub fn human_ms(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{} s", ms / 1000)
    } else if ms > 1000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        format!("{ms} ms")
    }
}

/// One admitted message.
#[derive(Debug)]
pub struct Arrival {
    /// Arrival order across the run's streams.
    pub seq: i64,
    pub stream: Stream,
    pub message: Result<Event, (Malformed, String)>,
}

impl Arrival {
    /// The memory it holds, about: itself and the text of its strings.
    fn bytes(&self) -> usize {
        let text = |s: &Option<String>| s.as_ref().map_or(0, String::len);
        std::mem::size_of::<Arrival>()
            + match &self.message {
                Ok(e) => {
                    text(&e.id)
                        + e.event_date.len()
                        + text(&e.user.first_name)
                        + text(&e.user.last_name)
                        + text(&e.user.country)
                        + e.show.show_id.len()
                        + e.show.platform.len()
                        + text(&e.show.title)
                        + text(&e.show.first_actor)
                        + e.raw.len()
                }
                Err((_, raw)) => raw.len(),
            }
    }
}

/// Arrivals on their way from the consumers to the writer, in the groups one network chunk
/// produced, with the room they took.
struct Group {
    arrivals: Vec<Arrival>,
    room: u32,
}

/// The room for arrivals between the consumers and the writer, in bytes: a consumer takes
/// room for what it admitted before queueing it, the writer gives it back once that is
/// committed. A consumer that finds no room waits and stops reading its socket, so TCP holds
/// the source back: a lagging writer bounds the harvest's memory instead of a queue growing,
/// and nothing received is dropped.
struct Room {
    bytes: Semaphore,
    capacity: u32,
}

impl Room {
    fn new(capacity: u32) -> Room {
        Room {
            bytes: Semaphore::new(capacity as usize),
            capacity,
        }
    }

    /// Waits for room for `bytes`, or for all of it when one group is larger than the whole
    /// room (it then travels alone). Returns the room taken, or `None` once the writer is gone.
    async fn take(&self, bytes: usize) -> Option<u32> {
        let n = u32::try_from(bytes).map_or(self.capacity, |b| b.min(self.capacity));
        let permit = self.bytes.acquire_many(n).await.ok()?;
        permit.forget();
        Some(n)
    }

    fn give(&self, room: u32) {
        self.bytes.add_permits(room as usize);
    }

    /// The writer is gone: wakes every waiting consumer, now and later, with `None`.
    fn close(&self) {
        self.bytes.close();
    }
}

/// Why the run stopped.
#[derive(Clone, Debug, PartialEq)]
enum Stop {
    NameSeen,
    TimeLimit,
    Failed(String),
}

/// The one place messages of all streams pass: it numbers them and applies the stop
/// conditions, so that "the third Sytac is kept, nothing after it" holds across streams.
struct Gate {
    state: Mutex<GateState>,
    cancel: CancellationToken,
    stop_name: String,
    stop_count: u32,
}

struct GateState {
    next_seq: i64,
    name_seen: u32,
    stop: Option<Stop>,
}

impl Gate {
    fn lock(&self) -> std::sync::MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn admit(
        &self,
        stream: Stream,
        messages: Vec<Result<Event, (Malformed, String)>>,
    ) -> Vec<Arrival> {
        let mut st = self.lock();
        let mut out = Vec::with_capacity(messages.len());
        for message in messages {
            if st.stop.is_some() {
                break;
            }
            if let Ok(e) = &message {
                if self.stop_count > 0 && e.user.first_name.as_deref() == Some(&self.stop_name) {
                    st.name_seen += 1;
                    if st.name_seen >= self.stop_count {
                        st.stop = Some(Stop::NameSeen);
                        self.cancel.cancel();
                    }
                }
            }
            out.push(Arrival {
                seq: st.next_seq,
                stream,
                message,
            });
            st.next_seq += 1;
        }
        out
    }

    /// Stops the run; the first reason wins.
    fn stop(&self, why: Stop) {
        let mut st = self.lock();
        if st.stop.is_none() {
            st.stop = Some(why);
        }
        self.cancel.cancel();
    }
}

/// What a finished harvest did.
#[derive(Clone, Debug, Serialize)]
pub struct HarvestOutcome {
    pub run_id: String,
    pub succeeded: bool,
    pub stop_reason: Option<String>,
    pub error: Option<String>,
    pub events_per_stream: [u64; 3],
    pub malformed_per_stream: [u64; 3],
    pub reconnects_per_stream: [u64; 3],
    pub stream_ms: [Option<u64>; 3],
    pub total_ms: u64,
    /// The replaced system's runtime file of a succeeded run, once written.
    pub runtime_file: Option<PathBuf>,
}

/// Creates the harvest's job and run, and starts it. The handle yields the outcome; a
/// server may drop it (the job and the run record the result).
pub fn start(
    ctx: &Ctx,
    params: HarvestParams,
    callback_url: Option<String>,
) -> Result<(JobId, JoinHandle<Result<HarvestOutcome, StreamsError>>), StreamsError> {
    let job = ctx
        .jobs
        .create(NewJob::new(crate::NAME, "harvest", "events").callback(callback_url))?;
    let id = job.id();
    let run_id = id.to_string();
    let params_json = serde_json::to_string(&params).unwrap_or_default();
    let started = chrono::Local::now();
    let started_iso = sluice_core::time::iso(started.with_timezone(&chrono::Utc));
    store::insert_run(
        &ctx.db,
        &store::NewRun {
            run_id: &run_id,
            source: &params.source,
            params_json: &params_json,
            started_at: &started_iso,
        },
    )?;
    job.start()?;
    let runtime = RuntimeFile {
        dir: ctx.settings.reports_dir(crate::NAME),
        stamp: started.format(RUNTIME_STAMP_FORMAT).to_string(),
    };
    let db = ctx.db.clone();
    Ok((id, tokio::spawn(run(db, run_id, params, job, runtime))))
}

/// `strftime` of the runtime file's stamp: the run's local start time, as the original named
/// its runs.
const RUNTIME_STAMP_FORMAT: &str = "%Y%m%d_%H%M%S";

/// The replaced system's runtime file of a run: `exec_report_<stamp>.txt` in the reports
/// folder, a title line and how long each stream was listened to.
struct RuntimeFile {
    dir: PathBuf,
    stamp: String,
}

impl RuntimeFile {
    /// The original's text: its title and lines, trailing spaces included, seconds as Python
    /// printed floats.
    fn text(&self, times: &[Option<Duration>; 3]) -> String {
        let mut text = format!("EXECUTION TIME FOR RUN {} \n", self.stamp);
        for (stream, time) in Stream::ALL.iter().zip(times) {
            if let Some(t) = time {
                text.push_str(&format!(
                    "{} was listened for {} seconds. \n",
                    stream.name(),
                    crate::compat::py_float_str(t.as_secs_f64())
                ));
            }
        }
        text
    }

    /// Writes the file; two runs started in the same second keep both files, the later one
    /// with a `_<n>` suffix.
    fn write(&self, times: &[Option<Duration>; 3]) -> Result<PathBuf, StreamsError> {
        let failed = |path: &Path, source| StreamsError::Write {
            path: path.to_owned(),
            source,
        };
        std::fs::create_dir_all(&self.dir).map_err(|e| failed(&self.dir, e))?;
        let text = self.text(times);
        for n in 1u32.. {
            let name = match n {
                1 => format!("exec_report_{}.txt", self.stamp),
                n => format!("exec_report_{}_{n}.txt", self.stamp),
            };
            let path = self.dir.join(name);
            match std::fs::File::create_new(&path) {
                Ok(mut f) => {
                    f.write_all(text.as_bytes()).map_err(|e| failed(&path, e))?;
                    return Ok(path);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(failed(&path, e)),
            }
        }
        Err(failed(
            &self.dir,
            std::io::Error::other("no free runtime file name"),
        ))
    }
}

/// The initial pause before reconnecting; doubled after each failure up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Arrivals persisted per transaction at most, by count and by [`Arrival::bytes`]: the
/// transaction's dirty pages stay within the page cache the store gives it.
const BATCH: usize = 8192;
const BATCH_BYTES: usize = 4 << 20;
/// The [`Room`] between the consumers and the writer: a few batches, so that the next batch
/// is waiting whenever a commit ends.
const IN_FLIGHT_BYTES: u32 = 16 << 20;

async fn run(
    db: Database,
    run_id: String,
    params: HarvestParams,
    job: JobHandle,
    runtime: RuntimeFile,
) -> Result<HarvestOutcome, StreamsError> {
    let gate = Arc::new(Gate {
        state: Mutex::new(GateState {
            next_seq: 0,
            name_seen: 0,
            stop: None,
        }),
        cancel: CancellationToken::new(),
        stop_name: params.stop_name.clone(),
        stop_count: params.stop_count,
    });
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        // A stream silent for this long is taken as dropped and reconnected.
        .read_timeout(Duration::from_secs(30))
        .tcp_nodelay(true)
        .build()
        .map_err(|e| StreamsError::Client(e.to_string()))?;
    // Unbounded in count, bounded in bytes by the room: one send per network chunk.
    let (tx, rx) = mpsc::unbounded_channel::<Group>();
    let room = Arc::new(Room::new(IN_FLIGHT_BYTES));
    let clock = Instant::now();
    let params = Arc::new(params);
    let reconnects: Arc<[AtomicU64; 3]> = Arc::new(Default::default());

    let writer = {
        let (db, run_id, gate, stop_name, room) = (
            db.clone(),
            run_id.clone(),
            gate.clone(),
            params.stop_name.clone(),
            room.clone(),
        );
        tokio::task::spawn_blocking(move || {
            let tally = write_arrivals(&db, &run_id, rx, &room, &job, &stop_name);
            room.close();
            if let Err(e) = &tally {
                gate.stop(Stop::Failed(format!("persisting events failed: {e}")));
            }
            (job, tally)
        })
    };
    let tasks: Vec<_> = Stream::ALL
        .into_iter()
        .map(|stream| {
            let (client, params, gate, tx, room, reconnects) = (
                client.clone(),
                params.clone(),
                gate.clone(),
                tx.clone(),
                room.clone(),
                reconnects.clone(),
            );
            tokio::spawn(async move {
                let result =
                    consume(stream, &client, &params, &gate, &tx, &room, &reconnects).await;
                if let Err(e) = &result {
                    gate.stop(Stop::Failed(e.to_string()));
                }
                clock.elapsed()
            })
        })
        .collect();
    drop(tx);
    let deadline = clock + Duration::from_millis(params.max_duration_ms);
    let timer = async {
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => gate.stop(Stop::TimeLimit),
            _ = gate.cancel.cancelled() => {}
        }
    };
    let (ends, ()) = tokio::join!(futures::future::join_all(tasks), timer);
    let total_ms = clock.elapsed().as_millis() as u64;
    let mut stream_time = [None; 3];
    for (i, end) in ends.into_iter().enumerate() {
        stream_time[i] = end.ok();
    }
    let stream_ms = stream_time.map(|t| t.map(|d| d.as_millis() as u64));
    let (job, tally) = writer
        .await
        .map_err(|e| StreamsError::Client(format!("the writer stopped: {e}")))?;
    let tally = tally.unwrap_or_default();

    let stop = gate.lock().stop.clone();
    let (stop_reason, error) = match stop {
        Some(Stop::NameSeen) => (
            Some(format!(
                "{} seen {} times",
                params.stop_name, params.stop_count
            )),
            None,
        ),
        Some(Stop::TimeLimit) => (
            Some(format!(
                "time limit of {} reached",
                human_ms(params.max_duration_ms)
            )),
            None,
        ),
        Some(Stop::Failed(e)) => (None, Some(e)),
        None => (
            None,
            Some("the harvest ended without a stop condition".into()),
        ),
    };
    let finished = sluice_core::time::iso(chrono::Utc::now());
    let end = store::RunEnd {
        succeeded: error.is_none(),
        finished_at: &finished,
        stop_reason: stop_reason.as_deref(),
        error: error.as_deref(),
        stream_ms,
        total_ms,
    };
    store::finish_run(&db, &run_id, &end)?;
    let runtime_file = match &error {
        Some(_) => None,
        None => runtime
            .write(&stream_time)
            .inspect_err(|e| tracing::warn!(error = %e, "cannot write the runtime file"))
            .ok(),
    };
    let outcome = HarvestOutcome {
        run_id,
        succeeded: error.is_none(),
        stop_reason,
        error,
        events_per_stream: tally.events,
        malformed_per_stream: tally.malformed,
        reconnects_per_stream: std::array::from_fn(|i| reconnects[i].load(Ordering::Relaxed)),
        stream_ms,
        total_ms,
        runtime_file,
    };
    let summary = tally.summary(&outcome, &params.stop_name);
    match &outcome.error {
        None => job.succeed(summary)?,
        Some(e) => job.fail(summary, e.clone())?,
    };
    Ok(outcome)
}

/// Consumes one stream until the gate closes: connect, parse, admit, wait for room, send;
/// reconnect with back-off when the connection drops or fails. A 4xx answer ends it with an
/// error.
async fn consume(
    stream: Stream,
    client: &reqwest::Client,
    params: &HarvestParams,
    gate: &Gate,
    tx: &mpsc::UnboundedSender<Group>,
    room: &Room,
    reconnects: &[AtomicU64; 3],
) -> Result<(), StreamsError> {
    let url = format!("{}/{}", params.source, stream.name());
    let cancel = &gate.cancel;
    let mut backoff = FIRST_BACKOFF;
    let mut last_id: Option<String> = None;
    let mut connected_once = false;
    // A source that never answered is taken as wrong, not as down for a moment.
    let mut answered = false;
    while !cancel.is_cancelled() {
        if connected_once {
            reconnects[stream.index()].fetch_add(1, Ordering::Relaxed);
        }
        connected_once = true;
        let mut req = client
            .get(&url)
            .basic_auth(&params.user, Some(&params.password))
            .header(reqwest::header::ACCEPT, "text/event-stream");
        if let Some(id) = &last_id {
            req = req.header("Last-Event-ID", id);
        }
        let sent = tokio::select! {
            _ = cancel.cancelled() => break,
            r = req.send() => r,
        };
        let mut resp = match sent {
            Ok(r) if r.status().is_success() => {
                answered = true;
                r
            }
            Ok(r) if r.status().is_client_error() => {
                let status = r.status();
                return Err(if matches!(status.as_u16(), 401 | 403) {
                    StreamsError::Refused {
                        stream,
                        url,
                        status,
                    }
                } else {
                    StreamsError::Rejected {
                        stream,
                        url,
                        status,
                    }
                });
            }
            Ok(r) => {
                answered = true;
                tracing::warn!(%stream, status = %r.status(), "source error; retrying");
                pause(cancel, &mut backoff).await;
                continue;
            }
            Err(e) if !answered => {
                let mut detail = e.to_string();
                let mut cause = std::error::Error::source(&e);
                while let Some(c) = cause {
                    detail = format!("{detail}: {c}");
                    cause = c.source();
                }
                return Err(StreamsError::Unreachable {
                    stream,
                    url,
                    detail,
                });
            }
            Err(e) => {
                tracing::warn!(%stream, error = %e, "cannot connect; retrying");
                pause(cancel, &mut backoff).await;
                continue;
            }
        };
        backoff = FIRST_BACKOFF;
        let mut parser = SseParser::new();
        loop {
            let chunk = tokio::select! {
                biased;
                _ = cancel.cancelled() => return Ok(()),
                c = resp.chunk() => c,
            };
            let bytes = match chunk {
                Ok(Some(b)) => b,
                Ok(None) => {
                    tracing::warn!(%stream, "the source closed the stream; reconnecting");
                    break;
                }
                Err(e) => {
                    tracing::warn!(%stream, error = %e, "connection dropped; reconnecting");
                    break;
                }
            };
            let mut parsed = Vec::new();
            parser.feed(&bytes, &mut |m| {
                if let Some(id) = &m.id {
                    last_id = Some(id.clone());
                }
                parsed.push(parse_message(m));
            });
            if parsed.is_empty() {
                continue;
            }
            let admitted = gate.admit(stream, parsed);
            if admitted.is_empty() {
                continue;
            }
            // Admitted messages are persisted whatever happens next, so this wait is not
            // cut short by the stop; only the writer's end (which stopped the gate with its
            // reason) ends it.
            let Some(taken) = room.take(admitted.iter().map(Arrival::bytes).sum()).await else {
                return Ok(());
            };
            let group = Group {
                arrivals: admitted,
                room: taken,
            };
            if tx.send(group).is_err() {
                return Ok(());
            }
        }
        pause(cancel, &mut backoff).await;
    }
    Ok(())
}

async fn pause(cancel: &CancellationToken, backoff: &mut Duration) {
    tokio::select! {
        _ = cancel.cancelled() => {}
        _ = tokio::time::sleep(*backoff) => {}
    }
    *backoff = (*backoff * 2).min(MAX_BACKOFF);
}

/// What the writer persisted.
#[derive(Default)]
struct Tally {
    events: [u64; 3],
    malformed: [u64; 3],
    name_seen: u64,
    summary: Summary,
}

impl Tally {
    fn add(&mut self, a: &Arrival, stop_name: &str) {
        match &a.message {
            Ok(e) => {
                self.events[a.stream.index()] += 1;
                self.summary.rows_accepted += 1;
                if e.user.first_name.as_deref() == Some(stop_name) {
                    self.name_seen += 1;
                }
            }
            Err((reason, _)) => {
                self.malformed[a.stream.index()] += 1;
                self.summary
                    .reject(a.stream.name(), a.seq as u64, reason.to_string());
            }
        }
    }

    fn live_summary(&self, stop_name: &str) -> Summary {
        let mut s = self.summary.clone();
        s.extra = serde_json::Map::from_iter([
            ("events_per_stream".into(), per_stream(self.events)),
            ("malformed_per_stream".into(), per_stream(self.malformed)),
            ("stop_name".into(), json!(stop_name)),
            ("stop_name_seen".into(), json!(self.name_seen)),
        ]);
        s
    }

    fn summary(&self, o: &HarvestOutcome, stop_name: &str) -> Summary {
        let mut s = self.live_summary(stop_name);
        s.extra.extend([
            ("run_id".into(), json!(o.run_id)),
            ("stop_reason".into(), json!(o.stop_reason)),
            (
                "reconnects_per_stream".into(),
                per_stream(o.reconnects_per_stream),
            ),
            ("runtime_file".into(), json!(o.runtime_file)),
            (
                "consumption_ms".into(),
                json!({
                    "sytflix": o.stream_ms[0], "sytazon": o.stream_ms[1],
                    "sysney": o.stream_ms[2], "total": o.total_ms,
                }),
            ),
        ]);
        s
    }
}

fn per_stream(a: [u64; 3]) -> serde_json::Value {
    json!({"sytflix": a[0], "sytazon": a[1], "sysney": a[2]})
}

/// The writer thread: drains the channel in batches of at most about [`BATCH`] arrivals or
/// [`BATCH_BYTES`], one transaction each, gives their room back once they are committed and
/// dropped, and publishes progress after each commit.
fn write_arrivals(
    db: &Database,
    run_id: &str,
    mut rx: mpsc::UnboundedReceiver<Group>,
    room: &Room,
    job: &JobHandle,
    stop_name: &str,
) -> Result<Tally, DbError> {
    let mut tally = Tally::default();
    while let Some(first) = rx.blocking_recv() {
        let mut batch = first.arrivals;
        // What the batch's groups took of the room, which is their size unless one was
        // larger than the whole room; never more than the room, so no overflow.
        let mut taken = first.room;
        while batch.len() < BATCH && (taken as usize) < BATCH_BYTES {
            match rx.try_recv() {
                Ok(more) => {
                    taken += more.room;
                    batch.extend(more.arrivals);
                }
                Err(_) => break,
            }
        }
        store::insert_batch(db, run_id, &batch)?;
        for a in &batch {
            tally.add(a, stop_name);
        }
        drop(batch);
        job.set_done(tally.summary.rows_accepted);
        job.set_summary(tally.live_summary(stop_name));
        room.give(taken);
    }
    Ok(tally)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("20s").unwrap(), Duration::from_secs(20));
        assert_eq!(parse_duration("20").unwrap(), Duration::from_secs(20));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1s").is_err());
        assert_eq!(human_ms(20_000), "20 s");
        assert_eq!(human_ms(1_500), "1.5 s");
    }

    #[test]
    fn runtime_file_has_the_original_lines() {
        let dir = tempfile::tempdir().unwrap();
        let file = RuntimeFile {
            dir: dir.path().join("reports/streams"),
            stamp: "20231207_170121".into(),
        };
        let times = [
            Some(Duration::from_nanos(19_695_771_932)),
            Some(Duration::from_secs(20)),
            None,
        ];
        let want = "EXECUTION TIME FOR RUN 20231207_170121 \n\
            sytflix was listened for 19.695771932 seconds. \n\
            sytazon was listened for 20.0 seconds. \n";
        assert_eq!(file.text(&times), want);
        let first = file.write(&times).unwrap();
        let second = file.write(&times).unwrap();
        assert_eq!(
            first,
            dir.path()
                .join("reports/streams/exec_report_20231207_170121.txt")
        );
        assert_eq!(
            second,
            dir.path()
                .join("reports/streams/exec_report_20231207_170121_2.txt")
        );
        assert_eq!(std::fs::read_to_string(first).unwrap(), want);
    }

    #[tokio::test]
    async fn room_is_given_back_by_the_writer() {
        use futures::FutureExt as _;
        let room = Room::new(100);
        assert_eq!(room.take(60).await, Some(60));
        // 60 more do not fit until the first 60 are given back.
        assert_eq!(room.take(60).now_or_never(), None);
        room.give(60);
        assert_eq!(room.take(60).now_or_never(), Some(Some(60)));
    }

    #[tokio::test]
    async fn a_group_larger_than_the_room_travels_alone() {
        use futures::FutureExt as _;
        let room = Room::new(100);
        assert_eq!(room.take(10).await, Some(10));
        assert_eq!(room.take(1000).now_or_never(), None);
        room.give(10);
        // It takes the whole room rather than waiting for room that can never be.
        assert_eq!(room.take(1000).now_or_never(), Some(Some(100)));
        assert_eq!(room.take(1).now_or_never(), None);
    }

    #[tokio::test]
    async fn a_closed_room_releases_waiting_consumers() {
        let room = Arc::new(Room::new(100));
        assert_eq!(room.take(100).await, Some(100));
        let waiting = tokio::spawn({
            let room = room.clone();
            async move { room.take(1).await }
        });
        tokio::task::yield_now().await;
        room.close();
        assert_eq!(waiting.await.unwrap(), None);
        assert_eq!(room.take(1).await, None);
    }

    #[test]
    fn source_must_be_http() {
        let p = |s: &str| {
            HarvestParams::new(
                s,
                "u".into(),
                "p".into(),
                Duration::from_secs(1),
                "S".into(),
                3,
            )
        };
        assert_eq!(p("http://h:1/").unwrap().source, "http://h:1");
        assert!(p("ftp://h").is_err());
        assert!(p("not a url").is_err());
    }
}
