//! cloud-init's own readers (Debian's cloud-init 22.4, run with /usr/bin/python3)
//! against the running server, over a listener bound to instance A.

mod common;

use common::*;
use std::process::Command;

const READER: &str = r#"
import json, sys
from cloudinit.sources.helpers import openstack, ec2
url = sys.argv[1]
r = openstack.MetadataReader(url).read_v2()
md = ec2.get_instance_metadata("2009-04-04", url)
latest = ec2.get_instance_metadata("latest", url)
ud = ec2.get_instance_userdata("2009-04-04", url)
print(json.dumps({
    "uuid": r["metadata"]["uuid"],
    "hostname": r["metadata"]["hostname"],
    "keys": r["metadata"].get("public_keys"),
    "userdata": r["userdata"].decode(),
    "network_links": [l["id"] for l in r["networkdata"]["links"]],
    "vendordata": r["vendordata"],
    "vendordata2": r["vendordata2"],
    "ec2_in_read_v2": r.get("ec2-metadata", {}).get("instance-id"),
    "ec2": md,
    "ec2_latest_id": latest.get("instance-id"),
    "ec2_userdata": ud.decode(),
}))
"#;

fn run_reader(url: &str) -> serde_json::Value {
    let out = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(READER)
        .arg(url)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "cloud-init reader failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("reader prints json")
}

#[test]
fn cloud_init_readers_read_everything() {
    assert!(
        std::path::Path::new("/usr/lib/python3/dist-packages/cloudinit").is_dir(),
        "Debian's cloud-init is required (scripts/packages.txt)"
    );
    let listener = format!("127.0.0.1:0={A}");
    let server = Server::start(&["--instance-listener", &listener]);
    let port = server.bound_port(A);
    let v = run_reader(&format!("http://127.0.0.1:{port}"));
    assert_eq!(v["uuid"], A);
    assert_eq!(v["hostname"], "test.novalocal");
    assert!(v["keys"]["mykey"]
        .as_str()
        .expect("key")
        .starts_with("ssh-rsa "));
    assert_eq!(v["userdata"], "#!/bin/bash\necho 'Extra user data here'");
    assert_eq!(v["network_links"], serde_json::json!(["tap0"]));
    assert_eq!(v["vendordata"], serde_json::json!({}));
    assert_eq!(v["vendordata2"], serde_json::json!({"static": {}}));
    let ec2 = &v["ec2"];
    assert_eq!(ec2["instance-id"], "i-d8e02d56");
    assert_eq!(ec2["local-ipv4"], A_IP);
    assert_eq!(ec2["placement"]["availability-zone"], "nova");
    assert_eq!(
        ec2["public-keys"]["mykey"][0]
            .as_str()
            .map(|s| s.starts_with("ssh-rsa ")),
        Some(true)
    );
    assert_eq!(ec2["block-device-mapping"]["root"], "/dev/vda");
    assert_eq!(v["ec2_latest_id"], "i-d8e02d56");
    assert_eq!(
        v["ec2_userdata"],
        "#!/bin/bash\necho 'Extra user data here'"
    );
}
