//! Servers driven by real, unmodified clients against `compute api` on a state
//! folder whose guests really boot (QEMU, TCG: nested KVM hangs here) with user
//! networking and the metadata service. The guest is a busybox initramfs on
//! Debian's kernel: it takes its address by DHCP, reads its config drive, posts a
//! password to the metadata service once per boot, then every two seconds prints
//! a tick and, when it changed, the `meta` the metadata service shows it; so its
//! console says what the guest learned from the drive and from the service.
//!
//! The newest `openstack` from PyPI walks the whole list on one guest, then Debian's
//! (an older python-openstackclient) walks it again on another; openstacksdk then
//! does its own
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
        e2e::console::whole_lines(&String::from_utf8_lossy(&out.stdout))
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

    /// The guest's kernel, ramdisk and disk through the Image API, as Glance takes a
    /// direct-kernel image (kernel_id, ramdisk_id, os_command_line), the disk named
    /// `name`; checks what `image show` and `image list` say. The disk image's id.
    fn upload_guest(&self, name: &str, kernel: &Path, initramfs: &Path, disk: &Path) -> String {
        let s = |p: &Path| p.to_str().expect("utf-8").to_owned();
        let part = |format: &str, file: &Path, suffix: &str| -> String {
            let made = self.json(&[
                "image",
                "create",
                "--disk-format",
                format,
                "--container-format",
                format,
                "--file",
                &s(file),
                &format!("{name}-{suffix}"),
            ]);
            made["id"].as_str().expect("id").to_owned()
        };
        let kernel_id = part("aki", kernel, "kernel");
        let ramdisk_id = part("ari", initramfs, "ramdisk");
        let made = self.json(&[
            "image",
            "create",
            "--disk-format",
            "qcow2",
            "--file",
            &s(disk),
            "--property",
            &format!("kernel_id={kernel_id}"),
            "--property",
            &format!("ramdisk_id={ramdisk_id}"),
            "--property",
            "os_command_line=console=ttyS0 quiet panic=-1",
            name,
        ]);
        // Older clients print the image as created, before its upload (as they do
        // against Glance); newer ones show it again after.
        assert!(
            made["status"] == "active" || self.client.name == "debian",
            "{made}"
        );
        let image_id = made["id"].as_str().expect("id").to_owned();
        let shown = self.json(&["image", "show", name]);
        assert_holds_file(&shown, disk);
        assert_eq!(shown["id"], image_id.as_str());
        assert_eq!(shown["disk_format"], "qcow2");
        assert!(shown.to_string().contains(&kernel_id), "{shown}");
        let listed = self.json(&["image", "list"]);
        assert!(listed.to_string().contains(&image_id), "{listed}");
        // The same image as `compute image-import` makes: the command line sees it.
        let cli: Value =
            serde_json::from_str(&self.d.ok(&["image-show", &image_id, "--format", "json"]))
                .expect("json");
        assert_eq!(
            (cli["has_kernel"].as_bool(), cli["has_ramdisk"].as_bool()),
            (Some(true), Some(true))
        );
        // Private to the project: bob does not see it.
        assert!(!self
            .client
            .json(&self.clouds, "bob", &["image", "list"])
            .to_string()
            .contains(&image_id));
        image_id
    }

    /// `server create` with everything OSC sends (key `key`, made here; user data; a
    /// property; a config drive), then waits for the guest's boot: it read its drive
    /// and the metadata service, and posted a password. The server's id.
    fn create_guest(&self, name: &str, image: &str, key: &str) -> String {
        let s = |p: &Path| p.to_str().expect("utf-8").to_owned();
        let dir = self.d.dir.path();
        let public = ssh_public_key(dir, &format!("{key}-guest"));
        self.json(&["keypair", "create", "--public-key", &s(&public), key]);
        let user_data = dir.join(format!("{name}-user-data"));
        std::fs::write(&user_data, "hello-from-user-data\n").expect("user data");
        let made = self.json(&[
            "server",
            "create",
            "--image",
            image,
            "--flavor",
            "m1.tiny",
            "--key-name",
            key,
            "--user-data",
            &s(&user_data),
            "--property",
            "role=web",
            "--config-drive",
            "True",
            "--wait",
            name,
        ]);
        assert_eq!(made["status"], "ACTIVE", "{made}");
        let id = made["id"].as_str().expect("id").to_owned();
        assert_eq!(made["key_name"], key);
        assert!(made["properties"].to_string().contains("web"), "{made}");
        let listed = self.json(&["server", "list"]);
        assert!(listed.to_string().contains(name), "{listed}");
        assert_eq!(self.show(&id)["status"], "ACTIVE");
        let boot = self.wait_console(&id, "GUEST-BOOT", 1);
        assert!(
            boot.contains(&format!("\"uuid\": \"{id}\"")),
            "the drive's uuid:\n{boot}"
        );
        assert!(
            boot.contains("GUEST-USERDATA hello-from-user-data"),
            "{boot}"
        );
        // The service's meta comes from the first tick's request, after GUEST-BOOT;
        // wait for the property itself, as a read can end inside its line.
        let meta = self.wait_console(&id, "\"role\"", 1);
        assert!(
            meta.lines()
                .any(|l| l.starts_with("GUEST-META") && l.contains("role")),
            "the service's meta:\n{meta}"
        );
        let posted = boot
            .lines()
            .find_map(|l| l.strip_prefix("GUEST-POSTED "))
            .expect("the guest posted a password")
            .to_owned();
        assert!(
            posted.contains(" 200") || posted.contains(" 20"),
            "{posted}"
        );
        id
    }

    /// `server set` and `unset --property` reach the metadata service: the guest sees
    /// the property come and go.
    fn metadata_round(&self, id: &str) {
        self.ok(&["server", "set", "--property", "tier=gold", id]);
        self.wait_console(id, "gold", 1);
        self.ok(&["server", "unset", "--property", "tier", id]);
        let deadline = Instant::now() + PATIENCE;
        loop {
            let c = self.console(id);
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
    }

    /// Power: stop (a second stop is refused with 409), start (a new boot), hard
    /// reboot (another), pause (the guest stops ticking), unpause, suspend, resume
    /// (it ticks on, its boot kept).
    fn power_round(&self, id: &str) {
        self.ok(&["server", "stop", id]);
        self.wait_status(id, "SHUTOFF");
        let err = self
            .client
            .fails(&self.clouds, "alice", &["server", "stop", id]);
        assert!(
            err.contains("409") || err.contains("Cannot 'stop'"),
            "{err}"
        );
        self.ok(&["server", "start", id]);
        self.wait_status(id, "ACTIVE");
        self.wait_console(id, "GUEST-BOOT", 2);
        self.ok(&["server", "reboot", "--hard", "--wait", id]);
        assert_eq!(self.show(id)["status"], "ACTIVE");
        self.wait_console(id, "GUEST-BOOT", 3);
        self.ok(&["server", "pause", id]);
        let paused = self.wait_status(id, "PAUSED");
        // OSC shows the power state by name (3 is Nova's PAUSED).
        let power = paused["OS-EXT-STS:power_state"].to_string().to_lowercase();
        assert!(power.contains("paused") || power == "3", "{paused}");
        let tick = self.last_tick(id);
        std::thread::sleep(Duration::from_secs(4));
        assert!(
            self.last_tick(id) <= tick + 1,
            "a paused guest does not tick"
        );
        self.ok(&["server", "unpause", id]);
        self.wait_status(id, "ACTIVE");
        self.ok(&["server", "suspend", id]);
        self.wait_status(id, "SUSPENDED");
        self.ok(&["server", "resume", id]);
        self.wait_status(id, "ACTIVE");
        let after = self.last_tick(id);
        let deadline = Instant::now() + PATIENCE;
        while self.last_tick(id) <= after {
            assert!(Instant::now() < deadline, "the resumed guest ticks on");
            std::thread::sleep(Duration::from_secs(2));
        }
        assert_eq!(
            self.console(id).matches("GUEST-BOOT").count(),
            3,
            "pause and suspend keep the guest's boot"
        );
    }

    /// A snapshot, a rebuild from `image` (a new boot), the image in use refused
    /// (409), the snapshot deleted, then the server deleted.
    fn snapshot_rebuild_delete(&self, id: &str, image: &str, image_id: &str) {
        let snap_name = format!("{image}-snap");
        let snap = self.json(&[
            "server", "image", "create", "--name", &snap_name, "--wait", id,
        ]);
        assert_eq!(snap["status"], "active", "{snap}");
        let snap_id = snap["id"].as_str().expect("id").to_owned();
        // OSC prints the server as the rebuild answered it (REBUILD), after waiting.
        // The console log is kept across the rebuild: one more boot.
        let boots = self.console(id).matches("GUEST-BOOT").count();
        let rebuilt = self.json(&["server", "rebuild", "--image", image, "--wait", id]);
        assert_eq!(rebuilt["id"], id, "{rebuilt}");
        assert_eq!(self.show(id)["status"], "ACTIVE");
        self.wait_console(id, "GUEST-BOOT", boots + 1);
        let err = self
            .client
            .fails(&self.clouds, "alice", &["image", "delete", image_id]);
        assert!(
            err.contains("409") || err.contains("in use") || err.contains("Failed"),
            "{err}"
        );
        self.ok(&["image", "delete", &snap_id]);
        self.ok(&["server", "delete", "--wait", id]);
        let err = self
            .client
            .fails(&self.clouds, "alice", &["server", "show", id]);
        assert!(
            err.to_lowercase().contains("no server") || err.contains("404"),
            "{err}"
        );
    }

    fn last_tick(&self, id: &str) -> u64 {
        e2e::guest::last_tick(&self.console(id))
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

    let image_id = w.upload_guest("guest", &kernel, &initramfs, &disk);
    // A broken qcow2 and a body cut short leave the image killed (OSC deletes an
    // image whose upload failed, so these go raw).
    let bytes = std::fs::read(&disk).expect("disk");
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

    let id = w.create_guest("vm1", "guest", "k1");
    // Bob (another project) cannot see it.
    let err = pypi.fails(&clouds, "bob", &["server", "show", &id]);
    assert!(
        err.to_lowercase().contains("no server") || err.contains("404"),
        "{err}"
    );
    w.metadata_round(&id);
    w.power_round(&id);
    w.snapshot_rebuild_delete(&id, "guest", &image_id);

    // Debian's client (an older python-openstackclient) walks the same list with
    // its own images, keypair and guest.
    let dw = Walk {
        d: &d,
        clouds: clouds.clone(),
        client: &debian,
    };
    let debian_image = dw.upload_guest("debian-guest", &kernel, &initramfs, &disk);
    let id = dw.create_guest("debian-vm", "debian-guest", "debian-k");
    dw.metadata_round(&id);
    dw.power_round(&id);
    dw.snapshot_rebuild_delete(&id, "debian-guest", &debian_image);

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
    let id = new_image(image_url, token, "cut");
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
    # GUEST-BOOT is printed on the line after GUEST-POSTED: that line is whole.
    if password and "GUEST-BOOT" in console:
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
    d.ok(&["project-create", "beta"]);
    d.user("alice", "alice-pw", "alpha", "member");
    d.user("bob", "bob-pw", "beta", "member");
    let log = std::fs::File::create(d.dir.path().join("agent.log")).expect("log");
    // The agent's guests get user networking and the metadata server it starts,
    // which follows the database for this host.
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
                "user",
            ])
            .args(["--cidr", "10.94.0.0/24", "--metadata-server"])
            .arg(e2e::hostguest::metadata_server())
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
    let api = d.api(&["--shutdown-timeout", "3"]);
    let clouds = api.clouds(
        d.dir.path(),
        &[
            ("alice", "alice", "alice-pw", "alpha"),
            ("bob", "bob", "bob-pw", "beta"),
        ],
    );
    let pypi = Client::pypi();
    let w = Walk {
        d: &d,
        clouds,
        client: &pypi,
    };
    // The whole walk: image files travel through the database to the host that
    // boots them; every action is queued for the agent and carried out there.
    let image_id = w.upload_guest("pg-guest", &kernel, &initramfs, &disk);
    let id = w.create_guest("pg-vm", "pg-guest", "pg-k");
    w.metadata_round(&id);
    w.power_round(&id);
    w.snapshot_rebuild_delete(&id, "pg-guest", &image_id);
    assert!(d.ok(&["list"]).lines().all(|l| !l.contains(&id)));
    drop(agent);
}
