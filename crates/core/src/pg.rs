//! The PostgreSQL handle, for several sluice instances on one server database: a pool of
//! primary connections for writes, optionally a pool on a streaming replica for reads, the
//! per-owner migrations (the same runner as SQLite's, with each owner's PostgreSQL set),
//! this handle's owner lease, and one listening connection that turns other instances'
//! `NOTIFY`s into local events.
//!
//! The client is the synchronous `postgres` crate: it drives each connection with a small
//! runtime of its own, which cannot start inside an async task. Every entry point therefore
//! runs its closure on the calling thread when that thread has no runtime context (a plain
//! worker thread), and on a scoped thread of its own otherwise — an async task, or a
//! blocking-pool thread, which tokio does not tell apart from one — so it is safe to call
//! from anywhere, as the SQLite handle is (at the cost of a thread per call from there).

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fallible_iterator::FallibleIterator;
use postgres::{Client, IsolationLevel, NoTls, Transaction};
use r2d2_postgres::PostgresConnectionManager;

use crate::db::{DbError, Migration};
use crate::owner::{Owner, OwnerId};

type Pool = r2d2::Pool<PostgresConnectionManager<NoTls>>;

/// The channel of "something committed": the payload is the committing handle's owner id, so
/// a handle ignores its own (it counted them at commit).
pub const CHANGED: &str = "sluice_changed";

/// The channel of job events between instances (see `jobs`).
pub const JOBS: &str = "sluice_jobs";

/// How long an owner's lease lasts without renewal; renewed every third of it. An instance
/// killed mid-job is known dead this long after its last renewal.
pub const LEASE: Duration = Duration::from_secs(6);

