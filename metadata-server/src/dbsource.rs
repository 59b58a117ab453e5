//! `--state-dir DIR`: the instances of compute's state database, read through its
//! change feed, [`compute_store::SqliteFeed`] (read-only, never blocking compute's
//! writers).
//!
//! The fingerprint is the database's revision, which compute's triggers raise in the
//! same transaction as every change to an instance: polling it costs one row read. A
//! failed read drops the feed so the next poll reopens the database (it may have been
//! replaced); the reloader keeps the last good set meanwhile.

use crate::source::{Fingerprint, InstanceSource, SourceError};
use compute::Instance;
use compute_store::{DocumentFeed, SqliteFeed, DB_FILE};
use std::path::PathBuf;
use std::sync::Mutex;

/// The instances of one compute state folder.
pub struct DbSource {
    state_dir: PathBuf,
    reader: Mutex<Option<SqliteFeed>>,
}

impl DbSource {
    pub fn new(state_dir: PathBuf) -> Self {
        DbSource {
            state_dir,
            reader: Mutex::new(None),
        }
    }

    fn db_path(&self) -> PathBuf {
        self.state_dir.join(DB_FILE)
    }

    /// Runs `f` on the open reader, opening it first; any error closes it.
    fn with_reader<T>(
        &self,
        f: impl FnOnce(&mut SqliteFeed) -> Result<T, compute_store::StoreError>,
    ) -> Result<T, SourceError> {
        let mut guard = match self.reader.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let db = |source| SourceError::Database {
            path: self.db_path(),
            source,
        };
        let mut reader = match guard.take() {
            Some(r) => r,
            None => SqliteFeed::open(&self.state_dir).map_err(db)?,
        };
        let out = f(&mut reader);
        if out.is_ok() {
            *guard = Some(reader);
        }
        out.map_err(db)
    }
}

impl InstanceSource for DbSource {
    fn describe(&self) -> String {
        format!("database {}", self.db_path().display())
    }

    fn fingerprint(&self) -> Result<Fingerprint, SourceError> {
        let rev = self.with_reader(|r| r.rev())?;
        Ok(vec![(self.db_path(), None, rev)])
    }

    fn load(&self) -> Result<Vec<Instance>, SourceError> {
        let docs = self.with_reader(|r| r.snapshot(None))?.documents;
        docs.iter()
            .enumerate()
            .map(|(index, d)| {
                Instance::from_json(&d.document).map_err(|source| SourceError::Instance {
                    path: self.db_path(),
                    index,
                    source,
                })
            })
            .collect()
    }
}
