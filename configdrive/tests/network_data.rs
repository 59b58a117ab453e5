//! `network_data.json` on drives, read by Debian's cloud-init (/usr/bin/python3).
//! An instance without a network gets a drive without the file (Nova writes `{}`,
//! which cloud-init turns into an empty network config that leaves every NIC down):
//! checked on both formats, as extracted by independent tools; `read_v2` still reads
//! the drive and the ConfigDrive datasource has no network config, so cloud-init
//! falls back to DHCP. A DHCP network's known address stays off the drive, as Nova
//! leaves it, while EC2 `local-ipv4` shows it.

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

const BASIC_UUID: &str = "d8e02d56-2648-49a3-bf97-6be8f1204f38";

fn build_from(dir: &Path, format: &str, args: &[&str]) -> std::path::PathBuf {
    let out = dir.join(format!("drive.{format}"));
    run(cli()
        .arg("build")
        .args(args)
        .args(["--format", format, "-o"])
        .arg(&out));
    out
}

fn extract_independently(image: &Path, format: &str, dir: &Path) {
    match format {
        "iso9660" => {
            run(Command::new("xorriso")
                .args(["-osirrox", "on", "-indev"])
                .arg(image)
                .args(["-extract", "/"])
                .arg(dir));
        }
        _ => {
            std::fs::create_dir(dir).unwrap();
            run(Command::new("mcopy")
                .env("MTOOLS_SKIP_CHECK", "1")
                .args(["-s", "-i"])
                .arg(image)
                .args(["::/ec2", "::/openstack"])
                .arg(dir));
        }
    }
}

fn cloud_init_network(dir: &Path) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/py/network_fallback.py");
    let out = stdout(Command::new("/usr/bin/python3").arg(script).arg(dir));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn no_network_data_below(dir: &Path) {
    let files = files_below(dir);
    assert!(
        files.contains_key("openstack/latest/meta_data.json"),
        "{:?}",
        files.keys()
    );
    let named: Vec<&String> = files
        .keys()
        .filter(|p| p.contains("network_data"))
        .collect();
    assert!(named.is_empty(), "{named:?}");
}

#[test]
fn a_document_without_network_gives_a_drive_without_network_data() {
    let basic = fixture("basic.json");
    let basic = basic.to_str().unwrap();
    for format in ["iso9660", "vfat"] {
        let tmp = tempfile::tempdir().unwrap();
        let image = build_from(tmp.path(), format, &["--instance", basic]);
        let dir = tmp.path().join("x");
        extract_independently(&image, format, &dir);
        no_network_data_below(&dir);
        // Exactly the renderer's drive tree, nothing more.
        let inst = compute::Instance::from_json(&std::fs::read(basic).unwrap()).unwrap();
        let want: Vec<String> = compute::render_drive(&inst, &compute::Settings::default())
            .into_keys()
            .collect();
        assert_eq!(files_below(&dir).into_keys().collect::<Vec<_>>(), want);

        let got = cloud_init_network(&dir);
        assert_eq!(got["uuid"], BASIC_UUID, "{format}");
        assert_eq!(got["read_v2_has_networkdata"], false, "{format}");
        assert_eq!(
            got["network_config"],
            Value::Null,
            "{format}: fallback to DHCP"
        );
        // What Nova's `{}` would have given: a config with nothing in it.
        assert_eq!(
            got["empty_document_config"],
            json!({"version": 1, "config": []})
        );
    }
}

#[test]
fn nova_boot_flags_without_network_data_give_no_network_data() {
    let tmp = tempfile::tempdir().unwrap();
    let image = build_from(tmp.path(), "iso9660", &["--uuid", UUID, "--name", "plain"]);
    let dir = tmp.path().join("x");
    run(cli().arg("extract").arg(&image).arg(&dir));
    no_network_data_below(&dir);
    let got = cloud_init_network(&dir);
    assert_eq!(got["uuid"], UUID);
    assert_eq!(got["network_config"], Value::Null);
}

#[test]
fn a_document_with_network_still_carries_it_for_cloud_init() {
    let tmp = tempfile::tempdir().unwrap();
    let image = build(tmp.path(), "iso9660", &[]);
    let dir = tmp.path().join("x");
    extract_independently(&image, "iso9660", &dir);
    assert_same_tree(&dir);
    let got = cloud_init_network(&dir);
    assert_eq!(got["read_v2_has_networkdata"], true);
    let config = got["network_config"]["config"].as_array().unwrap();
    assert!(
        config
            .iter()
            .any(|c| c["mac_address"] == "fa:16:3e:00:00:01"),
        "{config:?}"
    );
}

#[test]
fn build_help_says_what_happens_without_network_data() {
    let help = stdout(cli().args(["build", "--help"]));
    let flag = help
        .split("--network-data <FILE>")
        .nth(1)
        .unwrap_or_else(|| panic!("no --network-data in:\n{help}"));
    let text: String = flag.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        text.contains("Without it the drive has no network_data.json"),
        "{text}"
    );
}

/// A DHCP network that knows its address: the drive's network_data.json is Nova's
/// bytes for that port (the address left out), and cloud-init asks DHCP for IPv4 and
/// takes SLAAC for IPv6.
#[test]
fn a_dhcp_address_stays_off_the_drive_and_cloud_init_uses_dhcp() {
    let tmp = tempfile::tempdir().unwrap();
    let doc = fixture("dualstack.json");
    let image = build_from(
        tmp.path(),
        "iso9660",
        &["--instance", doc.to_str().unwrap()],
    );
    let dir = tmp.path().join("x");
    extract_independently(&image, "iso9660", &dir);
    let golden = std::fs::read(fixture("dualstack.network_data.json")).unwrap();
    let files = files_below(&dir);
    let on_drive: Vec<&String> = files
        .keys()
        .filter(|p| p.ends_with("network_data.json"))
        .collect();
    assert_eq!(
        on_drive.len(),
        8,
        "2015-10-15 and later, and latest: {on_drive:?}"
    );
    for p in on_drive {
        assert_eq!(files[p], golden, "{p}");
    }
    let ec2: Value = serde_json::from_slice(&files["ec2/latest/meta-data.json"]).unwrap();
    assert_eq!(ec2["local-ipv4"], "10.20.0.14");

    let got = cloud_init_network(&dir);
    assert_eq!(got["read_v2_has_networkdata"], true);
    let config = got["network_config"]["config"].as_array().unwrap();
    let eth0 = config.iter().find(|c| c["name"] == "eth0").unwrap();
    assert_eq!(eth0["mac_address"], "fa:16:3e:4c:2d:81");
    let types: Vec<&str> = eth0["subnets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["dhcp4", "ipv6_slaac"]);
    let dns: Vec<&Value> = config
        .iter()
        .filter(|c| c["type"] == "nameserver")
        .map(|c| &c["address"])
        .collect();
    assert_eq!(dns, [&json!("192.0.2.53"), &json!("2001:db8:53::53")]);
}
