//! Per-instance locks (`flock` on `locks/<uuid>.lock`): two commands on one instance
//! never interleave, and a lock left by a killed `compute` is released by the kernel,
//! which is how reconciliation tells an interrupted task from a running one.

use rustix::fs::{flock, FlockOperation};
use std::fs::File;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("cannot open lock file {path}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot lock {path}")]
    Lock {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Held while alive; dropping it releases the lock.
#[derive(Debug)]
pub struct InstanceLock {
    _file: File,
}

fn open(path: &Path) -> Result<File, LockError> {
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(|source| LockError::Open {
            path: path.to_owned(),
            source,
        })
}

/// Waits for the instance's lock.
pub fn lock(path: &Path) -> Result<InstanceLock, LockError> {
    let file = open(path)?;
    flock(&file, FlockOperation::LockExclusive).map_err(|e| LockError::Lock {
        path: path.to_owned(),
        source: e.into(),
    })?;
    Ok(InstanceLock { _file: file })
}

/// Takes the lock only if nobody holds it.
pub fn try_lock(path: &Path) -> Result<Option<InstanceLock>, LockError> {
    let file = open(path)?;
    match flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(InstanceLock { _file: file })),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
        Err(e) => Err(LockError::Lock {
            path: path.to_owned(),
            source: e.into(),
        }),
    }
}
