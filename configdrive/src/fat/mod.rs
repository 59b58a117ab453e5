//! [`FatImage`]: a drive tree to a VFAT image (FAT16, 64 MiB by default) made with
//! the `fatfs` crate on an in-memory sparse disk: no root, no loop mount, no 64 MiB
//! of zeros in memory or on disk. Label `config-2` in the boot sector and in a
//! root-directory volume label entry (as `mkfs.vfat -n` writes both), a long name
//! for every entry (fatfs always writes one), the volume serial from the options,
//! and every timestamp from the options' one timestamp.
//!
//! fatfs 0.3 also gives `.` and `..` long-name entries, which `fsck.fat` rejects;
//! [`dots`] moves them back to the first two slots after the build.

mod dots;

use crate::image::{DiskImage, SparseDisk};
use crate::options::DriveOptions;
use crate::tree::{DirNode, TreeError};
use compute::metadata::DriveTree;
use std::cell::Cell;
use std::io::{self, Read, Seek, SeekFrom, Write};

/// Nova's size for VFAT drives.
pub const DEFAULT_SIZE: u64 = 64 * 1024 * 1024;
/// FAT16's practical bounds for this writer.
pub const MIN_SIZE: u64 = 8 * 1024 * 1024;
pub const MAX_SIZE: u64 = 2 * 1024 * 1024 * 1024;

const SECTOR: u64 = 512;
const DIR_ENTRY: u64 = 32;
/// Characters of a long name held by one LFN entry.
const LFN_CHARS: usize = 13;

