//! Real AWS clients, unmodified, against the server at AWS's addresses: it listens on
//! 169.254.169.254:80, [fd00:ec2::254]:80 and the link-local fe80::a9fe:a9fe:80 inside
//! a network namespace each test creates (`mda-s<pid>-<n>`); a guest namespace
//! (`mda-g<pid>-<n>`) reaches it over a veth pair from the instance's fixed IPv4 and IPv6
//! addresses and MAC. Tokens are required, so every client must use IMDSv2.
//!
//! - botocore (Debian's, and the newest from PyPI in a venv): `IMDSFetcher` and
//!   `InstanceMetadataRegionFetcher` over IPv4 and IPv6, and the session's region
//!   provider with `AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE=IPv6`;
//! - `ec2-metadata --all` (amazon-ec2-utils);
//! - cloud-init's EC2 datasource in AWS mode (only the platform check is answered
//!   for it: a namespace has no SMBIOS): the version it picks, the network
//!   configuration it derives from `network/interfaces/macs`, the identity document,
//!   no warning and no request answered 404;
//! - curl over the link-local address, known by the MAC's EUI-64 address;
//! - the token reply's IPv6 hop limit, read off the wire.
//!
//! Both namespaces are removed afterwards. Needs root.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

/// The instance: B of the fixture, moved to the guest namespace's addresses.
const MAC: &str = "fa:16:3e:00:00:01";
const V4: &str = "10.0.0.5";
const V6: &str = "2001:db8::5";
const ZONE: &str = "us-east-1a";

struct Namespaces {
    srv: String,
    vm: String,
    server: Option<Child>,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip runs");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sysctl(ns: &str, key: &str) {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "sysctl", "-qw", key])
        .output()
        .expect("sysctl runs");
    assert!(
        out.status.success(),
        "sysctl {key}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Namespaces {
    fn create() -> Namespaces {
        // Tests run in parallel: one pair of namespaces each.
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = format!("{}-{n}", std::process::id());
        let ns = Namespaces {
            srv: format!("mda-s{id}"),
            vm: format!("mda-g{id}"),
            server: None,
        };
        ip(&["netns", "add", &ns.srv]);
        ip(&["netns", "add", &ns.vm]);
        for n in [&ns.srv, &ns.vm] {
            ip(&["-n", n, "link", "set", "lo", "up"]);
            sysctl(n, "net.ipv6.conf.default.accept_dad=0");
            sysctl(n, "net.ipv6.conf.all.accept_dad=0");
        }
        ip(&[
            "-n", &ns.srv, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1",
            "netns", &ns.vm,
        ]);
        sysctl(&ns.srv, "net.ipv6.conf.veth0.accept_dad=0");
        sysctl(&ns.vm, "net.ipv6.conf.veth1.accept_dad=0");
        ip(&["-n", &ns.vm, "link", "set", "veth1", "address", MAC]);
        ip(&["-n", &ns.vm, "link", "set", "veth1", "addrgenmode", "eui64"]);
        for (addr, dev) in [
            ("169.254.169.254/32", "lo"),
            ("fd00:ec2::254/128", "lo"),
            ("10.0.0.1/24", "veth0"),
            ("2001:db8::1/64", "veth0"),
            ("fe80::a9fe:a9fe/64", "veth0"),
        ] {
            ip(&["-n", &ns.srv, "addr", "add", addr, "dev", dev, "nodad"]);
        }
        ip(&[
            "-n",
            &ns.vm,
            "addr",
            "add",
            &format!("{V4}/24"),
            "dev",
            "veth1",
        ]);
        ip(&[
            "-n",
            &ns.vm,
            "addr",
            "add",
            &format!("{V6}/64"),
            "dev",
            "veth1",
            "nodad",
        ]);
        ip(&["-n", &ns.srv, "link", "set", "veth0", "up"]);
        ip(&["-n", &ns.vm, "link", "set", "veth1", "up"]);
        ip(&[
            "-n",
            &ns.vm,
            "route",
            "add",
            "169.254.169.254/32",
            "via",
            "10.0.0.1",
        ]);
        ip(&[
            "-n",
            &ns.vm,
            "-6",
            "route",
            "add",
            "fd00:ec2::254/128",
            "via",
            "2001:db8::1",
        ]);
        // The kernel adds the guest's link-local address once the link is up.
        let has_link_local = || {
            let out = Command::new("ip")
                .args([
                    "-n", &ns.vm, "-6", "addr", "show", "dev", "veth1", "scope", "link",
                ])
                .output()
                .expect("ip runs");
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.contains("fe80::") && !text.contains("tentative")
        };
        let up = (0..100).any(|_| {
            let ok = has_link_local();
            if !ok {
                std::thread::sleep(Duration::from_millis(50));
            }
            ok
        });
        assert!(up, "veth1 has no link-local address");
        ns
    }

    /// The server namespace's index of veth0, the scope of its link-local address.
    fn veth0_index(&self) -> u32 {
        let out = Command::new("ip")
            .args(["-n", &self.srv, "-o", "link", "show", "veth0"])
            .output()
            .expect("ip runs");
        let text = String::from_utf8_lossy(&out.stdout);
        text.split(':')
            .next()
            .and_then(|n| n.trim().parse().ok())
            .expect("ifindex")
    }

    fn in_vm(&self, cmd: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.vm]).args(cmd);
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().expect("ip netns exec runs")
    }

    fn ok_in_vm(&self, cmd: &[&str], env: &[(&str, &str)]) -> String {
        let out = self.in_vm(cmd, env);
        assert!(
            out.status.success(),
            "{cmd:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf8")
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        if let Some(mut c) = self.server.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        for n in [&self.srv, &self.vm] {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

/// The instance documents: B at the guest's addresses, tags on.
fn documents() -> serde_json::Value {
    let mut docs: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture()).expect("fixture")).expect("json");
    let b = &mut docs[1];
    b["network"]["networks"][0]["ip_address"] = V4.into();
    b["network"]["networks"][1]["ip_address"] = V6.into();
    b["availability_zone"] = ZONE.into();
    b["metadata_tags"] = true.into();
    docs
}

