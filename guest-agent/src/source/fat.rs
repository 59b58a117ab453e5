//! FAT config drives, read with `fatfs` straight from the device.
//!
//! `fatfs` does the filesystem; this module bounds it: the device underneath is
//! read-only and budgeted (a looping cluster chain runs out of budget), directory
//! walks stop after a fixed number of entries, file sizes are checked before reading,
//! and a panic inside the library on a corrupt image becomes an error.

use super::device::Device;
use std::io::{Read, Seek};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Far more entries than any config-drive directory holds.
const MAX_DIR_ENTRIES: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum FatError {
    #[error("cannot read the FAT boot sector: {0}")]
    BootSector(#[source] std::io::Error),
    #[error("not a FAT filesystem: {0}")]
    NotFat(#[source] std::io::Error),
    #[error("cannot read {path} from the FAT drive: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is {size} bytes, more than the {limit} allowed")]
    TooLarge { path: String, size: u64, limit: u64 },
    #[error("{0} is a directory, not a file")]
    NotAFile(String),
    #[error("a directory on the FAT drive has more than {MAX_DIR_ENTRIES} entries (corrupt?)")]
    TooManyEntries,
    #[error("the FAT reader failed on a corrupt image")]
    Panicked,
}

/// The volume label from the boot sector, if this looks like FAT at all.
pub fn probe_label<R: Read + Seek>(dev: &mut Device<R>) -> Result<Option<String>, FatError> {
    let mut boot = [0u8; 512];
    match dev.read_exact_at(0, &mut boot) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(FatError::BootSector(e)),
    }
    let bytes_per_sector = u16::from_le_bytes([boot[11], boot[12]]);
    if boot[510..512] != [0x55, 0xAA]
        || !matches!(bytes_per_sector, 512 | 1024 | 2048 | 4096)
        || boot[13] == 0
    {
        return Ok(None);
    }
    // FAT32 has no 16-bit FAT size; its extended boot record sits further on.
    let fat32 = u16::from_le_bytes([boot[22], boot[23]]) == 0;
    let (sig, label) = if fat32 { (66, 71) } else { (38, 43) };
    if boot[sig] != 0x29 {
        return Ok(Some(String::new()));
    }
    Ok(Some(
        String::from_utf8_lossy(&boot[label..label + 11])
            .trim_end()
            .to_owned(),
    ))
}

/// A FAT filesystem, opened for lookups.
pub struct FatFs<R: Read + Seek> {
    fs: fatfs::FileSystem<Device<R>>,
}

impl<R: Read + Seek> std::fmt::Debug for FatFs<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FatFs").finish_non_exhaustive()
    }
}

impl<R: Read + Seek> FatFs<R> {
    pub fn open(mut dev: Device<R>) -> Result<Self, FatError> {
        dev.seek(std::io::SeekFrom::Start(0))
            .map_err(FatError::BootSector)?;
        let fs = guarded(|| {
            fatfs::FileSystem::new(dev, fatfs::FsOptions::new()).map_err(FatError::NotFat)
        })?;
        Ok(FatFs { fs })
    }

    /// The label: the root directory's volume entry, else the boot sector's.
    pub fn label(&self) -> String {
        let fs = &self.fs;
        let root = guarded(|| {
            fs.read_volume_label_from_root_dir()
                .map_err(FatError::NotFat)
        })
        .ok()
        .flatten();
        root.unwrap_or_else(|| fs.volume_label())
            .trim_end()
            .to_owned()
    }

    /// The bytes of the file at `path`, `None` when any part of the path is absent.
    /// FAT names compare without regard to case, as FAT does.
    pub fn read_file(&mut self, path: &str, limit: u64) -> Result<Option<Vec<u8>>, FatError> {
        let fs = &self.fs;
        guarded(|| {
            let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
            let mut dir = fs.root_dir();
            for (i, part) in parts.iter().enumerate() {
                let io = |source| FatError::Io {
                    path: path.to_owned(),
                    source,
                };
                let mut found = None;
                for (n, entry) in dir.iter().enumerate() {
                    if n >= MAX_DIR_ENTRIES {
                        return Err(FatError::TooManyEntries);
                    }
                    let entry = entry.map_err(io)?;
                    if entry.file_name().eq_ignore_ascii_case(part) {
                        found = Some(entry);
                        break;
                    }
                }
                let Some(entry) = found else { return Ok(None) };
                if i + 1 < parts.len() {
                    if !entry.is_dir() {
                        return Ok(None);
                    }
                    dir = entry.to_dir();
                    continue;
                }
                if entry.is_dir() {
                    return Err(FatError::NotAFile(path.into()));
                }
                if entry.len() > limit {
                    return Err(FatError::TooLarge {
                        path: path.into(),
                        size: entry.len(),
                        limit,
                    });
                }
                let mut buf = Vec::new();
                entry
                    .to_file()
                    .take(limit)
                    .read_to_end(&mut buf)
                    .map_err(io)?;
                return Ok(Some(buf));
            }
            Ok(None)
        })
    }
}

fn guarded<T>(f: impl FnOnce() -> Result<T, FatError>) -> Result<T, FatError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(Err(FatError::Panicked))
}
