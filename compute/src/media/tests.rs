//! The reader against small images made here: a hand-laid ISO9660 (plain names, a
//! subdirectory, a directory loop) and FAT volumes formatted by `fatfs`; and
//! corrupted or arbitrary bytes, which must give errors, never a panic or a hang.

use super::*;
use proptest::prelude::*;
use std::io::{Cursor, Write};

const BUDGET: u64 = 1 << 22;

fn record(sector: u32, size: u32, dir: bool, ident: &[u8]) -> Vec<u8> {
    let len = 33 + ident.len() + (ident.len() + 1) % 2;
    let mut r = vec![0u8; len];
    r[0] = len as u8;
    r[2..6].copy_from_slice(&sector.to_le_bytes());
    r[6..10].copy_from_slice(&sector.to_be_bytes());
    r[10..14].copy_from_slice(&size.to_le_bytes());
    r[14..18].copy_from_slice(&size.to_be_bytes());
    r[25] = if dir { 2 } else { 0 };
    r[28] = 1;
    r[32] = ident.len() as u8;
    r[33..33 + ident.len()].copy_from_slice(ident);
    r
}

fn put(img: &mut [u8], sector: usize, bytes: &[u8]) {
    img[sector * 2048..sector * 2048 + bytes.len()].copy_from_slice(bytes);
}

/// `HELLO.TXT` and `SUB/A.TXT`; with `looped`, `SUB/LOOP` points back at the root.
fn tiny_iso(looped: bool) -> Vec<u8> {
    let mut img = vec![0u8; 22 * 2048];
    let mut pvd = vec![0u8; 2048];
    pvd[0] = 1;
    pvd[1..6].copy_from_slice(b"CD001");
    pvd[6] = 1;
    pvd[40..72].copy_from_slice(format!("{:<32}", "config-2").as_bytes());
    pvd[80..84].copy_from_slice(&22u32.to_le_bytes());
    pvd[156..190].copy_from_slice(&record(18, 2048, true, &[0]));
    pvd[318..446].copy_from_slice(format!("{:<128}", "tests").as_bytes());
    put(&mut img, 16, &pvd);
    put(&mut img, 17, b"\xffCD001\x01");
    let root = [
        record(18, 2048, true, &[0]),
        record(18, 2048, true, &[1]),
        record(19, 5, false, b"HELLO.TXT;1"),
        record(20, 2048, true, b"SUB"),
    ]
    .concat();
    put(&mut img, 18, &root);
    put(&mut img, 19, b"hello");
    let mut sub = [
        record(20, 2048, true, &[0]),
        record(18, 2048, true, &[1]),
        record(21, 3, false, b"A.TXT;1"),
    ]
    .concat();
    if looped {
        sub.extend(record(18, 2048, true, b"LOOP"));
    }
    put(&mut img, 20, &sub);
    put(&mut img, 21, b"abc");
    img
}

fn open(bytes: Vec<u8>) -> Result<Medium<Cursor<Vec<u8>>>, MediaError> {
    Medium::open(Device::new(Cursor::new(bytes), BUDGET))
}

#[test]
fn a_plain_iso_reads_back_by_path_and_as_a_tree() {
    let mut m = open(tiny_iso(false)).expect("opens");
    assert_eq!(m.kind(), MediaKind::Iso9660);
    assert_eq!(m.label(), "config-2");
    let Medium::Iso(fs) = &m else { panic!("iso") };
    assert_eq!(fs.name_sets(), vec![NameSet::Plain]);
    assert_eq!(
        fs.info(),
        &IsoInfo {
            volume_id: "config-2".into(),
            publisher: "tests".into(),
            blocks: 22,
            rock_ridge: false,
            joliet: false,
        }
    );
    let hello = m.read_file("hello.txt", 10).expect("reads");
    assert_eq!(hello.as_deref(), Some(&b"hello"[..]));
    assert_eq!(
        m.read_file("SUB/A.TXT", 10).expect("reads").as_deref(),
        Some(&b"abc"[..])
    );
    assert!(m.read_file("SUB/B.TXT", 10).expect("reads").is_none());
    assert!(matches!(
        m.read_file("HELLO.TXT", 4),
        Err(MediaError::TooLarge {
            size: 5,
            limit: 4,
            ..
        })
    ));
    assert!(matches!(
        m.read_file("SUB", 4),
        Err(MediaError::NotAFile(_))
    ));
    let tree = m.tree(&Limits::default()).expect("walks");
    assert_eq!(tree.directories, vec!["SUB"]);
    let files: Vec<_> = tree.files.keys().map(String::as_str).collect();
    assert_eq!(files, ["HELLO.TXT", "SUB/A.TXT"]);
}

#[test]
fn a_directory_loop_is_an_error_in_a_walk_and_harmless_in_a_lookup() {
    let mut m = open(tiny_iso(true)).expect("opens");
    let err = m.tree(&Limits::default()).expect_err("loops");
    assert!(err.to_string().contains("loops back"), "{err}");
    let deep = "SUB/LOOP/SUB/LOOP/SUB/A.TXT";
    assert!(m.read_file(deep, 10).expect("reads").is_some());
}

#[test]
fn walks_are_bounded() {
    let mut m = open(tiny_iso(false)).expect("opens");
    let few = Limits {
        max_entries: 2,
        ..Limits::default()
    };
    assert!(matches!(m.tree(&few), Err(MediaError::TreeTooMany(2))));
    let small = Limits {
        max_bytes: 6,
        ..Limits::default()
    };
    assert!(matches!(m.tree(&small), Err(MediaError::TreeTooLarge(6))));
    let flat = Limits {
        max_depth: 0,
        ..Limits::default()
    };
    assert!(matches!(m.tree(&flat), Err(MediaError::TooDeep(0))));
}

