//! Settings shared by every command: defaults < TOML file < `SLUICE_*` environment < flags.
//! The CLI resolves the layers; this module holds the result and the TOML file format.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::database::DatabaseUrl;

/// Resolved settings.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Database, inboxes, spool and reports live here.
    pub data_dir: PathBuf,
    /// The database: the SQLite file in the data directory, another SQLite file, or a
    /// PostgreSQL server (`postgres://…`) shared by several instances.
    pub database: DatabaseUrl,
    /// On PostgreSQL, a streaming replica that answers the read routes.
    pub database_replica: Option<String>,
    /// Listen address of `serve`.
    pub addr: SocketAddr,
    /// Bearer token required on mutating routes; without one the server binds to loopback only.
    pub token: Option<String>,
    /// Without a token, the `Host` names accepted besides loopback ones (DNS-rebinding guard).
    pub allowed_hosts: Vec<String>,
    /// Secret used to sign webhook bodies (HMAC-SHA256).
    pub webhook_secret: Option<String>,
    /// Largest request body accepted, uploads included.
    pub max_body_bytes: u64,
    /// Safety-net rescan period of the inbox watchers.
    pub inbox_rescan_secs: u64,
    /// Largest decompressed size of one compressed input (`.gz`); a file that expands past it
    /// is rejected, named, with nothing of it kept.
    pub max_decompressed_bytes: u64,
    /// How long a client may take to send a request's head before the connection is closed
    /// (0: no limit).
    pub header_read_timeout_secs: u64,
    /// How long an idle keep-alive connection is kept open (0: no limit).
    pub idle_timeout_secs: u64,
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// Largest size of the database file (rounded up to whole pages); an input that would
    /// grow it further fails as on a full disk, with nothing of it kept. `None`: no cap.
    pub max_db_bytes: Option<u64>,
    /// Finished jobs are deleted this many days after they ended (0: kept forever).
    pub job_retention_days: u64,
    /// Per-domain tables of the config file (`[trips]`, `[streams]`, …), read by the domains.
    pub domains: BTreeMap<String, toml::Table>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            data_dir: PathBuf::from("./sluice-data"),
            database: DatabaseUrl::DataDir,
            database_replica: None,
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            token: None,
            allowed_hosts: Vec::new(),
            webhook_secret: None,
            max_body_bytes: 1 << 30,
            inbox_rescan_secs: 30,
            max_decompressed_bytes: 64 << 30,
            header_read_timeout_secs: 10,
            idle_timeout_secs: 60,
            max_connections: 1024,
            max_db_bytes: None,
            job_retention_days: 30,
            domains: BTreeMap::new(),
        }
    }
}

impl Settings {
    /// Settings for a given data directory, all else default.
    pub fn with_data_dir(dir: impl Into<PathBuf>) -> Self {
        Settings {
            data_dir: dir.into(),
            ..Settings::default()
        }
    }
    /// The SQLite file (also named when the database is PostgreSQL: where it would be).
    pub fn db_path(&self) -> PathBuf {
        match &self.database {
            DatabaseUrl::Sqlite(path) => path.clone(),
            _ => self.data_dir.join("sluice.db"),
        }
    }
    pub fn inbox_dir(&self, domain: &str) -> PathBuf {
        self.data_dir.join("inbox").join(domain)
    }
    pub fn spool_dir(&self, domain: &str) -> PathBuf {
        self.data_dir.join("spool").join(domain)
    }
    pub fn reports_dir(&self, domain: &str) -> PathBuf {
        self.data_dir.join("reports").join(domain)
    }
    /// A domain's table of the config file (empty when absent).
    pub fn domain(&self, name: &str) -> toml::Table {
        self.domains.get(name).cloned().unwrap_or_default()
    }
}

/// A listen address: `IP:PORT` (`[::1]:PORT` for IPv6), or `localhost:PORT` (loopback).
/// Other names are not resolved: a listen address should not depend on DNS.
pub fn parse_listen_addr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = s.parse() {
        return Ok(a);
    }
    let port = s
        .strip_prefix("localhost:")
        .ok_or_else(|| format!("`{s}` is not a listen address; expected IP:PORT or localhost:PORT, e.g. 127.0.0.1:8080"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("`{port}` in `{s}` is not a port (0 to 65535)"))?;
    Ok(SocketAddr::from(([127, 0, 0, 1], port)))
}

fn listen_addr<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    let s: Option<String> = Option::deserialize(d)?;
    s.map(|s| parse_listen_addr(&s).map_err(serde::de::Error::custom))
        .transpose()
}

/// The optional TOML config file. Every field is optional; unknown top-level tables are
/// domain sections.
#[derive(Debug, Default, Deserialize)]
pub struct FileConfig {
    pub data_dir: Option<PathBuf>,
    pub database: Option<String>,
    pub database_replica: Option<String>,
    #[serde(default, deserialize_with = "listen_addr")]
    pub addr: Option<SocketAddr>,
    pub token: Option<String>,
    pub allowed_hosts: Option<Vec<String>>,
    pub webhook_secret: Option<String>,
    pub max_body_bytes: Option<u64>,
    pub inbox_rescan_secs: Option<u64>,
    pub max_decompressed_bytes: Option<u64>,
    pub header_read_timeout_secs: Option<u64>,
    pub idle_timeout_secs: Option<u64>,
    pub max_connections: Option<usize>,
    pub max_db_bytes: Option<u64>,
    pub job_retention_days: Option<u64>,
    #[serde(flatten)]
    pub domains: BTreeMap<String, toml::Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })
    }

    /// Domain sections of the file (tables only).
    pub fn domain_tables(&self) -> BTreeMap<String, toml::Table> {
        self.domains
            .iter()
            .filter_map(|(k, v)| v.as_table().map(|t| (k.clone(), t.clone())))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn listen_addresses_are_ip_port_or_localhost_port() {
        assert_eq!(
            parse_listen_addr("localhost:9000").unwrap(),
            SocketAddr::from(([127, 0, 0, 1], 9000))
        );
        assert_eq!(
            parse_listen_addr("[::1]:80").unwrap().to_string(),
            "[::1]:80"
        );
        assert!(parse_listen_addr("localhost:99999")
            .unwrap_err()
            .contains("not a port"));
        assert!(parse_listen_addr("example.com:80")
            .unwrap_err()
            .contains("IP:PORT or localhost:PORT"));
        let file: FileConfig = toml::from_str("addr = \"localhost:8081\"").unwrap();
        assert_eq!(file.addr, Some(SocketAddr::from(([127, 0, 0, 1], 8081))));
    }

    use super::*;

    #[test]
    fn file_config_reads_known_keys_and_domain_tables() {
        let cfg: FileConfig =
            toml::from_str("addr = \"0.0.0.0:9000\"\ntoken = \"t\"\nmax_db_bytes = 1048576\n[trips]\nh3_resolution = 8\n")
                .unwrap();
        assert_eq!(cfg.addr.unwrap().port(), 9000);
        assert_eq!(cfg.token.as_deref(), Some("t"));
        assert_eq!(cfg.max_db_bytes, Some(1 << 20));
        let d = cfg.domain_tables();
        assert_eq!(d["trips"]["h3_resolution"].as_integer(), Some(8));
    }

    #[test]
    fn bad_config_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sluice.toml");
        std::fs::write(&p, "addr = 12").unwrap();
        let err = FileConfig::load(&p).unwrap_err().to_string();
        assert!(err.contains("sluice.toml"), "{err}");
    }
}
