//! [`ConfigDriveSource`]: a `config-2` drive (ISO9660 or FAT) read without mounting,
//! through `compute::media`. This module owns what makes it a config drive: the
//! label, the OpenStack version folder, the size bounds on each document.

use super::{content_file, Provider, SourceError, MAX_CONTENT_BYTES, MAX_DOCUMENT_BYTES};
use compute::media::{self, Device, MediaError, MediaKind, Medium, DEFAULT_READ_BUDGET};
use compute::metadata::OpenStackVersion;
use std::fs::File;
use std::path::Path;

/// The label Nova gives config drives; matched in any case.
pub const CONFIG_DRIVE_LABEL: &str = "config-2";

/// Bytes a probe may read: the descriptors or the boot sector, with room to spare.
const PROBE_BUDGET: u64 = 1024 * 1024;

/// A config drive: an image file or a block device holding one.
#[derive(Debug)]
pub struct ConfigDriveSource {
    path: String,
    fs: Medium<File>,
    /// The `openstack/<dir>` documents are read from: `latest`, else the newest known.
    version_dir: String,
}

fn open_file(path: &Path) -> Result<File, SourceError> {
    File::open(path).map_err(|source| SourceError::Open {
        path: path.display().to_string(),
        source,
    })
}

/// What kind of drive `path` holds and its label, without reading any file.
pub fn probe(path: &Path) -> Result<Option<(MediaKind, String)>, SourceError> {
    let mut dev = Device::new(open_file(path)?, PROBE_BUDGET);
    media::probe(&mut dev).map_err(|source| SourceError::Media {
        path: path.display().to_string(),
        source,
    })
}

impl ConfigDriveSource {
    /// Opens a drive, checks its label and finds the OpenStack version to read.
    pub fn open(path: &Path) -> Result<Self, SourceError> {
        let p = path.display().to_string();
        let dev = Device::new(open_file(path)?, DEFAULT_READ_BUDGET);
        let fs = Medium::open(dev).map_err(|source| match source {
            MediaError::Unknown => SourceError::UnknownFilesystem { path: p.clone() },
            source => SourceError::Media {
                path: p.clone(),
                source,
            },
        })?;
        let label = fs.label();
        if !label.eq_ignore_ascii_case(CONFIG_DRIVE_LABEL) {
            return Err(SourceError::WrongLabel { path: p, label });
        }
        let mut src = ConfigDriveSource {
            path: p,
            fs,
            version_dir: "latest".into(),
        };
        src.version_dir = src.choose_version()?;
        Ok(src)
    }

    pub fn kind(&self) -> MediaKind {
        self.fs.kind()
    }

    fn choose_version(&mut self) -> Result<String, SourceError> {
        let candidates =
            std::iter::once("latest").chain(OpenStackVersion::ALL.iter().rev().map(|v| v.as_str()));
        for dir in candidates {
            if self.exists(&format!("openstack/{dir}/meta_data.json"))? {
                return Ok(dir.to_owned());
            }
        }
        Ok("latest".into())
    }

    fn exists(&mut self, rel: &str) -> Result<bool, SourceError> {
        // Probe with a zero limit: too large still means present.
        match self.read(rel, 0) {
            Ok(found) => Ok(found.is_some()),
            Err(SourceError::TooLarge { .. }) => Ok(true),
            Err(e) => Err(e),
        }
    }

    fn read(&mut self, rel: &str, limit: u64) -> Result<Option<Vec<u8>>, SourceError> {
        let path = format!("{}:{rel}", self.path);
        self.fs
            .read_file(rel, limit)
            .map_err(|source| match source {
                MediaError::TooLarge { limit, .. } => SourceError::TooLarge { path, limit },
                source => SourceError::Media { path, source },
            })
    }

    fn document(&mut self, name: &str) -> Result<Option<Vec<u8>>, SourceError> {
        let rel = format!("openstack/{}/{name}", self.version_dir);
        self.read(&rel, MAX_DOCUMENT_BYTES)
    }
}

impl Provider for ConfigDriveSource {
    fn describe(&self) -> String {
        format!(
            "config drive {} ({}, openstack/{})",
            self.path,
            self.kind().as_str(),
            self.version_dir
        )
    }

    fn meta_data(&mut self) -> Result<Option<Vec<u8>>, SourceError> {
        self.document("meta_data.json")
    }

    fn network_data(&mut self) -> Result<Option<Vec<u8>>, SourceError> {
        self.document("network_data.json")
    }

    fn vendor_data(&mut self) -> Result<Option<Vec<u8>>, SourceError> {
        self.document("vendor_data.json")
    }

    fn user_data(&mut self) -> Result<Option<Vec<u8>>, SourceError> {
        self.document("user_data")
    }

    fn content(&mut self, content_path: &str) -> Result<Option<Vec<u8>>, SourceError> {
        let name = content_file(content_path)?;
        self.read(&format!("openstack/{name}"), MAX_CONTENT_BYTES)
    }
}
