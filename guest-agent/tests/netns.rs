//! Live network configuration inside a network namespace this test creates (names
//! start with `gat-`, removed on drop): veth links carry the MACs of
//! `network_data.json`; after the run `ip -j` shows exactly the configured state.

mod common;
use common::service_double::{Behaviour, ServiceDouble};
use common::*;
use netnstest::Netns;
use serde_json::Value;
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};
use std::process::Command;

fn netns(tag: &str) -> Netns {
    Netns::new("gat", tag)
}

/// `ip -j ARGS` in the namespace, parsed.
fn ip_json(ns: &Netns, args: &[&str]) -> Value {
    let mut all = vec!["-j"];
    all.extend_from_slice(args);
    serde_json::from_str(&ns.ip(&all)).expect("ip -j gives JSON")
}

/// A drive of the multi-NIC fixture and an empty root in `dir`; in the namespace,
/// the veth pair `gat0` (the fixture's first MAC) and `gat1` (`peer_mac`).
fn drive_and_veth(dir: &Path, ns: &Netns, peer_mac: &str) -> (PathBuf, PathBuf) {
    let iso = iso_for(&fixture(MULTINIC), dir, "cd");
    let root = dir.join("root");
    std::fs::create_dir(&root).expect("mkdir");
    ns.ip(&[
        "link",
        "add",
        "gat0",
        "address",
        "fa:16:3e:00:00:01",
        "type",
        "veth",
        "peer",
        "name",
        "gat1",
        "address",
        peer_mac,
    ]);
    (iso, root)
}

fn run_in(ns: &Netns, iso: &Path, root: &Path) -> Value {
    let out = agent_in(
        Some(ns.name()),
        &[
            "run",
            "--format",
            "json",
            "--device",
            iso.to_str().expect("utf8"),
            "--root",
            root.to_str().expect("utf8"),
            "--live",
            "--steps",
            "network",
        ],
    );
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(out.status.code(), Some(0), "{report}");
    report
}

