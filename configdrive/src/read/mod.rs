//! Reading a drive image back, for `inspect` and `extract`: which format it is, its
//! labels, every directory and file (with the names a guest sees), and a check of
//! it against the spec. Works on bytes in memory; the CLI reads the file.

mod check;
mod iso;

pub use check::{check, target_of, Finding, Severity};
pub use iso::{IsoInfo, Names};

use crate::drive::Format;
use std::collections::BTreeMap;
use std::io::Cursor;

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("not an ISO9660 or FAT image (no CD001 descriptor at 32 KiB, no FAT boot sector)")]
    Unknown,
    #[error("not an ISO9660 image")]
    NotIso,
    #[error("the ISO9660 image is corrupt: {0}")]
    Corrupt(&'static str),
    #[error("the image holds more than {0} entries")]
    TooMany(usize),
    #[error("the image's files add up to more than {0} bytes")]
    TooLarge(u64),
    #[error("cannot read the FAT volume: {0}")]
    Fat(#[source] std::io::Error),
}

/// Bounds on what a read may take from an untrusted image.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_entries: usize,
    pub max_depth: usize,
    pub max_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_entries: 65_536,
            max_depth: 16,
            max_bytes: 1 << 30,
        }
    }
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
    /// Detects the format and reads the whole tree.
    pub fn from_bytes(img: &[u8], limits: &Limits) -> Result<Self, ReadError> {
        if img.get(32769..32774) == Some(b"CD001") {
            let t = iso::read(img, limits)?;
            return Ok(ReadDrive {
                format: Format::Iso9660,
                label: t.info.volume_id,
                root_label: None,
                publisher: Some(t.info.publisher),
                rock_ridge: t.names == Names::RockRidge,
                joliet: t.info.joliet,
                size: img.len() as u64,
                directories: t.dirs,
                files: t.files,
            });
        }
        if img.len() >= 512
            && img[510..512] == [0x55, 0xAA]
            && (img[54..57] == *b"FAT" || img[82..85] == *b"FAT")
        {
            return read_fat(img, limits);
        }
        Err(ReadError::Unknown)
    }
}

fn read_fat(img: &[u8], limits: &Limits) -> Result<ReadDrive, ReadError> {
    let fs = fatfs::FileSystem::new(Cursor::new(img.to_vec()), fatfs::FsOptions::new())
        .map_err(ReadError::Fat)?;
    let label = fs.volume_label().trim_end().to_owned();
    let root_label = fs
        .read_volume_label_from_root_dir()
        .map_err(ReadError::Fat)?
        .map(|l| l.trim_end().to_owned());
    let mut files = BTreeMap::new();
    let mut directories = Vec::new();
    let mut total = 0u64;
    let mut stack = vec![(String::new(), fs.root_dir(), 0usize)];
    while let Some((path, dir, depth)) = stack.pop() {
        if depth > limits.max_depth {
            return Err(ReadError::Corrupt("directories nest too deep"));
        }
        for entry in dir.iter() {
            let entry = entry.map_err(ReadError::Fat)?;
            let name = entry.file_name();
            if name == "." || name == ".." {
                continue;
            }
            if files.len() + directories.len() >= limits.max_entries {
                return Err(ReadError::TooMany(limits.max_entries));
            }
            let full = if path.is_empty() {
                name
            } else {
                format!("{path}/{name}")
            };
            if entry.is_dir() {
                directories.push(full.clone());
                stack.push((full, entry.to_dir(), depth + 1));
            } else {
                total += entry.len();
                if total > limits.max_bytes {
                    return Err(ReadError::TooLarge(limits.max_bytes));
                }
                let mut data = Vec::with_capacity(entry.len() as usize);
                std::io::Read::read_to_end(&mut entry.to_file(), &mut data)
                    .map_err(ReadError::Fat)?;
                files.insert(full, data);
            }
        }
    }
    directories.sort();
    Ok(ReadDrive {
        format: Format::Vfat,
        label,
        root_label,
        publisher: None,
        rock_ridge: false,
        joliet: false,
        size: img.len() as u64,
        directories,
        files,
    })
}
