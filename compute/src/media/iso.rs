//! ISO9660 read straight from a device: what the volume declares, files by path and
//! whole trees, under any of the name sets a volume carries.
//!
//! Name sets, best first: Rock Ridge `NM` names (when the root's `.` record starts
//! with a SUSP `SP`), then the Joliet volume, then plain ISO names less `;1`.
//! Lookups walk down a path, so a directory pointing back at itself cannot make them
//! loop; walks remember every directory they entered. Every size is checked before
//! it is read and all reads go through a budgeted [`Device`]. Not the `iso9660`
//! crate: 0.1 has no Joliet and does not bound what it reads.

use super::budget::Device;
use super::{join, read_if_present, Limits, MediaError, MediaTree, TreeBuilder};
use std::collections::BTreeSet;
use std::io::{Read, Seek};

const SECTOR: u64 = 2048;
/// Volume descriptors start at sector 16; a real image has a handful.
const MAX_DESCRIPTORS: u64 = 32;
/// No config-drive directory comes near this.
const MAX_DIR_BYTES: u32 = 4 * 1024 * 1024;
/// SUSP continuation areas followed for one record.
const MAX_CONTINUATIONS: usize = 16;
/// Largest SUSP continuation area accepted.
const MAX_CONTINUATION_BYTES: u32 = 2 * SECTOR as u32;

/// Which names the directory records are read with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameSet {
    /// Rock Ridge `NM` entries; `skip` is the SUSP skip length from the root's `SP`.
    RockRidge {
        skip: usize,
    },
    Joliet,
    Plain,
}

/// What the volume descriptors and the root say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IsoInfo {
    pub volume_id: String,
    pub publisher: String,
    /// The volume space size, in 2048-byte blocks.
    pub blocks: u32,
    pub rock_ridge: bool,
    pub joliet: bool,
}

#[derive(Debug, Clone, Copy)]
struct Extent {
    sector: u32,
    size: u32,
}

struct Record {
    extent: Extent,
    is_dir: bool,
    multi_extent: bool,
}

/// An ISO9660 filesystem, opened for lookups and walks.
#[derive(Debug)]
pub struct IsoFs<R> {
    dev: Device<R>,
    info: IsoInfo,
    primary: Extent,
    joliet: Option<Extent>,
    rock_ridge: Option<usize>,
    names: NameSet,
}

/// The volume label from the primary volume descriptor, if this is ISO9660 at all.
pub fn probe_label<R: Read + Seek>(dev: &mut Device<R>) -> Result<Option<String>, MediaError> {
    let mut sector = [0u8; SECTOR as usize];
    if !read_if_present(
        dev,
        16 * SECTOR,
        &mut sector,
        "the primary volume descriptor",
    )? {
        return Ok(None);
    }
    if &sector[1..6] != b"CD001" || sector[0] != 1 {
        return Ok(None);
    }
    Ok(Some(a_chars(&sector[40..72])))
}

impl<R: Read + Seek> IsoFs<R> {
    pub fn open(mut dev: Device<R>) -> Result<Self, MediaError> {
        let mut primary = None;
        let mut joliet = None;
        for i in 16..16 + MAX_DESCRIPTORS {
            let mut sector = [0u8; SECTOR as usize];
            dev.read_exact_at(i * SECTOR, &mut sector)
                .map_err(|source| MediaError::Io {
                    what: format!("volume descriptor {i}"),
                    source,
                })?;
            if &sector[1..6] != b"CD001" {
                break;
            }
            match sector[0] {
                1 if primary.is_none() => primary = Some((sector, root_extent(&sector)?)),
                2 if matches!(&sector[88..91], b"%/@" | b"%/C" | b"%/E") => {
                    joliet = Some(root_extent(&sector)?)
                }
                255 => break,
                _ => {}
            }
        }
        let (pvd, root) = primary.ok_or(MediaError::NotIso)?;
        let mut fs = IsoFs {
            dev,
            info: IsoInfo {
                volume_id: a_chars(&pvd[40..72]),
                publisher: a_chars(&pvd[318..446]),
                blocks: le32(&pvd[80..84]),
                rock_ridge: false,
                joliet: joliet.is_some(),
            },
            primary: root,
            joliet,
            rock_ridge: None,
            names: NameSet::Plain,
        };
        fs.rock_ridge = fs.rock_ridge_skip()?;
        fs.info.rock_ridge = fs.rock_ridge.is_some();
        fs.names = fs.name_sets()[0];
        Ok(fs)
    }

