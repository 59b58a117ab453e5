//! The config-drive builder the compute driver uses: this crate's writers behind
//! compute's [`DriveBuilder`] seam, writing the image file atomically.

use crate::drive::{build_image, Format};
use crate::options::{DriveOptions, FALLBACK_TIMESTAMP};
use compute::drive_builder::{DriveBuildError, DriveBuilder};
use compute::metadata::DriveTree;
use compute::qemu::command::DriveMedium;
use compute::Instance;
use std::path::Path;

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
