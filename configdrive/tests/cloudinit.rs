//! cloud-init (Debian's, run by /usr/bin/python3) reads our drives: the config-2
//! drive of each format, extracted by an independent tool and by our `extract`,
//! through `ConfigDriveReader(dir).read_v2()` and `convert_net_json`; and the NoCloud
//! seed through `read_seeded` and the network state parser.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

fn python(script: &str, dir: &Path) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/py")
        .join(script);
    let out = stdout(Command::new("/usr/bin/python3").arg(script).arg(dir));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn assert_cloud_init_reads(dir: &Path) {
    let got = python("read_config_drive.py", dir);
    assert_eq!(got["version"], 2);
    assert_eq!(got["uuid"], UUID);
    assert_eq!(got["hostname"], "web-02.novalocal");
    assert_eq!(got["ec2_instance_id"], "i-2f1d4c3b");
    assert!(got["keys"]["ops"]
        .as_str()
        .unwrap()
        .starts_with("ssh-ed25519 AAAAC3"));
    assert!(got["keys"]["winkey"]
        .as_str()
        .unwrap()
        .contains("BEGIN CERTIFICATE"));
    assert_eq!(got["admin_pass"], "s3cr3t-Pa55");
    assert!(got["userdata"]
        .as_str()
        .unwrap()
        .starts_with("#cloud-config\nhostname: web-02"));
    assert_eq!(
        got["files"],
        json!({"/etc/motd": "Welcome to web-02\n", "/opt/app/config.ini": "[app]\nport = 8080\n"})
    );
    assert_eq!(got["vendordata"]["tier"], 3);
    let config = got["network"]["config"].as_array().unwrap();
    let eth0 = config.iter().find(|c| c["name"] == "eth0").unwrap();
    assert_eq!(eth0["mac_address"], "fa:16:3e:00:00:01");
    assert_eq!(eth0["mtu"], 1450);
    assert_eq!(eth0["subnets"][0]["address"], "10.0.0.5");
    assert_eq!(eth0["subnets"][0]["routes"][0]["gateway"], "10.0.0.1");
    assert_eq!(eth0["subnets"][1]["type"], "static6");
    let eth1 = config.iter().find(|c| c["name"] == "eth1").unwrap();
    assert_eq!(eth1["subnets"][0]["type"], "dhcp4");
    assert!(config
        .iter()
        .any(|c| c["type"] == "nameserver" && c["address"] == "10.0.0.2"));
}

fn extract_ours(image: &Path, dir: &Path) {
    run(cli().arg("extract").arg(image).arg(dir));
}

#[test]
fn cloud_init_reads_the_iso_drive() {
    let tmp = tempfile::tempdir().unwrap();
    let iso = build(tmp.path(), "iso9660", &[]);
    let by_xorriso = tmp.path().join("xorriso");
    run(Command::new("xorriso")
        .args(["-osirrox", "on", "-indev"])
        .arg(&iso)
        .args(["-extract", "/"])
        .arg(&by_xorriso));
    assert_cloud_init_reads(&by_xorriso);
    let by_us = tmp.path().join("ours");
    extract_ours(&iso, &by_us);
    assert_cloud_init_reads(&by_us);
}

#[test]
fn cloud_init_reads_the_vfat_drive() {
    let tmp = tempfile::tempdir().unwrap();
    let vfat = build(tmp.path(), "vfat", &[]);
    let by_mcopy = tmp.path().join("mcopy");
    std::fs::create_dir(&by_mcopy).unwrap();
    run(Command::new("mcopy")
        .env("MTOOLS_SKIP_CHECK", "1")
        .args(["-s", "-i"])
        .arg(&vfat)
        .args(["::/ec2", "::/openstack"])
        .arg(&by_mcopy));
    assert_cloud_init_reads(&by_mcopy);
    let by_us = tmp.path().join("ours");
    extract_ours(&vfat, &by_us);
    assert_cloud_init_reads(&by_us);
}

#[test]
fn cloud_init_reads_the_nocloud_seed() {
    let tmp = tempfile::tempdir().unwrap();
    let seed = tmp.path().join("seed.iso");
    run(cli()
        .args(["build", "--target", "nocloud", "--instance"])
        .arg(fixture("multinic.json"))
        .arg("-o")
        .arg(&seed));
    let dir = tmp.path().join("seed");
    run(Command::new("xorriso")
        .args(["-osirrox", "on", "-indev"])
        .arg(&seed)
        .args(["-extract", "/"])
        .arg(&dir));
    let got = python("read_nocloud.py", &dir);
    assert_eq!(
        got["metadata"],
        json!({"instance-id": UUID, "local-hostname": "web-02"})
    );
    assert!(got["userdata"]
        .as_str()
        .unwrap()
        .starts_with("#cloud-config"));
    let tap = &got["interfaces"]["tap1a2b3c4d-5e"];
    assert_eq!(tap["mac"], "fa:16:3e:00:00:01");
    assert_eq!(tap["addresses"], json!(["10.0.0.5", "2001:db8::5"]));
    assert_eq!(got["interfaces"]["interface1"]["dhcp"], json!(["dhcp4"]));
}
