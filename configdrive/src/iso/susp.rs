//! System Use Sharing Protocol entries (IEEE P1281) and the Rock Ridge ones (P1282)
//! that a config drive needs: `SP`, `CE`, `ER`, `RR`, `PX`, `TF`, `NM`.
//! Entries are plain bytes here; where they go (record or continuation area) is the
//! writer's business.

use super::encode::{both32, dir_date};
use time::PrimitiveDateTime;

/// `st_mode` of files and directories on the drive, with their type bits.
pub const FILE_MODE: u32 = 0o100_444;
pub const DIR_MODE: u32 = 0o040_555;

/// Size of a `CE` entry, reserved in a record whose entries overflow.
pub const CE_LEN: usize = 28;

/// Rock Ridge's registered extension identifier (RRIP 1.10), as Linux, xorriso and
/// libarchive look it up.
const ER_ID: &[u8] = b"RRIP_1991A";
const ER_DESCRIPTOR: &[u8] =
    b"THE ROCK RIDGE INTERCHANGE PROTOCOL PROVIDES SUPPORT FOR POSIX FILE SYSTEM SEMANTICS";
const ER_SOURCE: &[u8] = b"SEE THE PUBLISHER IDENTIFIER IN THE PRIMARY VOLUME DESCRIPTOR";

fn entry(sig: &[u8; 2], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(sig);
    out.push((4 + body.len()) as u8);
    out.push(1);
    out.extend_from_slice(body);
    out
}

/// `SP`: marks the root's `.` record as using SUSP, no bytes skipped.
pub fn sp() -> Vec<u8> {
    entry(b"SP", &[0xBE, 0xEF, 0])
}

/// `RR` (RRIP 1.09 flags, still read by Linux and written by genisoimage): which
/// Rock Ridge entries this record carries. PX = 0x01, NM = 0x08, TF = 0x80.
pub fn rr(with_name: bool) -> Vec<u8> {
    entry(b"RR", &[if with_name { 0x89 } else { 0x81 }])
}

/// `PX`: mode, link count, owner 0:0 (RRIP 1.10 form, without the inode number).
pub fn px(mode: u32, nlink: u32) -> Vec<u8> {
    let mut body = Vec::with_capacity(32);
    body.extend_from_slice(&both32(mode));
    body.extend_from_slice(&both32(nlink));
    body.extend_from_slice(&both32(0));
    body.extend_from_slice(&both32(0));
    entry(b"PX", &body)
}

/// `TF`: modification, access and attribute-change times, short form.
pub fn tf(t: PrimitiveDateTime) -> Vec<u8> {
    let d = dir_date(t);
    let mut body = vec![0x0E];
    for _ in 0..3 {
        body.extend_from_slice(&d);
    }
    entry(b"TF", &body)
}

/// `NM`: the entry's real name. Names are at most 64 UTF-16 units, so at most 192
/// UTF-8 bytes, which always fits one entry.
pub fn nm(name: &str) -> Vec<u8> {
    let mut body = vec![0];
    body.extend_from_slice(name.as_bytes());
    entry(b"NM", &body)
}

/// `ER`: declares the Rock Ridge extension; lives in the root's continuation area.
pub fn er() -> Vec<u8> {
    let mut body = vec![
        ER_ID.len() as u8,
        ER_DESCRIPTOR.len() as u8,
        ER_SOURCE.len() as u8,
        1,
    ];
    body.extend_from_slice(ER_ID);
    body.extend_from_slice(ER_DESCRIPTOR);
    body.extend_from_slice(ER_SOURCE);
    entry(b"ER", &body)
}

/// `CE`: where the rest of a record's entries continue.
pub fn ce(block: u32, offset: u32, len: u32) -> Vec<u8> {
    let mut body = Vec::with_capacity(24);
    body.extend_from_slice(&both32(block));
    body.extend_from_slice(&both32(offset));
    body.extend_from_slice(&both32(len));
    entry(b"CE", &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_lengths_match_the_standard() {
        assert_eq!(sp().len(), 7);
        assert_eq!(rr(true).len(), 5);
        assert_eq!(px(FILE_MODE, 1).len(), 36);
        assert_eq!(ce(1, 2, 3).len(), CE_LEN);
        assert_eq!(nm("meta-data.json").len(), 5 + 14);
        assert!(er().len() < 255);
    }
}
