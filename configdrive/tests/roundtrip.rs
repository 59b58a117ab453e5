//! Property: any valid tree written by either writer reads back identically
//! (names through Rock Ridge or VFAT long names, contents byte for byte), and
//! writing is deterministic.

#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use compute::metadata::DriveTree;
use configdrive::read::Limits;
use configdrive::{DriveOptions, FatImage, IsoWriter, ReadDrive};
use proptest::prelude::*;

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
}
