//! Settings resolution: defaults < TOML file < `SLUICE_*` environment < flags. Clap reads the
//! environment and flags into `Option`s; the file fills what they left empty.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use sluice_core::config::FileConfig;
use sluice_core::Settings;

/// Options every command shares.
#[derive(Args, Debug, Clone, Default)]
pub struct Common {
    /// TOML config file (default: ./sluice.toml when it exists).
    #[arg(long, env = "SLUICE_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Folder of the database, inboxes, spool and reports [default: ./sluice-data].
    #[arg(long, env = "SLUICE_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// The database: `postgres://user@host:port/db` for a PostgreSQL server shared by several
    /// instances (network, streams and uptime run there so far; trips not yet), or `sqlite:PATH` [default:
    /// sluice.db in the data directory].
    #[arg(long, env = "SLUICE_DATABASE", global = true, hide_env_values = true)]
    pub database: Option<String>,
    /// A streaming replica of the PostgreSQL database (`postgres://…`) that answers the read
    /// routes; writes and job state stay on the primary.
    #[arg(
        long,
        env = "SLUICE_DATABASE_REPLICA",
        global = true,
        hide_env_values = true
    )]
    pub database_replica: Option<String>,
    /// Largest decompressed size of one `.gz` input, in bytes; past it the file is rejected
    /// [default: 64 GiB].
    #[arg(long, env = "SLUICE_MAX_DECOMPRESSED_BYTES", global = true)]
    pub max_decompressed_bytes: Option<u64>,
    /// Largest size of the database file, in bytes (rounded up to whole pages); an input that
    /// would grow it further fails as on a full disk, nothing of it kept [default: no cap].
    #[arg(long, env = "SLUICE_MAX_DB_BYTES", global = true)]
    pub max_db_bytes: Option<u64>,
    /// IANA time zone in which the Flask compat routes `/kpi1`, `/kpi2` read `from`/`to` and
    /// print their times, as the original did in its host's zone (config: `[network]
    /// compat_time_zone`) [default: UTC].
    #[arg(
        long,
        env = "SLUICE_NETWORK_COMPAT_TIME_ZONE",
        global = true,
        help_heading = "Network"
    )]
    pub network_compat_time_zone: Option<String>,
    /// Where a network file's 5-minute period comes from: `rows` (its rows' timestamps) or
    /// `file-name` (`ipflow_data.ts-<end ms>.<n>`, as the Django system did); ingestion warns
    /// when the two disagree (config: `[network] period_from`) [default: rows].
    #[arg(
        long,
        env = "SLUICE_NETWORK_PERIOD_FROM",
        global = true,
        help_heading = "Network"
    )]
    pub network_period_from: Option<String>,
}

/// Options of the commands that serve HTTP (`serve`, `demo`).
#[derive(Args, Debug, Clone, Default)]
pub struct ServeOpts {
    /// Listen address, `IP:PORT` or `localhost:PORT` [default: 127.0.0.1:8080]. Addresses
    /// beyond loopback need a token.
    #[arg(long, env = "SLUICE_ADDR", value_parser = sluice_core::config::parse_listen_addr)]
    pub addr: Option<SocketAddr>,
    /// Bearer token required on every route that changes data.
    #[arg(long, env = "SLUICE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Without a token: host names accepted in the `Host` header besides loopback ones
    /// (comma-separated), e.g. a name in /etc/hosts that points at 127.0.0.1.
    #[arg(long, env = "SLUICE_ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Option<Vec<String>>,
    /// Secret that signs webhook bodies (header X-Sluice-Signature: sha256=<HMAC>).
    #[arg(long, env = "SLUICE_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,
    /// Largest accepted upload, in bytes [default: 1 GiB].
    #[arg(long, env = "SLUICE_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<u64>,
    /// Seconds between safety-net rescans of the inbox folders [default: 30].
    #[arg(long, env = "SLUICE_INBOX_RESCAN_SECS")]
    pub inbox_rescan_secs: Option<u64>,
    /// Seconds a client may take to send a request's head; 0 for no limit [default: 10].
    #[arg(long, env = "SLUICE_HEADER_READ_TIMEOUT_SECS")]
    pub header_read_timeout_secs: Option<u64>,
    /// Seconds an idle keep-alive connection stays open; 0 for no limit [default: 60].
    #[arg(long, env = "SLUICE_IDLE_TIMEOUT_SECS")]
    pub idle_timeout_secs: Option<u64>,
    /// Connections served at once [default: 1024].
    #[arg(long, env = "SLUICE_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Days after which finished jobs are deleted (checked at start and hourly); 0 keeps
    /// them forever [default: 30].
    #[arg(long, env = "SLUICE_JOB_RETENTION_DAYS")]
    pub job_retention_days: Option<u64>,
}

