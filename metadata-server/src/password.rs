//! Where the passwords guests post are kept, shared by the server and the operator
//! command: files, or compute's database.
//!
//! [`DirPasswordStore`]: one file per instance (`<dir>/<uuid>`). "Store unless one is
//! stored" is atomic across processes without locks: `compute_io::atomic::create_with`
//! writes and syncs a temporary file, then gives it its final name only if that name
//! does not exist. Clear is an unlink. A restart loses nothing.
//!
//! [`DatabasePasswords`] (`--database`): the instance's row, set once by the database
//! itself (two servers racing cannot both win). Reads come from the served set, which
//! the change feed keeps current, so they keep answering while the database is away;
//! a write then fails as [`PasswordError::Unavailable`] (the service answers 503) and
//! nothing of it is stored. Passwords never go on drives.

use crate::feed::FeedStatus;
use crate::store::InstanceStore;
use compute_io::atomic;
use compute_store::{open_feed, DocumentFeed, Location, PasswordSet, StoreError};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use uuid::Uuid;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error(transparent)]
    Atomic(#[from] atomic::AtomicError),
    #[error("password store {path}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The database cannot be reached now; nothing was stored.
    #[error("the database {location} is unavailable")]
    Unavailable {
        location: String,
        #[source]
        source: StoreError,
    },
    #[error("the database {location} refused the password request")]
    Database {
        location: String,
        #[source]
        source: StoreError,
    },
    /// The database keeps passwords as text.
    #[error("a password must be UTF-8 text")]
    NotText,
    /// The instance is gone from the database (the feed will say so shortly).
    #[error("instance {0} is not in the database")]
    NoInstance(Uuid),
}

/// Where passwords live, as the server and the operator command see it.
pub trait PasswordStore: Send + Sync + 'static {
    fn get(&self, instance: Uuid) -> Result<Option<Vec<u8>>, PasswordError>;
    /// Stores `password` unless one is stored; `false` when one already was.
    fn set_if_absent(&self, instance: Uuid, password: &[u8]) -> Result<bool, PasswordError>;
    /// Removes the password; `false` when there was none.
    fn clear(&self, instance: Uuid) -> Result<bool, PasswordError>;
}

#[derive(Debug, Clone)]
pub struct DirPasswordStore {
    dir: PathBuf,
}

/// Bound on what is read back (posts are capped far below it).
const MAX_READ: u64 = 64 * 1024;

impl DirPasswordStore {
    /// Opens (creating when needed) the store folder, readable by its owner only.
    pub fn open(dir: &Path) -> Result<Self, PasswordError> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| PasswordError::Io {
                path: dir.to_owned(),
                source,
            })?;
        Ok(DirPasswordStore {
            dir: dir.to_owned(),
        })
    }

    fn path(&self, instance: Uuid) -> PathBuf {
        self.dir.join(instance.hyphenated().to_string())
    }

    fn io(&self, path: &Path) -> impl Fn(std::io::Error) -> PasswordError {
        let path = path.to_owned();
        move |source| PasswordError::Io {
            path: path.clone(),
            source,
        }
    }

    fn sync_dir(&self) -> Result<(), PasswordError> {
        std::fs::File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(self.io(&self.dir))
    }
}

impl PasswordStore for DirPasswordStore {
    fn get(&self, instance: Uuid) -> Result<Option<Vec<u8>>, PasswordError> {
        use std::io::Read;
        let path = self.path(instance);
        match std::fs::File::open(&path) {
            Ok(f) => {
                let mut buf = Vec::new();
                f.take(MAX_READ)
                    .read_to_end(&mut buf)
                    .map_err(self.io(&path))?;
                Ok(Some(buf))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.io(&path)(e)),
        }
    }

    fn set_if_absent(&self, instance: Uuid, password: &[u8]) -> Result<bool, PasswordError> {
        let path = self.path(instance);
        let stored = atomic::create_with(&path, 0o600, |f| {
            f.write_all(password).map_err(self.io(&path))
        })?;
        Ok(stored.is_some())
    }

