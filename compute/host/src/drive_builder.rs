//! Turning a rendered config-drive tree into a drive image file, behind a small trait.
//!
//! The driver only sees [`DriveBuilder`]; [`ConfigDriveBuilder`] is the one the
//! `compute` binary hands it: the `configdrive` crate's writers, in-process, with the
//! file written through `compute_io::atomic`.

use crate::qemu::command::DriveMedium;
use compute::instance::Instance;
use compute::metadata::DriveTree;
use configdrive::options::FALLBACK_TIMESTAMP;
use configdrive::{build_image, DriveOptions, Format};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum DriveBuildError {
    #[error("cannot write the config drive {path}")]
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

/// Builds `config-2` drives in-process; ISO9660 by default, as Nova.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConfigDriveBuilder {
    pub format: Format,
}

impl DriveBuilder for ConfigDriveBuilder {
    fn build(
        &self,
        instance: &Instance,
        tree: &DriveTree,
        out: &Path,
    ) -> Result<DriveMedium, DriveBuildError> {
        let failed = |message: String| DriveBuildError::Build {
            path: out.to_owned(),
            message,
        };
        // The instance's creation time keeps a rebuilt drive byte-identical.
        let timestamp = instance.created_at().unwrap_or(FALLBACK_TIMESTAMP);
        let options = DriveOptions::new("config-2", timestamp, instance.uuid())
            .map_err(|e| failed(e.to_string()))?;
        let image = build_image(tree, self.format, options, None, None)
            .map_err(|e| failed(e.to_string()))?;
        // Private to compute, as every file of an instance.
        compute_io::atomic::replace_with(out, 0o600, |f| {
            image
                .write_sparse(f)
                .map_err(|source| DriveBuildError::Write {
                    path: out.to_owned(),
                    source,
                })
        })?;
        Ok(match self.format {
            Format::Iso9660 => DriveMedium::Cdrom,
            Format::Vfat => DriveMedium::Disk,
        })
    }
}
