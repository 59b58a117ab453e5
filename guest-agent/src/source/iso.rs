//! A small ISO9660 reader: volume label and files by path, straight from a device.
//!
//! Our own rather than the `iso9660` crate: version 0.1 of that crate has no Joliet
//! support, and a reader over untrusted media must bound every size and name every
//! corruption it meets. This one does only what a config drive needs: find the
//! volume descriptors, choose the name set (Rock Ridge `NM` names, then Joliet, then
//! plain ISO names), and look files up by path. Lookups walk down a path, so a
//! directory that points back at itself cannot make it loop; all reads go through a
//! budgeted [`Device`].

use super::device::Device;
use std::io::{Read, Seek};

const SECTOR: u64 = 2048;
/// Volume descriptors start at sector 16; a real image has a handful.
const MAX_DESCRIPTORS: u64 = 32;
/// No config-drive directory comes near this.
const MAX_DIR_BYTES: u32 = 4 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum IsoError {
    #[error("cannot read {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("not an ISO9660 image (no `CD001` volume descriptor at byte 32768)")]
    NotIso,
    #[error("corrupt ISO9660 image: {0}")]
    Corrupt(String),
    #[error("{path} is {size} bytes, more than the {limit} allowed")]
    TooLarge { path: String, size: u64, limit: u64 },
    #[error("{0} is a directory, not a file")]
    NotAFile(String),
    #[error("{0} is recorded in several extents, which config drives never use")]
    MultiExtent(String),
}

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

#[derive(Debug, Clone, Copy)]
struct Extent {
    sector: u32,
    size: u32,
}

/// An ISO9660 filesystem, opened for lookups.
#[derive(Debug)]
pub struct IsoFs<R> {
    dev: Device<R>,
    label: String,
    root: Extent,
    names: NameSet,
}

struct Record {
    extent: Extent,
    is_dir: bool,
    multi_extent: bool,
}

/// The volume label from the primary volume descriptor, if this is ISO9660 at all.
pub fn probe_label<R: Read + Seek>(dev: &mut Device<R>) -> Result<Option<String>, IsoError> {
    let mut sector = [0u8; SECTOR as usize];
    match dev.read_exact_at(16 * SECTOR, &mut sector) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(source) => {
            return Err(IsoError::Io {
                what: "the primary volume descriptor".into(),
                source,
            })
        }
    }
    if &sector[1..6] != b"CD001" || sector[0] != 1 {
        return Ok(None);
    }
    Ok(Some(a_chars(&sector[40..72])))
}

impl<R: Read + Seek> IsoFs<R> {
    pub fn open(mut dev: Device<R>) -> Result<Self, IsoError> {
        let mut primary = None;
        let mut joliet = None;
        for i in 16..16 + MAX_DESCRIPTORS {
            let mut sector = [0u8; SECTOR as usize];
            dev.read_exact_at(i * SECTOR, &mut sector)
                .map_err(|source| IsoError::Io {
                    what: format!("volume descriptor {i}"),
                    source,
                })?;
            if &sector[1..6] != b"CD001" {
                break;
            }
            match sector[0] {
                1 if primary.is_none() => {
                    primary = Some((a_chars(&sector[40..72]), root_extent(&sector)?))
                }
                2 if matches!(&sector[88..91], b"%/@" | b"%/C" | b"%/E") => {
                    joliet = Some(root_extent(&sector)?)
                }
                255 => break,
                _ => {}
            }
        }
        let (label, root) = primary.ok_or(IsoError::NotIso)?;
        let mut fs = IsoFs {
            dev,
            label,
            root,
            names: NameSet::Plain,
        };
        fs.names = match fs.rock_ridge_skip()? {
            Some(skip) => NameSet::RockRidge { skip },
            None => match joliet {
                Some(j) => {
                    fs.root = j;
                    NameSet::Joliet
                }
                None => NameSet::Plain,
            },
        };
        Ok(fs)
    }

    pub fn label(&self) -> &str {
        &self.label
    }

    pub fn name_set(&self) -> NameSet {
        self.names
    }