fn start(dir: &Path) -> Namespaces {
    let instances = dir.join("instances.json");
    std::fs::write(&instances, serde_json::to_vec(&documents()).expect("json")).expect("write");
    let mut ns = Namespaces::create();
    let link_local = format!("[fe80::a9fe:a9fe%{}]:80", ns.veth0_index());
    let server = Command::new("ip")
        .args(["netns", "exec", &ns.srv, bin(), "serve"])
        .args([
            "--listen",
            "169.254.169.254:80",
            "--listen",
            "[fd00:ec2::254]:80",
        ])
        .args(["--listen", &link_local, "--tokens", "required"])
        .arg("--instances")
        .arg(&instances)
        .arg("--password-dir")
        .arg(dir.join("pw"))
        .arg("--data-dir")
        .arg(dir.join("data"))
        .env("RUST_LOG", "info")
        .stderr(std::fs::File::create(dir.join("server.log")).expect("log"))
        .stdout(Stdio::null())
        .spawn()
        .expect("server starts");
    ns.server = Some(server);
    // A token request: the one request that needs no token.
    let probe = [
        "curl",
        "-sf",
        "-o",
        "/dev/null",
        "--max-time",
        "2",
        "-X",
        "PUT",
        "-H",
        "X-aws-ec2-metadata-token-ttl-seconds: 5",
        "http://169.254.169.254/latest/api/token",
    ];
    let ready = (0..100).any(|_| {
        let up = ns.in_vm(&probe, &[]).status.success();
        if !up {
            std::thread::sleep(Duration::from_millis(100));
        }
        up
    });
    assert!(ready, "server not reachable: {}", log(dir));
    ns
}

fn log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
}

