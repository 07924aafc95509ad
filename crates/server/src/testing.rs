//! A real server for tests: a fresh data directory, every given domain migrated, listening
//! on a random loopback port. Each HTTP test reads like a user session against it.
//!
//! The backend is a parameter: `SLUICE_TEST_BACKEND=postgres` runs the same tests on a fresh
//! PostgreSQL database (created on the server `SLUICE_TEST_POSTGRES` names, dropped with the
//! test server) for domains that run there; `sqlite`, the default, on the embedded file.

use std::path::Path;
use std::sync::Arc;

use sluice_core::{Backend, Ctx, DatabaseUrl, Domain, Settings};

pub struct TestServer {
    /// `http://127.0.0.1:<port>`
    pub base: String,
    pub ctx: Ctx,
    dir: tempfile::TempDir,
    task: AbortOnDrop,
    /// The PostgreSQL database of this server (shared by servers started beside it).
    database: Option<Arc<TestDatabase>>,
}

/// The backend `SLUICE_TEST_BACKEND` names (`sqlite` when unset).
///
/// # Panics
/// On any other value, or on `postgres` without `SLUICE_TEST_POSTGRES`.
pub fn backend() -> Backend {
    match std::env::var("SLUICE_TEST_BACKEND").as_deref() {
        Err(_) | Ok("" | "sqlite") => Backend::Sqlite,
        Ok("postgres") => {
            assert!(
                postgres_admin().is_some(),
                "SLUICE_TEST_BACKEND=postgres needs SLUICE_TEST_POSTGRES (see .ci/postgres.sh)"
            );
            Backend::Postgres
        }
        Ok(other) => panic!("SLUICE_TEST_BACKEND must be sqlite or postgres, not {other:?}"),
    }
}

/// The URL of the test PostgreSQL server's admin database (`SLUICE_TEST_POSTGRES`), if any.
pub fn postgres_admin() -> Option<String> {
    std::env::var("SLUICE_TEST_POSTGRES")
        .ok()
        .filter(|u| !u.is_empty())
}

/// Whether the tests that need the test PostgreSQL server can run: without it they are
/// skipped, except under CI (`CI` set), where that fails.
pub fn have_postgres() -> bool {
    if postgres_admin().is_some() {
        return true;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI runs the PostgreSQL tests: SLUICE_TEST_POSTGRES must name the test server (.ci/postgres.sh)"
    );
    eprintln!("skipped: SLUICE_TEST_POSTGRES is not set");
    false
}

/// A database of its own on the test PostgreSQL server, dropped (connections and all) when
/// the last server using it goes.
pub struct TestDatabase {
    admin: String,
    name: String,
    /// The database's URL.
    pub url: String,
}

impl TestDatabase {
    /// Creates a fresh database on the server `SLUICE_TEST_POSTGRES` names.
    pub fn create() -> Arc<TestDatabase> {
        let admin = postgres_admin().expect("SLUICE_TEST_POSTGRES names the test server");
        let name = format!("sluice_test_{}", uuid::Uuid::new_v4().simple());
        // A thread of its own: the synchronous client cannot run inside the test's runtime.
        let (a, n) = (admin.clone(), name.clone());
        std::thread::spawn(move || {
            let mut c = postgres::Client::connect(&a, postgres::NoTls).expect("test server");
            c.batch_execute(&format!("CREATE DATABASE {n}"))
                .expect("create the test database");
        })
        .join()
        .expect("create the test database");
        let url = with_dbname(&admin, &name);
        Arc::new(TestDatabase { admin, name, url })
    }

    /// The same database's URL on another server (a replica of the test server).
    pub fn url_on(&self, server: &str) -> String {
        with_dbname(server, &self.name)
    }
}

/// `url` with its database name replaced by `name`.
fn with_dbname(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let scheme = base.find("://").map_or(0, |i| i + 3);
    let root = base[scheme..].find('/').map_or(base.len(), |i| scheme + i);
    let mut out = format!("{}/{name}", &base[..root]);
    if !query.is_empty() {
        out.push('?');
        out.push_str(query);
    }
    out
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            if let Ok(mut c) = postgres::Client::connect(&admin, postgres::NoTls) {
                let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        })
        .join();
    }
}

