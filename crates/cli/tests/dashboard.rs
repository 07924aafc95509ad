//! The dashboard at `/` in a real browser: Debian's `chromium` driven headless through
//! `chromedriver` (WebDriver, fantoccini) against a fresh `sluice demo` on a free port, so
//! every domain has real data. `.ci/run` installs both when they are absent.
//!
//! For every page: it loads with no console error (the page's own error hook plus the
//! browser's log), its charts have drawn their series (SVG elements counted, not pixels),
//! and a screenshot goes to `target/dashboard-screenshots/`. Beyond that: an upload from the
//! page shows its progress and ends succeeded; a box dragged on the trips map shows the API's
//! weekly average for that box in every match mode; a harvest and a report started from the
//! page end succeeded; a store's timeline segments, inside business hours, sum to its row of
//! the report's CSV.
//!
//! Waits are on conditions, each with a generous bound; nothing sleeps to assert.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Killed, Serving};

use fantoccini::actions::{InputSource, MouseActions, PointerAction, MOUSE_BUTTON_LEFT};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

/// Bound of every wait on a condition (a loaded CI machine is slow; a pass is fast).
const WAIT: Duration = Duration::from_secs(120);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts chromedriver on a free port and waits until it answers `/status` as ready.
async fn start_chromedriver() -> (Killed, String) {
    let driver = ["chromedriver", "/usr/bin/chromedriver"]
        .into_iter()
        .find(|d| Command::new(d).arg("--version").output().is_ok())
        .expect("chromedriver is not installed: `apt-get install -y chromium chromium-driver` (.ci/run does it)");
    let port = free_port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let kill = Killed(child);
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + WAIT;
    loop {
        let ready = http.get(format!("{url}/status")).send().await;
        if let Ok(r) = ready {
            if let Ok(v) = r.json::<Value>().await {
                if v["value"]["ready"] == true {
                    break;
                }
            }
        }
        assert!(Instant::now() < deadline, "chromedriver did not get ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (kill, url)
}

async fn browser(driver: &str, profile: &Path) -> Client {
    let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .unwrap_or("/usr/bin/chromium");
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), json!("chrome"));
    caps.insert("goog:loggingPrefs".into(), json!({"browser": "ALL"}));
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000", "--no-first-run", "--no-default-browser-check",
                format!("--user-data-dir={}", profile.display()),
            ]
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(driver)
        .await
        .expect("a chromium session")
}

struct Page {
    client: Client,
    driver: String,
    base: String,
    http: reqwest::Client,
    shots: PathBuf,
}

