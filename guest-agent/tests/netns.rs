//! Live network configuration inside a network namespace this test creates (names
//! start with `gat-`, removed on drop): veth links carry the MACs of
//! `network_data.json`; after the run `ip -j` shows exactly the configured state.

mod common;
use common::service_double::{Behaviour, ServiceDouble};
use common::*;
use serde_json::Value;
use std::io::{BufRead, Read};
use std::process::Command;

struct Netns(String);

impl Netns {
    fn new(tag: &str) -> Self {
        let name = format!("gat-{tag}-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        run_tool(Command::new("ip").args(["netns", "add", &name]));
        Netns(name)
    }

    fn ip(&self, args: &[&str]) -> String {
        let out = Command::new("ip")
            .args(["-n", &self.0])
            .args(args)
            .output()
            .expect("ip runs");
        assert!(
            out.status.success(),
            "ip {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf8")
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["-j"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ip(&all)).expect("ip -j gives JSON")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
    }
}

fn run_in(ns: &Netns, iso: &std::path::Path, root: &std::path::Path) -> Value {
    let out = agent_in(
        Some(&ns.0),
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
    let v = ns.json(&[family, "route", "show", "dev", dev]);
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
    let link = &ns.json(&["link", "show", "gat0"])[0];
    assert_eq!(link["mtu"], 1450);
    assert!(
        link["flags"]
            .as_array()
            .expect("flags")
            .iter()
            .any(|f| f == "UP"),
        "{link}"
    );
    let peer = &ns.json(&["link", "show", "gat1"])[0];
    assert!(
        peer["flags"]
            .as_array()
            .expect("flags")
            .iter()
            .any(|f| f == "UP"),
        "dhcp link is up too: {peer}"
    );

    let addrs = &ns.json(&["addr", "show", "dev", "gat0"])[0]["addr_info"];
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
    let dir = tempfile::tempdir().expect("tempdir");
    let iso = iso_for(&fixture(MULTINIC), dir.path(), "cd");
    let root = dir.path().join("root");
    std::fs::create_dir(&root).expect("mkdir");
    let ns = Netns::new("net");
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
        "fa:16:3e:00:00:02",
    ]);

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
    let dir = tempfile::tempdir().expect("tempdir");
    let iso = iso_for(&fixture(MULTINIC), dir.path(), "cd");
    let root = dir.path().join("root");
    std::fs::create_dir(&root).expect("mkdir");
    let ns = Netns::new("miss");
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
        "02:00:00:00:00:99",
    ]);
    let report = run_in(&ns, &iso, &root);
    let (outcome, details) = step(&report, "network");
    assert_eq!(outcome, "ok");
    assert!(
        details
            .contains(&"skipped: link interface1 (fa:16:3e:00:00:02): no interface has this MAC"),
        "{details:?}"
    );
    assert_eq!(ns.json(&["link", "show", "gat0"])[0]["mtu"], 1450);
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
    let ns = Netns::new("md");
    ns.ip(&["link", "set", "lo", "up"]);
    ns.ip(&["addr", "add", "169.254.169.254/32", "dev", "lo"]);
    let mut server = Command::new("ip")
        .args(["netns", "exec", &ns.0])
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
        Some(&ns.0),
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
