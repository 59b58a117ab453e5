//! The images as real tools read them: isoinfo, xorriso, 7z, blkid, fsck.fat and
//! mtools. Each tool must be installed (scripts/packages.txt); a missing one fails.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::process::Command;

fn has_line(text: &str, needle: &str) -> bool {
    text.lines().any(|l| l.contains(needle))
}

#[test]
fn isoinfo_sees_volume_rock_ridge_and_joliet() {
    let dir = tempfile::tempdir().unwrap();
    let iso = build(dir.path(), "iso9660", &[]);
    let d = stdout(Command::new("isoinfo").arg("-d").arg("-i").arg(&iso));
    for want in [
        "Volume id: config-2",
        "Logical block size is: 2048",
        "Joliet with UCS level 3 found",
        "Rock Ridge signatures version 1 found",
        "Publisher id: nova-rs configdrive",
    ] {
        assert!(has_line(&d, want), "isoinfo -d lacks `{want}`:\n{d}");
    }

    let primary = stdout(Command::new("isoinfo").arg("-l").arg("-i").arg(&iso));
    for want in [
        "meta_data.json;1",
        "user_data.;1",
        "2009_04_04",
        "network_data.json;1",
        "0000.;1",
    ] {
        assert!(
            primary.contains(want),
            "isoinfo -l lacks `{want}`:\n{primary}"
        );
    }
    assert!(
        !primary.contains("META_DAT"),
        "uppercase 8.3 names:\n{primary}"
    );

    let rr = stdout(Command::new("isoinfo").args(["-R", "-l", "-i"]).arg(&iso));
    assert!(
        has_line(&rr, "Directory listing of /ec2/2009-04-04/"),
        "{rr}"
    );
    let file_line = rr
        .lines()
        .find(|l| l.ends_with(" meta-data.json "))
        .unwrap_or_else(|| panic!("{rr}"));
    assert!(
        file_line.starts_with("-r--r--r--   1    0    0"),
        "{file_line}"
    );
    let dir_line = rr.lines().find(|l| l.ends_with(" openstack ")).unwrap();
    assert!(
        dir_line.starts_with("dr-xr-xr-x  14    0    0"),
        "{dir_line}"
    );
    assert!(dir_line.contains("Jan 15 2026"), "{dir_line}");

    let joliet = stdout(Command::new("isoinfo").args(["-J", "-l", "-i"]).arg(&iso));
    assert!(
        has_line(&joliet, "Directory listing of /openstack/2015-10-15/"),
        "{joliet}"
    );
    assert!(joliet.contains(" vendor_data2.json "), "{joliet}");
    assert!(joliet.contains(" meta-data.json "), "{joliet}");

    let tree = expected_tree();
    for path in [
        "openstack/latest/meta_data.json",
        "ec2/latest/meta-data.json",
        "openstack/content/0001",
    ] {
        let out = run(Command::new("isoinfo")
            .args(["-R", "-i"])
            .arg(&iso)
            .args(["-x", &format!("/{path}")]));
        assert_eq!(&out.stdout[..], &tree[path][..], "{path}");
    }
}

#[test]
fn xorriso_finds_and_extracts_the_tree() {
    let dir = tempfile::tempdir().unwrap();
    let iso = build(dir.path(), "iso9660", &[]);
    let out = run(Command::new("xorriso")
        .arg("-indev")
        .arg(&iso)
        .args(["-find", "/", "-exec", "lsdl"]));
    let listing = String::from_utf8_lossy(&out.stdout);
    for path in expected_tree().keys() {
        let line = listing
            .lines()
            .find(|l| l.ends_with(&format!("'/{path}'")))
            .unwrap_or_else(|| panic!("no {path}:\n{listing}"));
        assert!(line.starts_with("-r--r--r--"), "{line}");
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("FAILURE") && !stderr.contains("SORRY"),
        "{stderr}"
    );
    let target = dir.path().join("x");
    run(Command::new("xorriso")
        .args(["-osirrox", "on", "-indev"])
        .arg(&iso)
        .args(["-extract", "/"])
        .arg(&target));
    assert_same_tree(&target);
}

