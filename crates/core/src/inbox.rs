//! Inbox watching: `notify` events plus a periodic rescan as a safety net. A file is handed
//! over only once it is complete: not hidden or temporary (`.part`, `.tmp`, `.partial`,
//! `.crdownload`), and its size and modification time unchanged for a quiet period. Files
//! written in place are thus picked up after their last write; files renamed into place at
//! once. Files handed over before are handed over again only when they change; the ledger
//! makes a repeated hand-over a no-op anyway.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::ingest::FileIngest;
use crate::Ctx;

/// How long a file must stay unchanged before it counts as complete.
const QUIET: Duration = Duration::from_millis(500);
const TICK: Duration = Duration::from_millis(200);

/// Names that are still being written by convention.
pub fn is_temporary(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    name.starts_with('.')
        || name.starts_with('~')
        || [".part", ".tmp", ".partial", ".crdownload", ".swp"]
            .iter()
            .any(|ext| name.ends_with(ext))
}

/// Why a folder cannot be watched.
pub type WatchError = notify::Error;

type Stamp = (u64, SystemTime);

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    m.is_file()
        .then(|| (m.len(), m.modified().unwrap_or(SystemTime::UNIX_EPOCH)))
}

/// Tracks candidate files until they are complete.
struct Tracker {
    pending: HashMap<PathBuf, (Stamp, Instant)>,
    handed: HashMap<PathBuf, Stamp>,
    ignored: HashSet<PathBuf>,
}

impl Tracker {
    fn new() -> Self {
        Tracker {
            pending: HashMap::new(),
            handed: HashMap::new(),
            ignored: HashSet::new(),
        }
    }

    fn consider(&mut self, path: PathBuf, ingest: &dyn FileIngest) {
        if is_temporary(&path) {
            return;
        }
        if !ingest.accepts(&path) {
            if path.is_file() && self.ignored.insert(path.clone()) {
                tracing::info!(domain = ingest.domain(), file = %path.display(), "ignoring a file whose name this domain does not take");
            }
            return;
        }
        let Some(s) = stamp(&path) else { return };
        if self.handed.get(&path) == Some(&s) {
            return;
        }
        match self.pending.get(&path) {
            Some((old, _)) if *old == s => {}
            _ => {
                self.pending.insert(path, (s, Instant::now()));
            }
        }
    }

    /// Files unchanged for the quiet period, sorted.
    fn ready(&mut self) -> Vec<PathBuf> {
        let now = Instant::now();
        let mut ready = Vec::new();
        self.pending.retain(|path, (s, since)| match stamp(path) {
            None => false,
            Some(cur) if cur != *s => {
                *s = cur;
                *since = now;
                true
            }
            Some(_) if now.duration_since(*since) >= QUIET => {
                ready.push((path.clone(), *s));
                false
            }
            Some(_) => true,
        });
        ready.sort();
        ready
            .into_iter()
            .map(|(p, s)| {
                self.handed.insert(p.clone(), s);
                p
            })
            .collect()
    }
}

fn scan(dir: &Path, tracker: &mut Tracker, ingest: &dyn FileIngest) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            tracker.consider(e.path(), ingest);
        }
    }
}

