//! The real address: the server listens on 169.254.169.254:80 inside a network
//! namespace this test creates (`mds-s<pid>`), a guest namespace (`mds-g<pid>`) reaches
//! it over a veth pair from its fixed IP 10.0.0.5, and plain `curl` and cloud-init's
//! readers talk to `http://169.254.169.254`. The IP TTL of the token reply is read off
//! the wire. Both namespaces are removed afterwards. Needs root.

mod common;

use common::*;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

struct Namespaces {
    srv: String,
    vm: String,
    server: Option<Child>,
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

impl Namespaces {
    fn create() -> Namespaces {
        let id = std::process::id();
        let ns = Namespaces {
            srv: format!("mds-s{id}"),
            vm: format!("mds-g{id}"),
            server: None,
        };
        ip(&["netns", "add", &ns.srv]);
        ip(&["netns", "add", &ns.vm]);
        for n in [&ns.srv, &ns.vm] {
            ip(&["-n", n, "link", "set", "lo", "up"]);
        }
        // The pair is born inside the namespaces: the host's network is never touched.
        ip(&[
            "-n", &ns.srv, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1",
            "netns", &ns.vm,
        ]);
        ip(&[
            "-n",
            &ns.srv,
            "addr",
            "add",
            "169.254.169.254/32",
            "dev",
            "lo",
        ]);
        ip(&["-n", &ns.srv, "addr", "add", "10.0.0.1/24", "dev", "veth0"]);
        ip(&["-n", &ns.srv, "link", "set", "veth0", "up"]);
        ip(&["-n", &ns.vm, "addr", "add", "10.0.0.5/24", "dev", "veth1"]);
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
        ns
    }

    fn in_vm(&self, cmd: &[&str]) -> std::process::Output {
        Command::new("ip")
            .args(["netns", "exec", &self.vm])
            .args(cmd)
            .output()
            .expect("ip netns exec runs")
    }

    fn curl(&self, args: &[&str]) -> String {
        let mut full = vec!["curl", "-sS", "--max-time", "10"];
        full.extend_from_slice(args);
        let out = self.in_vm(&full);
        assert!(
            out.status.success(),
            "curl {args:?}: {}",
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

const TTL_PROBE: &str = r#"
import json, socket, subprocess
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(0x0800))
s.bind(("veth1", 0))
s.settimeout(5)
def curl(*a):
    return subprocess.run(["curl", "-sS", "--max-time", "10", *a], capture_output=True, check=True).stdout
token = curl("-X", "PUT", "-H", "X-aws-ec2-metadata-token-ttl-seconds: 60", "http://169.254.169.254/latest/api/token")
plain = curl("http://169.254.169.254/latest/meta-data/instance-id")
ttls = {}
while len(ttls) < 2:
    try:
        pkt = s.recv(65535)
    except socket.timeout:
        break
    iph = pkt[14:]
    if iph[9] != 6 or socket.inet_ntoa(iph[12:16]) != "169.254.169.254":
        continue
    tcp = iph[(iph[0] & 15) * 4:]
    payload = tcp[(tcp[12] >> 4) * 4:]
    if token and token in payload:
        ttls["token"] = iph[8]
    if plain and plain in payload:
        ttls["plain"] = iph[8]
print(json.dumps(ttls))
"#;

#[test]
fn curl_and_cloud_init_at_169_254_169_254_in_a_namespace() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut docs: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixture()).expect("read")).expect("json");
    docs[0]["network"]["networks"][0]["ip_address"] = "10.0.0.5".into();
    let instances = dir.path().join("instances.json");
    std::fs::write(&instances, serde_json::to_vec(&docs).expect("json")).expect("write");

    let mut ns = Namespaces::create();
    let server = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.srv,
            bin(),
            "serve",
            "--listen",
            "169.254.169.254:80",
            "--instances",
        ])
        .arg(&instances)
        .arg("--password-dir")
        .arg(dir.path().join("pw"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .stderr(std::fs::File::create(dir.path().join("log")).expect("log"))
        .stdout(Stdio::null())
        .spawn()
        .expect("server starts");
    ns.server = Some(server);
    let ready = (0..100).any(|_| {
        let ok = ns
            .in_vm(&[
                "curl",
                "-s",
                "-o",
                "/dev/null",
                "--max-time",
                "2",
                "http://169.254.169.254/",
            ])
            .status
            .success();
        if !ok {
            std::thread::sleep(Duration::from_millis(100));
        }
        ok
    });
    assert!(
        ready,
        "server not reachable: {}",
        std::fs::read_to_string(dir.path().join("log")).unwrap_or_default()
    );

    assert!(ns
        .curl(&["http://169.254.169.254/"])
        .ends_with("2009-04-04\n2011-01-01\n2011-05-01\n2012-01-12\n2014-02-25\n2014-11-05\n2015-10-20\n2016-04-19\n2016-06-30\n2016-09-02\n2018-03-28\n2018-08-17\n2018-09-24\n2019-10-01\n2020-10-27\n2021-01-03\n2021-03-23\n2021-07-15\n2022-09-24\n2024-04-11\nlatest"));
    let md: serde_json::Value =
        serde_json::from_str(&ns.curl(&["http://169.254.169.254/openstack/latest/meta_data.json"]))
            .expect("json");
    assert_eq!(md["uuid"], A);
    assert_eq!(
        ns.curl(&["http://169.254.169.254/latest/meta-data/local-ipv4"]),
        "10.0.0.5"
    );
    assert!(ns
        .curl(&["http://169.254.169.254/latest/meta-data/"])
        .contains("public-keys/"));
    let token = ns.curl(&[
        "-X",
        "PUT",
        "-H",
        "X-aws-ec2-metadata-token-ttl-seconds: 60",
        "http://169.254.169.254/latest/api/token",
    ]);
    let hdr = format!("X-aws-ec2-metadata-token: {token}");
    assert_eq!(
        ns.curl(&[
            "-H",
            &hdr,
            "http://169.254.169.254/latest/meta-data/instance-id"
        ]),
        "i-d8e02d56"
    );

    // cloud-init's network reader, whose EC2 part always asks 169.254.169.254.
    let v = cloudinit_reader(&ns);
    assert_eq!(v["uuid"], A);
    assert_eq!(v["ec2_in_read_v2"], "i-d8e02d56");
    assert_eq!(v["ec2"]["local-ipv4"], "10.0.0.5");

    // The token reply leaves with IP TTL 1 (the hop limit); other replies with the default.
    let out = ns.in_vm(&["/usr/bin/python3", "-c", TTL_PROBE]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ttls: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(ttls["token"], 1, "{ttls}");
    assert_eq!(ttls["plain"], 64, "{ttls}");
}

fn cloudinit_reader(ns: &Namespaces) -> serde_json::Value {
    let out = ns.in_vm(&[
        "/usr/bin/python3",
        "-c",
        CLOUDINIT,
        "http://169.254.169.254",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

const CLOUDINIT: &str = r#"
import json, sys
from cloudinit.sources.helpers import openstack, ec2
url = sys.argv[1]
r = openstack.MetadataReader(url).read_v2()
print(json.dumps({
    "uuid": r["metadata"]["uuid"],
    "ec2_in_read_v2": r.get("ec2-metadata", {}).get("instance-id"),
    "ec2": ec2.get_instance_metadata("2009-04-04", url),
}))
"#;
