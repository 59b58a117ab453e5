//! Debian's own cloud-init (22.4, bookworm) in a real guest, given an instance without
//! network data, must bring the guest up on DHCP: from a VFAT config drive made by our
//! `configdrive` (nova-boot-style flags only, no `--network-data`), and over HTTP from
//! our `metadata-server` for a guest whose SMBIOS says `OpenStack Nova` and that has no
//! drive. Nova writes `{}` as network_data.json there, and cloud-init then renders an
//! empty network configuration and leaves every NIC down; without the file (a drive
//! without it, a server answering 404) cloud-init falls back to DHCP on the first NIC.
//!
//! Each guest answers `ssh` with the instance's key as Debian's default user, and its
//! user data has run. The image ([`e2e::debian_image`]) is built once and cached under
//! the target folder; each guest boots an overlay of it inside a network namespace of
//! its own ([`e2e::debian_guest`]). Needs root.

use base64::Engine;
use compute_host::qemu::command::DriveMedium;
use e2e::debian_guest::{cloud_init_finished, configdrive, DebianGuest, Smbios};
use e2e::debian_image::{self, DEFAULT_USER};
use e2e::hostguest::metadata_server;
use e2e::netns::{MetadataServer, Netns};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A safeguard against a hung guest, not a speed assertion (TCG on a busy host).
const PATIENCE: Duration = Duration::from_secs(900);
/// How long sshd may take to accept the key once cloud-init has finished.
const SSH_PATIENCE: Duration = Duration::from_secs(180);
/// Where the user data leaves its mark.
const MARKER: &str = "/var/tmp/e2e-user-data";

fn user_data() -> String {
    format!("#!/bin/sh\necho \"user data ran as $(id -un) on $(hostname)\" > {MARKER}\n")
}

/// What the guest says about itself over SSH, one `key=value` a line.
const REPORT: &str = r#"echo "user=$(id -un)"
echo "sudo=$(sudo -n id -un)"
echo "hostname=$(hostname)"
echo "instance=$(cat /var/lib/cloud/data/instance-id)"
echo "marker=$(cat /var/tmp/e2e-user-data)"
cloud-init status --wait >/dev/null 2>&1
echo "status=$(cloud-init status | sed 's/^status: //')"
echo "datasource=$(sudo -n cloud-init query platform)/$(sudo -n cloud-init query subplatform)"
ip -4 -o addr show scope global | sed 's/^/addr=/'
sed -n 's/^iface \(.*\)$/iface=\1/p' /etc/network/interfaces.d/50-cloud-init
"#;

/// An ed25519 keypair in `dir`: the private key's path and the public key's line.
fn keypair(dir: &Path) -> (PathBuf, String) {
    let key = dir.join("id_ed25519");
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "e2e@debian", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen not found: install it with 'apt-get install openssh-client'");
    assert!(status.success(), "ssh-keygen failed");
    let public = std::fs::read_to_string(key.with_extension("pub")).expect("public key");
    (key, public.trim_end().to_owned())
}

/// Waits for cloud-init to finish and for SSH to take the key, then asks the guest
/// for [`REPORT`]. `context` is added to any failure (e.g. the server's log).
fn report(
    guest: &mut DebianGuest,
    key: &Path,
    context: &dyn Fn() -> String,
) -> BTreeMap<String, Vec<String>> {
    let fail = |why: String, guest: &DebianGuest| -> ! {
        panic!("{why}\n--- console ---\n{}\n{}", guest.console(), context())
    };
    if let Err(e) = guest.wait_for_console("cloud-init finished", cloud_init_finished, PATIENCE) {
        panic!("{e}\n{}", context());
    }
    let finished = guest.uptime();
    if let Err(e) = guest.wait_for_ssh(key, DEFAULT_USER, SSH_PATIENCE) {
        fail(
            format!("cloud-init finished, but the guest never let us in: {e}"),
            guest,
        );
    }
    eprintln!(
        "MEASURE debian guest: cloud-init finished {:.0}s after QEMU started, ssh answered at {:.0}s",
        finished.as_secs_f64(),
        guest.uptime().as_secs_f64()
    );
    let r = guest.ssh(key, DEFAULT_USER, REPORT, Duration::from_secs(120));
    if !r.ok {
        fail(format!("the report over ssh failed: {}", r.stderr), guest);
    }
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in r.stdout.lines() {
        if let Some((k, v)) = line.split_once('=') {
            out.entry(k.to_owned()).or_default().push(v.to_owned());
        }
    }
    out
}

