//! Debian's own cloud-init (22.4) in a real guest that it takes for an EC2 instance:
//! SMBIOS as on EC2 (manufacturer `Amazon EC2`, system uuid and serial starting with
//! `ec2`, which is what cloud-init's `identify_aws` and ds-identify look at), no drive,
//! our metadata server at 169.254.169.254 and [fd00:ec2::254] with tokens required.
//!
//! cloud-init must pick the 2021-03-23 API, take the NIC's configuration from
//! `network/interfaces/macs` (DHCP on the NIC with the instance's MAC), install the
//! key, run the user data, log no warning from its EC2 code and make no request that
//! answers 404. A second guest boots at the same time from the same instance on the
//! OpenStack datasource (SMBIOS `OpenStack Nova`), and both times to cloud-init's final
//! stage are printed (`MEASURE` lines; compared, not asserted: a test never times).
//! Needs root; the image is [`e2e::debian_image`]'s, cached.

use base64::Engine;
use e2e::debian_guest::{cloud_init_finished, DebianGuest, Smbios};
use e2e::debian_image::{self, DEFAULT_USER};
use e2e::hostguest::metadata_server;
use e2e::netns::{MetadataServer, Netns};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A safeguard against a hung guest, not a speed assertion (TCG on a busy host).
const PATIENCE: Duration = Duration::from_secs(900);
const SSH_PATIENCE: Duration = Duration::from_secs(180);
const MARKER: &str = "/var/tmp/e2e-user-data";
/// QEMU's default MAC for the first NIC, and what its DHCP server hands out.
const GUEST_MAC: &str = "52:54:00:12:34:56";
const GUEST_IP: &str = "10.0.2.15";
/// A system uuid cloud-init reads as EC2's (`ec2` first), and the OpenStack twin's.
const AWS_UUID: &str = "ec2d7c41-0e5a-4d8f-b3c6-2a1e8f7d6c05";
const NOVA_UUID: &str = "5e2d7c41-0e5a-4d8f-b3c6-2a1e8f7d6c05";

fn aws_smbios(uuid: &str) -> Smbios {
    Smbios {
        manufacturer: "Amazon EC2".into(),
        product: "m1.small".into(),
        serial: uuid.into(),
        uuid: uuid.into(),
        family: "Virtual Machine".into(),
    }
}

fn keypair(dir: &Path) -> (PathBuf, String) {
    let key = dir.join("id_ed25519");
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "e2e@aws", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen not found: install it with 'apt-get install openssh-client'");
    assert!(status.success(), "ssh-keygen failed");
    let public = std::fs::read_to_string(key.with_extension("pub")).expect("public key");
    (key, public.trim_end().to_owned())
}

/// The instance: one NIC with QEMU's MAC on a DHCP network, its address known.
fn document(uuid: &str, name: &str, public_key: &str) -> serde_json::Value {
    let user_data = format!("#!/bin/sh\necho \"user data ran on $(hostname)\" > {MARKER}\n");
    serde_json::json!({
        "uuid": uuid,
        "name": name,
        "availability_zone": "us-east-1a",
        "keys": [{"name": "ops", "type": "ssh", "data": public_key}],
        "user_data": base64::engine::general_purpose::STANDARD.encode(user_data),
        "network": {
            "links": [{"id": "tap0", "type": "ovs", "mtu": 1500, "ethernet_mac_address": GUEST_MAC}],
            "networks": [{"id": "network0", "type": "ipv4_dhcp", "link": "tap0",
                          "ip_address": GUEST_IP, "netmask": "255.255.255.0"}],
            "services": []
        }
    })
}

/// A guest, its namespace and its metadata server (listening on the namespace's
/// 169.254.169.254 and [fd00:ec2::254], bound to the instance).
struct Booted {
    guest: DebianGuest,
    server: MetadataServer,
    _netns: Netns,
}

