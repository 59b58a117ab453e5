//! The `configdrive` CLI end to end: the two ways to describe an instance, atomic
//! output, --force and --sha256, Ironic's encoding, inspect's checks (also on
//! genisoimage's drives) and extract.

#![allow(clippy::unwrap_used)]

mod common;

use base64::Engine;
use common::*;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::process::Command;

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn inspect_json(image: &Path) -> (bool, Value) {
    let out = cli()
        .args(["inspect", "--format", "json"])
        .arg(image)
        .output()
        .unwrap();
    (
        out.status.success(),
        serde_json::from_slice(&out.stdout).unwrap(),
    )
}

#[test]
fn never_overwrites_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("drive.iso");
    std::fs::write(&out, b"precious").unwrap();
    let r = cli()
        .args(["build", "--instance"])
        .arg(fixture("basic.json"))
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(!r.status.success());
    assert!(
        String::from_utf8_lossy(&r.stderr).contains("--force"),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    assert_eq!(std::fs::read(&out).unwrap(), b"precious");
    run(cli()
        .args(["build", "--force", "--instance"])
        .arg(fixture("basic.json"))
        .arg("-o")
        .arg(&out));
    assert_eq!(&std::fs::read(&out).unwrap()[32769..32774], b"CD001");
    assert_eq!(entries(dir.path()), ["drive.iso"]);
}

#[test]
fn bad_input_leaves_no_file_behind() {
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("bad.json");
    std::fs::write(&doc, br#"{"uuid": "nope", "name": "x", "hostnme": "typo"}"#).unwrap();
    let out = dir.path().join("drive.iso");
    let r = cli()
        .args(["build", "--instance"])
        .arg(&doc)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(!r.status.success());
    assert!(
        String::from_utf8_lossy(&r.stderr).contains("hostnme"),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );

    let big = dir.path().join("big");
    std::fs::write(&big, vec![7u8; 9 * 1024 * 1024]).unwrap();
    let r = cli()
        .args([
            "build", "--uuid", UUID, "--name", "vm", "--format", "vfat", "--size", "8388608",
            "--file",
        ])
        .arg(format!("/big={}", big.display()))
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(!r.status.success());
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(err.contains("choose a larger --size"), "{err}");
    assert_eq!(entries(dir.path()), ["bad.json", "big"]);
}

#[test]
fn sha256_flag_prints_the_file_digest() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("d.vfat");
    let printed = stdout(
        cli()
            .args(["build", "--format", "vfat", "--sha256", "--instance"])
            .arg(fixture("basic.json"))
            .arg("-o")
            .arg(&out),
    );
    let digest = hex::encode(Sha256::digest(std::fs::read(&out).unwrap()));
    assert_eq!(printed, format!("{digest}  {}\n", out.display()));
}

#[test]
fn nova_boot_flags_build_a_drive() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("k.pub");
    std::fs::write(&key, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl me@host\n").unwrap();
    let ud = dir.path().join("ud");
    std::fs::write(&ud, "#cloud-config\n").unwrap();
    let motd = dir.path().join("motd");
    std::fs::write(&motd, "hello\n").unwrap();
    let net = dir.path().join("net.json");
    let doc: Value =
        serde_json::from_slice(&std::fs::read(fixture("multinic.json")).unwrap()).unwrap();
    std::fs::write(&net, doc["network"].to_string()).unwrap();
    let out = dir.path().join("d.iso");
    run(cli()
        .args([
            "build",
            "--uuid",
            UUID,
            "--name",
            "Flag VM",
            "--meta",
            "role=web",
            "--admin-pass",
            "pw",
        ])
        .arg(format!("--key=mykey={}", key.display()))
        .arg("--user-data")
        .arg(&ud)
        .arg(format!("--file=/etc/motd={}", motd.display()))
        .arg("--network-data")
        .arg(&net)
        .arg("-o")
        .arg(&out));
    let x = dir.path().join("x");
    run(cli().arg("extract").arg(&out).arg(&x));
    let md: Value =
        serde_json::from_slice(&std::fs::read(x.join("openstack/latest/meta_data.json")).unwrap())
            .unwrap();
    assert_eq!(md["uuid"], UUID);
    assert_eq!(md["hostname"], "flag-vm.novalocal");
    assert_eq!(md["meta"]["role"], "web");
    assert_eq!(md["admin_pass"], "pw");
    assert!(md["public_keys"]["mykey"]
        .as_str()
        .unwrap()
        .ends_with("me@host"));
    assert_eq!(md["files"][0]["path"], "/etc/motd");
    assert_eq!(
        std::fs::read(x.join("openstack/content/0000")).unwrap(),
        b"hello\n"
    );
    assert_eq!(
        std::fs::read(x.join("openstack/latest/user_data")).unwrap(),
        b"#cloud-config\n"
    );
    assert!(x.join("openstack/latest/network_data.json").exists());
    let (ok, report) = inspect_json(&out);
    assert!(ok, "{report}");
}

