//! Servers driven by real, unmodified clients against `compute api` on a state
//! folder whose guests really boot (QEMU, TCG: nested KVM hangs here) with user
//! networking and the metadata service. The guest is a busybox initramfs on
//! Debian's kernel: it takes its address by DHCP, reads its config drive, posts a
//! password to the metadata service once per boot, then every two seconds prints
//! a tick and, when it changed, the `meta` the metadata service shows it; so its
//! console says what the guest learned from the drive and from the service.
//!
//! One guest serves the whole `openstack` walk (the newest client from PyPI, and
//! Debian's for the verbs its version has); openstacksdk then does its own
//! create / wait / get_password / delete cycle, and `get_password` must return
//! what that guest posted.

mod common;

use common::openstack::*;
use e2e::initramfs::Initramfs;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A safeguard against a hung guest, not a speed assertion (TCG on a busy host).
const PATIENCE: Duration = Duration::from_secs(600);

const DHCP_SCRIPT: &str = r#"#!/bin/sh
[ "$1" = bound ] || exit 0
ip addr add "$ip/${mask:-24}" dev "$interface"
[ -n "$router" ] && ip route add default via "$router"
exit 0
"#;

const BODY: &str = r#"ip link set lo up
ip link set eth0 up
udhcpc -i eth0 -n -q -t 30 -T 1 -s /bin/dhcp.sh >/dev/null 2>&1 || echo "GUEST-DHCP-FAILED"
mkdir -p /drive
if mount -t iso9660 -o ro /dev/sr0 /drive 2>/dev/null; then
    echo "GUEST-DRIVE $(grep -o '"uuid": *"[^"]*"' /drive/openstack/latest/meta_data.json | head -1)"
    [ -f /drive/openstack/latest/user_data ] && echo "GUEST-USERDATA $(head -1 /drive/openstack/latest/user_data)"
fi
http() { nc -w 5 169.254.169.254 80 2>/dev/null | sed '1,/^\r*$/d'; }
blob=$(cat /proc/sys/kernel/random/uuid | tr -d '-')
status=$(printf 'POST /openstack/2013-04-04/password HTTP/1.0\r\nHost: 169.254.169.254\r\nContent-Length: %s\r\n\r\n%s' "${#blob}" "$blob" | nc -w 5 169.254.169.254 80 2>/dev/null | head -1)
echo "GUEST-POSTED $blob $status"
echo "GUEST-BOOT"
n=0; last=""
while true; do
    n=$((n+1)); echo "GUEST-TICK $n"
    m=$(printf 'GET /openstack/latest/meta_data.json HTTP/1.0\r\nHost: 169.254.169.254\r\n\r\n' | http | grep -o '"meta": *{[^}]*}')
    if [ -n "$m" ] && [ "$m" != "$last" ]; then echo "GUEST-META $m"; last="$m"; fi
    sleep 2
done
"#;

/// The kernel, the initramfs above and a blank root disk, in `dir`.
fn guest_image(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let kernel = e2e::guest::kernel().expect("kernel (linux-image-amd64)");
    let mut img = Initramfs::new(BODY).expect("initramfs");
    img.file("bin/dhcp.sh", 0o755, DHCP_SCRIPT.as_bytes().to_vec())
        .modules(
            &kernel.version,
            &["ata_piix", "sr_mod", "isofs", "virtio_pci", "virtio_net"],
        )
        .expect("modules");
    let initramfs = dir.join("guest.cpio");
    img.write(&initramfs).expect("write initramfs");
    let disk = dir.join("root.qcow2");
    e2e::guest::blank_disk(&disk, "64M").expect("disk");
    (kernel.image, initramfs, disk)
}

struct Walk<'a> {
    d: &'a Deployment,
    clouds: PathBuf,
    client: &'a Client,
}

