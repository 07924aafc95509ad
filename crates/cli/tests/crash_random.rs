//! Crash safety at random moments, per file-ingesting domain (issue #10): `sluice ingest`
//! killed with SIGKILL at 20+ seeded random moments (several kills and restarts on each data
//! directory, then a run to completion) leaves every compat and native answer byte-identical
//! to an uninterrupted run's, ids included.
//!
//! The moments are drawn uniformly over what is left of the uninterrupted run's measured
//! duration (see `kill_ingests`). A kill counts only if the process died of it (had not
//! exited by itself); a run that ends by itself before its moment has finished the
//! directory's work, and the next kills go to a fresh directory. One more directory has
//! `sluice serve` killed while it ingests the same files from its inbox.
//!
//! Not compared, because they describe jobs rather than the data: `/api/v1/jobs…` (a crashed
//! directory has one failed job per kill) and trips' `/vehicles/ingest-data/status` (the
//! latest ingest job's timings and per-file results; after a crash that job found the files
//! of the killed runs already ingested).

use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_sluice");
/// Kills that hit a running `sluice ingest`, per domain at least.
const KILLS: usize = 20;
/// Kills on one data directory at most before its run to completion.
const KILLS_PER_DIR: usize = 5;
/// A bound on the directories (and the test's duration) should most kills come too late.
const MAX_DIRS: usize = 15;
/// The tests measure a duration and draw kill moments from it: side by side on few cores
/// they would skew each other's measurements, so they take turns.
static TURNS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// xorshift64*: seeded, and enough to spread kill moments.
struct Rng(u64);

