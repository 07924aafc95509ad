//! The source simulator: the three endpoints of the real events server, with its wire format
//! (`id:`/`event:`/`data:` without a space, endless chunked responses) and Basic auth.
//!
//! Two modes: random events from a stable world of users and shows (a deterministic seed,
//! a rate, bursts, a share of malformed messages), or the replay of capture files with their
//! original timing (taken from each event's `event_date`) or as fast as possible. A replay
//! honours `Last-Event-ID`, so a harvester that reconnects continues where it was.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use futures::{Stream as FutStream, StreamExt};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::error::StreamsError;
use crate::parse::{parse_message, zone_for, Stream, EVENT_DATE_FORMAT};
use crate::sse::parse_all;

/// What the simulator serves.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub user: String,
    pub password: String,
    pub mode: SimMode,
}

#[derive(Clone, Debug)]
pub enum SimMode {
    Random(RandomConfig),
    Replay { dir: PathBuf, timing: ReplayTiming },
}

#[derive(Clone, Debug)]
pub struct RandomConfig {
    pub seed: u64,
    /// Events per second per stream; `None` is as fast as possible.
    pub rate: Option<f64>,
    /// Share of malformed messages, 0 to 1.
    pub malformed_share: f64,
}

#[derive(Clone, Copy, Debug)]
pub enum ReplayTiming {
    /// The capture's own pace, sped up by a factor.
    Original {
        speed: f64,
    },
    Fast,
}

/// A running simulator. Dropping it (or [`Simulator::stop`]) cuts every connection.
pub struct Simulator {
    pub addr: SocketAddr,
    state: Arc<SimState>,
    shutdown: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl Simulator {
    /// Listens on `addr` (port 0 for a random one) and serves in the background.
    pub async fn start(addr: SocketAddr, config: SimConfig) -> Result<Simulator, StreamsError> {
        let source = match &config.mode {
            SimMode::Random(r) => {
                if !(0.0..=1.0).contains(&r.malformed_share) {
                    return Err(StreamsError::bad_arg(
                        "malformed",
                        "expected a share from 0 to 1",
                    ));
                }
                if r.rate.is_some_and(|x| !(x > 0.0 && x.is_finite())) {
                    return Err(StreamsError::bad_arg("rate", "expected events/s above 0"));
                }
                Source::Random(Arc::new(World::new(r.seed)), r.clone())
            }
            SimMode::Replay { dir, timing } => {
                if let ReplayTiming::Original { speed } = timing {
                    if !(*speed > 0.0 && speed.is_finite()) {
                        return Err(StreamsError::bad_arg("speed", "expected a factor above 0"));
                    }
                }
                Source::Replay(Arc::new(Capture::load(dir)?), *timing)
            }
        };
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| StreamsError::Bind { addr, source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| StreamsError::Bind { addr, source })?;
        let shutdown = CancellationToken::new();
        let auth = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", config.user, config.password))
        );
        let state = Arc::new(SimState {
            auth,
            source,
            shutdown: shutdown.clone(),
            connections: Default::default(),
            sent: AtomicU64::new(0),
        });
        let app = axum::Router::new()
            .route("/{stream}", get(serve_stream))
            .with_state(state.clone());
        let stop = shutdown.clone();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
            if let Err(e) = served {
                tracing::error!(error = %e, "simulator stopped");
            }
        });
        Ok(Simulator {
            addr,
            state,
            shutdown,
            task: Some(task),
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Messages handed to connections so far (some may still be in socket buffers).
    pub fn sent(&self) -> u64 {
        self.state.sent.load(Ordering::Relaxed)
    }

    /// Cuts every connection mid-stream (as a crash would) and stops listening.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

struct SimState {
    auth: String,
    source: Source,
    shutdown: CancellationToken,
    /// Numbers each stream's connections, so that each gets its own deterministic sequence
    /// and a fresh simulator sends the same events to every first client.
    connections: [AtomicU64; 3],
    sent: AtomicU64,
}

enum Source {
    Random(Arc<World>, RandomConfig),
    Replay(Arc<Capture>, ReplayTiming),
}

async fn serve_stream(
    State(state): State<Arc<SimState>>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let authorized = headers
        .get(header::AUTHORIZATION)
        .is_some_and(|v| v.as_bytes() == state.auth.as_bytes());
    if !authorized {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Basic realm=\"events\"")],
            "unauthorized\n",
        )
            .into_response();
    }
    let Ok(stream) = name.parse::<Stream>() else {
        return (StatusCode::NOT_FOUND, "no such stream\n").into_response();
    };
    let last_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let n = state.connections[stream.index()].fetch_add(1, Ordering::Relaxed);
    let body: std::pin::Pin<Box<dyn FutStream<Item = (Bytes, u64)> + Send>> = match &state.source {
        Source::Random(world, cfg) => Box::pin(random_body(world.clone(), cfg.clone(), stream, n)),
        Source::Replay(capture, timing) => {
            Box::pin(replay_body(capture.clone(), *timing, stream, last_id))
        }
    };
    let counter = state.clone();
    let body = body.map(move |(bytes, messages)| {
        counter.sent.fetch_add(messages, Ordering::Relaxed);
        bytes
    });
    // On shutdown the body fails, which aborts the connection the way a crash would.
    let cut = state.shutdown.clone().cancelled_owned();
    let body = body
        .map(Ok::<_, std::io::Error>)
        .take_until(cut)
        .chain(futures::stream::once(async {
            Err(std::io::Error::other("simulator stopped"))
        }));
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(body),
    )
        .into_response()
}

