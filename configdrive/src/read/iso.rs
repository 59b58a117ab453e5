//! Reads an ISO9660 image back: the names a guest sees (Rock Ridge `NM` when the
//! root declares SUSP, else Joliet, else primary names without `;1`), each file's
//! bytes and what the volume declares. Every offset is bounds-checked; loops and
//! oversized trees are refused.

use super::{Limits, ReadError};
use std::collections::{BTreeMap, BTreeSet};

const BLOCK: usize = 2048;

/// What the volume descriptors and the root say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IsoInfo {
    pub volume_id: String,
    pub publisher: String,
    pub blocks: u32,
    pub rock_ridge: bool,
    pub joliet: bool,
}

/// A directory's or file's place: (first block, length in bytes).
type Extent = (u32, u32);

/// An image read back.
pub struct IsoTree {
    pub info: IsoInfo,
    pub names: Names,
    pub files: BTreeMap<String, Vec<u8>>,
    pub dirs: Vec<String>,
}

/// Which names a listing uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Names {
    RockRidge,
    Joliet,
    Primary,
}

struct Rec {
    extent: u32,
    size: u32,
    is_dir: bool,
    ident: Vec<u8>,
    su: Vec<u8>,
}

fn slice(img: &[u8], at: usize, len: usize) -> Result<&[u8], ReadError> {
    img.get(at..at.saturating_add(len))
        .ok_or(ReadError::Corrupt(
            "an extent points past the end of the image",
        ))
}

fn parse_record(r: &[u8]) -> Option<Rec> {
    let len = *r.first()? as usize;
    if len < 34 || r.len() < len {
        return None;
    }
    let nl = r[32] as usize;
    let ident = r.get(33..33 + nl)?.to_vec();
    let su_start = 33 + nl + (1 - nl % 2);
    Some(Rec {
        extent: u32::from_le_bytes(r[2..6].try_into().ok()?),
        size: u32::from_le_bytes(r[10..14].try_into().ok()?),
        is_dir: r[25] & 0x02 != 0,
        ident,
        su: r.get(su_start..len).unwrap_or_default().to_vec(),
    })
}

fn records(img: &[u8], extent: u32, size: u32) -> Result<Vec<Rec>, ReadError> {
    let dir = slice(img, extent as usize * BLOCK, size as usize)?;
    let mut out = Vec::new();
    let mut i = 0;
    while i < dir.len() {
        if dir[i] == 0 {
            i = (i / BLOCK + 1) * BLOCK;
            continue;
        }
        let rec =
            parse_record(&dir[i..]).ok_or(ReadError::Corrupt("a directory record is malformed"))?;
        i += dir[i] as usize;
        out.push(rec);
    }
    Ok(out)
}

/// SUSP entries of a record, following `CE` continuations (bounded).
fn susp_entries(img: &[u8], su: &[u8]) -> Vec<([u8; 2], Vec<u8>)> {
    let mut out = Vec::new();
    let mut area = su.to_vec();
    for _ in 0..16 {
        let mut next = None;
        let mut i = 0;
        while i + 4 <= area.len() {
            let len = area[i + 2] as usize;
            if len < 4 || i + len > area.len() {
                break;
            }
            let sig = [area[i], area[i + 1]];
            let body = area[i + 4..i + len].to_vec();
            if &sig == b"CE" && body.len() >= 24 {
                let u = |o: usize| {
                    u32::from_le_bytes([body[o], body[o + 1], body[o + 2], body[o + 3]]) as usize
                };
                next = Some((u(0) * BLOCK + u(8), u(16)));
            }
            if &sig == b"ST" {
                break;
            }
            out.push((sig, body));
            i += len;
        }
        match next.and_then(|(at, len)| img.get(at..at + len)) {
            Some(cont) => area = cont.to_vec(),
            None => break,
        }
    }
    out
}

fn rr_name(img: &[u8], su: &[u8]) -> Option<String> {
    let mut name = Vec::new();
    let mut found = false;
    for (sig, body) in susp_entries(img, su) {
        if &sig == b"NM" && !body.is_empty() {
            found = true;
            name.extend_from_slice(&body[1..]);
        }
    }
    found.then(|| String::from_utf8_lossy(&name).into_owned())
}