impl Rng {
    /// The seed goes through splitmix64 first: xorshift's first outputs from a small seed
    /// are far from uniform.
    fn new(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    /// Uniform in `[0, d)`.
    fn below(&mut self, d: Duration) -> Duration {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        d.mul_f64((x >> 11) as f64 / (1u64 << 53) as f64)
    }
}

/// A child process, killed and reaped when dropped (also when the test panics).
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn sluice(data: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.arg("--data-dir")
        .arg(data)
        .args(args)
        // Settings from the environment or a ./sluice.toml would change the answers.
        .current_dir(data.parent().unwrap())
        .env("SLUICE_LOG", "warn")
        .stdin(Stdio::null());
    for (k, _) in std::env::vars() {
        if k.starts_with("SLUICE_") && k != "SLUICE_LOG" {
            c.env_remove(k);
        }
    }
    c
}

/// Runs to success; returns standard output.
fn run_ok(mut c: Command) -> String {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// What a domain's test needs besides its inputs.
struct Case {
    domain: &'static str,
    seed: u64,
    /// After the last ingestion: makes what the routes also read (uptime: a report); returns
    /// the id the routes name as `{report}`, which differs from run to run.
    finish: fn(&Path) -> Option<String>,
    /// The routes compared, given the uninterrupted run's server (for ids and page cursors).
    routes: fn(&Server) -> Vec<String>,
    /// JSON string fields whose values legitimately differ between runs (see each case).
    excluded: &'static [&'static str],
}

fn no_finish(_: &Path) -> Option<String> {
    None
}

/// Makes the inputs in a fresh folder, then the uninterrupted run, then crashed directories
/// until `KILLS` kills hit a running ingest; every directory's answers are compared with the
/// uninterrupted run's.
fn crash_test(case: &Case, make_inputs: fn(&Path) -> Vec<PathBuf>) {
    let _turn = TURNS.lock().unwrap_or_else(|e| e.into_inner());
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let inputs = &make_inputs(root)[..];
    let mut args = vec!["ingest", case.domain];
    args.extend(inputs.iter().map(|p| p.to_str().unwrap()));

    let clean = root.join("clean");
    let t = Instant::now();
    run_ok(sluice(&clean, &args));
    let duration = t.elapsed();
    let report = (case.finish)(&clean);
    let (routes, reference) = {
        let server = Server::start(&clean);
        let routes = (case.routes)(&server);
        let reference = server.answers(&routes, report.as_deref(), case.excluded);
        for a in &reference {
            assert_eq!(a.status, 200, "GET {}: {}", a.route, a.body);
            assert!(a.body.len() > 2, "GET {} is empty", a.route);
        }
        (routes, reference)
    };

    // Ingests to completion after the crashes, and compares every answer.
    let complete_and_compare = |data: &Path| {
        run_ok(sluice(data, &args));
        let report = (case.finish)(data);
        let got = Server::start(data).answers(&routes, report.as_deref(), case.excluded);
        assert_same(data, &reference, &got);
    };
    let mut rng = Rng::new(case.seed);
    let serve_killed = root.join("serve-killed");
    let mid_inbox = kill_serving_inbox(&serve_killed, case.domain, inputs, &mut rng, duration);
    complete_and_compare(&serve_killed);
    let (mut hits, mut dirs) = (0, 0);
    while hits < KILLS {
        assert!(
            dirs < MAX_DIRS,
            "{}: only {hits} of {KILLS} kills hit a running ingest in {dirs} directories",
            case.domain
        );
        let data = root.join(format!("crash-{dirs}"));
        dirs += 1;
        hits += kill_ingests(&data, &args, case.domain, inputs.len(), &mut rng, duration);
        complete_and_compare(&data);
    }
    eprintln!(
        "{}: uninterrupted ingest {:.2} s; {hits} kills hit a running `sluice ingest` over \
         {dirs} directories; `sluice serve` killed before it had recorded every inbox file: \
         {mid_inbox}; {} routes identical; {:.1} s in all",
        case.domain,
        duration.as_secs_f64(),
        routes.len(),
        started.elapsed().as_secs_f64()
    );
}

/// Kills a server on a fresh `data` at a random moment while it ingests `inputs` from its
/// inbox; the inbox is emptied afterwards so that the comparing server does not ingest while
/// it answers. Returns whether the kill came before the server had recorded every input.
fn kill_serving_inbox(
    data: &Path,
    domain: &str,
    inputs: &[PathBuf],
    rng: &mut Rng,
    duration: Duration,
) -> bool {
    let inbox = data.join("inbox").join(domain);
    std::fs::create_dir_all(&inbox).unwrap();
    for p in inputs {
        std::fs::copy(p, inbox.join(p.file_name().unwrap())).unwrap();
    }
    let server = Server::start(data);
    // Drawn over the rest of the ingestion once it has begun (after the inbox's quiet period).
    let begun = Instant::now();
    while recorded(data, domain) == 0 {
        assert!(
            begun.elapsed() < Duration::from_secs(60),
            "the inbox was not ingested"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let n = inputs.len() as f64;
    std::thread::sleep(rng.below(duration.mul_f64((n - 1.0) / n)));
    drop(server); // SIGKILL
    std::fs::remove_dir_all(&inbox).unwrap();
    recorded(data, domain) < inputs.len()
}

/// Inputs of `domain` in the ledger of `data` (none before its database has them).
fn recorded(data: &Path, domain: &str) -> usize {
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY;
    rusqlite::Connection::open_with_flags(data.join("sluice.db"), flags)
        .and_then(|db| {
            db.query_row(
                "SELECT count(*) FROM core_ledger WHERE domain = ?1",
                [domain],
                |r| r.get(0),
            )
        })
        .unwrap_or(0)
}

/// Runs `sluice ingest` on `data` and kills it at a random moment, again and again, until a
/// run ends by itself or `KILLS_PER_DIR` kills hit; returns the hits. Each moment is drawn
/// uniformly over what is left of the uninterrupted run: its duration times the share of
/// inputs not yet in the ledger, but at least one input's share (with all recorded, a run
/// still hashes them and may finish what a killed one left). Over the whole duration, most
/// later kills would come after the little work left.
fn kill_ingests(
    data: &Path,
    args: &[&str],
    domain: &str,
    inputs: usize,
    rng: &mut Rng,
    duration: Duration,
) -> usize {
    for hits in 0..KILLS_PER_DIR {
        let left = (inputs - recorded(data, domain)).max(1);
        let deadline = Instant::now() + rng.below(duration.mul_f64(left as f64 / inputs as f64));
        let mut child = Guard(
            sluice(data, args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        // Polled, so that a run that ends before its moment ends the wait.
        let status = loop {
            if let Some(s) = child.0.try_wait().unwrap() {
                break s;
            }
            let now = Instant::now();
            if now >= deadline {
                child.0.kill().unwrap(); // SIGKILL on Unix.
                break child.0.wait().unwrap();
            }
            std::thread::sleep((deadline - now).min(Duration::from_millis(5)));
        };
        // Exited by itself (also between the last poll and the kill): the work is done.
        if status.signal() != Some(9) {
            assert!(status.success(), "{status}");
            return hits;
        }
    }
    KILLS_PER_DIR
}

/// `sluice serve --addr 127.0.0.1:0` on a data directory, killed when dropped.
struct Server {
    _child: Guard,
    base: String,
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
}

struct Answer {
    route: String,
    status: u16,
    content_type: String,
    body: String,
}

impl Server {
    fn start(data: &Path) -> Server {
        let mut child = Guard(
            sluice(data, &["serve", "--addr", "127.0.0.1:0"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let mut lines = BufReader::new(child.0.stderr.take().unwrap()).lines();
        let base = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|l| {
                let rest = l.strip_prefix("sluice serving ")?;
                Some(rest.split_whitespace().next()?.to_owned())
            })
            .expect("the server printed its address");
        // Drained, so that the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Server {
            _child: child,
            base,
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            http: reqwest::Client::new(),
        }
    }

    /// GET `route` (with `{report}` replaced by `report`): status, content type, body.
    fn get(&self, route: &str, report: Option<&str>) -> (u16, String, String) {
        let path = match report {
            Some(id) => route.replace("{report}", id),
            None => route.to_owned(),
        };
        self.rt.block_on(async {
            let r = self
                .http
                .get(format!("{}{path}", self.base))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let ct = r
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            (status, ct, r.text().await.unwrap())
        })
    }

    fn json(&self, route: &str) -> serde_json::Value {
        let (status, _, body) = self.get(route, None);
        assert_eq!(status, 200, "GET {route}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    /// Every route's answer, with the run-specific values taken out: `report` becomes
    /// `{report}` and the `excluded` fields' values are emptied.
    fn answers(&self, routes: &[String], report: Option<&str>, excluded: &[&str]) -> Vec<Answer> {
        routes
            .iter()
            .map(|route| {
                let (status, content_type, mut body) = self.get(route, report);
                if let Some(id) = report {
                    body = body.replace(id, "{report}");
                }
                for key in excluded {
                    body = blank_field(&body, key);
                }
                Answer {
                    route: route.clone(),
                    status,
                    content_type,
                    body,
                }
            })
            .collect()
    }
}

/// `"key":"value"` becomes `"key":""` everywhere in `body`.
fn blank_field(body: &str, key: &str) -> String {
    let pattern = format!("\"{key}\":\"");
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    while let Some(i) = rest.find(&pattern) {
        let value = i + pattern.len();
        out.push_str(&rest[..value]);
        let end = rest[value..].find('"').map_or(rest.len(), |e| value + e);
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

fn assert_same(data: &Path, reference: &[Answer], got: &[Answer]) {
    for (a, b) in reference.iter().zip(got) {
        assert_eq!(
            (a.status, &a.content_type),
            (b.status, &b.content_type),
            "{}: GET {}",
            data.display(),
            a.route
        );
        if a.body != b.body {
            let at = a
                .body
                .bytes()
                .zip(b.body.bytes())
                .position(|(x, y)| x != y)
                .unwrap_or(a.body.len().min(b.body.len()));
            let around = |s: &str| {
                let b = s.as_bytes();
                String::from_utf8_lossy(&b[at.saturating_sub(200)..(at + 200).min(b.len())])
                    .into_owned()
            };
            panic!(
                "{}: GET {} differs from the uninterrupted run at byte {at} ({} vs {} bytes)\n\
                 uninterrupted: …{}…\ncrashed:       …{}…",
                data.display(),
                a.route,
                a.body.len(),
                b.body.len(),
                around(&a.body),
                around(&b.body)
            );
        }
    }
}

fn generate(root: &Path, args: &[&str]) {
    run_ok(sluice(&root.join("unused-data"), args));
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

/// The `/api/v1/<domain>/files` listing: `ingested_at` is the wall-clock time of each ledger
/// entry, which no two runs share.
const LEDGER_TIME: &str = "ingested_at";

fn network_inputs(root: &Path) -> Vec<PathBuf> {
    let input = root.join("in");
    // Two parts per 5-minute period, one hour: 24 files, each its own transaction.
    generate(
        root,
        &[
            "generate",
            "network",
            "--periods",
            "12",
            "--parts",
            "2",
            "--rows-per-file",
            "20000",
            "--seed",
            "10",
            "--out",
            input.to_str().unwrap(),
        ],
    );
    files_in(&input)
}

#[test]
fn network_sigkill_at_random_moments_changes_no_answer() {
    let case = Case {
        domain: "network",
        seed: 0x6e65_7477,
        finish: no_finish,
        routes: |_| {
            [
                "/kpi1",
                "/kpi2",
                "/kpi1/?interval=1-hour",
                "/kpi2?from=2017-03-01_00:20:00&to=2017-03-01_00:45:00&interval=5-minute",
                "/api/KPIs/",
                "/api/KPIs/1/",
                "/api/KPIs/2/",
                "/api/KPIs/2/?interval=2",
                "/api/KPIs/1/?interval_start_timestamp__gte=2017-03-01T00:30:00",
                "/api/v1/network/kpis",
                "/api/v1/network/kpis/top_services?limit=20&page_size=1000",
                "/api/v1/network/kpis/top_cells?limit=20&page_size=1000",
                "/api/v1/network/kpis/2?interval=1h&limit=20",
                "/api/v1/network/files?limit=1000",
            ]
            .map(String::from)
            .to_vec()
        },
        excluded: &[LEDGER_TIME],
    };
    crash_test(&case, network_inputs);
}

/// Trips generated, and their count.
const TRIPS: u64 = 15_000;

fn trips_inputs(root: &Path) -> Vec<PathBuf> {
    let input = root.join("in");
    generate(
        root,
        &[
            "generate",
            "trips",
            "--rows",
            &TRIPS.to_string(),
            "--files",
            "5",
            "--seed",
            "11",
            "--out",
            input.to_str().unwrap(),
        ],
    );
    files_in(&input)
}

#[test]
fn trips_sigkill_at_random_moments_changes_no_answer() {
    let case = Case {
        domain: "trips",
        seed: 0x7472_6970,
        finish: no_finish,
        routes: |clean| {
            let last = TRIPS - 1;
            let mut routes: Vec<String> = [
                // Compat: every trip with its id (0-based), single trips, counts, weeks.
                "/vehicles?limit=1000000".to_owned(),
                "/vehicles?region=Turin&datasource=cheap_mobile&limit=1000".to_owned(),
                "/vehicles/0".to_owned(),
                format!("/vehicles/{last}"),
                "/vehicles/region/count".to_owned(),
                "/vehicles/datasource/count".to_owned(),
                "/vehicles/weekly_trips/region".to_owned(),
                "/vehicles/weekly_avg_trips/region".to_owned(),
                // Native.
                "/api/v1/trips/trips/1".to_owned(),
                format!("/api/v1/trips/trips/{TRIPS}"),
                "/api/v1/trips/trips?region=Berlin&limit=1000".to_owned(),
                "/api/v1/trips/weekly-average".to_owned(),
                "/api/v1/trips/weekly-average?region=Turin&weeks=span".to_owned(),
                "/api/v1/trips/weekly-average?bbox=7.5,44.9,7.8,45.2&match=either".to_owned(),
                "/api/v1/trips/weekly-average?region=Turin&bbox=7.5,44.9,7.8,45.2&match=both"
                    .to_owned(),
                "/api/v1/trips/counts?by=region".to_owned(),
                "/api/v1/trips/counts?by=datasource".to_owned(),
                "/api/v1/trips/files?limit=1000".to_owned(),
            ]
            .to_vec();
            // Every page of the native listing, at the uninterrupted run's cursors (each
            // page's body holds the next cursor, so equal bodies mean equal cursors).
            let mut after = 0;
            loop {
                let route = format!("/api/v1/trips/trips?limit=1000&after={after}");
                let next = clean.json(&route)["next_after"].as_u64();
                routes.push(route);
                match next {
                    Some(n) => after = n,
                    None => break,
                }
            }
            // Every page of the groups, and the largest groups with their trips.
            let mut offset = 0;
            loop {
                let route = format!("/api/v1/trips/groups?limit=1000&offset={offset}");
                let page = clean.json(&route);
                let page = page.as_array().unwrap();
                if offset == 0 {
                    for g in &page[..3] {
                        let id = g["id"].as_u64().unwrap();
                        routes.push(format!("/api/v1/trips/groups/{id}"));
                        routes.push(format!("/api/v1/trips/groups/{id}/trips?limit=1000"));
                    }
                }
                routes.push(route);
                if page.len() < 1000 {
                    break;
                }
                offset += 1000;
            }
            routes
        },
        excluded: &[LEDGER_TIME],
    };
    crash_test(&case, trips_inputs);
}

/// Stores generated: polls for 8 days (`store_status.csv`), cut into `POLL_PARTS` files.
/// Enough that the ingest outlasts the process start several times over: with fewer, most
/// moments drawn over its duration come after it has ended, and too few kills hit.
const STORES: &str = "4000";
const POLL_PARTS: usize = 8;

/// `sluice report uptime` (the latest poll is its `now`, so it is the same for equal data);
/// the report's id is its job's, new every time.
fn uptime_report(data: &Path) -> Option<String> {
    let path = run_ok(sluice(data, &["report", "uptime"]));
    let id = Path::new(path.trim()).file_stem().unwrap();
    Some(id.to_str().unwrap().to_owned())
}

fn uptime_inputs(root: &Path) -> Vec<PathBuf> {
    let generated = root.join("generated");
    generate(
        root,
        &[
            "generate",
            "uptime",
            "--stores",
            STORES,
            "--seed",
            "12",
            "--out",
            generated.to_str().unwrap(),
        ],
    );
    // The generator writes one polls file; parts of it (each with the header) let kills
    // land between and inside several polls files.
    let input = root.join("in");
    std::fs::create_dir_all(&input).unwrap();
    for f in ["menu_hours.csv", "timezones.csv"] {
        std::fs::copy(generated.join(f), input.join(f)).unwrap();
    }
    let polls = std::fs::read_to_string(generated.join("store_status.csv")).unwrap();
    let (header, rows) = polls.split_once('\n').unwrap();
    let rows: Vec<&str> = rows.lines().collect();
    for (i, part) in rows.chunks(rows.len().div_ceil(POLL_PARTS)).enumerate() {
        let mut text = format!("{header}\n");
        for r in part {
            text.push_str(r);
            text.push('\n');
        }
        std::fs::write(input.join(format!("store_status-{i}.csv")), text).unwrap();
    }
    files_in(&input)
}

#[test]
fn uptime_sigkill_at_random_moments_changes_no_answer() {
    let case = Case {
        domain: "uptime",
        seed: 0x7570_7469,
        finish: uptime_report,
        routes: |clean| {
            let mut routes: Vec<String> = [
                // Compat: the report CSV by both routes.
                "/get_report?report_id={report}",
                "/get_report/{report}",
                // Native: the report, its rows, the stored data.
                "/api/v1/uptime/reports",
                "/api/v1/uptime/reports/{report}",
                "/api/v1/uptime/reports/{report}/rows?limit=10000",
                "/api/v1/uptime/reports/{report}/rows?format=csv",
                "/api/v1/uptime/summary",
                "/api/v1/uptime/files?limit=1000",
            ]
            .map(String::from)
            .to_vec();
            let stores = clean.json("/api/v1/uptime/summary")["stores"]
                .as_u64()
                .unwrap();
            for offset in (0..stores).step_by(1000) {
                routes.push(format!("/api/v1/uptime/stores?limit=1000&offset={offset}"));
            }
            // Timelines (every poll of a window) of stores spread over the listing.
            let listed = clean.json("/api/v1/uptime/stores?limit=1000");
            for s in listed.as_array().unwrap().iter().step_by(97) {
                let id = s["store_id"].as_str().unwrap();
                routes.push(format!("/api/v1/uptime/stores/{id}/timeline?window=week"));
                routes.push(format!("/api/v1/uptime/stores/{id}/timeline?window=hour"));
            }
            routes
        },
        // A report's `created_at` is the wall-clock time its job was created.
        excluded: &[LEDGER_TIME, "created_at"],
    };
    crash_test(&case, uptime_inputs);
}