/// A simulated user, serialized once.
struct SimUser {
    json: String,
    zone: usize,
}

/// The stable world random events are drawn from: users (one named Sytac) and the shows of
/// each platform.
struct World {
    users: Vec<SimUser>,
    zones: Vec<Tz>,
    shows: [Vec<String>; 3],
}

const FIRST: &[&str] = &[
    "Johnny",
    "Tony",
    "Danella",
    "Mariska",
    "Hasheem",
    "Daven",
    "Joceline",
    "Vivia",
    "Heriberto",
    "Herculie",
    "Ann",
    "Pieter",
    "Sanne",
    "Mikhail",
    "Ayu",
    "Li",
    "Chloé",
    "José",
    "Søren",
    "Zoë",
];
const LAST: &[&str] = &[
    "Johnke",
    "Duffit",
    "Reinhard",
    "Ribbon",
    "Roon",
    "Capelin",
    "Eadon",
    "de Vries",
    "Müller",
    "Ivanova",
    "Wijaya",
    "Wang",
    "Dubois",
    "Gonçalves",
    "Kowalski",
    "Østergaard",
    "Nakamura",
];
const COUNTRIES: &[&str] = &[
    "PT", "CA", "US", "RU", "ID", "CN", "NL", "DE", "FR", "AF", "BR", "SE", "CZ",
];
const SYLLABLES: &[&str] = &[
    "qa", "ze", "lo", "mi", "ru", "xa", "ve", "do", "ki", "sü", "ña", "bo", "té", "ly", "wo",
];
const GENRES: &[&str] = &[
    "Dramas",
    "Comedies",
    "Documentaries",
    "Reality TV",
    "TV Horror",
    "International Movies",
];
const USERS: usize = 50;
const SHOWS: usize = 40;

fn word(rng: &mut ChaCha8Rng, syllables: usize) -> String {
    let mut w: String = (0..syllables)
        .map(|_| SYLLABLES[rng.random_range(..SYLLABLES.len())])
        .collect();
    if let Some(first) = w.chars().next() {
        w.replace_range(..first.len_utf8(), &first.to_uppercase().to_string());
    }
    w
}