#[derive(Debug, thiserror::Error)]
pub enum FatError {
    #[error(transparent)]
    Tree(#[from] TreeError),
    #[error("VFAT size {size} bytes must be a multiple of 512 between {MIN_SIZE} and {MAX_SIZE}")]
    BadSize { size: u64 },
    #[error("the drive needs {needed} bytes of clusters but a {size}-byte VFAT volume has {free} free; choose a larger --size")]
    DoesNotFit { needed: u64, free: u64, size: u64 },
    #[error("the root directory of a FAT16 volume holds {max} entries; the drive needs {needed}")]
    RootFull { needed: u64, max: u64 },
    #[error("cannot format the VFAT volume")]
    Format(#[source] io::Error),
    #[error("cannot write `{path}` into the VFAT volume")]
    Write { path: String, source: io::Error },
}

/// Builds VFAT images of drive trees.
#[derive(Debug, Clone)]
pub struct FatImage {
    options: DriveOptions,
    size: u64,
}

thread_local! {
    /// The timestamp fatfs stamps entries with during one build on this thread.
    static BUILD_TIME: Cell<fatfs::DateTime> = const { Cell::new(DOS_EPOCH) };
}

const DOS_EPOCH: fatfs::DateTime = fatfs::DateTime {
    date: fatfs::Date {
        year: 1980,
        month: 1,
        day: 1,
    },
    time: fatfs::Time {
        hour: 0,
        min: 0,
        sec: 0,
        millis: 0,
    },
};

/// fatfs asks a `'static` provider for "now"; this one answers with the build's
/// timestamp, set per thread for the duration of [`FatImage::write`].
#[derive(Debug)]
struct BuildClock;

impl fatfs::TimeProvider for BuildClock {
    fn get_current_date(&self) -> fatfs::Date {
        BUILD_TIME.with(|t| t.get().date)
    }
    fn get_current_date_time(&self) -> fatfs::DateTime {
        BUILD_TIME.with(|t| t.get())
    }
}

static BUILD_CLOCK: BuildClock = BuildClock;

impl FatImage {
    pub fn new(options: DriveOptions) -> Self {
        FatImage {
            options,
            size: DEFAULT_SIZE,
        }
    }

    /// The volume size in bytes (default 64 MiB).
    pub fn size(mut self, size: u64) -> Result<Self, FatError> {
        if !(MIN_SIZE..=MAX_SIZE).contains(&size) || size % SECTOR != 0 {
            return Err(FatError::BadSize { size });
        }
        self.size = size;
        Ok(self)
    }

    fn dos_time(&self) -> fatfs::DateTime {
        let t = self.options.datetime();
        fatfs::DateTime {
            date: fatfs::Date {
                year: t.year() as u16,
                month: u8::from(t.month()).into(),
                day: t.day().into(),
            },
            // FAT keeps even seconds in the main field; the rest goes to hundredths.
            time: fatfs::Time {
                hour: t.hour().into(),
                min: t.minute().into(),
                sec: t.second().into(),
                millis: 0,
            },
        }
    }

    /// The image of `tree`. Fails before writing anything when the tree cannot fit.
    pub fn write(&self, tree: &DriveTree) -> Result<DiskImage, FatError> {
        let root = DirNode::from_tree(tree)?;
        let mut disk = SparseDisk::new(self.size);
        let mut label = [b' '; 11];
        label[..self.options.label().len()].copy_from_slice(self.options.label().as_bytes());
        let format = fatfs::FormatVolumeOptions::new()
            .fat_type(fatfs::FatType::Fat16)
            .volume_label(label)
            .volume_id(self.options.serial());
        fatfs::format_volume(&mut disk, format).map_err(FatError::Format)?;
        let geometry = Geometry::read(&mut disk).map_err(FatError::Format)?;
        self.check_fits(&root, &geometry)?;
        let now = self.dos_time();
        write_label_entry(&mut disk, &geometry, &label, now).map_err(FatError::Format)?;

        let previous = BUILD_TIME.with(|t| t.replace(now));
        let result = self.fill(&mut disk, &root);
        BUILD_TIME.with(|t| t.set(previous));
        result?;
        dots::fix(&mut disk, &geometry).map_err(|source| FatError::Write {
            path: "/".into(),
            source,
        })?;
        Ok(disk.into_image())
    }

    fn fill(&self, disk: &mut SparseDisk, root: &DirNode) -> Result<(), FatError> {
        let fs = fatfs::FileSystem::new(
            &mut *disk,
            fatfs::FsOptions::new().time_provider(&BUILD_CLOCK),
        )
        .map_err(FatError::Format)?;
        write_dir(&fs.root_dir(), root, "")?;
        fs.unmount().map_err(|source| FatError::Write {
            path: "/".into(),
            source,
        })
    }

    /// Counts clusters for every file and directory (long-name entries included)
    /// against what the formatted volume offers.
    fn check_fits(&self, root: &DirNode, g: &Geometry) -> Result<(), FatError> {
        let root_entries = dir_entries(root);
        if root_entries + 1 > g.root_entries {
            return Err(FatError::RootFull {
                needed: root_entries + 1,
                max: g.root_entries,
            });
        }
        let clusters = |bytes: u64| bytes.div_ceil(g.cluster);
        fn walk(d: &DirNode, clusters: &dyn Fn(u64) -> u64, top: bool) -> u64 {
            let own = if top {
                0
            } else {
                clusters((dir_entries(d) + 2) * DIR_ENTRY)
            };
            let files: u64 = d.files.values().map(|b| clusters(b.len() as u64)).sum();
            own + files
                + d.dirs
                    .values()
                    .map(|c| walk(c, clusters, false))
                    .sum::<u64>()
        }
        let needed = walk(root, &clusters, true);
        if needed > g.clusters {
            return Err(FatError::DoesNotFit {
                needed: needed * g.cluster,
                free: g.clusters * g.cluster,
                size: self.size,
            });
        }
        Ok(())
    }
}

/// Directory entries a directory's children take: one short entry each plus their
/// long-name entries.
fn dir_entries(d: &DirNode) -> u64 {
    d.dirs
        .keys()
        .chain(d.files.keys())
        .map(|n| 1 + n.encode_utf16().count().div_ceil(LFN_CHARS) as u64)
        .sum()
}

fn write_dir<T: fatfs::ReadWriteSeek>(
    dir: &fatfs::Dir<T>,
    node: &DirNode,
    path: &str,
) -> Result<(), FatError> {
    let err = |name: &str| {
        let p = if path.is_empty() {
            name.to_owned()
        } else {
            format!("{path}/{name}")
        };
        move |source| FatError::Write { path: p, source }
    };
    for (name, bytes) in &node.files {
        let mut f = dir.create_file(name).map_err(err(name))?;
        f.write_all(bytes).map_err(err(name))?;
        f.flush().map_err(err(name))?;
    }
    for (name, child) in &node.dirs {
        let sub = dir.create_dir(name).map_err(err(name))?;
        let p = if path.is_empty() {
            name.clone()
        } else {
            format!("{path}/{name}")
        };
        write_dir(&sub, child, &p)?;
    }
    Ok(())
}

/// What the boot sector says about where things are.
struct Geometry {
    fat_offset: u64,
    fat_bytes: u64,
    root_offset: u64,
    root_entries: u64,
    data_offset: u64,
    cluster: u64,
    clusters: u64,
}

impl Geometry {
    fn read(disk: &mut SparseDisk) -> io::Result<Self> {
        let mut bpb = [0u8; 512];
        disk.seek(SeekFrom::Start(0))?;
        disk.read_exact(&mut bpb)?;
        let u16_at = |i: usize| u64::from(u16::from_le_bytes([bpb[i], bpb[i + 1]]));
        let bytes_per_sector = u16_at(11);
        let sectors_per_cluster = u64::from(bpb[13]);
        let reserved = u16_at(14);
        let fats = u64::from(bpb[16]);
        let root_entries = u16_at(17);
        let total = match u16_at(19) {
            0 => u64::from(u32::from_le_bytes([bpb[32], bpb[33], bpb[34], bpb[35]])),
            n => n,
        };
        let per_fat = u16_at(22);
        let root_sectors = (root_entries * DIR_ENTRY).div_ceil(bytes_per_sector);
        let data_start = reserved + fats * per_fat + root_sectors;
        disk.seek(SeekFrom::Start(0))?;
        Ok(Geometry {
            fat_offset: reserved * bytes_per_sector,
            fat_bytes: per_fat * bytes_per_sector,
            data_offset: data_start * bytes_per_sector,
            root_offset: (reserved + fats * per_fat) * bytes_per_sector,
            root_entries,
            cluster: sectors_per_cluster * bytes_per_sector,
            clusters: (total - data_start) / sectors_per_cluster.max(1),
        })
    }
}

/// The root directory's volume label entry, first in the root: what `blkid`
/// reports as `LABEL` and Windows shows as the drive's name.
fn write_label_entry(
    disk: &mut SparseDisk,
    g: &Geometry,
    label: &[u8; 11],
    now: fatfs::DateTime,
) -> io::Result<()> {
    let mut e = [0u8; 32];
    e[..11].copy_from_slice(label);
    e[11] = 0x08;
    let time = (now.time.hour << 11) | (now.time.min << 5) | (now.time.sec / 2);
    let date = ((now.date.year - 1980) << 9) | (now.date.month << 5) | now.date.day;
    e[22..24].copy_from_slice(&time.to_le_bytes());
    e[24..26].copy_from_slice(&date.to_le_bytes());
    disk.seek(SeekFrom::Start(g.root_offset))?;
    disk.write_all(&e)?;
    disk.seek(SeekFrom::Start(0))?;
    Ok(())
}
