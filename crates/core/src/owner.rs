//! Who owns unfinished work. Every open database handle is an owner: it takes a fresh random
//! id and holds an exclusive lock on `owners/<id>.lock` beside the database for its lifetime.
//! Work that must not be touched while its owner runs (a job, a staging load) records the id;
//! "is that owner alive" is "is its lock held", which the OS answers for any process on the
//! machine — unlike a process id, which another process (or a container's pid 1) reuses.
//! The lock is released however the process ends, SIGKILL included.
//!
//! On PostgreSQL, where instances on several machines share the work, an owner is a *lease*
//! in the database instead (`core::pg`): renewed while the handle lives, dead once expired.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use uuid::Uuid;

/// An owner's id: 32 lowercase hex digits, so it is always a safe file name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OwnerId(String);

impl OwnerId {
    /// A new random id.
    pub fn fresh() -> OwnerId {
        OwnerId(Uuid::new_v4().simple().to_string())
    }

    /// The id as stored; a stored value that is not a valid id (a row written before owners
    /// existed) names no live owner.
    pub fn parse(s: &str) -> Option<OwnerId> {
        let valid = s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        valid.then(|| OwnerId(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for OwnerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// This handle's ownership: the id and what proves it alive (a held lock file, or a lease
/// in the database). Dropping it releases the lock and removes the file.
pub struct Owner {
    id: OwnerId,
    kind: Kind,
}

enum Kind {
    File {
        dir: PathBuf,
        lock: Option<File>,
    },
    /// Asks the database whether another id's lease is current.
    Lease(Box<dyn Fn(&str) -> bool + Send + Sync>),
}

impl std::fmt::Debug for Owner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Owner").field("id", &self.id).finish()
    }
}

impl Owner {
    /// Takes a fresh id and locks its file in `dir` (created if needed).
    pub fn acquire(dir: &Path) -> std::io::Result<Owner> {
        std::fs::create_dir_all(dir)?;
        let id = OwnerId::fresh();
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(lock_path(dir, &id))?;
        file.try_lock().map_err(|e| match e {
            TryLockError::Error(e) => e,
            TryLockError::WouldBlock => std::io::Error::other("a brand-new lock file is held"),
        })?;
        Ok(Owner {
            id,
            kind: Kind::File {
                dir: dir.to_owned(),
                lock: Some(file),
            },
        })
    }

    /// An owner whose liveness is a lease: `alive(id)` says whether another id's is current.
    pub fn leased(id: OwnerId, alive: impl Fn(&str) -> bool + Send + Sync + 'static) -> Owner {
        Owner {
            id,
            kind: Kind::Lease(Box::new(alive)),
        }
    }

    pub fn id(&self) -> &OwnerId {
        &self.id
    }

    /// Whether the owner recorded as `stored` still runs. Unknown or malformed ids are dead;
    /// a lock file that cannot be checked counts as alive, so live work is never taken.
    pub fn is_alive(&self, stored: &str) -> bool {
        let Some(other) = OwnerId::parse(stored) else {
            return false;
        };
        if other == self.id {
            return true;
        }
        let dir = match &self.kind {
            Kind::File { dir, .. } => dir,
            Kind::Lease(alive) => return alive(other.as_str()),
        };
        let path = lock_path(dir, &other);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return false,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot check an owner's lock; taking it as alive");
                return true;
            }
        };
        match file.try_lock() {
            Ok(()) => {
                // Its owner died without removing the file: no one will take this id again.
                let _ = std::fs::remove_file(&path);
                false
            }
            Err(TryLockError::WouldBlock) => true,
            Err(TryLockError::Error(e)) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot check an owner's lock; taking it as alive");
                true
            }
        }
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        if let Kind::File { dir, lock } = &mut self.kind {
            // Removed while still locked, so a checker sees the file gone or the lock free.
            let _ = std::fs::remove_file(lock_path(dir, &self.id));
            drop(lock.take());
        }
    }
}

fn lock_path(dir: &Path, id: &OwnerId) -> PathBuf {
    dir.join(format!("{id}.lock"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_owner_is_alive_exactly_while_its_handle_lives() {
        let dir = tempfile::tempdir().unwrap();
        let a = Owner::acquire(dir.path()).unwrap();
        let b = Owner::acquire(dir.path()).unwrap();
        assert_ne!(a.id(), b.id());
        assert!(a.is_alive(b.id().as_str()));
        assert!(b.is_alive(a.id().as_str()));
        assert!(a.is_alive(a.id().as_str()));
        let gone = b.id().clone();
        drop(b);
        assert!(!a.is_alive(gone.as_str()));
        assert!(!dir.path().join(format!("{gone}.lock")).exists());
    }

    #[test]
    fn a_lock_file_left_by_a_killed_owner_is_dead_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let a = Owner::acquire(dir.path()).unwrap();
        // What SIGKILL leaves: the file, with nobody holding its lock.
        let dead = "0123456789abcdef0123456789abcdef";
        let path = dir.path().join(format!("{dead}.lock"));
        std::fs::write(&path, b"").unwrap();
        assert!(!a.is_alive(dead));
        assert!(!path.exists());
    }

    #[test]
    fn stored_values_that_are_not_owner_ids_are_dead() {
        let dir = tempfile::tempdir().unwrap();
        let a = Owner::acquire(dir.path()).unwrap();
        for bad in [
            "",
            "1234",
            "../../etc/passwd",
            "0123456789ABCDEF0123456789ABCDEF",
        ] {
            assert!(!a.is_alive(bad), "{bad:?}");
        }
    }
}
