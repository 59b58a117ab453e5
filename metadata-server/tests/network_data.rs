//! `network_data.json` over a real socket, at every OpenStack version: an instance
//! without a network gets 404 and no listing line; an instance with one gets Nova's
//! bytes (checked against an oracle of Nova's key order run by Python's json.dumps)
//! at every version, also those before 2015-10-15 that do not list it, as Nova does.

mod common;

use common::*;
use compute::metadata::OpenStackVersion;
use std::io::Write;
use std::process::{Command, Stdio};

/// The bytes Nova writes for a document's `network`, from the Python oracle.
fn nova_bytes(network: &serde_json::Value) -> Vec<u8> {
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../compute/tests/py/nova_network_data.py"
    );
    let mut child = Command::new("/usr/bin/python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("/usr/bin/python3 runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(network.to_string().as_bytes())
        .expect("write network");
    let out = child.wait_with_output().expect("python3 finishes");
    assert!(
        out.status.success(),
        "oracle failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn fixture_network(uuid: &str) -> Option<serde_json::Value> {
    let docs: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(fixture()).expect("fixture")).expect("json");
    let doc = docs
        .into_iter()
        .find(|d| d["uuid"] == uuid)
        .expect("instance in the fixture");
    doc.get("network").cloned()
}

fn versions() -> Vec<&'static str> {
    OpenStackVersion::ALL
        .iter()
        .map(|v| v.as_str())
        .chain(["latest"])
        .collect()
}

fn listed(r: &Resp) -> Vec<String> {
    assert_eq!(r.status, 200);
    r.text().split('\n').map(str::to_owned).collect()
}

/// C has no network; it is reached through a listener bound to it.
#[test]
fn no_network_means_404_and_no_listing_line_at_every_version() {
    assert!(fixture_network(C).is_none(), "C must have no network");
    let bound = format!("127.0.0.1:0={C}");
    let server = Server::start(&["--instance-listener", &bound]);
    let port = server.bound_port(C);
    for v in versions() {
        let path = format!("/openstack/{v}/network_data.json");
        for method in ["GET", "HEAD"] {
            let r = request(NOBODY_IP, port, method, &path, &[], b"");
            assert_eq!(r.status, 404, "{method} {path}");
        }
        let r = request(NOBODY_IP, port, "GET", &path, &[], b"");
        assert_eq!(r.body, NOT_FOUND_BODY, "{path}");
        for dir in [format!("/openstack/{v}"), format!("/openstack/{v}/")] {
            let lines = listed(&request(NOBODY_IP, port, "GET", &dir, &[], b""));
            assert!(
                lines.contains(&"meta_data.json".to_owned()),
                "{dir}: {lines:?}"
            );
            assert!(
                !lines.contains(&"network_data.json".to_owned()),
                "{dir}: {lines:?}"
            );
        }
    }
    // The rest of C's tree is still there.
    let md = request(
        NOBODY_IP,
        port,
        "GET",
        "/openstack/latest/meta_data.json",
        &[],
        b"",
    );
    assert_eq!(md.status, 200);
}

/// A and B get Nova's bytes at every version, as Nova answers them; the versions
/// before 2015-10-15 do not list the file, as in Nova.
#[test]
fn instances_with_networks_get_novas_bytes_at_every_version() {
    let server = Server::start(&[]);
    for (uuid, ip) in [(A, A_IP), (B, B_IP)] {
        let want = nova_bytes(&fixture_network(uuid).expect("has a network"));
        for v in versions() {
            let r = server.get(ip, &format!("/openstack/{v}/network_data.json"));
            assert_eq!(r.status, 200, "{uuid} {v}");
            assert_eq!(r.text(), String::from_utf8_lossy(&want), "{uuid} {v}");
            assert_eq!(r.header("content-type"), Some("text/plain; charset=UTF-8"));
            let head = server.req(
                ip,
                "HEAD",
                &format!("/openstack/{v}/network_data.json"),
                &[],
                b"",
            );
            assert_eq!(head.status, 200, "HEAD {v}");
            assert_eq!(
                head.header("content-length"),
                Some(want.len().to_string().as_str())
            );
            let lines = listed(&server.get(ip, &format!("/openstack/{v}")));
            let old = ["2012-08-10", "2013-04-04", "2013-10-17"].contains(&v);
            assert_eq!(
                lines.contains(&"network_data.json".to_owned()),
                !old,
                "{v} lists {lines:?}"
            );
        }
        // The old listings are exactly Nova's (both instances have user data).
        for (v, want) in [
            ("2012-08-10", "meta_data.json\nuser_data"),
            ("2013-04-04", "meta_data.json\nuser_data\npassword"),
            (
                "2013-10-17",
                "meta_data.json\nuser_data\npassword\nvendor_data.json",
            ),
        ] {
            assert_eq!(server.get(ip, &format!("/openstack/{v}/")).text(), want);
        }
    }
}