/// Routes of a family on a device, as (destination, gateway) pairs, sorted.
fn routes(ns: &Netns, family: &str, dev: &str) -> Vec<(String, String)> {
    let v = ip_json(ns, &[family, "route", "show", "dev", dev]);
    let mut out: Vec<(String, String)> = v
        .as_array()
        .expect("array")
        .iter()
        .map(|r| {
            (
                r["dst"].as_str().unwrap_or("").to_owned(),
                r["gateway"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    out.sort();
    out
}

fn check_state(ns: &Netns) {
    let link = &ip_json(ns, &["link", "show", "gat0"])[0];
    assert_eq!(link["mtu"], 1450);
    assert!(
        link["flags"]
            .as_array()
            .expect("flags")
            .iter()
            .any(|f| f == "UP"),
        "{link}"
    );
    let peer = &ip_json(ns, &["link", "show", "gat1"])[0];
    assert!(
        peer["flags"]
            .as_array()
            .expect("flags")
            .iter()
            .any(|f| f == "UP"),
        "dhcp link is up too: {peer}"
    );

    let addrs = &ip_json(ns, &["addr", "show", "dev", "gat0"])[0]["addr_info"];
    let mut global: Vec<String> = addrs
        .as_array()
        .expect("addr_info")
        .iter()
        .filter(|a| a["scope"] == "global")
        .map(|a| format!("{}/{}", a["local"].as_str().expect("local"), a["prefixlen"]))
        .collect();
    global.sort();
    assert_eq!(global, ["10.0.0.5/24", "2001:db8::5/64"]);

    assert_eq!(
        routes(ns, "-4", "gat0"),
        [
            ("10.0.0.0/24".to_owned(), String::new()),
            ("192.168.10.0/24".to_owned(), "10.0.0.254".to_owned()),
            ("default".to_owned(), "10.0.0.1".to_owned()),
        ]
    );
    let v6 = routes(ns, "-6", "gat0");
    assert!(
        v6.contains(&("default".into(), "2001:db8::1".into())),
        "{v6:?}"
    );
    assert!(
        v6.contains(&("2001:db8::/64".into(), String::new())),
        "{v6:?}"
    );
    assert!(
        v6.iter()
            .all(|(d, _)| d == "default" || d == "2001:db8::/64" || d.starts_with("fe80::")),
        "{v6:?}"
    );
    // Nothing on the DHCP link: that is the OS's job.
    assert_eq!(routes(ns, "-4", "gat1"), []);
}

#[test]
fn links_by_mac_get_mtu_addresses_and_routes() {
    let (dir, ns) = (tempfile::tempdir().expect("tempdir"), netns("net"));
    let (iso, root) = drive_and_veth(dir.path(), &ns, "fa:16:3e:00:00:02");

    let report = run_in(&ns, &iso, &root);
    let (outcome, details) = step(&report, "network");
    assert_eq!(outcome, "ok", "{report}");
    assert!(
        details.contains(&"ok: gat0 (fa:16:3e:00:00:01): up, mtu 1450"),
        "{details:?}"
    );
    check_state(&ns);
    assert!(read(&root.join("etc/resolv.conf")).contains("nameserver 10.0.0.2\n"));
    for s in ["hostname", "ssh-keys", "files"] {
        assert_eq!(step(&report, s).1, ["skipped: not selected (--steps)"]);
    }

    // Every boot: a second run converges on the same state, without errors.
    run_in(&ns, &iso, &root);
    check_state(&ns);
}

#[test]
fn a_mac_with_no_interface_is_reported_not_fatal() {
    let (dir, ns) = (tempfile::tempdir().expect("tempdir"), netns("miss"));
    let (iso, root) = drive_and_veth(dir.path(), &ns, "02:00:00:00:00:99");
    let report = run_in(&ns, &iso, &root);
    let (outcome, details) = step(&report, "network");
    assert_eq!(outcome, "ok");
    assert!(
        details
            .contains(&"skipped: link interface1 (fa:16:3e:00:00:02): no interface has this MAC"),
        "{details:?}"
    );
    assert_eq!(ip_json(&ns, &["link", "show", "gat0"])[0]["mtu"], 1450);
}

/// Not a test on its own: the server half of `metadata_service_at_the_link_local_address`,
/// started by it inside its namespace. Serves until its standard input closes.
#[test]
#[ignore = "helper process for metadata_service_at_the_link_local_address"]
fn serve_double_in_namespace() {
    let fixture_path =
        std::env::var("GAT_DOUBLE_INSTANCE").expect("GAT_DOUBLE_INSTANCE names the fixture");
    let _svc = ServiceDouble::start_on(
        "169.254.169.254:80",
        &instance(&fixture(&fixture_path)),
        Behaviour::default(),
    );
    println!("GAT-DOUBLE-READY");
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
}

#[test]
fn metadata_service_at_the_link_local_address() {
    let ns = netns("md");
    ns.ip(&["link", "set", "lo", "up"]);
    ns.ip(&["addr", "add", "169.254.169.254/32", "dev", "lo"]);
    let mut server = Command::new("ip")
        .args(["netns", "exec", ns.name()])
        .arg(std::env::current_exe().expect("test binary"))
        .args([
            "serve_double_in_namespace",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .env("GAT_DOUBLE_INSTANCE", MULTINIC)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("server starts");
    let mut lines = std::io::BufReader::new(server.stdout.take().expect("stdout")).lines();
    assert!(
        lines.any(|l| l.map(|l| l.contains("GAT-DOUBLE-READY")).unwrap_or(false)),
        "server did not start"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let root = guest_root(dir.path());
    // No --metadata-url: the default, http://169.254.169.254, inside the namespace.
    let out = agent_in(
        Some(ns.name()),
        &[
            "run",
            "--format",
            "json",
            "--source",
            "metadata",
            "--root",
            root.to_str().expect("utf8"),
        ],
    );
    drop(server.stdin.take());
    let _ = server.kill();
    let _ = server.wait();
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert!(
        report["source"].as_str().expect("source").contains(
            "metadata service http://169.254.169.254 (openstack/2025-04-04, IMDSv2 token)"
        ),
        "{report}"
    );
    assert_eq!(read(&root.join("etc/hostname")), "web-02\n");
}