use crate::error_chain as chain;

#[test]
fn a_truncated_iso_names_the_truncation() {
    let img = tiny_iso(false);
    let err = open(img[..17 * 2048 + 100].to_vec()).expect_err("cut");
    assert!(chain(&err).contains("truncated image"), "{err:?}");
    let mut m = open(img[..20 * 2048].to_vec()).expect("descriptors are whole");
    let err = m.read_file("SUB/A.TXT", 10).expect_err("cut");
    assert!(chain(&err).contains("truncated image"), "{err:?}");
    // Each layer says its part once.
    assert_eq!(chain(&err).matches("truncated image").count(), 1, "{err:?}");
}

#[test]
fn garbage_is_neither() {
    assert!(matches!(open(vec![0u8; 40000]), Err(MediaError::Unknown)));
    assert!(matches!(open(vec![0u8; 100]), Err(MediaError::Unknown)));
    let dev = Device::new(Cursor::new(vec![0u8; 100]), BUDGET);
    assert!(IsoFs::open(dev).is_err());
}

fn fat_image(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut disk = Cursor::new(vec![0u8; 2 * 1024 * 1024]);
    let opts = fatfs::FormatVolumeOptions::new().volume_label(*b"config-2   ");
    fatfs::format_volume(&mut disk, opts).expect("format");
    {
        let fs = fatfs::FileSystem::new(&mut disk, fatfs::FsOptions::new()).expect("fs");
        for (path, bytes) in files {
            let mut dir = fs.root_dir();
            let parts: Vec<&str> = path.split('/').collect();
            for part in &parts[..parts.len() - 1] {
                dir = dir.create_dir(part).expect("mkdir");
            }
            let mut f = dir.create_file(parts[parts.len() - 1]).expect("create");
            f.write_all(bytes).expect("write");
        }
    }
    disk.into_inner()
}

#[test]
fn fat_reads_back_long_names_by_path_and_as_a_tree() {
    let files: &[(&str, &[u8])] = &[
        ("openstack/latest/meta_data.json", b"{\"uuid\": \"u\"}"),
        ("openstack/content/0000", b"x"),
        ("ec2/latest/meta-data.json", b"{}"),
    ];
    let mut m = open(fat_image(files)).expect("opens");
    assert_eq!(m.kind(), MediaKind::Fat);
    assert_eq!(m.label(), "config-2");
    for (path, bytes) in files {
        let got = m.read_file(path, 100).expect("reads");
        assert_eq!(got.as_deref(), Some(*bytes), "{path}");
        let upper = path.to_ascii_uppercase();
        assert!(m.read_file(&upper, 100).expect("reads").is_some());
    }
    assert!(matches!(
        m.read_file("openstack/latest/meta_data.json", 3),
        Err(MediaError::TooLarge { .. })
    ));
    let tree = m.tree(&Limits::default()).expect("walks");
    assert_eq!(
        tree.directories,
        [
            "ec2",
            "ec2/latest",
            "openstack",
            "openstack/content",
            "openstack/latest"
        ]
    );
    let want: BTreeMap<String, Vec<u8>> = files
        .iter()
        .map(|(p, b)| (p.to_string(), b.to_vec()))
        .collect();
    assert_eq!(tree.files, want);
}

fn exercise(bytes: Vec<u8>) {
    if let Ok(mut m) = open(bytes) {
        let _ = m.label();
        let _ = m.read_file("openstack/latest/meta_data.json", 1 << 20);
        let _ = m.read_file("SUB/A.TXT", 1 << 20);
        let _ = m.tree(&Limits::default());
        if let Medium::Iso(fs) = &mut m {
            for names in fs.name_sets() {
                let _ = fs.tree(names, &Limits::default());
            }
        }
    }
}

fn corrupt(mut img: Vec<u8>, edits: &[(usize, u8)], cut: Option<usize>) -> Vec<u8> {
    for (at, v) in edits {
        let i = at % img.len();
        img[i] = *v;
    }
    if let Some(c) = cut {
        img.truncate(c % (img.len() + 1));
    }
    img
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..4096), iso in any::<bool>()) {
        // Arbitrary bytes behind a real descriptor set or boot sector reach further in.
        let mut img = if iso { tiny_iso(false) } else { fat_image(&[]) };
        let at = if iso { 18 * 2048 } else { 512 };
        let n = bytes.len().min(img.len() - at);
        img[at..at + n].copy_from_slice(&bytes[..n]);
        exercise(img);
        exercise(bytes);
    }

    #[test]
    fn corrupted_iso_never_panics(edits in prop::collection::vec((16 * 2048usize..22 * 2048, any::<u8>()), 1..30), cut in prop::option::of(any::<usize>()), looped in any::<bool>()) {
        exercise(corrupt(tiny_iso(looped), &edits, cut));
    }

    #[test]
    fn corrupted_fat_never_panics(edits in prop::collection::vec((0usize..64 * 1024, any::<u8>()), 1..30), cut in prop::option::of(any::<usize>())) {
        let img = fat_image(&[("openstack/latest/meta_data.json", b"{}"), ("a/b/c", b"d")]);
        exercise(corrupt(img, &edits, cut));
    }
}
