//! Turning a rendered config-drive tree into a drive image file, behind a small trait.
//!
//! The writers live in the `configdrive` crate, which depends on this one; the driver
//! only sees [`DriveBuilder`], and the `compute` binary hands it configdrive's.

use crate::instance::Instance;
use crate::metadata::DriveTree;
use crate::qemu::command::DriveMedium;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum DriveBuildError {
    #[error("cannot write the config drive {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot build the config drive {path}: {message}")]
    Build { path: PathBuf, message: String },
    #[error(transparent)]
    Atomic(#[from] compute_io::atomic::AtomicError),
}

/// Writes a config drive holding `tree` (rendered from `instance`) to `out`, whole or
/// not at all; says how to attach it.
pub trait DriveBuilder {
    fn build(
        &self,
        instance: &Instance,
        tree: &DriveTree,
        out: &Path,
    ) -> Result<DriveMedium, DriveBuildError>;
}