impl Walk<'_> {
    fn json(&self, args: &[&str]) -> Value {
        self.client.json(&self.clouds, "alice", args)
    }

    fn ok(&self, args: &[&str]) {
        self.client.ok(&self.clouds, "alice", args)
    }

    fn show(&self, id: &str) -> Value {
        self.json(&["server", "show", id])
    }

    fn console(&self, id: &str) -> String {
        let out = self
            .client
            .run(&self.clouds, "alice", &["console", "log", "show", id]);
        assert!(
            out.status.success(),
            "console log show: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).replace('\r', "")
    }

    /// Waits until the server's status is `status` (what `openstack` shows).
    fn wait_status(&self, id: &str, status: &str) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let s = self.show(id);
            if s["status"] == status && s["OS-EXT-STS:task_state"].is_null() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "server {id} never became {status}: {s}"
            );
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    /// Waits until the console has `n` lines containing `marker`.
    fn wait_console(&self, id: &str, marker: &str, n: usize) -> String {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let c = self.console(id);
            if c.matches(marker).count() >= n {
                return c;
            }
            assert!(
                Instant::now() < deadline,
                "the guest never printed {marker} {n} time(s):\n{c}"
            );
            std::thread::sleep(Duration::from_secs(2));
        }
    }

    fn last_tick(&self, id: &str) -> u64 {
        self.console(id)
            .lines()
            .rev()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("GUEST-TICK ")
                    .and_then(|n| n.trim().parse().ok())
            })
            .unwrap_or(0)
    }
}

fn deployment(dir_flags: &[&str]) -> Deployment {
    let mut d = Deployment::new(Db::Folder);
    d.flags = [
        "--accel",
        "tcg",
        "--network",
        "user",
        "--cidr",
        "10.95.0.0/24",
        "--metadata-server",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    d.flags.push(
        e2e::hostguest::metadata_server()
            .to_string_lossy()
            .into_owned(),
    );
    d.flags.extend(dir_flags.iter().map(|s| s.to_string()));
    d
}

/// Deletes every guest left when the test ends (a failure included), once the API
/// is gone: guests outlive their control plane by design.
struct Reap<'a>(&'a Deployment);

impl Drop for Reap<'_> {
    fn drop(&mut self) {
        let Ok(out) = self.0.command(&["list", "--format", "json"]).output() else {
            return;
        };
        let list: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        for s in list.as_array().into_iter().flatten() {
            if let Some(id) = s["id"].as_str().or(s["uuid"].as_str()) {
                let _ = self.0.command(&["delete", id]).output();
            }
        }
    }
}