/// What both tests expect of a guest that came up: the key let us in as Debian's
/// default user (who may sudo), cloud-init is done without errors for this instance,
/// the user data ran, and the first NIC got QEMU's DHCP address from cloud-init's
/// fallback configuration.
fn check(r: &BTreeMap<String, Vec<String>>, uuid: &str, hostname: &str, datasource: &str) {
    let one = |k: &str| -> &str {
        match r.get(k).map(Vec::as_slice) {
            Some([v]) => v,
            other => panic!("{k}: {other:?} in {r:#?}"),
        }
    };
    assert_eq!(one("user"), DEFAULT_USER, "{r:#?}");
    assert_eq!(one("sudo"), "root", "{r:#?}");
    assert_eq!(one("hostname"), hostname, "{r:#?}");
    assert_eq!(one("instance"), uuid, "{r:#?}");
    assert_eq!(one("status"), "done", "{r:#?}");
    assert_eq!(one("datasource"), datasource, "{r:#?}");
    assert_eq!(
        one("marker"),
        format!("user data ran as root on {hostname}"),
        "{r:#?}"
    );
    // "2: enp0s3    inet 10.0.2.15/24 brd 10.0.2.255 scope global dynamic enp0s3 ..."
    let addr: Vec<&str> = one("addr").split_whitespace().collect();
    let nic = addr.get(1).copied().unwrap_or_default();
    assert_eq!(
        addr.get(3).copied(),
        Some("10.0.2.15/24"),
        "QEMU's DHCP address on the NIC: {r:#?}"
    );
    assert_eq!(
        r.get("iface").cloned().unwrap_or_default(),
        ["lo inet loopback".to_owned(), format!("{nic} inet dhcp")],
        "cloud-init's fallback: DHCP on the first NIC: {r:#?}"
    );
}

#[test]
fn a_config_drive_without_network_data_brings_the_guest_up_on_dhcp() {
    let image = debian_image::image().unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().expect("tempdir");
    let (key, public) = keypair(dir.path());
    let uuid = "3f6a3a8e-4c1b-4f0e-9a52-1b7f3c2d9e01";
    std::fs::write(dir.path().join("id.pub"), &public).expect("key");
    std::fs::write(dir.path().join("user-data"), user_data()).expect("user data");
    let drive = dir.path().join("disk.config");
    let out = Command::new(configdrive())
        .current_dir(dir.path())
        .args(["build", "--uuid", uuid, "--name", "Debian Drive"])
        .args(["--key", "ops=id.pub", "--user-data", "user-data"])
        .args(["--format", "vfat", "-o"])
        .arg(&drive)
        .output()
        .expect("run configdrive");
    assert!(
        out.status.success(),
        "configdrive build: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let netns = Netns::create("drive");
    let mut guest = DebianGuest::boot(
        &netns,
        dir.path(),
        &image,
        "drive",
        Some((drive.clone(), DriveMedium::Disk)),
        None,
    );
    let network_data = || {
        let listing = Command::new(configdrive())
            .arg("inspect")
            .arg(&drive)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let files: Vec<&str> = listing
            .lines()
            .filter(|l| l.contains("network_data.json"))
            .collect();
        format!("--- network_data.json on the drive ---\n{files:#?}")
    };
    let r = report(&mut guest, &key, &network_data);
    check(
        &r,
        uuid,
        "debian-drive",
        "configdrive/config-disk (/dev/vdb)",
    );

    // Debian's cloud-init gives root the key too, but only to say whom to log in as.
    let root = guest.ssh(&key, "root", "id -un", Duration::from_secs(120));
    assert!(
        !root.ok
            && root
                .stdout
                .contains(&format!("Please login as the user \"{DEFAULT_USER}\"")),
        "root's key refers to {DEFAULT_USER}: {root:?}"
    );
}

#[test]
fn the_metadata_service_without_network_data_brings_the_guest_up_on_dhcp() {
    let image = debian_image::image().unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().expect("tempdir");
    let (key, public) = keypair(dir.path());
    let uuid = "9b2d7c41-0e5a-4d8f-b3c6-2a1e8f7d6c05";
    let b64 = base64::engine::general_purpose::STANDARD;
    let doc = serde_json::json!({
        "uuid": uuid,
        "name": "Debian HTTP",
        "keys": [{"name": "ops", "type": "ssh", "data": public}],
        "user_data": b64.encode(user_data()),
    });
    let instances = dir.path().join("instances.json");
    std::fs::write(&instances, doc.to_string()).expect("instance document");

    // 169.254.169.254 on the namespace's lo: slirp's outbound NAT connects the guest's
    // requests there, to a listener bound to this one instance.
    let netns = Netns::create("http");
    netns.add_loopback_address("169.254.169.254/32");
    let server = MetadataServer::serve(
        &netns,
        &metadata_server(),
        dir.path(),
        &[
            "--instances".into(),
            instances.display().to_string(),
            "--instance-listener".into(),
            format!("169.254.169.254:80={uuid}"),
            "--password-dir".into(),
            dir.path().join("passwords").display().to_string(),
            "--data-dir".into(),
            dir.path().join("data").display().to_string(),
        ],
    );
    let mut guest = DebianGuest::boot(
        &netns,
        dir.path(),
        &image,
        "http",
        None,
        Some(Smbios::nova(uuid)),
    );
    let server_log = || format!("--- metadata-server ---\n{}", server.log());
    let r = report(&mut guest, &key, &server_log);
    check(
        &r,
        uuid,
        "debian-http",
        "openstack/metadata (http://169.254.169.254)",
    );

    // cloud-init asked for network_data.json, as this instance, and was told there is
    // none.
    let log = server.log();
    let asked: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("network_data.json"))
        .collect();
    assert!(
        !asked.is_empty(),
        "cloud-init never asked for network_data.json:\n{log}"
    );
    assert!(
        asked
            .iter()
            .all(|l| l.contains(&format!("instance={uuid}")) && l.contains("status=404")),
        "every network_data.json answer is a 404 for this instance:\n{log}"
    );
}