/// Whether an answered request with this status came from a peer starting with
/// `peer`: the access log is written by a thread of its own, so it waits a moment.
fn answered_from(dir: &Path, status: u16, peer: &str) -> bool {
    eventually(Duration::from_secs(5), || {
        requests_with_status(dir, status)
            .iter()
            .any(|r| r.starts_with(peer))
    })
}

/// Access-log lines of requests with `status`, as `peer path`.
fn requests_with_status(dir: &Path, status: u16) -> Vec<String> {
    log(dir)
        .lines()
        .filter(|l| l.contains(" access: ") && l.contains(&format!(" status={status} ")))
        .map(|l| {
            let field = |k: &str| {
                l.split_whitespace()
                    .find_map(|w| w.strip_prefix(k))
                    .unwrap_or("?")
                    .to_owned()
            };
            format!("{} {}", field("peer="), field("path="))
        })
        .collect()
}

const BOTOCORE: &str = r#"
import json, os, sys
import botocore, botocore.session
from botocore.utils import IMDSFetcher, InstanceMetadataRegionFetcher, IMDSRegionProvider
out = {"version": botocore.__version__}
for mode in ("ipv4", "ipv6"):
    config = {"ec2_metadata_service_endpoint_mode": mode}
    out["region_" + mode] = InstanceMetadataRegionFetcher(timeout=5, num_attempts=2, config=config).retrieve_region()
    fetcher = IMDSFetcher(timeout=5, num_attempts=2, config=config)
    token = fetcher._fetch_metadata_token()
    out["token_" + mode] = bool(token)
    out["instance_id_" + mode] = fetcher._get_request("latest/meta-data/instance-id", None, token).text
env = dict(os.environ, AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE="IPv6")
out["region_env_ipv6"] = IMDSRegionProvider(botocore.session.get_session(), environ=env).provide()
print(json.dumps(out))
"#;