impl World {
    fn new(seed: u64) -> World {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let zones: Vec<Tz> = COUNTRIES.iter().map(|c| zone_for(Some(c))).collect();
        let users = (1..=USERS as i64)
            .map(|id| {
                // User 22 is Sytac Blumson, as in the real captures.
                let (first, last) = if id == 22 {
                    ("Sytac".to_owned(), "Blumson".to_owned())
                } else {
                    (
                        FIRST[rng.random_range(..FIRST.len())].to_owned(),
                        LAST[rng.random_range(..LAST.len())].to_owned(),
                    )
                };
                let zone = rng.random_range(..COUNTRIES.len());
                let json = serde_json::json!({
                    "id": id,
                    "date_of_birth": format!("{:02}/{:02}/{}", rng.random_range(1..=28), rng.random_range(1..=12), rng.random_range(1950..=2008)),
                    "email": format!("{}.{}@example.com", first.to_lowercase(), id),
                    "first_name": first,
                    "gender": if rng.random_bool(0.5) { "Female" } else { "Male" },
                    "ip_address": if rng.random_bool(0.1) { None } else { Some(format!("{}.{}.{}.{}", rng.random_range(1..=223), rng.random::<u8>(), rng.random::<u8>(), rng.random_range(1..=254))) },
                    "country": COUNTRIES[zone],
                    "last_name": last,
                })
                .to_string();
                SimUser { json, zone }
            })
            .collect();
        let shows = Stream::ALL.map(|stream| {
            (1..=SHOWS)
                .map(|i| {
                    let cast: Option<String> = rng.random_bool(0.85).then(|| {
                        (0..rng.random_range(1..6))
                            .map(|_| format!("{} {}", word(&mut rng, 2), word(&mut rng, 3)))
                            .collect::<Vec<_>>()
                            .join(", ")
                    });
                    serde_json::json!({
                        "show_id": format!("s{i}"),
                        "cast": cast,
                        "country": if rng.random_bool(0.2) { None } else { Some("United States") },
                        "date_added": "July 22, 2021",
                        "description": (0..12).map(|_| word(&mut rng, 2)).collect::<Vec<_>>().join(" "),
                        "director": rng.random_bool(0.7).then(|| format!("{} {}", word(&mut rng, 2), word(&mut rng, 2))),
                        "duration": format!("{} min", rng.random_range(8..180)),
                        "listed_in": GENRES[rng.random_range(..GENRES.len())],
                        "rating": "TV-14",
                        "release_year": rng.random_range(1990..=2024),
                        "title": format!("{} {}", word(&mut rng, 2), word(&mut rng, 3)),
                        "type": if rng.random_bool(0.5) { "Movie" } else { "TV Show" },
                        "platform": stream.platform(),
                    })
                    .to_string()
                })
                .collect()
        });
        World {
            users,
            zones,
            shows,
        }
    }
}

/// One connection's event generator: users start shows and then mostly finish them, so
/// that successful streams occur as in real traffic.
struct Generator {
    world: Arc<World>,
    stream: Stream,
    rng: ChaCha8Rng,
    malformed_share: f64,
    /// The show each user is watching, if any.
    watching: Vec<Option<usize>>,
}