    fn clear(&self, instance: Uuid) -> Result<bool, PasswordError> {
        let path = self.path(instance);
        match std::fs::remove_file(&path) {
            Ok(()) => {
                self.sync_dir()?;
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(self.io(&path)(e)),
        }
    }
}

/// How long a stored password may take to come back through the feed before the
/// POST is answered anyway (a GET right after then reads it).
const READ_YOUR_WRITE: Duration = Duration::from_secs(2);

/// Passwords in compute's database (`--database`, or a state folder's).
pub struct DatabasePasswords {
    location: Location,
    served: Arc<InstanceStore>,
    feed: Arc<FeedStatus>,
    /// A connection of its own for writes, opened on first use and after a failure.
    writer: Mutex<Option<Box<dyn DocumentFeed>>>,
}

impl DatabasePasswords {
    pub fn new(location: Location, served: Arc<InstanceStore>, feed: Arc<FeedStatus>) -> Self {
        DatabasePasswords {
            location,
            served,
            feed,
            writer: Mutex::new(None),
        }
    }

    /// Runs `f` on the write connection; any failure drops it (the next write
    /// reconnects).
    fn write<T>(
        &self,
        f: impl FnOnce(&mut dyn DocumentFeed) -> Result<T, StoreError>,
    ) -> Result<T, PasswordError> {
        let mut guard = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let result = match guard.as_mut() {
            Some(w) => f(w.as_mut()),
            None => open_feed(&self.location).and_then(|mut w| {
                let out = f(w.as_mut());
                *guard = Some(w);
                out
            }),
        };
        result.map_err(|source| {
            *guard = None;
            let location = self.location.describe();
            match source {
                StoreError::Unavailable { .. } | StoreError::Open { .. } => {
                    PasswordError::Unavailable { location, source }
                }
                _ => PasswordError::Database { location, source },
            }
        })
    }
}

impl PasswordStore for DatabasePasswords {
    fn get(&self, instance: Uuid) -> Result<Option<Vec<u8>>, PasswordError> {
        Ok(self
            .served
            .snapshot()
            .get(&instance)
            .and_then(|e| e.password.as_ref().map(|p| p.to_vec())))
    }

    fn set_if_absent(&self, instance: Uuid, password: &[u8]) -> Result<bool, PasswordError> {
        let text = std::str::from_utf8(password).map_err(|_| PasswordError::NotText)?;
        let uuid = instance.hyphenated().to_string();
        let (set, rev) = self
            .write(|w| {
                let set = w.set_password(&uuid, text)?;
                Ok((set, w.rev()?))
            })
            .map_err(|e| match e {
                PasswordError::Database {
                    source: StoreError::NotFound { .. },
                    ..
                } => PasswordError::NoInstance(instance),
                e => e,
            })?;
        // Read your write: the feed brings the row back to the served set.
        if !self.feed.wait_applied(rev, READ_YOUR_WRITE) {
            tracing::warn!(instance = %instance, rev, "the stored password is not back through the feed yet");
        }
        Ok(set == PasswordSet::Set)
    }

    fn clear(&self, instance: Uuid) -> Result<bool, PasswordError> {
        let uuid = instance.hyphenated().to_string();
        self.write(|w| w.clear_password(&uuid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_once_survives_reopen_and_clears() -> Result<(), PasswordError> {
        let dir = tempfile::tempdir().map_err(|source| PasswordError::Io {
            path: "tmp".into(),
            source,
        })?;
        let id = Uuid::from_u128(1);
        let store = DirPasswordStore::open(&dir.path().join("pw"))?;
        assert_eq!(store.get(id)?, None);
        assert!(store.set_if_absent(id, b"secret")?);
        assert!(!store.set_if_absent(id, b"other")?);
        let reopened = DirPasswordStore::open(&dir.path().join("pw"))?;
        assert_eq!(reopened.get(id)?, Some(b"secret".to_vec()));
        assert!(reopened.clear(id)?);
        assert!(!reopened.clear(id)?);
        assert_eq!(store.get(id)?, None);
        // Only the password file itself is left behind, never temporaries.
        assert!(store.set_if_absent(id, b"x")?);
        assert_eq!(
            std::fs::read_dir(dir.path().join("pw"))
                .map(|d| d.count())
                .unwrap_or(0),
            1
        );
        Ok(())
    }
}
