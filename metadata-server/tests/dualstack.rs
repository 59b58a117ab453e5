//! The dual-stack instance (compute's `dualstack` fixture: IPv4 by DHCP with the
//! address Nova knows from the port, IPv6 by SLAAC) found by all four ways of
//! identifying a caller, over real sockets: its IPv4 and its IPv6 source address,
//! a trusted proxy's `X-Forwarded-For` (either address), Neutron-style signed headers
//! and a bound listener. Through each, every path of its tree (crawled from the
//! listings) answers with the renderer's bytes; `local-ipv4` is the DHCP address and
//! `network_data.json` is what Nova writes for that port.
//!
//! The server and the clients run in a network namespace this test creates
//! (`mdd-<pid>`, removed afterwards), whose `lo` carries the fixture's addresses; the
//! clients run on a thread that joined it. Needs root.

mod common;

use common::*;
use compute::metadata::{Entry, MetadataPath, OpenStackVersion};
use metadata_server::signature::SharedSecret;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const DUAL: &str = "6e1d2c3b-4a5f-4d7e-8c9b-0a1b2c3d4e5f";
const DUAL_V4: &str = "10.20.0.14";
const DUAL_V6: &str = "2001:db8:20:0:f816:3eff:fe4c:2d81";
const PROXY: &str = "127.0.0.9";
const PORT_V4: u16 = 8775;
const PORT_V6: u16 = 8776;
const PORT_BOUND: u16 = 8777;

fn compute_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../compute/tests/fixtures")
        .join(name)
}

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("ip (iproute2) runs");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The namespace and the server inside it; both go away on drop.
struct Netns {
    name: String,
    server: Option<Child>,
    log: PathBuf,
}

impl Netns {
    fn create(log: PathBuf) -> Netns {
        let ns = Netns {
            name: format!("mdd-{}", std::process::id()),
            server: None,
            log,
        };
        ip(&["netns", "add", &ns.name]);
        ip(&["-n", &ns.name, "link", "set", "lo", "up"]);
        ip(&[
            "-n",
            &ns.name,
            "addr",
            "add",
            &format!("{DUAL_V4}/32"),
            "dev",
            "lo",
        ]);
        ip(&[
            "-n",
            &ns.name,
            "addr",
            "add",
            &format!("{DUAL_V6}/128"),
            "dev",
            "lo",
            "nodad",
        ]);
        ns
    }