#[test]
fn openstack_and_openstacksdk_drive_a_real_guest() {
    let d = deployment(&[]);
    d.ok(&["project-create", "alpha"]);
    d.ok(&["project-create", "beta"]);
    d.user("alice", "alice-pw", "alpha", "member");
    d.user("bob", "bob-pw", "beta", "member");
    let (kernel, initramfs, disk) = guest_image(d.dir.path());
    let s = |p: &Path| p.to_str().expect("utf-8").to_owned();
    let _guests = Reap(&d);
    let api = d.api(&["--shutdown-timeout", "3", "--max-image-bytes", "268435456"]);
    let clouds = api.clouds(
        d.dir.path(),
        &[
            ("alice", "alice", "alice-pw", "alpha"),
            ("bob", "bob", "bob-pw", "beta"),
        ],
    );
    let pypi = Client::pypi();
    let debian = Client::debian();
    eprintln!("clients: {} / {}", pypi.version(), debian.version());
    let w = Walk {
        d: &d,
        clouds: clouds.clone(),
        client: &pypi,
    };

    // The guest's kernel, ramdisk and disk through the Image API, as Glance takes
    // a direct-kernel image (kernel_id, ramdisk_id, os_command_line).
    let kernel_img = w.json(&[
        "image",
        "create",
        "--disk-format",
        "aki",
        "--container-format",
        "aki",
        "--file",
        &s(&kernel),
        "guest-kernel",
    ]);
    let ramdisk_img = w.json(&[
        "image",
        "create",
        "--disk-format",
        "ari",
        "--container-format",
        "ari",
        "--file",
        &s(&initramfs),
        "guest-ramdisk",
    ]);
    let kernel_id = kernel_img["id"].as_str().expect("id").to_owned();
    let ramdisk_id = ramdisk_img["id"].as_str().expect("id").to_owned();
    let made = w.json(&[
        "image",
        "create",
        "--disk-format",
        "qcow2",
        "--file",
        &s(&disk),
        "--property",
        &format!("kernel_id={kernel_id}"),
        "--property",
        &format!("ramdisk_id={ramdisk_id}"),
        "--property",
        "os_command_line=console=ttyS0 quiet panic=-1",
        "guest",
    ]);
    assert_eq!(made["status"], "active", "{made}");
    let image_id = made["id"].as_str().expect("id").to_owned();
    let shown = w.json(&["image", "show", "guest"]);
    assert_eq!(shown["id"], image_id.as_str());
    assert_eq!(shown["disk_format"], "qcow2");
    assert_eq!(shown["checksum"], md5_hex(&disk), "{shown}");
    let bytes = std::fs::read(&disk).expect("disk");
    let sha512 = hex::encode(<sha2::Sha512 as sha2::Digest>::digest(&bytes));
    // Newer clients fold the hash into `properties`.
    let hash = shown
        .get("os_hash_value")
        .or_else(|| shown["properties"].get("os_hash_value"));
    assert_eq!(
        hash.and_then(Value::as_str),
        Some(sha512.as_str()),
        "{shown}"
    );
    assert!(shown.to_string().contains(&kernel_id), "{shown}");
    let listed = w.json(&["image", "list"]);
    assert!(listed.to_string().contains(&image_id), "{listed}");
    // The same image as `compute image-import` makes: the command line sees it.
    let cli: Value =
        serde_json::from_str(&d.ok(&["image-show", &image_id, "--format", "json"])).expect("json");
    assert_eq!(
        (cli["has_kernel"].as_bool(), cli["has_ramdisk"].as_bool()),
        (Some(true), Some(true))
    );
    // Private to the project: bob does not see it.
    assert!(!pypi
        .json(&clouds, "bob", &["image", "list"])
        .to_string()
        .contains(&image_id));
    // A broken qcow2 and a body cut short leave the image killed (OSC deletes an
    // image whose upload failed, so these go raw).
    let broken = d.dir.path().join("broken.qcow2");
    std::fs::write(&broken, &bytes[..512]).expect("broken");
    let err = pypi.fails(
        &clouds,
        "alice",
        &[
            "image",
            "create",
            "--disk-format",
            "qcow2",
            "--file",
            &s(&broken),
            "broken",
        ],
    );
    assert!(err.contains("qemu-img") || err.contains("400"), "{err}");
    let token = w.json(&["token", "issue"])["id"]
        .as_str()
        .expect("token")
        .to_owned();
    assert_eq!(raw_upload(&api.image, &token, &bytes[..512], 512), "killed");
    let cut = raw_upload(&api.image, &token, &[0u8; 1000], 1 << 20);
    assert_eq!(cut, "killed");

    // Create, with everything OSC sends.
    let public = ssh_public_key(d.dir.path(), "k-guest");
    w.json(&["keypair", "create", "--public-key", &s(&public), "k1"]);
    let user_data = d.dir.path().join("user-data");
    std::fs::write(&user_data, "hello-from-user-data\n").expect("user data");
    let made = w.json(&[
        "server",
        "create",
        "--image",
        "guest",
        "--flavor",
        "m1.tiny",
        "--key-name",
        "k1",
        "--user-data",
        &s(&user_data),
        "--property",
        "role=web",
        "--config-drive",
        "True",
        "--wait",
        "vm1",
    ]);
    assert_eq!(made["status"], "ACTIVE", "{made}");
    let id = made["id"].as_str().expect("id").to_owned();
    assert_eq!(made["key_name"], "k1");
    assert!(made["properties"].to_string().contains("web"), "{made}");
    let listed = w.json(&["server", "list"]);
    assert!(listed.to_string().contains("vm1"), "{listed}");
    let boot = w.wait_console(&id, "GUEST-BOOT", 1);
    assert!(
        boot.contains(&format!("\"uuid\": \"{id}\"")),
        "the drive's uuid:\n{boot}"
    );
    assert!(
        boot.contains("GUEST-USERDATA hello-from-user-data"),
        "{boot}"
    );
    assert!(boot.contains("role"), "the service's meta:\n{boot}");
    let posted = boot
        .lines()
        .find_map(|l| l.strip_prefix("GUEST-POSTED "))
        .expect("the guest posted a password")
        .to_owned();
    assert!(
        posted.contains(" 200") || posted.contains(" 20"),
        "{posted}"
    );

    // Bob (another project) cannot see it.
    let err = pypi.fails(&clouds, "bob", &["server", "show", &id]);
    assert!(
        err.to_lowercase().contains("no server") || err.contains("404"),
        "{err}"
    );

    // Debian's client on the same guest.
    let dw = Walk {
        d: &d,
        clouds: clouds.clone(),
        client: &debian,
    };
    assert!(dw.json(&["server", "list"]).to_string().contains("vm1"));
    assert_eq!(dw.show(&id)["status"], "ACTIVE");
    assert!(dw.console(&id).contains("GUEST-BOOT"));

    // Metadata: set and unset reach the metadata service (the guest sees them).
    w.ok(&["server", "set", "--property", "tier=gold", &id]);
    w.wait_console(&id, "gold", 1);
    w.ok(&["server", "unset", "--property", "tier", &id]);
    let deadline = Instant::now() + PATIENCE;
    loop {
        let c = w.console(&id);
        let last_meta = c
            .lines()
            .rev()
            .find(|l| l.starts_with("GUEST-META"))
            .unwrap_or("");
        if !last_meta.contains("gold") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the guest still sees tier: {last_meta}"
        );
        std::thread::sleep(Duration::from_secs(2));
    }

    // Power: stop, start (a new boot), hard reboot (another), pause, suspend.
    w.ok(&["server", "stop", &id]);
    w.wait_status(&id, "SHUTOFF");
    let err = pypi.fails(&clouds, "alice", &["server", "stop", &id]);
    assert!(
        err.contains("409") || err.contains("Cannot 'stop'"),
        "{err}"
    );
    w.ok(&["server", "start", &id]);
    w.wait_status(&id, "ACTIVE");
    w.wait_console(&id, "GUEST-BOOT", 2);
    w.ok(&["server", "reboot", "--hard", "--wait", &id]);
    assert_eq!(w.show(&id)["status"], "ACTIVE");
    w.wait_console(&id, "GUEST-BOOT", 3);
    w.ok(&["server", "pause", &id]);
    let paused = w.wait_status(&id, "PAUSED");
    // OSC shows the power state by name (3 is Nova's PAUSED).
    let power = paused["OS-EXT-STS:power_state"].to_string().to_lowercase();
    assert!(power.contains("paused") || power == "3", "{paused}");
    let tick = w.last_tick(&id);
    std::thread::sleep(Duration::from_secs(4));
    assert!(w.last_tick(&id) <= tick + 1, "a paused guest does not tick");
    w.ok(&["server", "unpause", &id]);
    w.wait_status(&id, "ACTIVE");
    w.ok(&["server", "suspend", &id]);
    w.wait_status(&id, "SUSPENDED");
    w.ok(&["server", "resume", &id]);
    w.wait_status(&id, "ACTIVE");
    let after = w.last_tick(&id);
    let deadline = Instant::now() + PATIENCE;
    while w.last_tick(&id) <= after {
        assert!(Instant::now() < deadline, "the resumed guest ticks on");
        std::thread::sleep(Duration::from_secs(2));
    }
    assert_eq!(
        w.console(&id).matches("GUEST-BOOT").count(),
        3,
        "pause and suspend keep the guest's boot"
    );

    // Debian's client (OSC 6.0, novaclient at microversion 2.1) on the same guest.
    dw.ok(&["server", "set", "--property", "deb=yes", &id]);
    w.wait_console(&id, "deb", 1);
    dw.ok(&["server", "unset", "--property", "deb", &id]);
    assert!(!dw.show(&id).to_string().contains("deb"), "unset");
    dw.ok(&["server", "stop", &id]);
    dw.wait_status(&id, "SHUTOFF");
    dw.ok(&["server", "start", &id]);
    dw.wait_status(&id, "ACTIVE");
    dw.ok(&["server", "reboot", "--hard", "--wait", &id]);
    assert_eq!(dw.show(&id)["status"], "ACTIVE");
    for (verb, status) in [
        ("pause", "PAUSED"),
        ("unpause", "ACTIVE"),
        ("suspend", "SUSPENDED"),
        ("resume", "ACTIVE"),
    ] {
        dw.ok(&["server", verb, &id]);
        dw.wait_status(&id, status);
    }

    // Snapshot, then rebuild from it.
    let snap = w.json(&[
        "server", "image", "create", "--name", "snap1", "--wait", &id,
    ]);
    assert_eq!(snap["status"], "active", "{snap}");
    let snap_id = snap["id"].as_str().expect("id").to_owned();
    // OSC prints the server as the rebuild answered it (REBUILD), after waiting.
    let rebuilt = w.json(&["server", "rebuild", "--image", "guest", "--wait", &id]);
    assert_eq!(rebuilt["id"], id.as_str(), "{rebuilt}");
    assert_eq!(w.show(&id)["status"], "ACTIVE");
    w.wait_console(&id, "GUEST-BOOT", 1);
    // The image in use cannot go; the snapshot can.
    let err = pypi.fails(&clouds, "alice", &["image", "delete", &image_id]);
    assert!(
        err.contains("409") || err.contains("in use") || err.contains("Failed"),
        "{err}"
    );
    w.ok(&["image", "delete", &snap_id]);

    // Debian's snapshot and rebuild.
    dw.ok(&[
        "server", "image", "create", "--name", "snap2", "--wait", &id,
    ]);
    let snap2 = dw.json(&["image", "show", "snap2"]);
    assert_eq!(snap2["status"], "active", "{snap2}");
    dw.ok(&["server", "rebuild", "--image", "guest", "--wait", &id]);
    assert_eq!(dw.show(&id)["status"], "ACTIVE");
    dw.ok(&["image", "delete", "snap2"]);

    w.ok(&["server", "delete", "--wait", &id]);
    let err = pypi.fails(&clouds, "alice", &["server", "show", &id]);
    assert!(
        err.to_lowercase().contains("no server") || err.contains("404"),
        "{err}"
    );

    // Debian's create --wait and delete --wait (a second guest).
    let made = dw.json(&[
        "server",
        "create",
        "--image",
        "guest",
        "--flavor",
        "m1.tiny",
        "--key-name",
        "k1",
        "--property",
        "role=db",
        "--wait",
        "vm2",
    ]);
    assert_eq!(made["status"], "ACTIVE", "{made}");
    let vm2 = made["id"].as_str().expect("id").to_owned();
    dw.ok(&["server", "delete", "--wait", &vm2]);
    let err = debian.fails(&clouds, "alice", &["server", "show", &vm2]);
    assert!(
        err.to_lowercase().contains("no server") || err.contains("404"),
        "{err}"
    );

    // openstacksdk: create, wait, get_password (what the guest posted), delete.
    let script = d.dir.path().join("sdk_cycle.py");
    std::fs::write(&script, SDK_SCRIPT).expect("script");
    let out = Command::new(venv().join("bin/python"))
        .env("OS_CLIENT_CONFIG_FILE", &clouds)
        .arg(&script)
        .args(["alice", &image_id])
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "sdk cycle: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let result: Value = serde_json::from_slice(&out.stdout).expect("sdk json");
    let console = result["console"].as_str().expect("console");
    let posted = console
        .lines()
        .find_map(|l| l.trim().strip_prefix("GUEST-POSTED "))
        .and_then(|l| l.split_whitespace().next())
        .expect("the sdk's guest posted");
    assert_eq!(
        result["password"], posted,
        "get_password is what the guest posted"
    );
    assert_eq!(result["status"], "ACTIVE");
    let _ = w.d;
}