    /// The bytes of the file at `path` (`openstack/latest/meta_data.json`), `None` when
    /// any part of the path is absent.
    pub fn read_file(&mut self, path: &str, limit: u64) -> Result<Option<Vec<u8>>, IsoError> {
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        let mut dir = self.root;
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            let Some(rec) = self.find(dir, part)? else {
                return Ok(None);
            };
            if !last {
                if !rec.is_dir {
                    return Ok(None);
                }
                dir = rec.extent;
                continue;
            }
            if rec.is_dir {
                return Err(IsoError::NotAFile(path.into()));
            }
            if rec.multi_extent {
                return Err(IsoError::MultiExtent(path.into()));
            }
            let size = u64::from(rec.extent.size);
            if size > limit {
                return Err(IsoError::TooLarge {
                    path: path.into(),
                    size,
                    limit,
                });
            }
            let mut buf = vec![0u8; rec.extent.size as usize];
            self.dev
                .read_exact_at(u64::from(rec.extent.sector) * SECTOR, &mut buf)
                .map_err(|source| IsoError::Io {
                    what: path.into(),
                    source,
                })?;
            return Ok(Some(buf));
        }
        Ok(None)
    }

    fn read_dir(&mut self, dir: Extent) -> Result<Vec<u8>, IsoError> {
        if dir.size > MAX_DIR_BYTES {
            return Err(IsoError::Corrupt(format!(
                "a directory claims {} bytes",
                dir.size
            )));
        }
        let mut buf = vec![0u8; dir.size as usize];
        self.dev
            .read_exact_at(u64::from(dir.sector) * SECTOR, &mut buf)
            .map_err(|source| IsoError::Io {
                what: format!("the directory at sector {}", dir.sector),
                source,
            })?;
        Ok(buf)
    }

    /// Rock Ridge is in use when the root's `.` record starts its system use area
    /// with a valid SUSP `SP` entry.
    fn rock_ridge_skip(&mut self) -> Result<Option<usize>, IsoError> {
        let buf = self.read_dir(self.root)?;
        let Some(len) = buf.first().map(|l| usize::from(*l)) else {
            return Ok(None);
        };
        if len < 34 || len > buf.len() {
            return Err(IsoError::Corrupt(
                "the root directory's first record is malformed".into(),
            ));
        }
        let su = system_use(&buf[..len], 0);
        Ok(
            (su.len() >= 7 && &su[..2] == b"SP" && su[4..6] == [0xBE, 0xEF])
                .then(|| usize::from(su[6])),
        )
    }

    fn find(&mut self, dir: Extent, wanted: &str) -> Result<Option<Record>, IsoError> {
        let buf = self.read_dir(dir)?;
        let mut pos = 0usize;
        while pos < buf.len() {
            let len = usize::from(buf[pos]);
            if len == 0 {
                // Records never cross a sector; the rest of this one is padding.
                pos = (pos / SECTOR as usize + 1) * SECTOR as usize;
                continue;
            }
            if len < 34 || pos + len > buf.len() {
                return Err(IsoError::Corrupt(format!(
                    "directory record at offset {pos} of sector {}",
                    dir.sector
                )));
            }
            let rec = &buf[pos..pos + len];
            pos += len;
            let name_len = usize::from(rec[32]);
            if 33 + name_len > len {
                return Err(IsoError::Corrupt(format!(
                    "a name overruns its record in sector {}",
                    dir.sector
                )));
            }
            let raw = &rec[33..33 + name_len];
            if raw == [0] || raw == [1] {
                continue;
            }
            let name = match self.names {
                NameSet::RockRidge { skip } => {
                    rock_ridge_name(system_use(rec, skip)).unwrap_or_else(|| plain(raw))
                }
                NameSet::Joliet => joliet(raw),
                NameSet::Plain => plain(raw),
            };
            let matches = match self.names {
                // Plain ISO names turn characters outside d-characters into `_`.
                NameSet::Plain => {
                    name.eq_ignore_ascii_case(wanted) || name.eq_ignore_ascii_case(&d_chars(wanted))
                }
                _ => name == wanted,
            };
            if matches {
                let extent = Extent {
                    sector: le32(&rec[2..6]),
                    size: le32(&rec[10..14]),
                };
                return Ok(Some(Record {
                    extent,
                    is_dir: rec[25] & 0x02 != 0,
                    multi_extent: rec[25] & 0x80 != 0,
                }));
            }
        }
        Ok(None)
    }
}

fn root_extent(descriptor: &[u8]) -> Result<Extent, IsoError> {
    let root = &descriptor[156..190];
    if root[0] != 34 {
        return Err(IsoError::Corrupt(
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

/// The Rock Ridge name: the `NM` entries of the system use area, joined.
fn rock_ridge_name(mut su: &[u8]) -> Option<String> {
    let mut name = Vec::new();
    let mut found = false;
    while su.len() >= 4 {
        let len = usize::from(su[2]);
        if len < 4 || len > su.len() {
            break;
        }
        let (entry, rest) = su.split_at(len);
        if &entry[..2] == b"ST" {
            break;
        }
        if &entry[..2] == b"NM" && len >= 5 {
            found = true;
            name.extend_from_slice(&entry[5..]);
            if entry[4] & 1 == 0 {
                break;
            }
        }
        su = rest;
    }
    found.then(|| String::from_utf8_lossy(&name).into_owned())
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
        let nm = [b'N', b'M', 9, 1, 0, b'a', b'.', b'j', b's'];
        assert_eq!(rock_ridge_name(&nm).as_deref(), Some("a.js"));
        assert_eq!(rock_ridge_name(&[b'N', b'M', 2, 1]), None);
    }

    #[test]
    fn garbage_is_not_iso() {
        let mut dev = Device::new(std::io::Cursor::new(vec![0u8; 40000]), 1 << 20);
        assert!(probe_label(&mut dev).expect("readable").is_none());
        let dev = Device::new(std::io::Cursor::new(vec![0u8; 100]), 1 << 20);
        assert!(IsoFs::open(dev).is_err());
    }
}
