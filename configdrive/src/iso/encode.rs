//! Byte-level encodings of ECMA-119: both-endian numbers, the two date forms,
//! directory records, path table records and volume descriptors.

use time::PrimitiveDateTime;

pub const BLOCK: usize = 2048;

pub fn both16(v: u16) -> [u8; 4] {
    let (l, b) = (v.to_le_bytes(), v.to_be_bytes());
    [l[0], l[1], b[0], b[1]]
}

pub fn both32(v: u32) -> [u8; 8] {
    let (l, b) = (v.to_le_bytes(), v.to_be_bytes());
    [l[0], l[1], l[2], l[3], b[0], b[1], b[2], b[3]]
}

/// The 7-byte date of directory records and `TF` entries, in UTC.
pub fn dir_date(t: PrimitiveDateTime) -> [u8; 7] {
    [
        (t.year() - 1900).clamp(0, 255) as u8,
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        0,
    ]
}

/// The 17-byte date of volume descriptors (`YYYYMMDDHHMMSScc` and a zone byte).
pub fn volume_date(t: Option<PrimitiveDateTime>) -> [u8; 17] {
    let mut out = [b'0'; 17];
    out[16] = 0;
    if let Some(t) = t {
        let s = format!(
            "{:04}{:02}{:02}{:02}{:02}{:02}00",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        );
        out[..16].copy_from_slice(&s.as_bytes()[..16]);
    }
    out
}

/// The fixed part of a directory record plus its identifier and system-use bytes.
pub struct Record<'a> {
    pub extent: u32,
    pub size: u32,
    pub is_dir: bool,
    pub date: [u8; 7],
    pub ident: &'a [u8],
    pub system_use: &'a [u8],
}

/// Length of a record with this identifier and this much system use (always even).
pub fn record_len(ident_len: usize, su_len: usize) -> usize {
    33 + ident_len + (1 - ident_len % 2) + su_len
}

impl Record<'_> {
    pub fn write(&self, out: &mut Vec<u8>) {
        let len = record_len(self.ident.len(), self.system_use.len());
        out.push(len as u8);
        out.push(0);
        out.extend_from_slice(&both32(self.extent));
        out.extend_from_slice(&both32(self.size));
        out.extend_from_slice(&self.date);
        out.push(if self.is_dir { 0x02 } else { 0x00 });
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&both16(1));
        out.push(self.ident.len() as u8);
        out.extend_from_slice(self.ident);
        if self.ident.len() % 2 == 0 {
            out.push(0);
        }
        out.extend_from_slice(self.system_use);
    }
}

/// One path table record, little- (`L`) or big-endian (`M`).
pub fn path_record(out: &mut Vec<u8>, ident: &[u8], extent: u32, parent: u16, big_endian: bool) {
    out.push(ident.len() as u8);
    out.push(0);
    if big_endian {
        out.extend_from_slice(&extent.to_be_bytes());
        out.extend_from_slice(&parent.to_be_bytes());
    } else {
        out.extend_from_slice(&extent.to_le_bytes());
        out.extend_from_slice(&parent.to_le_bytes());
    }
    out.extend_from_slice(ident);
    if ident.len() % 2 == 1 {
        out.push(0);
    }
}

/// Text fields of a volume descriptor, already in the descriptor's character set.
pub struct Descriptor<'a> {
    /// 1 for the primary, 2 for the Joliet supplementary descriptor.
    pub kind: u8,
    pub system_id: &'a [u8],
    pub volume_id: &'a [u8],
    pub publisher: &'a [u8],
    pub application: &'a [u8],
    pub volume_blocks: u32,
    pub path_table_len: u32,
    pub l_table: u32,
    pub m_table: u32,
    pub root: &'a [u8],
    pub date: PrimitiveDateTime,
    /// Padding for text fields: a space in the descriptor's encoding.
    pub pad: &'a [u8],
}

fn field(out: &mut [u8], text: &[u8], pad: &[u8]) {
    for (i, b) in out.iter_mut().enumerate() {
        *b = if i < text.len() {
            text[i]
        } else {
            pad[i % pad.len()]
        };
    }
}

impl Descriptor<'_> {
    pub fn write(&self) -> [u8; BLOCK] {
        let mut d = [0u8; BLOCK];
        d[0] = self.kind;
        d[1..6].copy_from_slice(b"CD001");
        d[6] = 1;
        field(&mut d[8..40], self.system_id, self.pad);
        field(&mut d[40..72], self.volume_id, self.pad);
        d[80..88].copy_from_slice(&both32(self.volume_blocks));
        if self.kind == 2 {
            d[88..91].copy_from_slice(b"%/E");
        }
        d[120..124].copy_from_slice(&both16(1));
        d[124..128].copy_from_slice(&both16(1));
        d[128..132].copy_from_slice(&both16(BLOCK as u16));
        d[132..140].copy_from_slice(&both32(self.path_table_len));
        d[140..144].copy_from_slice(&self.l_table.to_le_bytes());
        d[148..152].copy_from_slice(&self.m_table.to_be_bytes());
        d[156..190].copy_from_slice(self.root);
        field(&mut d[190..318], b"", self.pad);
        field(&mut d[318..446], self.publisher, self.pad);
        field(&mut d[446..574], b"", self.pad);
        field(&mut d[574..702], self.application, self.pad);
        field(&mut d[702..739], b"", self.pad);
        field(&mut d[739..776], b"", self.pad);
        field(&mut d[776..813], b"", self.pad);
        d[813..830].copy_from_slice(&volume_date(Some(self.date)));
        d[830..847].copy_from_slice(&volume_date(Some(self.date)));
        d[847..864].copy_from_slice(&volume_date(None));
        d[864..881].copy_from_slice(&volume_date(None));
        d[881] = 1;
        d
    }
}

/// The set terminator descriptor.
pub fn terminator() -> [u8; BLOCK] {
    let mut d = [0u8; BLOCK];
    d[0] = 255;
    d[1..6].copy_from_slice(b"CD001");
    d[6] = 1;
    d
}

/// UCS-2 big-endian text for Joliet descriptor fields.
pub fn ucs2(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(|u| u.to_be_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn dates() {
        let t = datetime!(2026-01-15 08:30:05);
        assert_eq!(dir_date(t), [126, 1, 15, 8, 30, 5, 0]);
        assert_eq!(&volume_date(Some(t))[..16], b"2026011508300500");
        assert_eq!(&volume_date(None)[..], b"0000000000000000\0");
    }

    #[test]
    fn records_are_even_and_padded() {
        let mut out = Vec::new();
        let r = Record {
            extent: 20,
            size: 2048,
            is_dir: true,
            date: [0; 7],
            ident: b"ec2",
            system_use: b"",
        };
        r.write(&mut out);
        assert_eq!(out.len(), 36);
        assert_eq!(out[0] as usize, out.len());
        assert_eq!(record_len(1, 0), 34);
    }
}