    pub fn label(&self) -> &str {
        &self.info.volume_id
    }

    pub fn info(&self) -> &IsoInfo {
        &self.info
    }

    /// The name set lookups use: the best the volume carries.
    pub fn name_set(&self) -> NameSet {
        self.names
    }

    /// Every name set the volume carries, best first; `Plain` always.
    pub fn name_sets(&self) -> Vec<NameSet> {
        let mut out = Vec::with_capacity(3);
        if let Some(skip) = self.rock_ridge {
            out.push(NameSet::RockRidge { skip });
        }
        if self.joliet.is_some() {
            out.push(NameSet::Joliet);
        }
        out.push(NameSet::Plain);
        out
    }

    fn root(&self, names: NameSet) -> Extent {
        match (names, self.joliet) {
            (NameSet::Joliet, Some(j)) => j,
            _ => self.primary,
        }
    }

    /// The bytes of the file at `path` (`openstack/latest/meta_data.json`), `None` when
    /// any part of the path is absent.
    pub fn read_file(&mut self, path: &str, limit: u64) -> Result<Option<Vec<u8>>, MediaError> {
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        let mut dir = self.root(self.names);
        for (i, part) in parts.iter().enumerate() {
            let Some(rec) = self.find(dir, part)? else {
                return Ok(None);
            };
            if i + 1 < parts.len() {
                if !rec.is_dir {
                    return Ok(None);
                }
                dir = rec.extent;
                continue;
            }
            if rec.is_dir {
                return Err(MediaError::NotAFile(path.into()));
            }
            return self.read_extent(path, &rec, limit).map(Some);
        }
        Ok(None)
    }

