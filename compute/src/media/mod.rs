//! Reading config-drive media (ISO9660 and FAT) straight from an image or a block
//! device, without mounting: the one reader of the workspace.
//!
//! The guest agent looks files up by path, lazily, on untrusted media; `configdrive
//! inspect`/`extract` walk a whole image and report what its volume declares. Both
//! sit on this module. Everything is pure over any `Read + Seek` wrapped in a
//! budgeted, read-only [`Device`]: every size is bounded, every corruption is a named
//! [`MediaError`], nothing panics and nothing loops. Opening files and deciding what
//! a label must be belong to the callers.

mod budget;
mod fat;
mod iso;

pub use budget::{Device, DEFAULT_READ_BUDGET};
pub use fat::{FatFs, MAX_DIR_ENTRIES};
pub use iso::{IsoFs, IsoInfo, NameSet};

use std::collections::BTreeMap;
use std::io::{Read, Seek};

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("cannot read {what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("neither ISO9660 nor FAT (no `CD001` descriptor at byte 32768, no FAT boot sector)")]
    Unknown,
    #[error("not an ISO9660 image (no `CD001` volume descriptor at byte 32768)")]
    NotIso,
    #[error("not a FAT filesystem")]
    NotFat(#[source] std::io::Error),
    #[error("corrupt ISO9660 image: {0}")]
    Corrupt(String),
    #[error("{path} is {size} bytes, more than the {limit} allowed")]
    TooLarge { path: String, size: u64, limit: u64 },
    #[error("{0} is a directory, not a file")]
    NotAFile(String),
    #[error("{0} is recorded in several extents, which config drives never use")]
    MultiExtent(String),
    #[error("a directory has more than {0} entries (corrupt?)")]
    TooManyEntries(usize),
    #[error("the image holds more than {0} files and directories")]
    TreeTooMany(usize),
    #[error("the image's files add up to more than {0} bytes")]
    TreeTooLarge(u64),
    #[error("directories loop or nest deeper than {0} levels")]
    TooDeep(usize),
    #[error("the FAT reader failed on a corrupt image")]
    Panicked,
}

/// Bounds on a walk of a whole tree.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Files and directories together.
    pub max_entries: usize,
    pub max_depth: usize,
    /// The files' sizes added up.
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

/// The filesystem a medium holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Iso9660,
    Fat,
}

impl MediaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Iso9660 => "iso9660",
            MediaKind::Fat => "vfat",
        }
    }
}

/// A whole tree as read: every directory, every file with its bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MediaTree {
    /// Sorted, relative, `/`-separated.
    pub directories: Vec<String>,
    pub files: BTreeMap<String, Vec<u8>>,
}

/// Walk bookkeeping shared by both filesystems: counts against [`Limits`].
pub(crate) struct TreeBuilder<'a> {
    limits: &'a Limits,
    tree: MediaTree,
    total: u64,
}

impl<'a> TreeBuilder<'a> {
    pub(crate) fn new(limits: &'a Limits) -> Self {
        TreeBuilder {
            limits,
            tree: MediaTree::default(),
            total: 0,
        }
    }

    fn count(&self) -> Result<(), MediaError> {
        if self.tree.files.len() + self.tree.directories.len() >= self.limits.max_entries {
            return Err(MediaError::TreeTooMany(self.limits.max_entries));
        }
        Ok(())
    }

    pub(crate) fn depth(&self, depth: usize) -> Result<(), MediaError> {
        if depth > self.limits.max_depth {
            return Err(MediaError::TooDeep(self.limits.max_depth));
        }
        Ok(())
    }

    pub(crate) fn dir(&mut self, path: String) -> Result<(), MediaError> {
        self.count()?;
        self.tree.directories.push(path);
        Ok(())
    }

    /// Checks a file's size before its bytes are read.
    pub(crate) fn reserve(&mut self, size: u64) -> Result<(), MediaError> {
        self.count()?;
        self.total = self.total.saturating_add(size);
        if self.total > self.limits.max_bytes {
            return Err(MediaError::TreeTooLarge(self.limits.max_bytes));
        }
        Ok(())
    }

    pub(crate) fn file(&mut self, path: String, bytes: Vec<u8>) {
        self.tree.files.insert(path, bytes);
    }

    pub(crate) fn finish(mut self) -> MediaTree {
        self.tree.directories.sort();
        self.tree
    }
}

pub(crate) fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_owned()
    } else {
        format!("{parent}/{name}")
    }
}

/// Reads `buf` at `offset` for a probe: a medium too short to hold it is `false`,
/// not an error (short means "not this filesystem").
fn read_if_present<R: Read + Seek>(
    dev: &mut Device<R>,
    offset: u64,
    buf: &mut [u8],
    what: &str,
) -> Result<bool, MediaError> {
    match dev.read_exact_at(offset, buf) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(source) => Err(MediaError::Io {
            what: what.into(),
            source,
        }),
    }
}

/// What kind of medium `dev` holds and its label, reading only the first sectors.
pub fn probe<R: Read + Seek>(
    dev: &mut Device<R>,
) -> Result<Option<(MediaKind, String)>, MediaError> {
    if let Some(label) = iso::probe_label(dev)? {
        return Ok(Some((MediaKind::Iso9660, label)));
    }
    if let Some(label) = fat::probe_label(dev)? {
        return Ok(Some((MediaKind::Fat, label)));
    }
    Ok(None)
}

/// An opened medium of either kind.
#[derive(Debug)]
pub enum Medium<R: Read + Seek> {
    Iso(IsoFs<R>),
    Fat(FatFs<R>),
}

impl<R: Read + Seek> Medium<R> {
    /// Detects the filesystem and opens it.
    pub fn open(mut dev: Device<R>) -> Result<Self, MediaError> {
        match probe(&mut dev)? {
            Some((MediaKind::Iso9660, _)) => Ok(Medium::Iso(IsoFs::open(dev)?)),
            Some((MediaKind::Fat, _)) => Ok(Medium::Fat(FatFs::open(dev)?)),
            None => Err(MediaError::Unknown),
        }
    }

    pub fn kind(&self) -> MediaKind {
        match self {
            Medium::Iso(_) => MediaKind::Iso9660,
            Medium::Fat(_) => MediaKind::Fat,
        }
    }

    /// The ISO volume id; on FAT the root directory's label entry, else the boot
    /// sector's.
    pub fn label(&self) -> String {
        match self {
            Medium::Iso(fs) => fs.label().to_owned(),
            Medium::Fat(fs) => fs.label(),
        }
    }

    /// The bytes of the file at `path`, `None` when any part of the path is absent;
    /// a file larger than `limit` is [`MediaError::TooLarge`].
    pub fn read_file(&mut self, path: &str, limit: u64) -> Result<Option<Vec<u8>>, MediaError> {
        match self {
            Medium::Iso(fs) => fs.read_file(path, limit),
            Medium::Fat(fs) => fs.read_file(path, limit),
        }
    }

    /// Every directory and file, with the names a guest sees.
    pub fn tree(&mut self, limits: &Limits) -> Result<MediaTree, MediaError> {
        match self {
            Medium::Iso(fs) => fs.tree(fs.name_set(), limits),
            Medium::Fat(fs) => fs.tree(limits),
        }
    }
}

#[cfg(test)]
mod tests;
