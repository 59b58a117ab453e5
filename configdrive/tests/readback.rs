//! Images read back with independent readers: the `iso9660` crate (primary tree)
//! and the `fatfs` crate (VFAT), plus reproducibility pinned by golden SHA-256s.

#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use common::*;
use compute::metadata::DriveTree;
use configdrive::{DriveOptions, FatError, FatImage, IsoWriter};
use iso9660::{DirectoryEntry, ISO9660};
use sha2::{Digest, Sha256};
use std::io::Read;

/// The fixture's `created_at`, 2026-01-15T08:30:00Z.
const CREATED_AT: i64 = 1_768_465_800;

/// Golden digests of the multinic fixture's drive, built by the CLI with default
/// settings. They change only when the renderer's output, the layout or the crate
/// version (in the ISO publisher field) changes; update them deliberately.
const GOLDEN_ISO_SHA256: &str = "08da27429e09eb53aa14a9be8d23076676826db41acdb054678ada6aee857bbb";
const GOLDEN_VFAT_SHA256: &str = "0826d87c7e99bc805ef87b1791e142825c837ac126a4375dd689c2effaa55019";

fn options() -> DriveOptions {
    DriveOptions::new("config-2", CREATED_AT, uuid::Uuid::parse_str(UUID).unwrap()).unwrap()
}

/// Primary-tree names of a drive path as the crate shows them: genisoimage's with
/// Nova's flags (lowercase kept, `-` as `_`), less the `;1` and the lone `.` that
/// the crate strips (`isoinfo -l` in tests/tools.rs sees the raw identifiers).
fn primary_path(path: &str) -> Vec<String> {
    path.split('/').map(|p| p.replace('-', "_")).collect()
}

#[test]
fn iso9660_crate_reads_every_file_under_its_primary_name() {
    let tree = expected_tree();
    let img = IsoWriter::new(options()).write(&tree).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.iso");
    std::fs::write(&path, &img).unwrap();
    let iso = ISO9660::new(std::fs::File::open(&path).unwrap()).unwrap();
    assert_eq!(iso.publisher_identifier(), "nova-rs configdrive 0.1.0");
    assert_eq!(iso.block_size(), 2048);
    for (p, want) in &tree {
        let mut entry = DirectoryEntry::Directory(iso.root.clone());
        for seg in primary_path(p) {
            let DirectoryEntry::Directory(d) = entry else {
                panic!("{p}: not a directory on the way")
            };
            let found = d
                .contents()
                .map(|e| e.unwrap())
                .find(|e| e.identifier() == seg);
            entry = found.unwrap_or_else(|| panic!("{p}: no primary entry `{seg}`"));
        }
        let DirectoryEntry::File(f) = entry else {
            panic!("{p} is not a file")
        };
        assert_eq!(f.version, 1, "{p}");
        let mut got = Vec::new();
        f.read().read_to_end(&mut got).unwrap();
        assert_eq!(&got[..], &want[..], "{p}");
    }
}

#[test]
fn fatfs_crate_reads_labels_long_names_and_contents() {
    let tree = expected_tree();
    let img = FatImage::new(options()).write(&tree).unwrap().to_vec();
    assert_eq!(img.len(), 64 * 1024 * 1024);
    let fs = fatfs::FileSystem::new(std::io::Cursor::new(img), fatfs::FsOptions::new()).unwrap();
    assert_eq!(fs.fat_type(), fatfs::FatType::Fat16);
    assert_eq!(fs.volume_label(), "config-2");
    assert_eq!(
        fs.read_volume_label_from_root_dir().unwrap().as_deref(),
        Some("config-2")
    );
    assert_eq!(fs.volume_id(), 0x2f1d_4c3b);
    for (p, want) in &tree {
        let mut f = fs
            .root_dir()
            .open_file(p)
            .unwrap_or_else(|e| panic!("{p}: {e}"));
        let mut got = Vec::new();
        f.read_to_end(&mut got).unwrap();
        assert_eq!(&got[..], &want[..], "{p}");
    }
    let names: Vec<String> = fs
        .root_dir()
        .open_dir("openstack/latest")
        .unwrap()
        .iter()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(names.contains(&"network_data.json".to_owned()), "{names:?}");
    let entry = fs
        .root_dir()
        .open_dir("ec2")
        .unwrap()
        .iter()
        .map(|e| e.unwrap())
        .find(|e| e.file_name() == "2009-04-04")
        .unwrap();
    assert_eq!(entry.short_file_name(), "2009-0~1");
    let m = entry.modified();
    assert_eq!(
        (
            m.date.year,
            m.date.month,
            m.date.day,
            m.time.hour,
            m.time.min
        ),
        (2026, 1, 15, 8, 30)
    );
}

#[test]
fn vfat_stays_sparse_and_bounded() {
    let img = FatImage::new(options()).write(&expected_tree()).unwrap();
    assert_eq!(img.len(), 64 * 1024 * 1024);
    assert!(
        img.stored_bytes() < 512 * 1024,
        "stored {} bytes",
        img.stored_bytes()
    );
}

#[test]
fn vfat_too_small_is_a_clear_error() {
    let mut tree = DriveTree::new();
    tree.insert("big".into(), Bytes::from(vec![1u8; 9 * 1024 * 1024]));
    let err = FatImage::new(options())
        .size(8 * 1024 * 1024)
        .unwrap()
        .write(&tree)
        .unwrap_err();
    assert!(matches!(err, FatError::DoesNotFit { .. }), "{err}");
    assert!(err.to_string().contains("--size"), "{err}");
    assert!(matches!(
        FatImage::new(options()).size(1000),
        Err(FatError::BadSize { .. })
    ));
}

#[test]
fn double_build_is_byte_identical_and_matches_the_golden_digest() {
    let dir = tempfile::tempdir().unwrap();
    for (format, golden) in [("iso9660", GOLDEN_ISO_SHA256), ("vfat", GOLDEN_VFAT_SHA256)] {
        let a = build(dir.path(), format, &[]);
        let first = std::fs::read(&a).unwrap();
        std::fs::remove_file(&a).unwrap();
        let b = build(dir.path(), format, &["--sha256"]);
        let second = std::fs::read(&b).unwrap();
        assert!(first == second, "{format}: two builds differ");
        assert_eq!(
            hex::encode(Sha256::digest(&second)),
            golden,
            "{format}: golden digest"
        );
    }
}

#[test]
fn library_and_cli_agree() {
    let dir = tempfile::tempdir().unwrap();
    let path = build(dir.path(), "iso9660", &[]);
    let lib = IsoWriter::new(options()).write(&expected_tree()).unwrap();
    assert!(std::fs::read(path).unwrap() == lib);
}