    /// Every directory and file under `names` (one of [`Self::name_sets`]).
    pub fn tree(&mut self, names: NameSet, limits: &Limits) -> Result<MediaTree, MediaError> {
        let mut out = TreeBuilder::new(limits);
        let mut seen = BTreeSet::new();
        let mut stack = vec![(String::new(), self.root(names), 0usize)];
        while let Some((path, dir, depth)) = stack.pop() {
            out.depth(depth)?;
            if !seen.insert(dir.sector) {
                return Err(MediaError::Corrupt(format!(
                    "directory `{path}` loops back to sector {}",
                    dir.sector
                )));
            }
            let buf = self.read_dir(dir)?;
            for (name, rec) in self.records(&buf, dir, names)? {
                if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
                    return Err(MediaError::Corrupt(format!(
                        "a name {name:?} in directory `{path}`"
                    )));
                }
                let full = join(&path, &name);
                if rec.is_dir {
                    out.dir(full.clone())?;
                    stack.push((full, rec.extent, depth + 1));
                } else {
                    out.reserve(u64::from(rec.extent.size))?;
                    let bytes = self.read_extent(&full, &rec, u64::MAX)?;
                    out.file(full, bytes);
                }
            }
        }
        Ok(out.finish())
    }

    fn read_extent(&mut self, path: &str, rec: &Record, limit: u64) -> Result<Vec<u8>, MediaError> {
        if rec.multi_extent {
            return Err(MediaError::MultiExtent(path.into()));
        }
        let size = u64::from(rec.extent.size);
        if size > limit {
            return Err(MediaError::TooLarge {
                path: path.into(),
                size,
                limit,
            });
        }
        let mut buf = vec![0u8; rec.extent.size as usize];
        self.dev
            .read_exact_at(u64::from(rec.extent.sector) * SECTOR, &mut buf)
            .map_err(|source| MediaError::Io {
                what: path.into(),
                source,
            })?;
        Ok(buf)
    }

    fn read_dir(&mut self, dir: Extent) -> Result<Vec<u8>, MediaError> {
        if dir.size > MAX_DIR_BYTES {
            return Err(MediaError::Corrupt(format!(
                "a directory claims {} bytes",
                dir.size
            )));
        }
        let mut buf = vec![0u8; dir.size as usize];
        self.dev
            .read_exact_at(u64::from(dir.sector) * SECTOR, &mut buf)
            .map_err(|source| MediaError::Io {
                what: format!("the directory at sector {}", dir.sector),
                source,
            })?;
        Ok(buf)
    }

    /// Rock Ridge is in use when the root's `.` record starts its system use area
    /// with a valid SUSP `SP` entry.
    fn rock_ridge_skip(&mut self) -> Result<Option<usize>, MediaError> {
        let buf = self.read_dir(self.primary)?;
        let Some(len) = buf.first().map(|l| usize::from(*l)) else {
            return Ok(None);
        };
        if len < 34 || len > buf.len() || 33 + usize::from(buf[32]) > len {
            return Err(MediaError::Corrupt(
                "the root directory's first record is malformed".into(),
            ));
        }
        let su = system_use(&buf[..len], 0);
        Ok(
            (su.len() >= 7 && &su[..2] == b"SP" && su[4..6] == [0xBE, 0xEF])
                .then(|| usize::from(su[6])),
        )
    }

    /// The record named `wanted` in `dir`, under the name set lookups use.
    fn find(&mut self, dir: Extent, wanted: &str) -> Result<Option<Record>, MediaError> {
        let buf = self.read_dir(dir)?;
        let names = self.names;
        for (name, rec) in self.records(&buf, dir, names)? {
            let matches = match names {
                // Plain ISO names turn characters outside d-characters into `_`.
                NameSet::Plain => {
                    name.eq_ignore_ascii_case(wanted) || name.eq_ignore_ascii_case(&d_chars(wanted))
                }
                _ => name == wanted,
            };
            if matches {
                return Ok(Some(rec));
            }
        }
        Ok(None)
    }

    /// The records of a directory (less `.` and `..`) with their names.
    fn records(
        &mut self,
        buf: &[u8],
        dir: Extent,
        names: NameSet,
    ) -> Result<Vec<(String, Record)>, MediaError> {
        let mut out = Vec::new();
        let mut pos = 0usize;
        while pos < buf.len() {
            let len = usize::from(buf[pos]);
            if len == 0 {
                // Records never cross a sector; the rest of this one is padding.
                pos = (pos / SECTOR as usize + 1) * SECTOR as usize;
                continue;
            }
            if len < 34 || pos + len > buf.len() {
                return Err(MediaError::Corrupt(format!(
                    "directory record at offset {pos} of sector {}",
                    dir.sector
                )));
            }
            let rec = &buf[pos..pos + len];
            pos += len;
            let name_len = usize::from(rec[32]);
            if 33 + name_len > len {
                return Err(MediaError::Corrupt(format!(
                    "a name overruns its record in sector {}",
                    dir.sector
                )));
            }
            let raw = &rec[33..33 + name_len];
            if raw == [0] || raw == [1] {
                continue;
            }
            let name = match names {
                NameSet::RockRidge { skip } => self
                    .rock_ridge_name(system_use(rec, skip))?
                    .unwrap_or_else(|| plain(raw)),
                NameSet::Joliet => joliet(raw),
                NameSet::Plain => plain(raw),
            };
            let record = Record {
                extent: Extent {
                    sector: le32(&rec[2..6]),
                    size: le32(&rec[10..14]),
                },
                is_dir: rec[25] & 0x02 != 0,
                multi_extent: rec[25] & 0x80 != 0,
            };
            out.push((name, record));
        }
        Ok(out)
    }

    /// The Rock Ridge name: the `NM` entries of the system use area and its `CE`
    /// continuations, joined until one without the CONTINUE flag.
    fn rock_ridge_name(&mut self, su: &[u8]) -> Result<Option<String>, MediaError> {
        let mut name = Vec::new();
        let mut found = false;
        let mut area = su.to_vec();
        for _ in 0..MAX_CONTINUATIONS {
            let (done, next) = nm_entries(&area, &mut name, &mut found);
            if done {
                break;
            }
            let Some((sector, offset, len)) = next else {
                break;
            };
            if len > MAX_CONTINUATION_BYTES {
                return Err(MediaError::Corrupt(format!(
                    "a SUSP continuation area claims {len} bytes"
                )));
            }
            area = vec![0u8; len as usize];
            let at = u64::from(sector) * SECTOR + u64::from(offset);
            self.dev
                .read_exact_at(at, &mut area)
                .map_err(|source| MediaError::Io {
                    what: format!("the SUSP continuation area at sector {sector}"),
                    source,
                })?;
        }
        Ok(found.then(|| String::from_utf8_lossy(&name).into_owned()))
    }
}

