//! Property: any valid tree written by either writer reads back identically
//! (names through Rock Ridge or VFAT long names, contents byte for byte), and
//! writing is deterministic. Also through `compute::media` directly, the reader the
//! guest agent and `inspect` share: every file by path (lazily, as the agent reads),
//! and the whole tree under every name set the volume carries (Rock Ridge and Joliet
//! on ISO, long names on FAT).

#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use compute::media::{Device, MediaKind, Medium, NameSet, DEFAULT_READ_BUDGET};
use compute::metadata::DriveTree;
use configdrive::read::Limits;
use configdrive::{DriveOptions, FatImage, IsoWriter, ReadDrive};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::io::Cursor;

fn options() -> DriveOptions {
    DriveOptions::new("config-2", 1_700_000_000, uuid::Uuid::nil()).unwrap()
}

fn trees() -> impl Strategy<Value = DriveTree> {
    let name = "[a-z0-9é_-][a-z0-9é._-]{0,40}[a-z0-9é_-]";
    let path = prop::collection::vec(name, 1..4).prop_map(|p| p.join("/"));
    let contents = prop::collection::vec(any::<u8>(), 0..5000).prop_map(Bytes::from);
    prop::collection::btree_map(path, contents, 1..30).prop_filter(
        "a path that is a file and a directory",
        |t| {
            !t.keys()
                .any(|a| t.keys().any(|b| b.starts_with(&format!("{a}/"))))
        },
    )
}

fn want(tree: &DriveTree) -> BTreeMap<String, Vec<u8>> {
    tree.iter().map(|(k, v)| (k.clone(), v.to_vec())).collect()
}

fn want_dirs(tree: &DriveTree) -> Vec<String> {
    let mut dirs: Vec<String> = tree
        .keys()
        .flat_map(|p| {
            let parts: Vec<&str> = p.split('/').collect();
            (1..parts.len()).map(move |n| parts[..n].join("/"))
        })
        .collect();
    dirs.sort();
    dirs.dedup();
    dirs
}

fn open(img: Vec<u8>) -> Medium<Cursor<Vec<u8>>> {
    Medium::open(Device::new(Cursor::new(img), DEFAULT_READ_BUDGET)).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn iso_round_trips(tree in trees()) {
        let img = IsoWriter::new(options()).write(&tree).unwrap();
        prop_assert_eq!(&img, &IsoWriter::new(options()).write(&tree).unwrap());
        let back = ReadDrive::from_bytes(&img, &Limits::default()).unwrap();
        let want: std::collections::BTreeMap<String, Vec<u8>> = tree.iter().map(|(k, v)| (k.clone(), v.to_vec())).collect();
        prop_assert_eq!(back.files, want);
    }

    #[test]
    fn vfat_round_trips(tree in trees()) {
        let img = FatImage::new(options()).size(8 * 1024 * 1024).unwrap().write(&tree).unwrap().to_vec();
        let back = ReadDrive::from_bytes(&img, &Limits::default()).unwrap();
        let want: std::collections::BTreeMap<String, Vec<u8>> = tree.iter().map(|(k, v)| (k.clone(), v.to_vec())).collect();
        prop_assert_eq!(back.files, want);
    }

    #[test]
    fn iso_reads_back_under_every_name_set(tree in trees()) {
        let mut m = open(IsoWriter::new(options()).write(&tree).unwrap());
        prop_assert_eq!(m.kind(), MediaKind::Iso9660);
        prop_assert_eq!(m.label(), "config-2");
        for (path, bytes) in &tree {
            let got = m.read_file(path, 1 << 20).unwrap();
            prop_assert_eq!(got.as_deref(), Some(&bytes[..]), "{}", path);
        }
        let Medium::Iso(fs) = &mut m else { unreachable!() };
        prop_assert!(fs.info().rock_ridge && fs.info().joliet);
        let sets = fs.name_sets();
        prop_assert!(matches!(sets[0], NameSet::RockRidge { .. }), "{:?}", sets);
        prop_assert_eq!(sets[1], NameSet::Joliet);
        for names in &sets[..2] {
            let back = fs.tree(*names, &Limits::default()).unwrap();
            prop_assert_eq!(&back.files, &want(&tree), "{:?}", names);
            prop_assert_eq!(&back.directories, &want_dirs(&tree), "{:?}", names);
        }
    }

    #[test]
    fn vfat_reads_back_by_path_and_as_a_tree(tree in trees()) {
        let img = FatImage::new(options()).size(8 * 1024 * 1024).unwrap().write(&tree).unwrap().to_vec();
        let mut m = open(img);
        prop_assert_eq!(m.kind(), MediaKind::Fat);
        prop_assert_eq!(m.label(), "config-2");
        for (path, bytes) in &tree {
            let got = m.read_file(path, 1 << 20).unwrap();
            prop_assert_eq!(got.as_deref(), Some(&bytes[..]), "{}", path);
        }
        let back = m.tree(&Limits::default()).unwrap();
        prop_assert_eq!(back.files, want(&tree));
        prop_assert_eq!(back.directories, want_dirs(&tree));
    }
}