/// A century: beyond it, "forever" is spelled 0.
const MAX_RETENTION_DAYS: u64 = 36_500;

pub fn resolve(common: &Common, serve: Option<&ServeOpts>) -> anyhow::Result<Settings> {
    let file = match &common.config {
        Some(path) => FileConfig::load(path)?,
        None => {
            let default = PathBuf::from("sluice.toml");
            if default.is_file() {
                FileConfig::load(&default)?
            } else {
                FileConfig::default()
            }
        }
    };
    let mut s = Settings {
        domains: file.domain_tables(),
        ..Settings::default()
    };
    // Environment and flags override the file's domain tables key by key.
    let overrides = [
        (
            "network",
            "compat_time_zone",
            &common.network_compat_time_zone,
        ),
        ("network", "period_from", &common.network_period_from),
    ];
    for (domain, key, value) in overrides {
        if let Some(v) = value {
            s.domains
                .entry(domain.to_owned())
                .or_default()
                .insert(key.to_owned(), toml::Value::String(v.clone()));
        }
    }
    if let Some(d) = common.data_dir.clone().or(file.data_dir) {
        s.data_dir = d;
    }
    if let Some(url) = common.database.clone().or(file.database) {
        s.database = url
            .parse()
            .map_err(|e| anyhow::anyhow!("invalid database setting: {e}"))?;
    }
    s.database_replica = common
        .database_replica
        .clone()
        .or(file.database_replica)
        .filter(|u| !u.is_empty());
    if let Some(replica) = &s.database_replica {
        if !matches!(replica.parse(), Ok(sluice_core::DatabaseUrl::Postgres(_))) {
            anyhow::bail!(
                "invalid database_replica setting: `{}` is not a postgres:// URL",
                sluice_core::pg::redact(replica)
            );
        }
    }
    let none = ServeOpts::default();
    let o = serve.unwrap_or(&none);
    if let Some(a) = o.addr.or(file.addr) {
        s.addr = a;
    }
    s.token = o.token.clone().or(file.token).filter(|t| !t.is_empty());
    s.allowed_hosts = o
        .allowed_hosts
        .clone()
        .or(file.allowed_hosts)
        .unwrap_or_default();
    s.webhook_secret = o
        .webhook_secret
        .clone()
        .or(file.webhook_secret)
        .filter(|t| !t.is_empty());
    if let Some(m) = o.max_body_bytes.or(file.max_body_bytes) {
        s.max_body_bytes = m;
    }
    if let Some(r) = o.inbox_rescan_secs.or(file.inbox_rescan_secs) {
        s.inbox_rescan_secs = r;
    }
    if let Some(m) = common
        .max_decompressed_bytes
        .or(file.max_decompressed_bytes)
    {
        s.max_decompressed_bytes = m;
    }
    s.max_db_bytes = common.max_db_bytes.or(file.max_db_bytes);
    if let Some(t) = o.header_read_timeout_secs.or(file.header_read_timeout_secs) {
        s.header_read_timeout_secs = t;
    }
    if let Some(t) = o.idle_timeout_secs.or(file.idle_timeout_secs) {
        s.idle_timeout_secs = t;
    }
    if let Some(d) = o.job_retention_days.or(file.job_retention_days) {
        if d > MAX_RETENTION_DAYS {
            anyhow::bail!("job_retention_days must be at most {MAX_RETENTION_DAYS} (0 keeps jobs forever), got {d}");
        }
        s.job_retention_days = d;
    }
    if let Some(n) = o.max_connections.or(file.max_connections) {
        if n == 0 {
            anyhow::bail!("max_connections must be at least 1");
        }
        s.max_connections = n;
    }
    Ok(s)
}