impl Generator {
    fn new(world: Arc<World>, cfg: &RandomConfig, stream: Stream, connection: u64) -> Self {
        let seed = cfg.seed
            ^ (stream.index() as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ connection.wrapping_mul(0xD1B5_4A32_D192_ED03);
        Generator {
            watching: vec![None; world.users.len()],
            world,
            stream,
            rng: ChaCha8Rng::seed_from_u64(seed),
            malformed_share: cfg.malformed_share,
        }
    }

    /// Appends `n` messages stamped `now` to `out`.
    fn write(&mut self, n: usize, now: DateTime<Utc>, out: &mut Vec<u8>) {
        use std::io::Write;
        let mut dates: Vec<Option<String>> = vec![None; self.world.zones.len()];
        for _ in 0..n {
            let u = self.rng.random_range(..self.world.users.len());
            let (kind, show) = match self.watching[u] {
                Some(show) => {
                    let kind = match self.rng.random_range(0..100) {
                        0..70 => "stream-finished",
                        70..85 => "stream-interrupted",
                        _ => "show-liked",
                    };
                    if kind != "show-liked" {
                        self.watching[u] = None;
                    }
                    (kind, show)
                }
                None => {
                    let show = self.rng.random_range(..self.world.shows[0].len());
                    let kind = if self.rng.random_bool(0.7) {
                        self.watching[u] = Some(show);
                        "stream-started"
                    } else {
                        "show-liked"
                    };
                    (kind, show)
                }
            };
            let user = &self.world.users[u];
            let date = dates[user.zone].get_or_insert_with(|| {
                now.with_timezone(&self.world.zones[user.zone])
                    .format(EVENT_DATE_FORMAT)
                    .to_string()
            });
            let id = uuid::Builder::from_random_bytes(self.rng.random()).into_uuid();
            let show_json = &self.world.shows[self.stream.index()][show];
            let payload = format!(
                "{{\"show\":{show_json},\"event_date\":\"{date}\",\"user\":{}}}",
                user.json
            );
            let _ = if self.malformed_share > 0.0 && self.rng.random_bool(self.malformed_share) {
                match self.rng.random_range(0..5) {
                    0 => write!(out, "id:{id}\ndata:{payload}\n\n"),
                    1 => write!(out, "id:{id}\nevent:{kind}\n\n"),
                    2 => write!(out, "id:{id}\nevent:{kind}\ndata:{{\"show\":\n\n"),
                    3 => write!(out, "id:{id}\nevent:{kind}\ndata:x{payload}\n\n"),
                    _ => write!(
                        out,
                        "id:{id}\nevent:{kind}\ndata:{{\"event_date\":\"{date}\"}}\n\n"
                    ),
                }
            } else {
                write!(out, "id:{id}\nevent:{kind}\ndata:{payload}\n\n")
            };
        }
    }
}

/// Events per chunk at full speed.
const FULL_SPEED_CHUNK: usize = 128;

fn random_body(
    world: Arc<World>,
    cfg: RandomConfig,
    stream: Stream,
    connection: u64,
) -> impl FutStream<Item = (Bytes, u64)> + Send {
    let gen = Generator::new(world, &cfg, stream, connection);
    let rate = cfg.rate;
    // Carry of fractional events between ticks.
    futures::stream::unfold((gen, 0.0f64), move |(mut gen, carry)| async move {
        let mut out = Vec::new();
        let (n, carry) = match rate {
            None => {
                // Let other connections (and the harvester) run between chunks.
                tokio::task::yield_now().await;
                gen.write(FULL_SPEED_CHUNK, Utc::now(), &mut out);
                (FULL_SPEED_CHUNK, 0.0)
            }
            Some(rate) => {
                let tick = Duration::from_secs_f64((1.0 / rate).clamp(0.01, 0.1));
                tokio::time::sleep(tick).await;
                // One tick in twenty is a burst of three ticks' worth.
                let burst = if gen.rng.random_bool(0.05) { 3.0 } else { 1.0 };
                let due = carry + rate * tick.as_secs_f64() * burst;
                gen.write(due as usize, Utc::now(), &mut out);
                (due as usize, due.fract())
            }
        };
        Some(((Bytes::from(out), n as u64), (gen, carry)))
    })
}

/// Capture files loaded for replay: per stream its messages, each with its delay from the
/// earliest event of all streams.
struct Capture {
    streams: [Vec<ReplayMessage>; 3],
}

/// A loaded message: its id, its wire text, and its time when it is a well-formed event.
type Timed = (Option<String>, Bytes, Option<DateTime<Utc>>);

struct ReplayMessage {
    id: Option<String>,
    wire: Bytes,
    offset: Duration,
}

impl Capture {
    /// Takes, for each stream, the file of `dir` whose name contains the stream's name
    /// (`sytflix-events.stream`); a stream without a file sends nothing.
    fn load(dir: &Path) -> Result<Capture, StreamsError> {
        let err = |detail: String| StreamsError::Replay {
            path: dir.to_owned(),
            detail,
        };
        let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| err(e.to_string()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        names.sort();
        let mut timed: [Vec<Timed>; 3] = Default::default();
        let mut found = false;
        for stream in Stream::ALL {
            let Some(path) = names.iter().find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.to_lowercase().contains(stream.name()))
            }) else {
                continue;
            };
            found = true;
            let bytes = std::fs::read(path).map_err(|e| err(format!("{}: {e}", path.display())))?;
            for m in parse_all(&bytes) {
                let wire = Bytes::from(format!("{}\n\n", m.raw));
                let id = m.id.clone();
                let at = parse_message(m).ok().map(|e| e.at);
                timed[stream.index()].push((id, wire, at));
            }
        }
        if !found {
            return Err(err(
                "no file named after sytflix, sytazon or sysney (e.g. sytflix-events.stream)"
                    .into(),
            ));
        }
        let origin = timed.iter().flatten().filter_map(|m| m.2).min();
        let streams = timed.map(|messages| {
            let mut offset = Duration::ZERO;
            messages
                .into_iter()
                .map(|(id, wire, at)| {
                    // A message without a time (malformed) goes right after its predecessor.
                    if let (Some(at), Some(origin)) = (at, origin) {
                        offset = (at - origin).to_std().unwrap_or_default();
                    }
                    ReplayMessage { id, wire, offset }
                })
                .collect()
        });
        Ok(Capture { streams })
    }
}