fn boot(dir: &Path, tag: &str, doc: &serde_json::Value, smbios: Smbios, extra: &[&str]) -> Booted {
    let uuid = doc["uuid"].as_str().expect("uuid");
    let dir = dir.join(tag);
    std::fs::create_dir_all(&dir).expect("dir");
    let instances = dir.join("instances.json");
    std::fs::write(&instances, doc.to_string()).expect("instance document");
    let netns = Netns::create(tag);
    netns.add_loopback_address("169.254.169.254/32");
    netns.add_loopback_address("fd00:ec2::254/128");
    let mut args: Vec<String> = vec![
        "--instances".into(),
        instances.display().to_string(),
        "--instance-listener".into(),
        format!("169.254.169.254:80={uuid}"),
        "--instance-listener".into(),
        format!("[fd00:ec2::254]:80={uuid}"),
        "--password-dir".into(),
        dir.join("passwords").display().to_string(),
        "--data-dir".into(),
        dir.join("data").display().to_string(),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let server = MetadataServer::serve(&netns, &metadata_server(), &dir, &args);
    let guest = DebianGuest::boot(&netns, &dir, image(), tag, None, Some(smbios));
    Booted {
        guest,
        server,
        _netns: netns,
    }
}

fn image() -> &'static debian_image::DebianImage {
    static IMAGE: std::sync::OnceLock<debian_image::DebianImage> = std::sync::OnceLock::new();
    IMAGE.get_or_init(|| debian_image::image().unwrap_or_else(|e| panic!("{e}")))
}

/// What the guest says about itself, one `key=value` a line.
const REPORT: &str = r#"echo "user=$(id -un)"
echo "hostname=$(hostname)"
echo "instance=$(cat /var/lib/cloud/data/instance-id)"
echo "marker=$(cat /var/tmp/e2e-user-data)"
cloud-init status --wait >/dev/null 2>&1
echo "status=$(cloud-init status | sed 's/^status: //')"
echo "platform=$(sudo -n cloud-init query platform)"
echo "cloud=$(sudo -n cloud-init query cloud_name)"
echo "api=$(sudo -n cloud-init query ds._metadata_api_version)"
echo "region=$(sudo -n cloud-init query region)"
echo "mac_of_nic=$(cat /sys/class/net/$(ip -o -4 addr show scope global | awk '{print $2; exit}')/address)"
ip -4 -o addr show scope global | sed 's/^/addr=/'
sudo -n grep -h 'network config' /var/log/cloud-init.log | sed 's/^/netlog=/'
sudo -n grep -h ' WARNING' /var/log/cloud-init.log | sed 's/^/warning=/'
"#;

fn finish(b: &mut Booted, key: &Path, what: &str) -> (Duration, BTreeMap<String, Vec<String>>) {
    let log = || format!("--- metadata-server ---\n{}", b.server.log());
    if let Err(e) = b
        .guest
        .wait_for_console("cloud-init finished", cloud_init_finished, PATIENCE)
    {
        panic!("{what}: {e}\n{}", log());
    }
    let finished = b.guest.uptime();
    if let Err(e) = b.guest.wait_for_ssh(key, DEFAULT_USER, SSH_PATIENCE) {
        panic!(
            "{what}: cloud-init finished but ssh never let us in: {e}\n--- console ---\n{}\n{}",
            b.guest.console(),
            log()
        );
    }
    let r = b
        .guest
        .ssh(key, DEFAULT_USER, REPORT, Duration::from_secs(120));
    assert!(r.ok, "{what}: report over ssh failed: {}", r.stderr);
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in r.stdout.lines() {
        if let Some((k, v)) = line.split_once('=') {
            out.entry(k.to_owned()).or_default().push(v.to_owned());
        }
    }
    (finished, out)
}

fn one<'a>(r: &'a BTreeMap<String, Vec<String>>, k: &str) -> &'a str {
    match r.get(k).map(Vec::as_slice) {
        Some([v]) => v,
        other => panic!("{k}: {other:?} in {r:#?}"),
    }
}

