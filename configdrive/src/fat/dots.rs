//! Puts `.` and `..` back where FAT wants them.
//!
//! fatfs 0.3 writes a long-name entry before the `.` and `..` entries of every new
//! directory, so the directory starts `[LFN, ., LFN, ..]`; `fsck.fat` and Windows
//! expect `.` and `..` in the first two slots. This walks every directory from the
//! root and rewrites such a start to `[., .., deleted, deleted]`. Nothing else moves.

use super::Geometry;
use crate::image::SparseDisk;
use std::io::{self, Read, Seek, SeekFrom, Write};

const ENTRY: usize = 32;
const ATTR_LFN: u8 = 0x0F;
const ATTR_DIR: u8 = 0x10;
const ATTR_VOLUME: u8 = 0x08;
const DELETED: u8 = 0xE5;
/// A bound on the directories walked (the tree itself is bounded far below this).
const MAX_DIRS: usize = 1 << 17;

pub(super) fn fix(disk: &mut SparseDisk, g: &Geometry) -> io::Result<()> {
    let fat = read_at(disk, g.fat_offset, g.fat_bytes as usize)?;
    let root = read_at(disk, g.root_offset, (g.root_entries as usize) * ENTRY)?;
    let mut pending = subdirs(&root);
    let mut seen = 0usize;
    while let Some(first) = pending.pop() {
        seen += 1;
        if seen > MAX_DIRS {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "directory walk does not end",
            ));
        }
        let chain = chain(&fat, first, g.clusters)?;
        let mut bytes = Vec::with_capacity(chain.len() * g.cluster as usize);
        for &c in &chain {
            bytes.extend(read_at(disk, cluster_offset(g, c), g.cluster as usize)?);
        }
        if let Some(fixed) = fixed_start(&bytes[..4 * ENTRY]) {
            disk.seek(SeekFrom::Start(cluster_offset(g, first)))?;
            disk.write_all(&fixed)?;
        }
        pending.extend(subdirs(&bytes));
    }
    Ok(())
}

fn cluster_offset(g: &Geometry, cluster: u16) -> u64 {
    g.data_offset + u64::from(cluster - 2) * g.cluster
}

fn read_at(disk: &mut SparseDisk, at: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    disk.seek(SeekFrom::Start(at))?;
    disk.read_exact(&mut buf)?;
    Ok(buf)
}

/// First clusters of the sub-directories listed in a directory's bytes.
fn subdirs(dir: &[u8]) -> Vec<u16> {
    let mut out = Vec::new();
    for e in dir.chunks_exact(ENTRY) {
        if e[0] == 0 {
            break;
        }
        let attr = e[11];
        if e[0] == DELETED
            || attr == ATTR_LFN
            || attr & ATTR_VOLUME != 0
            || attr & ATTR_DIR == 0
            || e[0] == b'.'
        {
            continue;
        }
        let cluster = u16::from_le_bytes([e[26], e[27]]);
        if cluster >= 2 {
            out.push(cluster);
        }
    }
    out
}

/// The FAT16 cluster chain starting at `first`.
fn chain(fat: &[u8], first: u16, clusters: u64) -> io::Result<Vec<u16>> {
    let mut out = vec![first];
    let mut c = first;
    loop {
        let i = usize::from(c) * 2;
        let next = fat
            .get(i..i + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .unwrap_or(0xFFFF);
        if !(2..0xFFF8).contains(&next) || u64::from(next) >= clusters + 2 {
            return Ok(out);
        }
        if out.len() as u64 > clusters {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "FAT chain loops",
            ));
        }
        out.push(next);
        c = next;
    }
}

/// `[LFN, ., LFN, ..]` rewritten as `[., .., deleted, deleted]`; `None` when the
/// directory already starts right.
fn fixed_start(start: &[u8]) -> Option<Vec<u8>> {
    let e = |i: usize| &start[i * ENTRY..(i + 1) * ENTRY];
    let is_lfn = |x: &[u8]| x[11] == ATTR_LFN && x[0] != DELETED;
    if !(is_lfn(e(0))
        && &e(1)[..11] == b".          "
        && is_lfn(e(2))
        && &e(3)[..11] == b"..         ")
    {
        return None;
    }
    let mut out = Vec::with_capacity(4 * ENTRY);
    out.extend_from_slice(e(1));
    out.extend_from_slice(e(3));
    for i in [0, 2] {
        let mut gone = e(i).to_vec();
        gone[0] = DELETED;
        out.extend_from_slice(&gone);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &[u8; 11], attr: u8) -> Vec<u8> {
        let mut e = vec![0u8; ENTRY];
        e[..11].copy_from_slice(name);
        e[11] = attr;
        e
    }

    #[test]
    fn moves_dots_first() {
        let start = [
            entry(b"A          ", ATTR_LFN),
            entry(b".          ", ATTR_DIR),
            entry(b"A          ", ATTR_LFN),
            entry(b"..         ", ATTR_DIR),
        ]
        .concat();
        let fixed = fixed_start(&start).unwrap();
        assert_eq!(&fixed[..11], b".          ");
        assert_eq!(&fixed[ENTRY..ENTRY + 11], b"..         ");
        assert_eq!(fixed[2 * ENTRY], DELETED);
        assert_eq!(fixed[3 * ENTRY], DELETED);
        assert!(fixed_start(&fixed).is_none());
    }
}