fn replay_body(
    capture: Arc<Capture>,
    timing: ReplayTiming,
    stream: Stream,
    last_id: Option<String>,
) -> impl FutStream<Item = (Bytes, u64)> + Send {
    let messages = &capture.streams[stream.index()];
    let from = last_id
        .and_then(|id| messages.iter().position(|m| m.id.as_deref() == Some(&id)))
        .map_or(0, |i| i + 1);
    let skipped = messages.get(from).map_or(Duration::ZERO, |m| m.offset);
    let start = tokio::time::Instant::now();
    futures::stream::unfold(from, move |i| {
        let capture = capture.clone();
        async move {
            let messages = &capture.streams[stream.index()];
            let first = messages.get(i)?;
            if let ReplayTiming::Original { speed } = timing {
                let due = (first.offset.saturating_sub(skipped)).div_f64(speed);
                tokio::time::sleep_until(start + due).await;
            }
            // Everything due by now goes out in one chunk.
            let now = start.elapsed();
            let mut end = i + 1;
            while let Some(m) = messages.get(end) {
                let due = match timing {
                    ReplayTiming::Original { speed } => {
                        m.offset.saturating_sub(skipped).div_f64(speed)
                    }
                    ReplayTiming::Fast => Duration::ZERO,
                };
                if due > now {
                    break;
                }
                end += 1;
            }
            let chunk: Vec<u8> = messages[i..end]
                .iter()
                .flat_map(|m| m.wire.iter().copied())
                .collect();
            Some(((Bytes::from(chunk), (end - i) as u64), end))
        }
    })
    // The real source never ends its responses; neither does a finished replay.
    .chain(futures::stream::pending())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sse::SseParser;

    #[test]
    fn random_events_are_deterministic_and_mostly_well_formed() {
        let world = Arc::new(World::new(7));
        let cfg = RandomConfig {
            seed: 7,
            rate: None,
            malformed_share: 0.1,
        };
        let now = DateTime::from_timestamp_millis(1_700_000_000_000).unwrap();
        let run = || {
            let mut out = Vec::new();
            Generator::new(world.clone(), &cfg, Stream::Sysney, 0).write(1000, now, &mut out);
            out
        };
        let a = run();
        assert_eq!(a, run());
        let mut p = SseParser::new();
        let (mut good, mut bad) = (0, 0);
        p.feed(&a, &mut |m| match parse_message(m) {
            Ok(e) => {
                assert_eq!(e.show.platform, "Sysney");
                good += 1
            }
            Err(_) => bad += 1,
        });
        assert_eq!(good + bad, 1000);
        assert!(
            (50..150).contains(&bad),
            "{bad} malformed of 1000 at a 10 % share"
        );
    }
}