/// A `postgres://` URL with its password hidden, for logs and errors.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Runs `f` where the synchronous client may block: here, unless this thread is inside a
/// runtime, then on a scoped thread.
fn off_runtime<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|s| {
        s.spawn(f)
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

type Listener = Box<dyn Fn(&str) + Send + Sync>;

#[derive(Clone)]
pub struct PgDb {
    inner: Arc<Inner>,
}

struct Inner {
    url: String,
    primary: Pool,
    replica: Option<Pool>,
    owner: Owner,
    /// Counts commits seen by this handle: its own, and other handles' from their `NOTIFY`.
    changes: AtomicI64,
    /// Callbacks for notifications on other channels, by channel.
    listeners: Mutex<Vec<(String, Listener)>>,
    stop: Arc<AtomicBool>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn connect_once(url: &str) -> Result<Client, DbError> {
    let config: postgres::Config = url
        .parse()
        .map_err(|e: postgres::Error| DbError::Url(format!("{}: {e}", redact(url))))?;
    config
        .connect(NoTls)
        .map_err(|e| DbError::Url(format!("{}: cannot connect: {e}", redact(url))))
}

fn pool(url: &str, size: u32) -> Result<Pool, DbError> {
    let config: postgres::Config = url
        .parse()
        .map_err(|e: postgres::Error| DbError::Url(format!("{}: {e}", redact(url))))?;
    let manager = PostgresConnectionManager::new(config, NoTls);
    Ok(r2d2::Pool::builder()
        .max_size(size)
        .min_idle(Some(0))
        .connection_timeout(Duration::from_secs(30))
        .build_unchecked(manager))
}

impl PgDb {
    /// Connects to the primary at `url` (and reads from `replica` when given), creates the
    /// platform's lease table, takes this handle's owner lease and starts its renewal and
    /// the listening connection.
    pub fn connect(url: &str, replica: Option<&str>) -> Result<PgDb, DbError> {
        off_runtime(|| PgDb::connect_blocking(url, replica))
    }

    fn connect_blocking(url: &str, replica_url: Option<&str>) -> Result<PgDb, DbError> {
        let replica = replica_url;
        let primary = pool(url, 16)?;
        let replica = replica.map(|r| pool(r, 16)).transpose()?;
        // One direct connection first: a wrong host, port or password is said at once and
        // plainly, not after the pool's wait for a connection.
        let mut client = connect_once(url)?;
        if let Some(r) = replica_url {
            connect_once(r)?;
        }
        // Two instances starting at once both create it; the loser's error is harmless.
        let _ = client.batch_execute(
            "CREATE TABLE IF NOT EXISTS core_owner_lease (
                 id TEXT PRIMARY KEY,
                 expires_at TIMESTAMPTZ NOT NULL)",
        );
        let id = OwnerId::fresh();
        client.execute(
            "INSERT INTO core_owner_lease (id, expires_at) VALUES ($1, now() + $2 * interval '1 millisecond')",
            &[&id.as_str(), &(LEASE.as_millis() as f64)],
        )?;
        drop(client);
        let stop = Arc::new(AtomicBool::new(false));
        let owner = Owner::leased(id.clone(), {
            let primary = primary.clone();
            move |other: &str| lease_alive(&primary, other)
        });
        spawn_renewal(primary.clone(), id, stop.clone());
        let db = PgDb {
            inner: Arc::new(Inner {
                url: url.to_owned(),
                primary,
                replica,
                owner,
                changes: AtomicI64::new(0),
                listeners: Mutex::new(Vec::new()),
                stop,
            }),
        };
        // Listening before the handle is used: nothing committed after `connect` is missed.
        let (ready, listening) = std::sync::mpsc::channel();
        spawn_listener(&db, url, ready)?;
        listening
            .recv_timeout(Duration::from_secs(30))
            .map_err(|_| DbError::Unsupported("the listening connection did not start".into()))?;
        Ok(db)
    }

    /// The primary's URL, password hidden.
    pub fn display_url(&self) -> String {
        redact(&self.inner.url)
    }

    pub fn owner(&self) -> &Owner {
        &self.inner.owner
    }

    /// Whether reads go to a replica.
    pub fn has_replica(&self) -> bool {
        self.inner.replica.is_some()
    }

    /// Applies the owner's migrations not applied yet, tracked in `<owner>_schema_history`.
    /// Instances starting together take turns (an advisory lock per owner).
    pub fn migrate(&self, owner: &str, migrations: &[Migration]) -> Result<(), DbError> {
        let err = |message: String| DbError::Migration {
            owner: owner.to_owned(),
            message,
        };
        let list = migrations
            .iter()
            .map(|m| refinery::Migration::unapplied(m.name, m.sql).map_err(|e| err(e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        off_runtime(|| {
            let mut conn = self.inner.primary.get()?;
            let key = advisory_key(&format!("migrate {owner}"));
            conn.execute("SELECT pg_advisory_lock($1)", &[&key])?;
            let out = refinery::Runner::new(&list)
                // One transaction for the migrations and their history rows: ungrouped, refinery
                // commits a migration and its history row separately, and a kill between the two
                // leaves a schema that the next start tries to create again.
                .set_grouped(true)
                .set_migration_table_name(format!("{owner}_schema_history"))
                .run(&mut *conn)
                .map(|_| ())
                .map_err(|e| err(e.to_string()));
            conn.execute("SELECT pg_advisory_unlock($1)", &[&key])?;
            out
        })
    }

    /// Runs `f` in one transaction on the primary and commits it when `f` succeeds; every
    /// other handle hears of the commit (`NOTIFY`, delivered at commit).
    pub fn write<R: Send, E: From<DbError> + Send>(
        &self,
        f: impl FnOnce(&mut Transaction<'_>) -> Result<R, E> + Send,
    ) -> Result<R, E> {
        off_runtime(|| {
            let mut conn = self.inner.primary.get().map_err(DbError::from)?;
            let mut tx = conn.transaction().map_err(DbError::from)?;
            let out = f(&mut tx)?;
            tx.execute(
                "SELECT pg_notify($1, $2)",
                &[&CHANGED, &self.inner.owner.id().as_str()],
            )
            .map_err(DbError::from)?;
            tx.commit().map_err(DbError::from)?;
            self.inner.changes.fetch_add(1, Ordering::SeqCst);
            Ok(out)
        })
    }

    /// Runs `f` on a primary connection outside any transaction of ours (statements that
    /// manage their own, such as `COPY` loads in several transactions).
    pub fn with_client<R: Send, E: From<DbError> + Send>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<R, E> + Send,
    ) -> Result<R, E> {
        off_runtime(|| {
            let mut conn = self.inner.primary.get().map_err(DbError::from)?;
            f(&mut conn)
        })
    }

    /// Runs `f` in one read-only repeatable-read transaction (one snapshot), on the replica
    /// when there is one.
    pub fn read<R: Send, E: From<DbError> + Send>(
        &self,
        f: impl FnOnce(&mut Transaction<'_>) -> Result<R, E> + Send,
    ) -> Result<R, E> {
        self.read_on(self.inner.replica.as_ref(), f)
    }

    /// [`PgDb::read`] on the primary, whatever the replica: for reads that must see this
    /// instance's own latest commit (job state, the ledger during ingestion).
    pub fn read_primary<R: Send, E: From<DbError> + Send>(
        &self,
        f: impl FnOnce(&mut Transaction<'_>) -> Result<R, E> + Send,
    ) -> Result<R, E> {
        self.read_on(None, f)
    }

    fn read_on<R: Send, E: From<DbError> + Send>(
        &self,
        replica: Option<&Pool>,
        f: impl FnOnce(&mut Transaction<'_>) -> Result<R, E> + Send,
    ) -> Result<R, E> {
        off_runtime(|| {
            let pool = replica.unwrap_or(&self.inner.primary);
            let mut conn = pool.get().map_err(DbError::from)?;
            let mut tx = conn
                .build_transaction()
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .map_err(DbError::from)?;
            let out = f(&mut tx)?;
            tx.commit().map_err(DbError::from)?;
            Ok(out)
        })
    }

    /// A number that changes whenever any handle on this database committed (this one at
    /// once, others when their notification arrives): caches keyed by it are exact for this
    /// instance's own writes and follow other instances' within the notification's delay.
    pub fn version(&self) -> i64 {
        self.inner.changes.load(Ordering::SeqCst)
    }

    /// Calls `f(payload)` for every notification on `channel` from now on (the listening
    /// connection subscribes on its next round, within a second); payloads say who sent
    /// them where that matters.
    pub fn on_notify(&self, channel: &str, f: impl Fn(&str) + Send + Sync + 'static) {
        self.inner
            .listeners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((channel.to_owned(), Box::new(f)));
    }

    /// Sends `payload` on `channel` (at most 8000 bytes: PostgreSQL's limit).
    pub fn notify(&self, channel: &str, payload: &str) -> Result<(), DbError> {
        off_runtime(|| {
            let mut conn = self.inner.primary.get()?;
            conn.execute("SELECT pg_notify($1, $2)", &[&channel, &payload])?;
            Ok(())
        })
    }
}

/// A stable advisory-lock key for a name (the first 8 bytes of its BLAKE3 hash).
pub fn advisory_key(name: &str) -> i64 {
    let h = blake3::hash(name.as_bytes());
    i64::from_le_bytes(h.as_bytes()[..8].try_into().expect("8 bytes"))
}

fn lease_alive(primary: &Pool, id: &str) -> bool {
    off_runtime(|| {
        let Ok(mut c) = primary.get() else {
            return true; // cannot check: never take what may be live
        };
        match c.query_opt(
            "SELECT expires_at > now() FROM core_owner_lease WHERE id = $1",
            &[&id],
        ) {
            Ok(Some(row)) => row.get(0),
            Ok(None) => false,
            Err(_) => true,
        }
    })
}

/// Renews the lease every third of [`LEASE`] until the handle is dropped, then ends it, and
/// removes leases that expired long ago (dead instances').
fn spawn_renewal(primary: Pool, id: OwnerId, stop: Arc<AtomicBool>) {
    std::thread::Builder::new()
        .name("sluice-lease".into())
        .spawn(move || {
            let lease_ms = LEASE.as_millis() as f64;
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(LEASE / 6);
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                if let Ok(mut c) = primary.get() {
                    let renewed = c.execute(
                        "UPDATE core_owner_lease
                         SET expires_at = now() + $2 * interval '1 millisecond' WHERE id = $1",
                        &[&id.as_str(), &lease_ms],
                    );
                    if let Err(e) = renewed {
                        tracing::warn!("renewing the owner lease failed: {e}");
                    }
                    let _ = c.execute(
                        "DELETE FROM core_owner_lease WHERE expires_at < now() - interval '1 day'",
                        &[],
                    );
                }
            }
            if let Ok(mut c) = primary.get() {
                let _ = c.execute(
                    "DELETE FROM core_owner_lease WHERE id = $1",
                    &[&id.as_str()],
                );
            }
        })
        .expect("spawn the lease thread");
}

/// One connection that `LISTEN`s: on [`CHANGED`] it counts other handles' commits; other
/// channels go to their registered callbacks. Reconnects after an error; ends with the handle.
fn spawn_listener(db: &PgDb, url: &str, ready: std::sync::mpsc::Sender<()>) -> Result<(), DbError> {
    let weak = Arc::downgrade(&db.inner);
    let stop = db.inner.stop.clone();
    let config: postgres::Config = url
        .parse()
        .map_err(|e: postgres::Error| DbError::Url(e.to_string()))?;
    std::thread::Builder::new()
        .name("sluice-listen".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let mut client = match config.connect(NoTls) {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!("the listening connection failed: {e}; retrying");
                        std::thread::sleep(Duration::from_secs(1));
                        continue;
                    }
                };
                if let Err(e) = listen(&mut client, &weak, &stop, &ready) {
                    tracing::warn!("the listening connection failed: {e}; reconnecting");
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        })
        .map_err(DbError::Io)?;
    Ok(())
}

fn listen(
    client: &mut Client,
    weak: &std::sync::Weak<Inner>,
    stop: &AtomicBool,
    ready: &std::sync::mpsc::Sender<()>,
) -> Result<(), postgres::Error> {
    let mut channels: Vec<String> = Vec::new();
    let subscribe = |client: &mut Client, channels: &mut Vec<String>, name: &str| {
        if channels.iter().any(|c| c == name) {
            return Ok(());
        }
        // Channel names are ours (constants of the platform and domains), quoted anyway.
        client.batch_execute(&format!("LISTEN \"{}\"", name.replace('"', "")))?;
        channels.push(name.to_owned());
        Ok::<_, postgres::Error>(())
    };
    subscribe(client, &mut channels, CHANGED)?;
    subscribe(client, &mut channels, JOBS)?;
    let _ = ready.send(());
    while !stop.load(Ordering::Relaxed) {
        let Some(inner) = weak.upgrade() else {
            return Ok(());
        };
        let wanted: Vec<String> = inner
            .listeners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(c, _)| c.clone())
            .collect();
        for c in &wanted {
            subscribe(client, &mut channels, c)?;
        }
        drop(inner);
        let mut batch: Vec<(String, String)> = Vec::new();
        {
            let mut notifications = client.notifications();
            let mut it = notifications.timeout_iter(Duration::from_millis(250));
            while let Some(n) = it.next()? {
                batch.push((n.channel().to_owned(), n.payload().to_owned()));
                if batch.len() >= 1024 {
                    break;
                }
            }
        }
        let Some(inner) = weak.upgrade() else {
            return Ok(());
        };
        for (channel, payload) in batch {
            if channel == CHANGED {
                if payload != inner.owner.id().as_str() {
                    inner.changes.fetch_add(1, Ordering::SeqCst);
                }
                continue;
            }
            let listeners = inner.listeners.lock().unwrap_or_else(|p| p.into_inner());
            for (c, f) in listeners.iter() {
                if *c == channel {
                    f(&payload);
                }
            }
        }
    }
    Ok(())
}
