//! A real server for tests: a fresh data directory, every given domain migrated, listening
//! on a random loopback port. Each HTTP test reads like a user session against it.

use std::path::Path;
use std::sync::Arc;

use sluice_core::{Ctx, Domain, Settings};

pub struct TestServer {
    /// `http://127.0.0.1:<port>`
    pub base: String,
    pub ctx: Ctx,
    dir: tempfile::TempDir,
    task: AbortOnDrop,
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
        let dir = tempfile::tempdir().expect("temp dir");
        let mut settings = Settings::with_data_dir(dir.path().join("data"));
        settings.addr = "127.0.0.1:0".parse().expect("addr");
        settings.inbox_rescan_secs = 1;
        configure(&mut settings);
        Self::start_in(dir, settings, domains).await
    }

    /// Starts a server whose inboxes are not watched, so files placed in an inbox are
    /// ingested only when a request asks for it.
    pub async fn start_unwatched(
        domains: Vec<Arc<dyn Domain>>,
        configure: impl FnOnce(&mut Settings),
    ) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut settings = Settings::with_data_dir(dir.path().join("data"));
        configure(&mut settings);
        Self::launch(dir, settings, domains, false).await
    }

    /// Starts a server on an existing data directory (restart tests).
    pub async fn restart(self, domains: Vec<Arc<dyn Domain>>) -> TestServer {
        self.task.0.abort();
        let settings = (*self.ctx.settings).clone();
        drop(self.task);
        Self::start_in(self.dir, settings, domains).await
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