/// Watches the domain's inbox until the runtime shuts down, handing complete files to `sink`
/// in batches (all files that became complete in the same tick).
pub fn watch_with(
    dir: PathBuf,
    ingest: Arc<dyn FileIngest>,
    rescan: Duration,
    sink: mpsc::UnboundedSender<Vec<PathBuf>>,
) -> notify::Result<tokio::task::JoinHandle<()>> {
    std::fs::create_dir_all(&dir).map_err(notify::Error::io)?;
    let (tx, mut rx) = mpsc::unbounded_channel::<PathBuf>();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(event) = res {
            for p in event.paths {
                let _ = tx.send(p);
            }
        }
    })?;
    watcher.watch(&dir, RecursiveMode::NonRecursive)?;
    Ok(tokio::spawn(async move {
        let _watcher = watcher; // keeps the OS watch alive as long as the task
        let mut tracker = Tracker::new();
        scan(&dir, &mut tracker, ingest.as_ref());
        let mut tick = tokio::time::interval(TICK);
        let mut last_scan = Instant::now();
        loop {
            tokio::select! {
                Some(p) = rx.recv() => tracker.consider(p, ingest.as_ref()),
                _ = tick.tick() => {
                    if last_scan.elapsed() >= rescan {
                        scan(&dir, &mut tracker, ingest.as_ref());
                        last_scan = Instant::now();
                    }
                    let ready = tracker.ready();
                    if !ready.is_empty() && sink.send(ready).is_err() {
                        return;
                    }
                }
            }
        }
    }))
}

/// Watches the domain's inbox and ingests each batch of complete files as one job.
pub fn watch(ctx: Ctx, ingest: Arc<dyn FileIngest>) -> notify::Result<tokio::task::JoinHandle<()>> {
    let dir = ctx.settings.inbox_dir(ingest.domain());
    let rescan = Duration::from_secs(ctx.settings.inbox_rescan_secs.max(1));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let watcher = watch_with(dir, ingest.clone(), rescan, tx)?;
    Ok(tokio::spawn(async move {
        while let Some(files) = rx.recv().await {
            tracing::debug!(
                domain = ingest.domain(),
                files = files.len(),
                "inbox files complete"
            );
            let job = match crate::ingest::new_job(&ctx, ingest.as_ref(), &files, None) {
                Ok(job) => job,
                Err(e) => {
                    tracing::error!(error = %e, "cannot create an inbox job");
                    continue;
                }
            };
            let (ctx2, ingest2) = (ctx.clone(), ingest.clone());
            // One inbox job at a time per domain keeps files in arrival order.
            let done = tokio::task::spawn_blocking(move || {
                crate::ingest::run(&ctx2, ingest2.as_ref(), &files, job)
            })
            .await;
            if let Ok(Err(e)) = done {
                tracing::error!(error = %e, "could not store the end of an inbox job");
            }
        }
        watcher.abort();
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::{JobHandle, Summary};
    use crate::IngestError;

    struct Csv;
    impl FileIngest for Csv {
        fn domain(&self) -> &'static str {
            "t"
        }
        fn accepts(&self, p: &Path) -> bool {
            p.extension().is_some_and(|e| e == "csv")
        }
        fn ingest(&self, _: &Ctx, _: &[PathBuf], _: &JobHandle) -> Result<Summary, IngestError> {
            Ok(Summary::default())
        }
    }

    #[test]
    fn temporary_names() {
        assert!(is_temporary(Path::new("/x/.a.csv")));
        assert!(is_temporary(Path::new("/x/a.csv.part")));
        assert!(!is_temporary(Path::new("/x/a.csv")));
    }

    #[tokio::test]
    async fn hands_over_complete_files_once_and_changed_files_again() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let h = watch_with(
            dir.path().to_owned(),
            Arc::new(Csv),
            Duration::from_secs(1),
            tx,
        )
        .unwrap();
        // Written under a temporary name, then renamed into place.
        std::fs::write(dir.path().join("a.csv.part"), "x").unwrap();
        std::fs::write(dir.path().join("ignored.txt"), "x").unwrap();
        std::fs::rename(dir.path().join("a.csv.part"), dir.path().join("a.csv")).unwrap();
        let got = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got, vec![dir.path().join("a.csv")]);
        // Unchanged: never again, even after a rescan.
        assert!(tokio::time::timeout(Duration::from_millis(1500), rx.recv())
            .await
            .is_err());
        std::fs::write(dir.path().join("a.csv"), "changed").unwrap();
        let got = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got, vec![dir.path().join("a.csv")]);
        h.abort();
    }
}
