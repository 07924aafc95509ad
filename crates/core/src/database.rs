//! Which database a process uses (the setting `database`) and the handle to it: the embedded
//! SQLite file by default, or a PostgreSQL server shared by several instances.

use std::path::PathBuf;

use crate::db::{Db, DbError, Migration};
use crate::owner::Owner;
use crate::pg::PgDb;

/// The setting `database`: where the data lives.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `sluice.db` in the data directory (the default).
    #[default]
    DataDir,
    /// An SQLite file elsewhere.
    Sqlite(PathBuf),
    /// A `postgres://` (or `postgresql://`) URL, as libpq takes it.
    Postgres(String),
}

impl std::str::FromStr for DatabaseUrl {
    type Err = String;

    /// `sqlite:PATH` (or `sqlite://PATH`), `postgres://…` / `postgresql://…`; empty means
    /// the default file.
    fn from_str(s: &str) -> Result<DatabaseUrl, String> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(DatabaseUrl::DataDir);
        }
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            s.parse::<postgres::Config>()
                .map_err(|e| format!("`{}` is not a PostgreSQL URL: {e}", crate::pg::redact(s)))?;
            return Ok(DatabaseUrl::Postgres(s.to_owned()));
        }
        if let Some(path) = s
            .strip_prefix("sqlite://")
            .or_else(|| s.strip_prefix("sqlite:"))
        {
            if path.is_empty() {
                return Err(
                    "`sqlite:` needs a file path, as in sqlite:/var/lib/sluice/sluice.db".into(),
                );
            }
            return Ok(DatabaseUrl::Sqlite(PathBuf::from(path)));
        }
        Err(format!(
            "`{}` is neither postgres://user@host:port/db nor sqlite:PATH",
            crate::pg::redact(s)
        ))
    }
}

impl std::fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DatabaseUrl::DataDir => f.write_str("sluice.db in the data directory"),
            DatabaseUrl::Sqlite(p) => write!(f, "sqlite:{}", p.display()),
            DatabaseUrl::Postgres(url) => f.write_str(&crate::pg::redact(url)),
        }
    }
}

/// Which kind of database a handle is, for domains to say what they support.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

/// The open database: every domain's store takes the variant it is given.
#[derive(Clone)]
pub enum Database {
    Sqlite(Db),
    Postgres(PgDb),
}

impl Database {
    pub fn backend(&self) -> Backend {
        match self {
            Database::Sqlite(_) => Backend::Sqlite,
            Database::Postgres(_) => Backend::Postgres,
        }
    }

    /// The owner of the work started through this handle.
    pub fn owner(&self) -> &Owner {
        match self {
            Database::Sqlite(db) => db.owner(),
            Database::Postgres(pg) => pg.owner(),
        }
    }

    /// Applies an owner's migrations: `sqlite` on SQLite, `postgres` on PostgreSQL (an owner
    /// without a PostgreSQL schema is refused there, naming it).
    pub fn migrate(
        &self,
        owner: &str,
        sqlite: &[Migration],
        postgres: Option<&[Migration]>,
    ) -> Result<(), DbError> {
        match (self, postgres) {
            (Database::Sqlite(db), _) => db.migrate(owner, sqlite),
            (Database::Postgres(pg), Some(m)) => pg.migrate(owner, m),
            (Database::Postgres(_), None) => Err(DbError::Unsupported(format!(
                "{owner} does not run on PostgreSQL yet; use the SQLite database for it"
            ))),
        }
    }

    /// The SQLite handle, for code that has no PostgreSQL counterpart: on PostgreSQL this is
    /// an error naming the backend, never a wrong answer.
    pub fn sqlite(&self) -> Result<&Db, DbError> {
        match self {
            Database::Sqlite(db) => Ok(db),
            Database::Postgres(_) => Err(DbError::Unsupported(
                "this needs the SQLite database; it does not run on PostgreSQL yet".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_parse_or_name_what_is_wrong() {
        assert_eq!("".parse::<DatabaseUrl>(), Ok(DatabaseUrl::DataDir));
        assert_eq!(
            "sqlite:/tmp/x.db".parse::<DatabaseUrl>(),
            Ok(DatabaseUrl::Sqlite("/tmp/x.db".into()))
        );
        assert_eq!(
            "sqlite:///tmp/x.db".parse::<DatabaseUrl>(),
            Ok(DatabaseUrl::Sqlite("/tmp/x.db".into()))
        );
        assert_eq!(
            "postgres://u@127.0.0.1:5433/db".parse::<DatabaseUrl>(),
            Ok(DatabaseUrl::Postgres(
                "postgres://u@127.0.0.1:5433/db".into()
            ))
        );
        let e = "mysql://u:secret@h/db".parse::<DatabaseUrl>().unwrap_err();
        assert!(e.contains("neither") && !e.contains("secret"), "{e}");
        let e = "postgres://u:secret@h:notaport/db"
            .parse::<DatabaseUrl>()
            .unwrap_err();
        assert!(
            e.contains("not a PostgreSQL URL") && !e.contains("secret"),
            "{e}"
        );
        assert!("sqlite:".parse::<DatabaseUrl>().is_err());
    }

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(
            crate::pg::redact("postgres://u:pw@h:1/db"),
            "postgres://u:***@h:1/db"
        );
        assert_eq!(crate::pg::redact("postgres://u@h/db"), "postgres://u@h/db");
    }
}