/// Access-log lines of the server with this status.
fn answered(server: &MetadataServer, status: u16) -> Vec<String> {
    server
        .log()
        .lines()
        .filter(|l| l.contains(" access: ") && l.contains(&format!(" status={status} ")))
        .map(str::to_owned)
        .collect()
}

#[test]
fn cloud_init_takes_the_guest_for_ec2_and_reads_everything_from_us() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (key, public) = keypair(dir.path());
    let _ = image();
    let aws_doc = document(AWS_UUID, "Debian AWS", &public);
    let nova_doc = document(NOVA_UUID, "Debian Nova", &public);
    let mut aws = boot(
        dir.path(),
        "aws",
        &aws_doc,
        aws_smbios(AWS_UUID),
        &["--tokens", "required"],
    );
    let mut nova = boot(dir.path(), "nova", &nova_doc, Smbios::nova(NOVA_UUID), &[]);

    let (aws_final, r) = finish(&mut aws, &key, "the EC2 guest");
    let (nova_final, n) = finish(&mut nova, &key, "the OpenStack guest");
    eprintln!(
        "MEASURE debian guest to cloud-init final: EC2 datasource {:.0}s, OpenStack datasource {:.0}s, ratio {:.2}",
        aws_final.as_secs_f64(),
        nova_final.as_secs_f64(),
        aws_final.as_secs_f64() / nova_final.as_secs_f64()
    );

    let context = format!("{r:#?}\n--- metadata-server ---\n{}", aws.server.log());
    assert_eq!(one(&r, "user"), DEFAULT_USER, "{context}");
    assert_eq!(one(&r, "instance"), "i-ec2d7c41", "{context}");
    assert_eq!(one(&r, "hostname"), "debian-aws", "{context}");
    assert_eq!(one(&r, "status"), "done", "{context}");
    assert_eq!(one(&r, "platform"), "ec2", "{context}");
    assert_eq!(one(&r, "cloud"), "aws", "{context}");
    assert_eq!(one(&r, "api"), "2021-03-23", "{context}");
    assert_eq!(one(&r, "region"), "us-east-1", "{context}");
    assert_eq!(
        one(&r, "marker"),
        "user data ran on debian-aws",
        "{context}"
    );
    // The NIC with the instance's MAC is up on DHCP, as network/interfaces/macs said
    // (cloud-init logs where its network configuration came from).
    assert_eq!(one(&r, "mac_of_nic"), GUEST_MAC, "{context}");
    assert!(
        one(&r, "addr").contains(&format!(" {GUEST_IP}/24 ")),
        "{context}"
    );
    let netlog = r.get("netlog").cloned().unwrap_or_default();
    assert!(
        netlog
            .iter()
            .any(|l| l.contains("network config is from ds")
                || l.contains("Applying network configuration from ds")),
        "network configuration from the datasource: {context}"
    );
    let ec2_warnings: Vec<&String> = r
        .get("warning")
        .into_iter()
        .flatten()
        .filter(|l| {
            [
                "DataSourceEc2",
                "ec2_utils",
                "helpers/ec2",
                "url_helper",
                "etadata",
            ]
            .iter()
            .any(|m| l.contains(m))
        })
        .collect();
    assert!(
        ec2_warnings.is_empty(),
        "warnings: {ec2_warnings:#?}\n{context}"
    );
    assert_eq!(
        answered(&aws.server, 404),
        Vec::<String>::new(),
        "{context}"
    );
    assert_eq!(
        answered(&aws.server, 401),
        Vec::<String>::new(),
        "every request carried a token: {context}"
    );
    assert!(
        answered(&aws.server, 200)
            .iter()
            .any(|l| l.contains("path=/ec2/2021-03-23/dynamic/instance-identity/document")),
        "{context}"
    );

    // The twin on the OpenStack datasource came up too (the time comparison's base).
    assert_eq!(one(&n, "status"), "done", "{n:#?}");
    assert_eq!(one(&n, "platform"), "openstack", "{n:#?}");
    assert_eq!(one(&n, "marker"), "user data ran on debian-nova", "{n:#?}");
}