#[test]
fn ironic_form_is_the_gzipped_iso_in_base64() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("d.iso");
    let enc = dir.path().join("d.b64");
    run(cli()
        .args(["build", "--instance"])
        .arg(fixture("multinic.json"))
        .arg("-o")
        .arg(&raw));
    run(cli()
        .args(["build", "--encoding", "ironic", "--instance"])
        .arg(fixture("multinic.json"))
        .arg("-o")
        .arg(&enc));
    let text = std::fs::read(&enc).unwrap();
    let gz = base64::engine::general_purpose::STANDARD
        .decode(&text)
        .unwrap();
    let iso = compute_io::gunzip::gunzip(&gz, 1 << 30).unwrap();
    assert!(iso == std::fs::read(&raw).unwrap());
}

#[test]
fn source_date_epoch_sets_every_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("d.iso");
    run(cli()
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .args(["build", "--instance"])
        .arg(fixture("multinic.json"))
        .arg("-o")
        .arg(&out));
    let l = stdout(Command::new("isoinfo").args(["-R", "-l", "-i"]).arg(&out));
    assert!(
        l.lines()
            .filter(|x| x.contains(" 0    0 "))
            .all(|x| x.contains("Nov 14 2023")),
        "{l}"
    );
}

#[test]
fn inspect_accepts_ours_and_genisoimage_drives_and_flags_bad_ones() {
    let dir = tempfile::tempdir().unwrap();
    let ours = build(dir.path(), "iso9660", &[]);
    let (ok, r) = inspect_json(&ours);
    assert!(ok, "{r}");
    assert_eq!(r["target"], "config-2");
    assert_eq!(r["rock_ridge"], true);
    assert_eq!(r["findings"], serde_json::json!([]));

    let tree = dir.path().join("tree");
    run(cli().arg("extract").arg(&ours).arg(&tree));
    let nova = dir.path().join("nova.iso");
    run(Command::new("genisoimage")
        .arg("-o")
        .arg(&nova)
        .args([
            "-ldots",
            "-allow-lowercase",
            "-allow-multidot",
            "-l",
            "-publisher",
            "OpenStack Nova 34.0.0",
            "-quiet",
            "-J",
            "-r",
            "-V",
            "config-2",
        ])
        .arg(&tree));
    let (ok, r) = inspect_json(&nova);
    assert!(ok, "{r}");
    assert_eq!(r["files"].as_array().unwrap().len(), 51);

    std::fs::remove_file(tree.join("ec2/latest/meta-data.json")).unwrap();
    std::fs::write(tree.join("openstack/latest/vendor_data.json"), "{not json").unwrap();
    let bad = dir.path().join("bad.iso");
    run(Command::new("genisoimage")
        .arg("-o")
        .arg(&bad)
        .args(["-quiet", "-J", "-V", "CONFIG-2"])
        .arg(&tree));
    let (ok, r) = inspect_json(&bad);
    assert!(!ok);
    let text = r["findings"].to_string();
    for want in [
        "ec2/latest/meta-data.json",
        "vendor_data.json` is not valid JSON",
        "no Rock Ridge",
        "label is `CONFIG-2`",
    ] {
        assert!(text.contains(want), "no finding about {want}: {text}");
    }
    // Without Rock Ridge the Joliet names are used.
    assert!(r["files"]
        .to_string()
        .contains("openstack/latest/meta_data.json"));
}

#[test]
fn extract_refuses_an_existing_folder() {
    let dir = tempfile::tempdir().unwrap();
    let img = build(dir.path(), "iso9660", &[]);
    let x = dir.path().join("x");
    std::fs::create_dir(&x).unwrap();
    let r = cli().arg("extract").arg(&img).arg(&x).output().unwrap();
    assert!(!r.status.success());
    run(cli().args(["extract", "--force"]).arg(&img).arg(&x));
    assert_same_tree(&x);
}