/// Appends the `NM` name parts of one SUSP area to `name`. Returns whether the name
/// is complete, and the `CE` continuation (sector, offset, length) if any.
fn nm_entries(
    mut su: &[u8],
    name: &mut Vec<u8>,
    found: &mut bool,
) -> (bool, Option<(u32, u32, u32)>) {
    let mut next = None;
    while su.len() >= 4 {
        let len = usize::from(su[2]);
        if len < 4 || len > su.len() {
            break;
        }
        let (entry, rest) = su.split_at(len);
        su = rest;
        match &entry[..2] {
            b"ST" => break,
            b"CE" if len >= 28 => {
                next = Some((
                    le32(&entry[4..8]),
                    le32(&entry[12..16]),
                    le32(&entry[20..24]),
                ))
            }
            // Flags 2 and 4 name `.` and `..`, never a real entry.
            b"NM" if len >= 5 && entry[4] & 0x06 == 0 => {
                *found = true;
                name.extend_from_slice(&entry[5..]);
                if entry[4] & 1 == 0 {
                    return (true, None);
                }
            }
            _ => {}
        }
    }
    (false, next)
}

fn root_extent(descriptor: &[u8]) -> Result<Extent, MediaError> {
    let root = &descriptor[156..190];
    if root[0] != 34 {
        return Err(MediaError::Corrupt(
            "the root directory record is not 34 bytes".into(),
        ));
    }
    Ok(Extent {
        sector: le32(&root[2..6]),
        size: le32(&root[10..14]),
    })
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// The system use area of a record: after the name and its padding byte, plus `skip`.
fn system_use(rec: &[u8], skip: usize) -> &[u8] {
    let name_len = usize::from(rec[32]);
    let start = 33 + name_len + (name_len + 1) % 2 + skip;
    rec.get(start..).unwrap_or(&[])
}

fn joliet(raw: &[u8]) -> String {
    let units = raw
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]));
    let s: String = char::decode_utf16(units)
        .map(|c| c.unwrap_or('\u{fffd}'))
        .collect();
    strip_version(&s).to_owned()
}

fn plain(raw: &[u8]) -> String {
    let s = String::from_utf8_lossy(raw);
    strip_version(&s).trim_end_matches('.').to_owned()
}

fn strip_version(s: &str) -> &str {
    match s.rfind(';') {
        Some(i) if s[i + 1..].bytes().all(|b| b.is_ascii_digit()) => &s[..i],
        _ => s,
    }
}

fn d_chars(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn a_chars(b: &[u8]) -> String {
    String::from_utf8_lossy(b)
        .trim_end_matches([' ', '\0'])
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_normalised() {
        assert_eq!(plain(b"META_DAT.JSO;1"), "META_DAT.JSO");
        assert_eq!(plain(b"LATEST."), "LATEST");
        assert_eq!(joliet(&[0, b'a', 0, b'b', 0, b';', 0, b'1']), "ab");
        let mut name = Vec::new();
        let mut found = false;
        let nm = [b'N', b'M', 9, 1, 0, b'a', b'.', b'j', b's'];
        assert_eq!(nm_entries(&nm, &mut name, &mut found), (true, None));
        assert!(found);
        assert_eq!(name, b"a.js");
        let (mut name, mut found) = (Vec::new(), false);
        assert_eq!(
            nm_entries(&[b'N', b'M', 2, 1], &mut name, &mut found),
            (false, None)
        );
        assert!(!found);
    }

    #[test]
    fn continued_names_join_and_continuations_are_found() {
        let mut su = vec![b'N', b'M', 7, 1, 1, b'a', b'b'];
        let mut ce = vec![b'C', b'E', 28, 1];
        for v in [9u32, 0, 100, 0, 30, 0] {
            ce.extend_from_slice(&v.to_le_bytes());
        }
        su.extend_from_slice(&ce);
        let (mut name, mut found) = (Vec::new(), false);
        assert_eq!(
            nm_entries(&su, &mut name, &mut found),
            (false, Some((9, 100, 30)))
        );
        assert_eq!(name, b"ab");
    }
}