    fn path(&self) -> PathBuf {
        PathBuf::from("/var/run/netns").join(&self.name)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn curl(&self, args: &[&str]) -> String {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.name,
                "curl",
                "-sS",
                "--max-time",
                "10",
            ])
            .args(args)
            .output()
            .expect("curl runs");
        assert!(
            out.status.success(),
            "curl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Some(mut c) = self.server.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// One GET from `from` to `to`, on a connection of its own.
fn get(from: IpAddr, to: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Resp {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    let stream = rt
        .block_on(async {
            let sock = match from {
                IpAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
                IpAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
            };
            sock.bind(SocketAddr::new(from, 0))?;
            sock.connect(to).await
        })
        .unwrap_or_else(|e| panic!("connect {from} -> {to}: {e}"));
    let mut s = stream.into_std().expect("std");
    s.set_nonblocking(false).expect("blocking");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: 169.254.169.254\r\nConnection: close\r\n");
    for (n, v) in headers {
        req.push_str(&format!("{n}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).expect("write");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read");
    parse_response(&raw, false)
}

/// Every path reachable from the two version listings, by following listing lines,
/// with its answer. Directories are asked with a trailing `/`, recorded without.
fn crawl(ask: &dyn Fn(&str) -> Resp) -> BTreeMap<String, Resp> {
    let mut out = BTreeMap::new();
    let mut dirs = vec!["/".to_owned(), "/openstack/".to_owned()];
    while let Some(dir) = dirs.pop() {
        let r = ask(&dir);
        assert_eq!(r.status, 200, "{dir}: {}", r.text());
        let top = dir == "/" || dir == "/openstack/";
        for line in r.text().split('\n').filter(|l| !l.is_empty()) {
            let child = if top || line.ends_with('/') {
                Some(format!("{dir}{}/", line.trim_end_matches('/')))
            } else if dir.ends_with("/public-keys/") {
                let index = line.split_once('=').map_or(line, |(i, _)| i);
                Some(format!("{dir}{index}/"))
            } else {
                None
            };
            match child {
                Some(d) => dirs.push(d),
                None => {
                    let leaf = format!("{dir}{line}");
                    let r = ask(&leaf);
                    out.insert(leaf, r);
                }
            }
        }
        let key = match dir.trim_end_matches('/') {
            "" => "/",
            d => d,
        };
        out.insert(key.to_owned(), r);
    }
    out
}

/// What the renderer has at an HTTP path (the seed is stored, so bodies are fixed);
/// `Some(None)` for a leaf the server makes itself (signatures, events).
fn rendered(tree: &compute::MetadataTree, path: &str) -> Option<Option<Vec<u8>>> {
    let p = MetadataPath::parse(path)?;
    Some(match tree.lookup(p.segments())? {
        Entry::Dir(d) => Some(d.listing.as_ref()?.to_vec()),
        Entry::File(f) => Some(f.body.with_seed("").to_vec()),
        Entry::Password => Some(Vec::new()),
        Entry::Live(_) => None,
    })
}

/// Runs in the namespace: the four ways, each crawling the whole tree.
fn identify_every_way(secret: &SharedSecret, tree: &compute::MetadataTree, golden: &[u8]) {
    let v4: IpAddr = DUAL_V4.parse().expect("v4");
    let v6: IpAddr = DUAL_V6.parse().expect("v6");
    let proxy: IpAddr = PROXY.parse().expect("proxy");
    let nobody: IpAddr = NOBODY_IP.parse().expect("nobody");
    let at_v4 = SocketAddr::new(v4, PORT_V4);
    let at_v6 = SocketAddr::new(v6, PORT_V6);
    let local = |port| SocketAddr::from(([127, 0, 0, 1], port));

    let ready = (0..200).any(|_| {
        let up = [local(PORT_V4), local(PORT_BOUND), at_v6]
            .iter()
            .all(|a| std::net::TcpStream::connect(a).is_ok());
        if !up {
            std::thread::sleep(Duration::from_millis(50));
        }
        up
    });
    assert!(ready, "the server does not listen in the namespace");

    // Nobody: the listings only.
    assert_eq!(
        get(nobody, local(PORT_V4), "/latest/meta-data/", &[]).status,
        404
    );

    let signature = secret.sign(DUAL);
    let tenant = "3f2e1d0c9b8a47f6a5e4d3c2b1a09f8e";
    let signed = [
        ("X-Instance-ID", DUAL),
        ("X-Tenant-ID", tenant),
        ("X-Instance-ID-Signature", signature.as_str()),
    ];
    type Ask<'a> = Box<dyn Fn(&str) -> Resp + 'a>;
    let ways: Vec<(&str, Ask)> = vec![
        ("IPv4 source address", Box::new(|p| get(v4, at_v4, p, &[]))),
        ("IPv6 source address", Box::new(|p| get(v6, at_v6, p, &[]))),
        (
            "trusted proxy, IPv4 X-Forwarded-For",
            Box::new(|p| get(proxy, local(PORT_V4), p, &[("X-Forwarded-For", DUAL_V4)])),
        ),
        (
            "trusted proxy, IPv6 X-Forwarded-For",
            Box::new(|p| get(proxy, local(PORT_V4), p, &[("X-Forwarded-For", DUAL_V6)])),
        ),
        (
            "signed headers",
            Box::new(|p| get(nobody, local(PORT_V4), p, &signed)),
        ),
        (
            "bound listener",
            Box::new(|p| get(nobody, local(PORT_BOUND), p, &[])),
        ),
    ];

    let mut first: Option<BTreeMap<String, Resp>> = None;
    for (way, ask) in &ways {
        let got = crawl(ask.as_ref());
        for (path, r) in &got {
            assert_eq!(r.status, 200, "{way}: {path}");
            let want = rendered(tree, path).unwrap_or_else(|| panic!("{way}: {path} not rendered"));
            if let Some(want) = want {
                assert_eq!(r.body, want, "{way}: {path}");
            }
        }
        let ipv4 = &got["/latest/meta-data/local-ipv4"];
        assert_eq!(ipv4.text(), DUAL_V4, "{way}");
        assert_eq!(
            got["/openstack/latest/network_data.json"].body, golden,
            "{way}"
        );
        // Unlisted but served, as in Nova.
        let old = ask("/openstack/2012-08-10/network_data.json");
        assert_eq!((old.status, old.body.as_slice()), (200, golden), "{way}");
        match &first {
            None => first = Some(got),
            Some(f) => {
                let a: Vec<&String> = f.keys().collect();
                let b: Vec<&String> = got.keys().collect();
                assert_eq!(a, b, "{way} reaches other paths than {}", ways[0].0);
            }
        }
    }
    let got = first.expect("crawled");
    // Every listed path of the rendered tree was reached.
    let listed = tree
        .walk()
        .into_iter()
        .filter(|(p, _)| {
            let old = OpenStackVersion::ALL
                .iter()
                .filter(|v| **v < OpenStackVersion::V2015_10_15)
                .any(|v| *p == format!("openstack/{v}/network_data.json"));
            // Nova's 2009-04-04 answers dynamic/ without listing it.
            !old && !p.starts_with("ec2/2009-04-04/dynamic")
        })
        .count();
    assert_eq!(
        got.len(),
        listed,
        "every listed path of the tree is crawled"
    );
    assert!(got.len() > 250, "the whole tree: {}", got.len());
}

#[test]
fn dual_stack_instance_is_found_every_way_and_answers_every_path() {
    let dir = tempfile::tempdir().expect("tmp");
    let dual: serde_json::Value =
        serde_json::from_slice(&std::fs::read(compute_fixture("dualstack.json")).expect("read"))
            .expect("json");
    let mut docs: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(fixture()).expect("read")).expect("json");
    docs.push(dual.clone());
    let instances = dir.path().join("instances.json");
    std::fs::write(&instances, serde_json::to_vec(&docs).expect("json")).expect("write");
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, "dual-s3cret\n").expect("write");
    let golden = std::fs::read(compute_fixture("dualstack.network_data.json")).expect("golden");

    // The golden bytes (printed by Nova's own netutils.get_network_metadata for the
    // same port) also follow from the document by the oracle of Nova's rules.
    let oracle = Command::new("/usr/bin/python3")
        .arg(compute_fixture("../py/nova_network_data.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("/usr/bin/python3 runs");
    oracle
        .stdin
        .as_ref()
        .expect("stdin")
        .write_all(dual["network"].to_string().as_bytes())
        .expect("write");
    let out = oracle.wait_with_output().expect("oracle");
    assert!(out.status.success());
    assert_eq!(out.stdout, golden, "oracle and golden disagree");

    let instance = compute::Instance::from_json(&serde_json::to_vec(&dual).expect("json"))
        .expect("fixture is valid");
    let tree = compute::render_service(&instance, &compute::Settings::default());

    let mut ns = Netns::create(dir.path().join("server.log"));
    let server = Command::new("ip")
        .args(["netns", "exec", &ns.name, bin(), "serve"])
        .args(["--listen", &format!("0.0.0.0:{PORT_V4}")])
        .args(["--listen", &format!("[::]:{PORT_V6}")])
        .args([
            "--instance-listener",
            &format!("127.0.0.1:{PORT_BOUND}={DUAL}"),
        ])
        .args(["--trusted-proxy", &format!("{PROXY}/32")])
        .arg("--proxy-shared-secret-file")
        .arg(&secret_file)
        .arg("--instances")
        .arg(&instances)
        .arg("--password-dir")
        .arg(dir.path().join("pw"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .stderr(std::fs::File::create(&ns.log).expect("log"))
        .stdout(Stdio::null())
        .spawn()
        .expect("server starts");
    ns.server = Some(server);

    let path = ns.path();
    let secret = SharedSecret::from_file_bytes(b"dual-s3cret");
    let outcome = std::thread::scope(|s| {
        s.spawn(|| {
            let f = std::fs::File::open(&path).expect("open the namespace");
            rustix::thread::move_into_link_name_space(
                f.as_fd(),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .expect("setns into the test's namespace");
            identify_every_way(&secret, &tree, &golden);
        })
        .join()
    });
    if let Err(panic) = outcome {
        eprintln!("server log:\n{}", ns.log());
        std::panic::resume_unwind(panic);
    }

    // curl, from each of the instance's own addresses.
    let v4 = ns.curl(&[
        "--interface",
        DUAL_V4,
        &format!("http://{DUAL_V4}:{PORT_V4}/latest/meta-data/local-ipv4"),
    ]);
    assert_eq!(v4, DUAL_V4);
    let v6 = ns.curl(&[
        "--interface",
        DUAL_V6,
        &format!("http://[{DUAL_V6}]:{PORT_V6}/openstack/latest/network_data.json"),
    ]);
    assert_eq!(v6.as_bytes(), golden.as_slice());
}