/// A venv with the newest botocore from PyPI, made once and upgraded each run.
fn pypi_botocore() -> PathBuf {
    let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("botocore-venv");
    let python = venv.join("bin/python");
    if !python.exists() {
        let out = Command::new("/usr/bin/python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .output()
            .expect("python3 runs");
        assert!(
            out.status.success(),
            "venv: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = Command::new(&python)
        .args(["-m", "pip", "install", "--quiet", "--upgrade", "botocore"])
        .output()
        .expect("pip runs");
    assert!(
        out.status.success(),
        "pip install botocore (PyPI must be reachable): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    python
}

#[test]
fn botocore_debian_and_newest_get_the_region_with_imdsv2_over_ipv4_and_ipv6() {
    let newest = pypi_botocore();
    let dir = tempfile::tempdir().expect("tmp");
    let ns = start(dir.path());
    for python in [PathBuf::from("/usr/bin/python3"), newest] {
        let python = python.display().to_string();
        let out = ns.ok_in_vm(&[&python, "-c", BOTOCORE], &[]);
        let v: serde_json::Value = serde_json::from_str(&out).expect("json");
        for key in ["region_ipv4", "region_ipv6", "region_env_ipv6"] {
            assert_eq!(v[key], "us-east-1", "{python} {key}: {v}");
        }
        for mode in ["ipv4", "ipv6"] {
            assert_eq!(v[format!("token_{mode}")], true, "{python}: {v}");
            assert_eq!(
                v[format!("instance_id_{mode}")],
                "i-2f1d4c3b",
                "{python}: {v}"
            );
        }
    }
    assert!(
        answered_from(dir.path(), 200, &format!("[{V6}]:")),
        "IPv6 used: {:?}",
        requests_with_status(dir.path(), 200)
    );
    assert!(
        answered_from(dir.path(), 200, &format!("{V4}:")),
        "IPv4 used: {:?}",
        requests_with_status(dir.path(), 200)
    );
    assert!(
        requests_with_status(dir.path(), 401).is_empty(),
        "a request without a token: {:?}",
        requests_with_status(dir.path(), 401)
    );
}

#[test]
fn ec2_metadata_prints_every_value_we_serve() {
    let dir = tempfile::tempdir().expect("tmp");
    let ns = start(dir.path());
    let out = ns.ok_in_vm(&["ec2-metadata", "--all"], &[]);
    let unavailable: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("not available"))
        .collect();
    // The two keys we do not serve (no AMI ancestry, no product codes).
    assert_eq!(
        unavailable,
        [
            "ancestor-ami-ids: not available",
            "product-codes: not available"
        ],
        "{out}"
    );
    for want in [
        "ami-id: ami-7c9e6679",
        "ami-launch-index: 2",
        "ami-manifest-path: FIXME",
        "instance-id: i-2f1d4c3b",
        "instance-type: m1.large",
        "local-hostname: web-02.novalocal",
        &format!("local-ipv4: {V4}"),
        "kernel-id: aki-0000000a",
        &format!("placement: {ZONE}"),
        "public-hostname: web-02.novalocal",
        "public-ipv4: 203.0.113.20",
        "keyname:ops",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ops@example",
        "ramdisk-id: ari-0000000b",
        "reservation-id: r-2b3c4d5e",
        "security-groups: default",
        "user-data: #cloud-config",
        "\t role: db",
    ] {
        assert!(out.contains(want), "{want:?} missing from:\n{out}");
    }
    assert!(
        requests_with_status(dir.path(), 401).is_empty(),
        "all with a token"
    );
}

const CLOUD_INIT_AWS: &str = r#"
import atexit, json, logging, shutil, sys, tempfile
from cloudinit import distros, helpers
from cloudinit.sources import DataSourceEc2 as ec2

warnings = []
class Keep(logging.Handler):
    def emit(self, record):
        warnings.append(record.getMessage())
handler = Keep(level=logging.WARNING)
logging.getLogger().addHandler(handler)
logging.getLogger().setLevel(logging.DEBUG)

class OnAws(ec2.DataSourceEc2):
    # A namespace has no SMBIOS to read: answer cloud-init's platform check as
    # identify_aws() does on EC2 (and on our QEMU guests with EC2-like SMBIOS).
    def _get_cloud_name(self):
        return ec2.CloudNames.AWS

tmp = tempfile.mkdtemp()
# cloud-init writes the instance data (user data too) here: gone however this ends.
atexit.register(shutil.rmtree, tmp, True)
paths = helpers.Paths({"cloud_dir": tmp, "run_dir": tmp})
sys_cfg = {"datasource": {"Ec2": {"timeout": 5, "max_wait": 30,
    "metadata_urls": ["http://169.254.169.254", "http://[fd00:ec2::254]"]}}}
distro = distros.fetch("debian")("debian", {}, paths)
ds = OnAws(sys_cfg, distro, paths)
# cloud-init takes only a physical NIC as the fallback; a namespace has a veth (on
# EC2 and on our guests it is the ENI or virtio NIC it finds itself).
ds._fallback_interface = "veth1"
ok = ds.get_data()
md = ds.metadata or {}
print(json.dumps({
    "ok": ok,
    "cloud": ds.cloud_name,
    "api_version": ds._crawled_metadata.get("_metadata_api_version"),
    "instance_id": ds.get_instance_id(),
    "region": ds.region,
    "availability_zone": ds.availability_zone,
    "identity": ds.identity,
    "network_config": ds.network_config,
    "public_keys": ds.get_public_ssh_keys(),
    "userdata": (ds.userdata_raw or b"").decode(),
    "tags": md.get("tags"),
    "events": md.get("events"),
    "warnings": warnings,
}))
"#;

#[test]
fn cloud_init_in_aws_mode_reads_everything_without_a_404_or_a_warning() {
    let dir = tempfile::tempdir().expect("tmp");
    let ns = start(dir.path());
    let out = ns.ok_in_vm(&["/usr/bin/python3", "-c", CLOUD_INIT_AWS], &[]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["cloud"], "aws");
    assert_eq!(v["api_version"], "2021-03-23");
    assert_eq!(v["instance_id"], "i-2f1d4c3b");
    assert_eq!(v["identity"]["instanceId"], "i-2f1d4c3b");
    assert_eq!(v["region"], "us-east-1");
    assert_eq!(v["availability_zone"], ZONE);
    assert_eq!(
        v["network_config"],
        serde_json::json!({"version": 2, "ethernets": {"veth1": {
            "dhcp4": true, "dhcp6": true, "match": {"macaddress": MAC}, "set-name": "veth1"}}})
    );
    assert!(
        v["public_keys"][0]
            .as_str()
            .is_some_and(|k| k.ends_with("ops@example")),
        "{v}"
    );
    assert!(v["userdata"]
        .as_str()
        .is_some_and(|u| u.starts_with("#cloud-config")));
    assert_eq!(v["tags"]["instance"]["role"], "db");
    assert_eq!(v["events"]["maintenance"]["scheduled"], "[]");
    assert_eq!(v["warnings"], serde_json::json!([]), "{v}");
    assert_eq!(requests_with_status(dir.path(), 404), Vec::<String>::new());
    assert_eq!(requests_with_status(dir.path(), 401), Vec::<String>::new());
}

#[test]
fn curl_reaches_the_link_local_address_and_is_known_by_its_mac() {
    let dir = tempfile::tempdir().expect("tmp");
    let ns = start(dir.path());
    let base = "http://[fe80::a9fe:a9fe%25veth1]";
    let token = ns.ok_in_vm(
        &[
            "curl",
            "-sS",
            "-g",
            "--max-time",
            "10",
            "-X",
            "PUT",
            "-H",
            "X-aws-ec2-metadata-token-ttl-seconds: 60",
            &format!("{base}/latest/api/token"),
        ],
        &[],
    );
    let header = format!("X-aws-ec2-metadata-token: {token}");
    let id = ns.ok_in_vm(
        &[
            "curl",
            "-sS",
            "-g",
            "--max-time",
            "10",
            "-H",
            &header,
            &format!("{base}/latest/meta-data/instance-id"),
        ],
        &[],
    );
    assert_eq!(id, "i-2f1d4c3b");
    assert!(
        answered_from(dir.path(), 200, "[fe80::f816:3eff:fe00:1%"),
        "asked from the EUI-64 link-local address: {:?}",
        requests_with_status(dir.path(), 200)
    );
}

const HOP_PROBE: &str = r#"
import json, socket, subprocess
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(0x86DD))
s.bind(("veth1", 0))
s.settimeout(5)
def curl(*a):
    return subprocess.run(["curl", "-sS", "-g", "--max-time", "10", *a], capture_output=True, check=True).stdout
base = "http://[fd00:ec2::254]"
token = curl("-X", "PUT", "-H", "X-aws-ec2-metadata-token-ttl-seconds: 60", base + "/latest/api/token")
plain = curl("-H", "X-aws-ec2-metadata-token: " + token.decode(), base + "/latest/meta-data/instance-id")
hops = {}
while len(hops) < 2:
    try:
        pkt = s.recv(65535)
    except socket.timeout:
        break
    ip6 = pkt[14:]
    if ip6[6] != 6 or socket.inet_ntop(socket.AF_INET6, ip6[8:24]) != "fd00:ec2::254":
        continue
    tcp = ip6[40:]
    payload = tcp[(tcp[12] >> 4) * 4:]
    if token and token in payload:
        hops["token"] = ip6[7]
    if plain and plain in payload:
        hops["plain"] = ip6[7]
print(json.dumps(hops))
"#;

#[test]
fn the_token_reply_leaves_with_hop_limit_1_over_ipv6() {
    let dir = tempfile::tempdir().expect("tmp");
    let ns = start(dir.path());
    let out = ns.ok_in_vm(&["/usr/bin/python3", "-c", HOP_PROBE], &[]);
    let hops: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(hops["token"], 1, "{hops}");
    assert_eq!(hops["plain"], 64, "{hops}");
}