impl Page {
    async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Waits until `expr` (a JS expression) is truthy; returns its value.
    async fn until(&self, expr: &str, what: &str) -> Value {
        let deadline = Instant::now() + WAIT;
        let script = format!("return ({expr});");
        loop {
            let v = self.js(&script, vec![]).await;
            let truthy =
                !matches!(v, Value::Null | Value::Bool(false)) && v != json!(0) && v != json!("");
            if truthy {
                return v;
            }
            if Instant::now() > deadline {
                let errors = self
                    .js("return window.__dash && window.__dash.errors", vec![])
                    .await;
                panic!("timed out waiting for {what} ({expr}); page errors: {errors}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn open(&self, view: &str) {
        self.client
            .goto(&format!("{}/#/{view}", self.base))
            .await
            .unwrap();
        self.until(
            &format!("document.body.dataset.ready === '{view}'"),
            &format!("the {view} page"),
        )
        .await;
    }

    /// Clicks the first element `css` selects.
    async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }

    /// Waits until the job state shown at `css` (an element with `data-state`) is final;
    /// returns that state.
    async fn job_end(&self, css: &str, what: &str) -> Value {
        self.until(
            &format!(
                "(s => s && ['succeeded','failed','cancelled'].includes(s.dataset.state) && s.dataset.state)(document.querySelector({}))",
                json!(css)
            ),
            what,
        )
        .await
    }

    async fn count(&self, css: &str) -> u64 {
        self.js(
            "return document.querySelectorAll(arguments[0]).length;",
            vec![json!(css)],
        )
        .await
        .as_u64()
        .unwrap()
    }

    /// The page's own error log (window errors, rejections, console.error, CSP violations)
    /// and the browser's SEVERE log entries (failed loads, uncaught errors), drained.
    async fn errors(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .js(
                "const e = window.__dash ? window.__dash.errors.splice(0) : ['the dashboard script did not run']; return e;",
                vec![],
            )
            .await
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap_or_default().to_owned())
            .collect();
        let sid = self.client.session_id().await.unwrap().unwrap();
        let log: Value = self
            .http
            .post(format!("{}/session/{sid}/se/log", self.driver))
            .json(&json!({"type": "browser"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for entry in log["value"].as_array().into_iter().flatten() {
            if entry["level"] == "SEVERE" {
                out.push(entry["message"].as_str().unwrap_or_default().to_owned());
            }
        }
        out
    }

    async fn no_errors(&self, view: &str) {
        let errors = self.errors().await;
        assert!(errors.is_empty(), "{view}: console errors: {errors:#?}");
    }

    async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.unwrap();
        std::fs::create_dir_all(&self.shots).unwrap();
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
    }

    async fn api(&self, path: &str) -> Value {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "{path}: {}", res.status());
        res.json().await.unwrap()
    }

    async fn drag(&self, css: &str, from: (f64, f64), to: (f64, f64)) {
        let el = self.client.find(Locator::Css(css)).await.unwrap();
        let mouse = MouseActions::new("mouse".into())
            .then(PointerAction::MoveToElement {
                element: el.clone(),
                duration: None,
                x: from.0,
                y: from.1,
            })
            .then(PointerAction::Down {
                button: MOUSE_BUTTON_LEFT,
            })
            .then(PointerAction::MoveToElement {
                element: el.clone(),
                duration: Some(Duration::from_millis(200)),
                x: (from.0 + to.0) / 2.0,
                y: (from.1 + to.1) / 2.0,
            })
            .then(PointerAction::MoveToElement {
                element: el,
                duration: Some(Duration::from_millis(200)),
                x: to.0,
                y: to.1,
            })
            .then(PointerAction::Up {
                button: MOUSE_BUTTON_LEFT,
            });
        self.client.perform_actions(mouse).await.unwrap();
    }
}

/// Runs `steps` in a fresh chromium against `base`; closes the browser however they end.
async fn with_browser(base: String, profile: &Path, steps: impl AsyncFnOnce(&Page)) {
    let (_driver, driver) = start_chromedriver().await;
    let client = browser(&driver, profile).await;
    let page = Page {
        client,
        driver,
        base,
        http: reqwest::Client::new(),
        shots: repo_root().join("target/dashboard-screenshots"),
    };
    let outcome =
        futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(steps(&page))).await;
    page.client.clone().close().await.ok();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_pages_in_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let (base, _demo) = Serving::start(&dir.path().join("data"), &["demo"], Some("warn")).drain();
    with_browser(base, &dir.path().join("profile"), async |page: &Page| {
        overview(page).await;
        network(page).await;
        trips(page).await;
        streams(page).await;
        uptime(page).await;
    })
    .await;
}

/// With a token configured, the page's mutating requests are refused until the token is
/// typed into the header's field; then they carry `Authorization: Bearer` and pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_sends_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let (base, _server) = Serving::start(
        &dir.path().join("data"),
        &["serve", "--token", "s3cret-dashboard"],
        Some("warn"),
    )
    .drain();
    with_browser(base, &dir.path().join("profile"), async |p: &Page| {
        p.open("uptime").await;
        p.no_errors("uptime").await;
        let trigger = p
            .client
            .find(Locator::Css("#report-trigger"))
            .await
            .unwrap();
        trigger.click().await.unwrap();
        let flash = p
            .until(
                "(f => !f.hidden && f.textContent)(document.getElementById('flash'))",
                "the refusal",
            )
            .await;
        assert!(
            flash.as_str().unwrap().contains("Bearer"),
            "the page shows the server's reason: {flash}"
        );
        // The refusal was logged: drain it.
        assert!(!p.errors().await.is_empty());
        let field = p.client.find(Locator::Css("#token")).await.unwrap();
        field.send_keys("s3cret-dashboard").await.unwrap();
        // Leaving the field commits it (a `change` event).
        p.click("h2").await;
        let stored = p
            .js("return sessionStorage.getItem('sluice.token');", vec![])
            .await;
        assert_eq!(stored, "s3cret-dashboard");
        trigger.click().await.unwrap();
        let state = p
            .job_end("#report-progress .state", "the report to end")
            .await;
        assert_eq!(state, "succeeded");
        p.no_errors("uptime with a token").await;
    })
    .await;
}