/// Makes an image and sends `body` as its file, announced as `declared` bytes,
/// then reads the answer, or closes when the body is short of `declared`: the
/// status the image is left in.
fn raw_upload(image_url: &str, token: &str, body: &[u8], declared: usize) -> String {
    use std::io::{Read, Write};
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let made = agent
        .post(&format!("{image_url}/v2/images"))
        .header("X-Auth-Token", token)
        .content_type("application/json")
        .send(r#"{"name":"cut","disk_format":"raw","container_format":"bare"}"#)
        .expect("create")
        .body_mut()
        .read_to_string()
        .expect("body");
    let made: Value = serde_json::from_str(&made).expect("json");
    let id = made["id"].as_str().expect("id").to_owned();
    let hostport = image_url
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let mut sock = std::net::TcpStream::connect(hostport).expect("connect");
    write!(
        sock,
        "PUT /v2/images/{id}/file HTTP/1.1\r\nHost: {hostport}\r\nX-Auth-Token: {token}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {declared}\r\n\r\n"
    )
    .expect("headers");
    sock.write_all(body).expect("some bytes");
    let mut rest = Vec::new();
    if declared > body.len() {
        // A client that dies midway: the server is reading the body by now.
        std::thread::sleep(Duration::from_secs(2));
        drop(sock);
    } else {
        sock.set_read_timeout(Some(Duration::from_secs(60)))
            .expect("timeout");
        let mut buf = [0u8; 4096];
        if let Ok(n) = sock.read(&mut buf) {
            rest.extend_from_slice(&buf[..n]);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let shown = agent
            .get(&format!("{image_url}/v2/images/{id}"))
            .header("X-Auth-Token", token)
            .call()
            .expect("show")
            .body_mut()
            .read_to_string()
            .expect("body");
        let shown: Value = serde_json::from_str(&shown).expect("json");
        let status = shown["status"].as_str().unwrap_or("").to_owned();
        // The answer may never come (the client half-closed): the upload is
        // over once the image left queued and saving.
        if !matches!(status.as_str(), "queued" | "saving") || Instant::now() > deadline {
            if status != "killed" {
                eprintln!("upload answered: {}", String::from_utf8_lossy(&rest));
            }
            return status;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

const SDK_SCRIPT: &str = r#"
import json, sys, time
import openstack

conn = openstack.connect(cloud=sys.argv[1])
server = conn.compute.create_server(
    name="sdk-vm", image_id=sys.argv[2], flavor_id="1", networks="auto")
server = conn.compute.wait_for_server(server, status="ACTIVE", wait=600)
password = ""
console = ""
deadline = time.time() + 600
while time.time() < deadline:
    password = conn.compute.get_server_password(server)
    console = conn.compute.get_server_console_output(server)["output"]
    if password and "GUEST-POSTED" in console:
        break
    time.sleep(2)
conn.compute.delete_server(server)
conn.compute.wait_for_delete(server, wait=120)
print(json.dumps({"status": server.status, "password": password, "console": console}))
"#;

/// A `compute host-agent` process (killed at the end; its guests are deleted
/// before, through the API).
struct HostAgent(std::process::Child);

impl Drop for HostAgent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn on_postgresql_a_host_agent_runs_what_the_api_queues() {
    let db = pgtest::cluster().database();
    let d = Deployment::new(Db::Postgres(db.url()));
    d.ok(&["project-create", "alpha"]);
    d.user("alice", "alice-pw", "alpha", "member");
    let log = std::fs::File::create(d.dir.path().join("agent.log")).expect("log");
    let agent = HostAgent(
        Command::new(BIN)
            .arg("--state-dir")
            .arg(d.dir.path().join("host-h1"))
            .args([
                "--database",
                &db.url(),
                "--accel",
                "tcg",
                "--network",
                "plain",
            ])
            .args(["--cidr", "10.94.0.0/24"])
            .args([
                "host-agent",
                "--host",
                "h1",
                "--heartbeat",
                "1",
                "--poll",
                "2",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("host-agent"),
    );
    let (kernel, initramfs, disk) = guest_image(d.dir.path());
    let s = |p: &Path| p.to_str().expect("utf-8").to_owned();
    let api = d.api(&["--shutdown-timeout", "3"]);
    let clouds = api.clouds(d.dir.path(), &[("alice", "alice", "alice-pw", "alpha")]);
    let pypi = Client::pypi();
    let w = Walk {
        d: &d,
        clouds,
        client: &pypi,
    };
    // Image files travel through the database to the host that boots them.
    let k = w.json(&[
        "image",
        "create",
        "--disk-format",
        "aki",
        "--file",
        &s(&kernel),
        "k",
    ]);
    let r = w.json(&[
        "image",
        "create",
        "--disk-format",
        "ari",
        "--file",
        &s(&initramfs),
        "r",
    ]);
    let made = w.json(&[
        "image",
        "create",
        "--disk-format",
        "qcow2",
        "--file",
        &s(&disk),
        "--property",
        &format!("kernel_id={}", k["id"].as_str().expect("id")),
        "--property",
        &format!("ramdisk_id={}", r["id"].as_str().expect("id")),
        "--property",
        "os_command_line=console=ttyS0 quiet panic=-1",
        "pg-guest",
    ]);
    assert_eq!(made["status"], "active", "{made}");
    let server = w.json(&[
        "server", "create", "--image", "pg-guest", "--flavor", "m1.tiny", "--wait", "pg-vm",
    ]);
    assert_eq!(server["status"], "ACTIVE", "{server}");
    let id = server["id"].as_str().expect("id").to_owned();
    assert!(w.json(&["server", "list"]).to_string().contains("pg-vm"));
    w.wait_console(&id, "GUEST-BOOT", 1);
    w.ok(&["server", "stop", &id]);
    w.wait_status(&id, "SHUTOFF");
    w.ok(&["server", "start", &id]);
    w.wait_status(&id, "ACTIVE");
    w.ok(&["server", "delete", "--wait", &id]);
    assert!(d.ok(&["list"]).lines().all(|l| !l.contains(&id)));
    drop(agent);
    let _ = w.d;
}
