//! Reading a drive image back, for `inspect` and `extract`: which format it is, its
//! labels, every directory and file (with the names a guest sees), and a check of
//! it against the spec. The filesystems are read by `compute::media`, the same
//! reader the guest agent uses; this module only shapes what it finds into a report.

mod check;

pub use check::{check, target_of, Finding, Severity};
pub use compute::media::{IsoInfo, Limits, MediaError, NameSet};

use crate::drive::Format;
use compute::media::{Device, Medium};
use std::collections::BTreeMap;
use std::io::{Cursor, Read, Seek};

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error(transparent)]
    Media(#[from] MediaError),
}

/// A drive as read back.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReadDrive {
    pub format: Format,
    /// The ISO volume id or the FAT boot-sector label.
    pub label: String,
    /// The FAT root-directory label entry (FAT only).
    pub root_label: Option<String>,
    pub publisher: Option<String>,
    pub rock_ridge: bool,
    pub joliet: bool,
    pub size: u64,
    pub directories: Vec<String>,
    #[serde(skip)]
    pub files: BTreeMap<String, Vec<u8>>,
}

impl ReadDrive {
    /// Detects the format and reads the whole tree from bytes in memory.
    pub fn from_bytes(img: &[u8], limits: &Limits) -> Result<Self, ReadError> {
        Self::from_reader(Cursor::new(img), img.len() as u64, limits)
    }

    /// Detects the format and reads the whole tree from an image of `size` bytes.
    /// What may be read is bounded by a few times the image's size.
    pub fn from_reader<R: Read + Seek>(
        image: R,
        size: u64,
        limits: &Limits,
    ) -> Result<Self, ReadError> {
        let budget = size.saturating_mul(4).saturating_add(1 << 20);
        let mut medium = Medium::open(Device::new(image, budget))?;
        let tree = medium.tree(limits)?;
        let drive = match &medium {
            Medium::Iso(fs) => {
                let info = fs.info();
                ReadDrive {
                    format: Format::Iso9660,
                    label: info.volume_id.clone(),
                    root_label: None,
                    publisher: Some(info.publisher.clone()),
                    rock_ridge: info.rock_ridge,
                    joliet: info.joliet,
                    size,
                    directories: tree.directories,
                    files: tree.files,
                }
            }
            Medium::Fat(fs) => ReadDrive {
                format: Format::Vfat,
                label: fs.boot_label(),
                root_label: fs.root_label()?,
                publisher: None,
                rock_ridge: false,
                joliet: false,
                size,
                directories: tree.directories,
                files: tree.files,
            },
        };
        Ok(drive)
    }
}