async fn overview(p: &Page) {
    p.open("overview").await;
    let timing = p
        .js(
            "const n = performance.getEntriesByType('navigation')[0];
             const fp = performance.getEntriesByName('first-paint')[0];
             const fcp = performance.getEntriesByName('first-contentful-paint')[0];
             return { dom_content_loaded_ms: n.domContentLoadedEventEnd, load_ms: n.loadEventEnd,
                      first_paint_ms: fp ? fp.startTime : null, first_contentful_paint_ms: fcp ? fcp.startTime : null };",
            vec![],
        )
        .await;
    eprintln!("dashboard / timing on loopback: {timing}");
    std::fs::create_dir_all(&p.shots).unwrap();
    std::fs::write(p.shots.join("timing.json"), timing.to_string()).unwrap();
    assert_eq!(p.count("#domains .card").await, 4);
    p.until(
        "document.querySelectorAll('#feed li.job').length > 0",
        "the job feed",
    )
    .await;
    // The demo's ingestions rejected rows: the feed shows the first rejections.
    p.until(
        "document.querySelectorAll('#feed .rej li').length > 0",
        "first rejections in the feed",
    )
    .await;
    p.no_errors("overview").await;

    // Upload through the file picker (the drop zone's own input).
    let name = "ipflow_data.ts-1488355500000.1.txt";
    let file = repo_root()
        .join("crates/network/tests/data/sgioldasis-python-analysis-api")
        .join(name)
        .canonicalize()
        .unwrap();
    let input = p.client.find(Locator::Css("#upload-file")).await.unwrap();
    input.send_keys(file.to_str().unwrap()).await.unwrap();
    let li = format!("#uploads li[data-name='{name}']");
    let state = p
        .job_end(&format!("{li} .state"), "the upload's job to end")
        .await;
    let seen = p
        .js(
            &format!("return document.querySelector(\"{li}\").dataset.seen;"),
            vec![],
        )
        .await;
    assert_eq!(state, "succeeded", "states seen: {seen}");
    let seen = seen.as_str().unwrap().split(',').collect::<Vec<_>>();
    assert_eq!(seen.first(), Some(&"uploading"), "{seen:?}");
    assert_eq!(seen.last(), Some(&"succeeded"), "{seen:?}");
    let pct = p
        .js(
            &format!("return document.querySelector(\"{li} .bar\").dataset.pct;"),
            vec![],
        )
        .await;
    assert_eq!(pct, "100.0");
    let job_id = p
        .js(
            &format!("return document.querySelector(\"{li}\").dataset.job;"),
            vec![],
        )
        .await;
    let job = p
        .api(&format!("/api/v1/jobs/{}", job_id.as_str().unwrap()))
        .await;
    assert_eq!(job["state"], "succeeded");
    assert_eq!(job["summary"]["files"][0]["name"], name);
    // Landed: the demo's own file of that name (and period) is replaced by it.
    let status = job["summary"]["files"][0]["status"].as_str().unwrap();
    assert!(["ingested", "replaced"].contains(&status), "{job}");
    assert_eq!(job["summary"]["rows_accepted"], 10, "{job}");

    // Drag and drop: a real `drop` event carrying a file: the trips sample a year earlier
    // (the demo has ingested the sample itself, so as it is it would be a duplicate).
    let csv = std::fs::read_to_string(repo_root().join("crates/trips/tests/data/trips.csv"))
        .unwrap()
        .replace(",2018-", ",2017-");
    p.js(
        "document.getElementById('upload-domain').value = 'trips';
         const dt = new DataTransfer();
         dt.items.add(new File([arguments[0]], 'dropped-trips.csv', { type: 'text/csv' }));
         document.getElementById('drop').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
         return true;",
        vec![json!(csv)],
    )
    .await;
    let state = p
        .job_end(
            "#uploads li[data-name='dropped-trips.csv'] .state",
            "the dropped file's job to end",
        )
        .await;
    assert_eq!(state, "succeeded");
    let dropped = p
        .js(
            "const li = document.querySelector(\"#uploads li[data-name='dropped-trips.csv']\");
             return [li.dataset.job, li.querySelector('.bar').dataset.pct];",
            vec![],
        )
        .await;
    assert_eq!(dropped[1], "100.0");
    let job = p
        .api(&format!("/api/v1/jobs/{}", dropped[0].as_str().unwrap()))
        .await;
    assert_eq!(job["summary"]["rows_accepted"], 100, "{job}");
    p.no_errors("overview").await;
    p.screenshot("overview").await;
}