#[test]
fn sevenzip_lists_and_extracts() {
    let dir = tempfile::tempdir().unwrap();
    let iso = build(dir.path(), "iso9660", &[]);
    let l = stdout(Command::new("7z").arg("l").arg(&iso));
    assert!(l.contains("openstack/latest/network_data.json"), "{l}");
    assert!(l.contains("51 files, 16 folders"), "{l}");
    let target = dir.path().join("x");
    run(Command::new("7z")
        .arg("x")
        .arg(format!("-o{}", target.display()))
        .arg(&iso));
    assert_same_tree(&target);
}

#[test]
fn blkid_reports_label_and_type_for_both_formats() {
    let dir = tempfile::tempdir().unwrap();
    let iso = build(dir.path(), "iso9660", &[]);
    let b = stdout(Command::new("blkid").arg("-p").arg(&iso));
    assert!(
        b.contains("LABEL=\"config-2\"") && b.contains("TYPE=\"iso9660\""),
        "{b}"
    );
    let vfat = build(dir.path(), "vfat", &[]);
    let b = stdout(Command::new("blkid").arg("-p").arg(&vfat));
    for want in [
        "LABEL=\"config-2\"",
        "LABEL_FATBOOT=\"config-2\"",
        "TYPE=\"vfat\"",
        "VERSION=\"FAT16\"",
        "UUID=\"2F1D-4C3B\"",
    ] {
        assert!(b.contains(want), "blkid lacks {want}: {b}");
    }
    let seed = dir.path().join("seed.iso");
    run(cli()
        .args(["build", "--target", "nocloud", "--instance"])
        .arg(fixture("basic.json"))
        .arg("-o")
        .arg(&seed));
    let b = stdout(Command::new("blkid").arg("-p").arg(&seed));
    assert!(b.contains("LABEL=\"cidata\""), "{b}");
}

#[test]
fn fsck_fat_finds_nothing_to_fix() {
    let dir = tempfile::tempdir().unwrap();
    let vfat = build(dir.path(), "vfat", &[]);
    let out = run(Command::new("fsck.fat").arg("-n").arg(&vfat));
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with("fsck.fat "))
        .collect();
    assert_eq!(lines.len(), 1, "fsck.fat reported problems:\n{text}");
    assert!(lines[0].contains("68 files"), "{text}");
}

#[test]
fn vfat_is_a_sparse_file() {
    let dir = tempfile::tempdir().unwrap();
    let vfat = build(dir.path(), "vfat", &[]);
    let meta = std::fs::metadata(&vfat).unwrap();
    assert_eq!(meta.len(), 64 * 1024 * 1024);
    let allocated = std::os::unix::fs::MetadataExt::blocks(&meta) * 512;
    assert!(
        allocated < 1024 * 1024,
        "{allocated} bytes allocated for a sparse 64 MiB image"
    );
}

#[test]
fn mtools_list_long_names_and_copy_out() {
    let dir = tempfile::tempdir().unwrap();
    let vfat = build(dir.path(), "vfat", &[]);
    let mdir = stdout(
        Command::new("mdir")
            .env("MTOOLS_SKIP_CHECK", "1")
            .arg("-i")
            .arg(&vfat)
            .arg("::/openstack/latest"),
    );
    assert!(mdir.contains("Volume in drive : is config-2"), "{mdir}");
    for name in [
        "meta_data.json",
        "network_data.json",
        "user_data",
        "vendor_data2.json",
    ] {
        assert!(
            mdir.lines().any(|l| l.ends_with(&format!(" {name}"))),
            "no long name {name}:\n{mdir}"
        );
    }
    let target = dir.path().join("x");
    std::fs::create_dir(&target).unwrap();
    run(Command::new("mcopy")
        .env("MTOOLS_SKIP_CHECK", "1")
        .args(["-s", "-i"])
        .arg(&vfat)
        .args(["::/ec2", "::/openstack"])
        .arg(&target));
    assert_same_tree(&target);
}
