//! `network_data.json` in both views: present exactly when the instance has a
//! network, with Nova's bytes, and absent (file, listing line, drive entry) when not.
//! The service answers it at every version, as Nova does; listings and drives name it
//! from 2015-10-15 only, as Nova's do.

use compute::metadata::{render_drive, render_service, Entry, OpenStackVersion, Settings};
use compute::Instance;

fn fixture(name: &str) -> Instance {
    let path = format!("{}/tests/fixtures/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    Instance::from_json(&bytes).unwrap_or_else(|e| panic!("{path} is invalid: {e}"))
}

fn version_names() -> Vec<&'static str> {
    OpenStackVersion::ALL
        .iter()
        .map(|v| v.as_str())
        .chain(["latest"])
        .collect()
}

fn listing_lines(instance: &Instance, version: &str) -> Vec<String> {
    let tree = render_service(instance, &Settings::default());
    match tree.lookup(&["openstack", version]) {
        Some(Entry::Dir(d)) => {
            let bytes = d
                .listing
                .as_ref()
                .expect("a version directory has a listing");
            String::from_utf8(bytes.to_vec())
                .expect("utf-8")
                .split('\n')
                .map(str::to_owned)
                .collect()
        }
        other => panic!("openstack/{version} is not a directory: {other:?}"),
    }
}

fn served(instance: &Instance, version: &str) -> Option<Vec<u8>> {
    let tree = render_service(instance, &Settings::default());
    match tree.lookup(&["openstack", version, "network_data.json"]) {
        Some(Entry::File(f)) => Some(f.body.with_seed("").to_vec()),
        None => None,
        Some(other) => panic!("network_data.json is not a file: {other:?}"),
    }
}

#[test]
fn an_instance_without_network_has_no_network_data_anywhere() {
    let basic = fixture("basic");
    assert!(
        basic.network().is_none(),
        "the basic fixture has no network"
    );
    for v in version_names() {
        assert_eq!(served(&basic, v), None, "openstack/{v}/network_data.json");
        let lines = listing_lines(&basic, v);
        assert!(
            !lines.iter().any(|l| l == "network_data.json"),
            "openstack/{v} lists {lines:?}"
        );
        assert!(lines.iter().any(|l| l == "meta_data.json"), "{lines:?}");
    }
    let drive = render_drive(&basic, &Settings::default());
    let on_drive: Vec<&String> = drive
        .keys()
        .filter(|p| p.contains("network_data"))
        .collect();
    assert!(on_drive.is_empty(), "drive has {on_drive:?}");
    assert!(drive.contains_key("openstack/latest/meta_data.json"));
}

#[test]
fn an_empty_network_still_gets_the_document() {
    let doc = serde_json::json!({
        "uuid": "d8e02d56-2648-49a3-bf97-6be8f1204f38", "name": "empty", "network": {}
    });
    let instance = Instance::from_json(doc.to_string().as_bytes()).expect("valid");
    let want = br#"{"links": [], "networks": [], "services": []}"#.to_vec();
    assert_eq!(served(&instance, "latest"), Some(want.clone()));
    let drive = render_drive(&instance, &Settings::default());
    assert_eq!(
        drive
            .get("openstack/latest/network_data.json")
            .map(|b| b.to_vec()),
        Some(want)
    );
}

#[test]
fn an_instance_with_network_serves_it_at_every_version_and_lists_it_from_2015_10_15() {
    let multinic = fixture("multinic");
    let drive = render_drive(&multinic, &Settings::default());
    let want = drive
        .get("openstack/latest/network_data.json")
        .expect("drive has network_data.json")
        .to_vec();
    let parsed: serde_json::Value = serde_json::from_slice(&want).expect("json");
    assert_eq!(parsed["links"][0]["id"], "tap1a2b3c4d-5e");
    for v in OpenStackVersion::ALL {
        let listed = listing_lines(&multinic, v.as_str())
            .iter()
            .any(|l| l == "network_data.json");
        let on_drive = drive.get(&format!("openstack/{v}/network_data.json"));
        if *v >= OpenStackVersion::V2015_10_15 {
            assert!(listed, "{v} lists network_data.json");
            assert_eq!(served(&multinic, v.as_str()).as_ref(), Some(&want), "{v}");
            assert_eq!(on_drive.map(|b| b.to_vec()).as_ref(), Some(&want), "{v}");
        } else {
            // Nova's handler answers at every version, though these do not list it,
            // and its drive writes only what the version lists.
            assert!(!listed, "{v} does not list network_data.json, as in Nova");
            assert_eq!(served(&multinic, v.as_str()).as_ref(), Some(&want), "{v}");
            assert!(on_drive.is_none(), "{v}: Nova's drive has no such file");
        }
    }
}

/// The dual-stack fixture: IPv4 by DHCP with the address Nova knows from the port,
/// IPv6 by SLAAC. `dualstack.network_data.json` holds the bytes Nova's own
/// `netutils.get_network_metadata` printed for that port (see the report of the
/// change that added it): the DHCP network without its address.
#[test]
fn a_dhcp_address_stays_out_of_network_data_but_is_local_ipv4() {
    let dual = fixture("dualstack");
    let golden = std::fs::read(format!(
        "{}/tests/fixtures/dualstack.network_data.json",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("golden network_data.json");
    let drive = render_drive(&dual, &Settings::default());
    for v in version_names() {
        assert_eq!(served(&dual, v).as_ref(), Some(&golden), "service {v}");
    }
    for (path, bytes) in drive
        .iter()
        .filter(|(p, _)| p.ends_with("network_data.json"))
    {
        assert_eq!(bytes.as_ref(), golden.as_slice(), "{path}");
    }
    assert!(drive.contains_key("openstack/latest/network_data.json"));
    assert!(!String::from_utf8_lossy(&golden).contains("10.20.0.14"));

    // The document keeps the address, and EC2 shows it.
    let ips: Vec<String> = dual.fixed_ips().iter().map(ToString::to_string).collect();
    assert_eq!(ips, ["10.20.0.14", "2001:db8:20:0:f816:3eff:fe4c:2d81"]);
    let (ip, mac) = dual.local_ipv4().expect("local-ipv4");
    assert_eq!(ip.to_string(), "10.20.0.14");
    assert_eq!(
        mac.map(|m| m.to_string()).as_deref(),
        Some("fa:16:3e:4c:2d:81")
    );
    let tree = render_service(&dual, &Settings::default());
    for v in ["2009-04-04", "latest", "1.0"] {
        match tree.lookup(&["ec2", v, "meta-data", "local-ipv4"]) {
            Some(Entry::File(f)) => assert_eq!(f.body.with_seed("").as_ref(), b"10.20.0.14"),
            other => panic!("ec2/{v}/meta-data/local-ipv4: {other:?}"),
        }
    }
    let ec2: serde_json::Value =
        serde_json::from_slice(&drive["ec2/latest/meta-data.json"]).expect("json");
    assert_eq!(ec2["local-ipv4"], "10.20.0.14");
}