async fn network(p: &Page) {
    p.open("network").await;
    for (kpi, key) in [("services", "service_id"), ("cells", "cell_id")] {
        let series = p.count(&format!("#kpi-{kpi} path.series")).await;
        // One series per item in the table, at most 10.
        let distinct = p
            .js(
                &format!("const t = document.getElementById('table-{kpi}'); const i = [...t.tHead.rows[0].cells].findIndex(c => c.textContent === '{key}');
                 return new Set([...t.tBodies[0].rows].map(r => r.cells[i].textContent)).size;"),
                vec![],
            )
            .await
            .as_u64()
            .unwrap();
        assert!(series > 0, "{kpi}: no series drawn");
        assert_eq!(series, distinct.min(10), "{kpi}");
        let non_empty = p.count(&format!("#kpi-{kpi} path.series[d^='M']")).await;
        assert_eq!(non_empty, series, "{kpi}: every series has points");
    }
    // Hourly, top 10: the table holds at most 10 rows per hour and the chart redraws.
    let el = p.client.find(Locator::Css("#net-interval")).await.unwrap();
    el.select_by_value("1h").await.unwrap();
    p.until("document.body.dataset.ready === 'network'", "hourly KPIs")
        .await;
    let el = p.client.find(Locator::Css("#net-n")).await.unwrap();
    el.select_by_value("10").await.unwrap();
    p.until("document.body.dataset.ready === 'network'", "top 10")
        .await;
    // New periods keep arriving in the demo: ask the API for the span the page shows.
    // (One read: the page redraws whenever a network job succeeds.)
    let span = p
        .js(
            "const s = document.getElementById('kpi-services');
             return [s.dataset.from, s.dataset.to, s.querySelectorAll('tbody tr').length,
                     document.getElementById('csv-services').href];",
            vec![],
        )
        .await;
    let rows = span[2].as_u64().unwrap();
    let api = p
        .api(&format!(
            "/api/v1/network/kpis/top_services?interval=1h&limit=10&page_size=1000&from={}&to={}",
            span[0].as_str().unwrap(),
            span[1].as_str().unwrap()
        ))
        .await;
    let expected: usize = api["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["top"].as_array().unwrap().len())
        .sum();
    assert_eq!(
        rows as usize, expected,
        "the table shows what the API answers"
    );
    // Its CSV link is the server's CSV of the same query: the same rows over that span.
    let csv = p
        .http
        .get(span[3].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut lines = csv.lines();
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert!(
        head.contains(&"service_id") && head.contains(&"total_bytes"),
        "{head:?}"
    );
    let end = head.iter().position(|h| *h == "interval_end").unwrap();
    let to = span[1].as_str().unwrap();
    let in_span = lines
        .filter(|l| l.split(',').nth(end).is_some_and(|e| e <= to))
        .count();
    assert_eq!(in_span, expected, "CSV rows over the page's span");
    assert!(p.count("#kpi-services path.series").await > 0);
    assert!(p.count("#kpi-cells path.series").await > 0);
    p.no_errors("network").await;
    p.screenshot("network").await;
}

async fn trips(p: &Page) {
    p.open("trips").await;
    assert!(p.count("#map path.country").await > 100, "country outlines");
    assert!(p.count("#density rect.density").await > 0, "density cells");
    // The density drawn is the API's: one rect per cell, the same trips.
    let drawn = p
        .js(
            "const g = document.getElementById('density');
             return [g.dataset.url, [...g.querySelectorAll('rect.density')].reduce((a, r) => a + Number(r.dataset.trips), 0),
                     g.querySelectorAll('rect.density').length];",
            vec![],
        )
        .await;
    let api = p.api(drawn[0].as_str().unwrap()).await;
    assert_eq!(drawn[1], api["trips"], "{}", drawn[0]);
    assert_eq!(
        drawn[2].as_u64().unwrap() as usize,
        api["cells"].as_array().unwrap().len()
    );
    assert!(api["trips"].as_u64().unwrap() > 0, "trips in view");
    let el = p.client.find(Locator::Css("#trip-region")).await.unwrap();
    el.select_by_value("Prague").await.unwrap();
    p.until(
        "document.body.dataset.ready === 'trips' && document.querySelectorAll('#density rect').length > 0",
        "Prague's trips",
    )
    .await;
    p.drag("#map", (-200.0, -120.0), (200.0, 120.0)).await;
    p.until(
        "document.body.dataset.ready === 'trips' && document.getElementById('trip-bbox')",
        "the box's weekly averages",
    )
    .await;
    let bbox = p
        .js(
            "return document.getElementById('trip-bbox').dataset.bbox;",
            vec![],
        )
        .await;
    let bbox = bbox.as_str().unwrap();
    let shown = p
        .js(
            "return Object.fromEntries([...document.querySelectorAll('#trip-averages .avg')].map(e => [e.dataset.match, Number(e.dataset.average)]));",
            vec![],
        )
        .await;
    for mode in ["origin", "destination", "both", "either"] {
        let api = p
            .api(&format!(
                "/api/v1/trips/weekly-average?bbox={bbox}&match={mode}&weeks=span"
            ))
            .await;
        let want = api["average"].as_f64().unwrap();
        let got = shown[mode].as_f64().unwrap_or(f64::NAN);
        assert_eq!(got, want, "{mode} in {bbox}");
        if mode == "either" {
            assert!(api["trips"].as_u64().unwrap() > 0, "the box holds trips");
        }
    }
    assert_eq!(
        p.count("#trip-result path.series").await,
        4,
        "one weekly series per match mode"
    );
    assert_eq!(p.count("#trip-result path.series[d^='M']").await, 4);
    p.no_errors("trips").await;
    p.screenshot("trips").await;
}

async fn streams(p: &Page) {
    p.open("streams").await;
    assert!(p.count("#runs-table tbody tr").await >= 1);
    assert_eq!(
        p.count("#events-timeline g.lane").await,
        3,
        "a lane per stream"
    );
    assert!(p.count("#events-timeline circle").await > 0, "events drawn");
    let before = p.count("#runs-table tbody tr").await;
    let dur = p
        .client
        .find(Locator::Css("#harvest-duration"))
        .await
        .unwrap();
    dur.clear().await.unwrap();
    dur.send_keys("2s").await.unwrap();
    p.click("#harvest-start").await;
    let state = p
        .job_end("#harvest-progress .state", "the harvest to end")
        .await;
    assert_eq!(state, "succeeded");
    p.until(
        &format!("document.querySelectorAll('#runs-table tbody tr').length > {before} && document.body.dataset.ready === 'streams'"),
        "the new run in the table",
    )
    .await;
    assert_eq!(p.count("#events-timeline g.lane").await, 3);
    p.no_errors("streams").await;
    p.screenshot("streams").await;
}

/// Hours up and down inside business hours from the drawn segments of one timeline.
async fn segment_hours(p: &Page, window: &str) -> (f64, f64) {
    let v = p
        .js(
            "let up = 0, down = 0;
             for (const r of document.querySelectorAll('#timeline-' + arguments[0] + ' rect.seg')) {
               const ms = Number(r.dataset.businessMs);
               if (r.dataset.status === 'active') up += ms; else down += ms;
             }
             return [up / 3600e3, down / 3600e3];",
            vec![json!(window)],
        )
        .await;
    (v[0].as_f64().unwrap(), v[1].as_f64().unwrap())
}

async fn check_store_against_csv(p: &Page) {
    let report = p
        .js(
            "return document.getElementById('report-info').dataset.report;",
            vec![],
        )
        .await;
    let store = p
        .js(
            "return document.querySelector('#stores-table tr.sel').dataset.store;",
            vec![],
        )
        .await;
    let (report, store) = (report.as_str().unwrap(), store.as_str().unwrap());
    let csv = p
        .http
        .get(format!(
            "{}/api/v1/uptime/reports/{report}/rows?format=csv&limit=10000",
            p.base
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut lines = csv.lines();
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    let row: Vec<&str> = lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .find(|r| r[0] == store)
        .unwrap_or_else(|| panic!("store {store} not in the CSV"));
    let col = |name: &str| -> f64 {
        row[head.iter().position(|h| *h == name).unwrap()]
            .parse()
            .unwrap()
    };
    for window in ["day", "week"] {
        let (up, down) = segment_hours(p, window).await;
        let (want_up, want_down) = (
            col(&format!("uptime_last_{window}")),
            col(&format!("downtime_last_{window}")),
        );
        // The CSV rounds to hundredths.
        assert!(
            (up - want_up).abs() <= 0.005 + 1e-9,
            "store {store} {window}: segments up {up} h, CSV {want_up}"
        );
        assert!(
            (down - want_down).abs() <= 0.005 + 1e-9,
            "store {store} {window}: segments down {down} h, CSV {want_down}"
        );
    }
}

async fn uptime(p: &Page) {
    p.open("uptime").await;
    let stores = p.api("/api/v1/uptime/summary").await["stores"]
        .as_u64()
        .unwrap();
    assert_eq!(p.count("#stores-table tbody tr").await, stores);
    assert!(p.count("#timeline-day rect.seg").await > 0, "day segments");
    assert!(
        p.count("#timeline-week rect.seg").await > 0,
        "week segments"
    );
    assert!(
        p.count("#timeline-day circle.poll").await > 0,
        "polls as dots"
    );
    assert!(
        p.count("#timeline-week rect.biz").await > 0,
        "business hours shaded"
    );
    check_store_against_csv(p).await;

    // Sort by week downtime (descending first), pick the top store: its timeline agrees too.
    p.click("th[data-sort='dw']").await;
    let sorted = p
        .js(
            "const v = [...document.querySelectorAll('#stores-table tbody tr')].map(r => Number(r.cells[7].textContent));
             return v.every((x, i) => i === 0 || v[i - 1] >= x);",
            vec![],
        )
        .await;
    assert_eq!(sorted, true, "sorted by week downtime");
    p.click("#stores-table tbody tr").await;
    p.until(
        "document.body.dataset.ready === 'uptime'",
        "the store's timeline",
    )
    .await;
    check_store_against_csv(p).await;

    // A report triggered from the page ends succeeded and becomes the page's report.
    let old = p
        .js(
            "return document.getElementById('report-info').dataset.report;",
            vec![],
        )
        .await;
    p.click("#report-trigger").await;
    let state = p
        .job_end("#report-progress .state", "the report to end")
        .await;
    assert_eq!(state, "succeeded");
    p.until(
        &format!("document.getElementById('report-info').dataset.report !== {old} && document.body.dataset.ready === 'uptime'"),
        "the new report on the page",
    )
    .await;
    check_store_against_csv(p).await;
    p.no_errors("uptime").await;
    p.screenshot("uptime").await;
}