/// Stops the server task when the test server goes away.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl TestServer {
    /// Starts a server with default settings.
    pub async fn start(domains: Vec<Arc<dyn Domain>>) -> TestServer {
        Self::start_with(domains, |_| {}).await
    }

    /// Starts a server after `configure` adjusted its settings (token, secret, limits).
    pub async fn start_with(
        domains: Vec<Arc<dyn Domain>>,
        configure: impl FnOnce(&mut Settings),
    ) -> TestServer {
        Self::start_on(backend(), domains, configure).await
    }

    /// [`TestServer::start_with`] on a chosen backend. A domain list with a domain that does
    /// not run on PostgreSQL runs on SQLite whatever the backend asked for.
    pub async fn start_on(
        backend: Backend,
        domains: Vec<Arc<dyn Domain>>,
        configure: impl FnOnce(&mut Settings),
    ) -> TestServer {
        let on_postgres = backend == Backend::Postgres
            && domains.iter().all(|d| d.postgres_migrations().is_some());
        let database = on_postgres.then(TestDatabase::create);
        Self::start_sharing(database, domains, configure).await
    }

    /// Another instance on this server's database (PostgreSQL), with a data directory of
    /// its own: what a second machine behind a load balancer runs.
    pub async fn beside(
        &self,
        domains: Vec<Arc<dyn Domain>>,
        configure: impl FnOnce(&mut Settings),
    ) -> TestServer {
        let database = self.database.clone();
        assert!(database.is_some(), "instances share a PostgreSQL database");
        Self::start_sharing(database, domains, configure).await
    }

    async fn start_sharing(
        database: Option<Arc<TestDatabase>>,
        domains: Vec<Arc<dyn Domain>>,
        configure: impl FnOnce(&mut Settings),
    ) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut settings = Settings::with_data_dir(dir.path().join("data"));
        settings.addr = "127.0.0.1:0".parse().expect("addr");
        settings.inbox_rescan_secs = 1;
        if let Some(db) = &database {
            settings.database = DatabaseUrl::Postgres(db.url.clone());
        }
        configure(&mut settings);
        let mut server = Self::start_in(dir, settings, domains).await;
        server.database = database;
        server
    }

    /// The PostgreSQL database this server runs on, if it does.
    pub fn database(&self) -> Option<&Arc<TestDatabase>> {
        self.database.as_ref()
    }

    /// Starts a server whose inboxes are not watched, so files placed in an inbox are
    /// ingested only when a request asks for it.
    pub async fn start_unwatched(
        domains: Vec<Arc<dyn Domain>>,
        configure: impl FnOnce(&mut Settings),
    ) -> TestServer {
        let on_postgres = backend() == Backend::Postgres
            && domains.iter().all(|d| d.postgres_migrations().is_some());
        let database = on_postgres.then(TestDatabase::create);
        let dir = tempfile::tempdir().expect("temp dir");
        let mut settings = Settings::with_data_dir(dir.path().join("data"));
        if let Some(db) = &database {
            settings.database = DatabaseUrl::Postgres(db.url.clone());
        }
        configure(&mut settings);
        let mut server = Self::launch(dir, settings, domains, false).await;
        server.database = database;
        server
    }

    /// Starts a server on an existing data directory (restart tests).
    pub async fn restart(self, domains: Vec<Arc<dyn Domain>>) -> TestServer {
        self.task.0.abort();
        let settings = (*self.ctx.settings).clone();
        drop(self.task);
        let mut server = Self::start_in(self.dir, settings, domains).await;
        server.database = self.database;
        server
    }

    async fn start_in(
        dir: tempfile::TempDir,
        settings: Settings,
        domains: Vec<Arc<dyn Domain>>,
    ) -> TestServer {
        Self::launch(dir, settings, domains, true).await
    }

    async fn launch(
        dir: tempfile::TempDir,
        settings: Settings,
        domains: Vec<Arc<dyn Domain>>,
        watch: bool,
    ) -> TestServer {
        crate::check_settings(&settings, &domains).expect("valid settings");
        let ctx = Ctx::open(settings).expect("open data dir");
        crate::prepare(&ctx, &domains).expect("migrations");
        if watch {
            crate::watch_inboxes(&ctx, &domains).expect("inbox watchers");
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let app = crate::app(ctx.clone(), &domains);
        let limits = crate::ConnLimits::from_settings(&ctx.settings);
        // Aborting the task drops `serve`, which closes every connection it serves.
        let task = tokio::spawn(crate::serve(listener, app, limits, std::future::pending()));
        TestServer {
            base,
            ctx,
            dir,
            task: AbortOnDrop(task),
            database: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn data_dir(&self) -> &Path {
        &self.ctx.settings.data_dir
    }

    /// The temp folder holding the data dir (for extra files of a test).
    pub fn scratch(&self) -> &Path {
        self.dir.path()
    }
}
