//! Names of one entry in each tree of the ISO: the primary identifier as genisoimage
//! makes it with Nova's flags (`-l -allow-lowercase -allow-multidot -ldots`), and
//! the Joliet identifier. Rock Ridge carries the real name unchanged.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

/// genisoimage's `-l`: up to 31 characters before the `;1`.
const PRIMARY_MAX: usize = 31;

fn primary_char(c: char) -> u8 {
    if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
        c as u8
    } else {
        b'_'
    }
}

/// Splits at the last dot: `(base, Some(ext))`, or `(name, None)` without a dot.
fn split_ext(name: &[u8]) -> (&[u8], Option<&[u8]>) {
    match name.iter().rposition(|&b| b == b'.') {
        Some(i) => (&name[..i], Some(&name[i + 1..])),
        None => (name, None),
    }
}

/// The relaxed primary identifier of a file (`meta_data.json;1`, `user_data.;1`)
/// or directory (`2009_04_04`), cut to 31 characters keeping the extension.
/// `unique` makes a numbered variant (genisoimage's `000` style) for collisions.
pub fn primary(name: &str, is_dir: bool, unique: Option<u32>) -> Vec<u8> {
    let mapped: Vec<u8> = name.chars().map(primary_char).collect();
    let (base, ext) = if is_dir {
        (&mapped[..], None)
    } else {
        split_ext(&mapped)
    };
    let ext = ext.unwrap_or(b"");
    let ext = &ext[..ext.len().min(PRIMARY_MAX - 4)];
    let suffix = unique
        .map(|n| format!("{:03}", n % 1000))
        .unwrap_or_default();
    let room = if is_dir {
        PRIMARY_MAX
    } else {
        PRIMARY_MAX - 1 - ext.len()
    };
    let keep = base.len().min(room.saturating_sub(suffix.len()));
    let mut out = base[..keep].to_vec();
    out.extend_from_slice(suffix.as_bytes());
    if !is_dir {
        out.push(b'.');
        out.extend_from_slice(ext);
        out.extend_from_slice(b";1");
    }
    out
}

/// The Joliet identifier in UCS-2 big-endian: characters Joliet forbids and those
/// outside the BMP become `_`; a collision gets a numbered suffix.
pub fn joliet(name: &str, unique: Option<u32>) -> Vec<u8> {
    let mut units: Vec<u16> = name
        .chars()
        .map(|c| match c {
            '*' | '/' | ':' | ';' | '?' | '\\' => '_' as u16,
            c if (c as u32) > 0xFFFF => '_' as u16,
            c => c as u16,
        })
        .collect();
    if let Some(n) = unique {
        let suffix: Vec<u16> = format!("~{:03}", n % 1000).encode_utf16().collect();
        units.truncate(crate::tree::MAX_NAME_UTF16 - suffix.len());
        units.extend(suffix);
    }
    units.iter().flat_map(|u| u.to_be_bytes()).collect()
}

/// ECMA-119 9.3 order: by name, then by extension, shorter padded with spaces (which
/// sort below every allowed character, so a plain byte comparison of each part).
pub fn compare(a: &[u8], b: &[u8]) -> Ordering {
    let strip = |x: &[u8]| -> Vec<u8> {
        let end = x.iter().position(|&c| c == b';').unwrap_or(x.len());
        x[..end].to_vec()
    };
    let (a, b) = (strip(a), strip(b));
    let (ab, ae) = split_ext(&a);
    let (bb, be) = split_ext(&b);
    ab.cmp(bb)
        .then_with(|| ae.unwrap_or(b"").cmp(be.unwrap_or(b"")))
}

/// Joliet order: by UCS-2 code units.
pub fn compare_joliet(a: &[u8], b: &[u8]) -> Ordering {
    a.cmp(b)
}

/// Gives every name in one directory a distinct identifier: a name whose plain
/// identifier is shared gets the first free numbered variant. `make(name, dir, n)`
/// builds the identifier; `None` when a thousand variants are all taken.
pub fn unique_all<F>(names: &[(&str, bool)], make: F) -> Option<Vec<Vec<u8>>>
where
    F: Fn(&str, bool, Option<u32>) -> Vec<u8>,
{
    let plain: Vec<Vec<u8>> = names.iter().map(|(n, d)| make(n, *d, None)).collect();
    let mut counts = BTreeMap::new();
    for p in &plain {
        *counts.entry(p.clone()).or_insert(0u32) += 1;
    }
    let mut taken = BTreeSet::new();
    let mut out = Vec::with_capacity(names.len());
    for ((name, is_dir), p) in names.iter().zip(plain) {
        let id = if counts[&p] == 1 {
            p
        } else {
            (0..1000)
                .map(|n| make(name, *is_dir, Some(n)))
                .find(|c| !taken.contains(c) && !counts.contains_key(c))?
        };
        taken.insert(id.clone());
        out.push(id);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str, dir: bool) -> String {
        String::from_utf8(primary(name, dir, None)).unwrap()
    }

    #[test]
    fn genisoimage_relaxed_names() {
        assert_eq!(p("meta_data.json", false), "meta_data.json;1");
        assert_eq!(p("meta-data.json", false), "meta_data.json;1");
        assert_eq!(p("user_data", false), "user_data.;1");
        assert_eq!(p("2009-04-04", true), "2009_04_04");
        assert_eq!(p("0000", false), "0000.;1");
        assert_eq!(p("a.b.c", false), "a.b.c;1");
        assert_eq!(p(".hidden", false), ".hidden;1");
        assert_eq!(p("é x", false), "__x.;1");
    }

    #[test]
    fn long_names_keep_their_extension() {
        let name = format!("{}.json", "n".repeat(40));
        let id = p(&name, false);
        assert_eq!(id.len(), 31 + 2);
        assert!(id.ends_with(".json;1"));
        assert_eq!(p(&"d".repeat(40), true).len(), 31);
    }

    #[test]
    fn collisions_get_numbers() {
        let ids = unique_all(&[("a-b", false), ("a_b", false), ("c", true)], primary).unwrap();
        let ids: Vec<String> = ids
            .into_iter()
            .map(|i| String::from_utf8(i).unwrap())
            .collect();
        assert_eq!(ids, ["a_b000.;1", "a_b001.;1", "c"]);
    }

    #[test]
    fn ecma_order() {
        assert_eq!(compare(b"ab.;1", b"ab.c;1"), Ordering::Less);
        assert_eq!(compare(b"a.z;1", b"ab.a;1"), Ordering::Less);
        assert_eq!(compare(b"2009_04_04", b"latest"), Ordering::Less);
    }

    #[test]
    fn joliet_is_ucs2() {
        assert_eq!(joliet("a-b", None), vec![0, b'a', 0, b'-', 0, b'b']);
        assert_eq!(joliet("a:😀", None), vec![0, b'a', 0, b'_', 0, b'_']);
    }
}
