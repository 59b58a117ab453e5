//! Turning a rendered config-drive tree into a drive image, behind a small trait.
//!
//! The in-process builder lives in the `configdrive` crate; until it is wired in,
//! [`Genisoimage`] writes the tree to a temporary folder and runs `genisoimage` with
//! the flags Nova uses. Callers only see [`DriveBuilder`].

use crate::metadata::DriveTree;
use crate::qemu::command::DriveMedium;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum DriveBuildError {
    #[error("cannot write the config drive tree to {path}: {source}")]
    Tree {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot run genisoimage: {0}")]
    Spawn(std::io::Error),
    #[error("genisoimage failed making {path}: {stderr}")]
    Failed { path: PathBuf, stderr: String },
}

/// Writes a config drive holding `tree` to `out`; says how to attach it.
pub trait DriveBuilder {
    fn build(&self, tree: &DriveTree, out: &Path) -> Result<DriveMedium, DriveBuildError>;
}

/// ISO9660 (`config-2` label) through the `genisoimage` tool.
#[derive(Debug, Clone, Copy, Default)]
pub struct Genisoimage;

impl DriveBuilder for Genisoimage {
    fn build(&self, tree: &DriveTree, out: &Path) -> Result<DriveMedium, DriveBuildError> {
        let parent = out.parent().unwrap_or(Path::new("."));
        let dir = tempfile::Builder::new()
            .prefix(".drive-")
            .tempdir_in(parent)
            .map_err(|source| DriveBuildError::Tree {
                path: parent.to_owned(),
                source,
            })?;
        for (rel, bytes) in tree {
            let path = dir.path().join(rel);
            if let Some(p) = path.parent() {
                std::fs::create_dir_all(p).map_err(|source| DriveBuildError::Tree {
                    path: p.to_owned(),
                    source,
                })?;
            }
            std::fs::write(&path, bytes).map_err(|source| DriveBuildError::Tree {
                path: path.clone(),
                source,
            })?;
        }
        let tmp = out.with_extension("tmp");
        let result = Command::new("genisoimage")
            .arg("-o")
            .arg(&tmp)
            .args([
                "-ldots",
                "-allow-lowercase",
                "-allow-multidot",
                "-l",
                "-quiet",
                "-J",
                "-r",
                "-V",
                "config-2",
            ])
            .arg(dir.path())
            .output()
            .map_err(DriveBuildError::Spawn)?;
        if !result.status.success() {
            let _ = std::fs::remove_file(&tmp);
            let stderr = String::from_utf8_lossy(&result.stderr)
                .trim()
                .chars()
                .take(2000)
                .collect();
            return Err(DriveBuildError::Failed {
                path: out.to_owned(),
                stderr,
            });
        }
        std::fs::rename(&tmp, out).map_err(|source| DriveBuildError::Tree {
            path: out.to_owned(),
            source,
        })?;
        Ok(DriveMedium::Cdrom)
    }
}
