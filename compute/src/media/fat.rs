//! FAT read with `fatfs` straight from a device: labels, files by path, whole trees.
//!
//! `fatfs` does the filesystem; this module bounds it: the device underneath is
//! read-only and budgeted (a looping cluster chain runs out of budget), directory
//! listings stop after [`MAX_DIR_ENTRIES`], file sizes are checked before reading,
//! and a panic inside the library on a corrupt image becomes an error.

use super::budget::Device;
use super::{join, read_if_present, Limits, MediaError, MediaTree, TreeBuilder};
use std::io::{Read, Seek};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Far more entries than any config-drive directory holds.
pub const MAX_DIR_ENTRIES: usize = 4096;

/// The volume label from the boot sector, if this looks like FAT at all.
pub fn probe_label<R: Read + Seek>(dev: &mut Device<R>) -> Result<Option<String>, MediaError> {
    let mut boot = [0u8; 512];
    if !read_if_present(dev, 0, &mut boot, "the FAT boot sector")? {
        return Ok(None);
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

/// A FAT filesystem, opened for lookups and walks.
pub struct FatFs<R: Read + Seek> {
    fs: fatfs::FileSystem<Device<R>>,
}

impl<R: Read + Seek> std::fmt::Debug for FatFs<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FatFs").finish_non_exhaustive()
    }
}

impl<R: Read + Seek> FatFs<R> {
    pub fn open(mut dev: Device<R>) -> Result<Self, MediaError> {
        dev.seek(std::io::SeekFrom::Start(0))
            .map_err(|source| MediaError::Io {
                what: "the FAT boot sector".into(),
                source,
            })?;
        let fs = guarded(|| {
            fatfs::FileSystem::new(dev, fatfs::FsOptions::new()).map_err(MediaError::NotFat)
        })?;
        Ok(FatFs { fs })
    }

    /// The label: the root directory's volume entry, else the boot sector's.
    pub fn label(&self) -> String {
        self.root_label()
            .ok()
            .flatten()
            .unwrap_or_else(|| self.boot_label())
    }

    /// The label in the boot sector.
    pub fn boot_label(&self) -> String {
        self.fs.volume_label().trim_end().to_owned()
    }

    /// The volume label entry of the root directory, if there is one.
    pub fn root_label(&self) -> Result<Option<String>, MediaError> {
        let fs = &self.fs;
        guarded(|| {
            fs.read_volume_label_from_root_dir()
                .map_err(|source| MediaError::Io {
                    what: "the root directory's label entry".into(),
                    source,
                })
        })
        .map(|l| l.map(|l| l.trim_end().to_owned()))
    }

    /// The bytes of the file at `path`, `None` when any part of the path is absent.
    /// FAT names compare without regard to case, as FAT does.
    pub fn read_file(&mut self, path: &str, limit: u64) -> Result<Option<Vec<u8>>, MediaError> {
        let fs = &self.fs;
        guarded(|| {
            let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
            let mut dir = fs.root_dir();
            for (i, part) in parts.iter().enumerate() {
                let mut found = None;
                for entry in entries(&dir, path) {
                    let entry = entry?;
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
                    return Err(MediaError::NotAFile(path.into()));
                }
                return read_entry(&entry, path, limit).map(Some);
            }
            Ok(None)
        })
    }

    /// Every directory and file, by long names.
    pub fn tree(&mut self, limits: &Limits) -> Result<MediaTree, MediaError> {
        let fs = &self.fs;
        guarded(|| {
            let mut out = TreeBuilder::new(limits);
            let mut stack = vec![(String::new(), fs.root_dir(), 0usize)];
            while let Some((path, dir, depth)) = stack.pop() {
                // A directory whose cluster points at an ancestor nests forever: the
                // depth bound ends it.
                out.depth(depth)?;
                for entry in entries(&dir, &path) {
                    let entry = entry?;
                    let name = entry.file_name();
                    if name == "." || name == ".." {
                        continue;
                    }
                    if name.is_empty() || name.contains(['/', '\0']) {
                        return Err(MediaError::Corrupt(format!(
                            "a name {name:?} in directory `{path}`"
                        )));
                    }
                    let full = join(&path, &name);
                    if entry.is_dir() {
                        out.dir(full.clone())?;
                        stack.push((full, entry.to_dir(), depth + 1));
                    } else {
                        out.reserve(entry.len())?;
                        let bytes = read_entry(&entry, &full, u64::MAX)?;
                        out.file(full, bytes);
                    }
                }
            }
            Ok(out.finish())
        })
    }
}

type Dir<'a, R> = fatfs::Dir<'a, Device<R>>;
type Entry<'a, R> = fatfs::DirEntry<'a, Device<R>>;

/// A directory's entries, lazily; the one after [`MAX_DIR_ENTRIES`] is an error.
fn entries<'a, R: Read + Seek>(
    dir: &Dir<'a, R>,
    path: &str,
) -> impl Iterator<Item = Result<Entry<'a, R>, MediaError>> {
    let what = format!("directory `{path}` on the FAT drive");
    dir.iter().enumerate().map(move |(n, entry)| {
        if n >= MAX_DIR_ENTRIES {
            return Err(MediaError::TooManyEntries(MAX_DIR_ENTRIES));
        }
        entry.map_err(|source| MediaError::Io {
            what: what.clone(),
            source,
        })
    })
}

fn read_entry<R: Read + Seek>(
    entry: &Entry<'_, R>,
    path: &str,
    limit: u64,
) -> Result<Vec<u8>, MediaError> {
    if entry.len() > limit {
        return Err(MediaError::TooLarge {
            path: path.into(),
            size: entry.len(),
            limit,
        });
    }
    let mut buf = Vec::new();
    entry
        .to_file()
        .take(entry.len())
        .read_to_end(&mut buf)
        .map_err(|source| MediaError::Io {
            what: format!("{path} from the FAT drive"),
            source,
        })?;
    Ok(buf)
}

fn guarded<T>(f: impl FnOnce() -> Result<T, MediaError>) -> Result<T, MediaError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(Err(MediaError::Panicked))
}