fn primary_name(ident: &[u8]) -> String {
    let s = String::from_utf8_lossy(ident);
    let s = s.strip_suffix(";1").unwrap_or(&s);
    s.strip_suffix('.').unwrap_or(s).to_owned()
}

fn joliet_name(ident: &[u8]) -> String {
    let units: Vec<u16> = ident
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect();
    let s = String::from_utf16_lossy(&units);
    s.strip_suffix(";1").unwrap_or(&s).to_owned()
}

fn text(b: &[u8], ucs2: bool) -> String {
    if ucs2 {
        joliet_name(b).trim_end().to_owned()
    } else {
        String::from_utf8_lossy(b).trim_end().to_owned()
    }
}

/// Reads the descriptors: the primary's fields, and whether Rock Ridge and a Joliet
/// volume are present. Returns the roots (extent, size) of the primary and Joliet.
pub fn info(img: &[u8]) -> Result<(IsoInfo, Extent, Option<Extent>), ReadError> {
    let mut primary = None;
    let mut joliet = None;
    for n in 16..16 + 64 {
        let d = slice(img, n * BLOCK, BLOCK).map_err(|_| ReadError::NotIso)?;
        if &d[1..6] != b"CD001" {
            return Err(ReadError::NotIso);
        }
        let root = || {
            parse_record(&d[156..190])
                .map(|r| (r.extent, r.size))
                .ok_or(ReadError::Corrupt("a root directory record is malformed"))
        };
        match d[0] {
            1 if primary.is_none() => primary = Some((d.to_vec(), root()?)),
            2 if &d[88..90] == b"%/" && matches!(d[90], b'@' | b'C' | b'E') => {
                joliet = Some(root()?)
            }
            255 => break,
            _ => {}
        }
    }
    let (pvd, root) = primary.ok_or(ReadError::NotIso)?;
    let dot = records(img, root.0, root.1)?;
    let rock_ridge = dot.first().is_some_and(|r| r.su.starts_with(b"SP"));
    let info = IsoInfo {
        volume_id: text(&pvd[40..72], false),
        publisher: text(&pvd[318..446], false),
        blocks: u32::from_le_bytes([pvd[80], pvd[81], pvd[82], pvd[83]]),
        rock_ridge,
        joliet: joliet.is_some(),
    };
    Ok((info, root, joliet))
}

/// Every file by path, and every directory, using the best names available.
pub fn read(img: &[u8], limits: &Limits) -> Result<IsoTree, ReadError> {
    let (info, root, joliet) = info(img)?;
    let (names, start) = match (info.rock_ridge, joliet) {
        (true, _) => (Names::RockRidge, root),
        (false, Some(j)) => (Names::Joliet, j),
        (false, None) => (Names::Primary, root),
    };
    let mut files = BTreeMap::new();
    let mut dirs = Vec::new();
    let mut seen = BTreeSet::new();
    let mut stack = vec![(String::new(), start, 0usize)];
    let mut total = 0u64;
    while let Some((path, (extent, size), depth)) = stack.pop() {
        if !seen.insert(extent) || depth > limits.max_depth {
            return Err(ReadError::Corrupt("directories loop or nest too deep"));
        }
        for rec in records(img, extent, size)?.into_iter().skip(2) {
            let name = match names {
                Names::RockRidge => {
                    rr_name(img, &rec.su).unwrap_or_else(|| primary_name(&rec.ident))
                }
                Names::Joliet => joliet_name(&rec.ident),
                Names::Primary => primary_name(&rec.ident),
            };
            let full = if path.is_empty() {
                name
            } else {
                format!("{path}/{name}")
            };
            if files.len() + dirs.len() >= limits.max_entries {
                return Err(ReadError::TooMany(limits.max_entries));
            }
            if rec.is_dir {
                dirs.push(full.clone());
                stack.push((full, (rec.extent, rec.size), depth + 1));
            } else {
                total += u64::from(rec.size);
                if total > limits.max_bytes {
                    return Err(ReadError::TooLarge(limits.max_bytes));
                }
                let data = if rec.size == 0 {
                    &[][..]
                } else {
                    slice(img, rec.extent as usize * BLOCK, rec.size as usize)?
                };
                files.insert(full, data.to_vec());
            }
        }
    }
    dirs.sort();
    Ok(IsoTree {
        info,
        names,
        files,
        dirs,
    })
}
