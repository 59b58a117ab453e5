//! Properties of the renderer over arbitrary valid documents and settings: it never
//! panics, every JSON document parses, and every listing names exactly its children.

use base64::Engine;
use compute::metadata::{
    render_drive, render_service, Dir, Ec2Api, Ec2Version, Entry, LiveLeaf, OpenStackVersion,
    Settings,
};
use compute::Instance;
use proptest::prelude::*;
use serde_json::{json, Value};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn text() -> impl Strategy<Value = String> {
    let body = prop_oneof![
        r"[a-zA-Z0-9 ._-]{0,20}",
        r"\PC{0,12}",
        Just("\"\\\n\t\u{7f}😀".to_string())
    ];
    // Names must not be blank; start every text with a letter.
    body.prop_map(|s| format!("x{s}"))
}

prop_compose! {
    fn network()(n_links in 1usize..4, mtu in proptest::option::of(1280u32..9000), v6 in any::<bool>(), octet in 1u8..250, dhcp_address in any::<bool>())
        -> Value {
        let links: Vec<Value> = (0..n_links).map(|i| json!({
            "id": format!("tap{i}"), "vif_id": format!("vif-{i}"), "type": "ovs", "mtu": mtu,
            "ethernet_mac_address": format!("fa:16:3e:00:00:{i:02x}")
        })).collect();
        let mut networks = vec![json!({
            "id": "network0", "type": "ipv4", "link": "tap0", "ip_address": format!("10.0.{octet}.5"),
            "netmask": "255.255.255.0",
            "routes": [{"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": format!("10.0.{octet}.1")}],
            "network_id": "net", "services": [{"type": "dns", "address": "10.0.0.2"}]
        })];
        if v6 {
            networks.push(json!({"id": "network1", "type": "ipv6", "link": format!("tap{}", n_links - 1),
                "ip_address": "2001:db8::5", "netmask": "ffff:ffff:ffff:ffff::", "routes": [], "network_id": "net6"}));
        }
        let mut dhcp = json!({"id": "network9", "type": "ipv4_dhcp", "link": "tap0", "network_id": "n9"});
        if dhcp_address {
            dhcp["ip_address"] = format!("10.9.{octet}.9").into();
            dhcp["netmask"] = "255.255.255.0".into();
        }
        networks.push(dhcp);
        json!({"links": links, "networks": networks, "services": [{"type": "dns", "address": "10.0.0.2"}]})
    }
}

prop_compose! {
    fn document()(
        uuid in any::<u128>(),
        name in text(),
        meta in proptest::collection::btree_map(r"[a-z_.:/ ]{1,8}", text(), 0..4),
        keys in proptest::collection::vec((r"[a-z]{1,8}", text()), 0..3),
        user_data in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..300)),
        files in proptest::collection::btree_map(r"/[a-z]{1,8}(/[a-z]{1,8}){0,2}", proptest::collection::vec(any::<u8>(), 0..64), 0..4),
        net in proptest::option::of(network()),
        seed in proptest::option::of(proptest::collection::vec(any::<u8>(), 1..64)),
        launch_index in 0u32..5,
        admin_pass in proptest::option::of(text()),
        devices in proptest::collection::vec(0u8..3, 0..4),
        cpus in proptest::collection::vec(0u32..64, 0..4),
        aws in (any::<bool>(), proptest::option::of(r"[a-z]{2}-[a-z]{4}-[1-9][a-c]?"), proptest::option::of(r"[a-z0-9]{1,12}")),
    ) -> Value {
        let (metadata_tags, zone, project) = aws;
        let mut keys_seen = std::collections::BTreeMap::new();
        for (k, d) in keys { keys_seen.insert(k, d); }
        let mut doc = json!({
            "uuid": uuid::Uuid::from_u128(uuid).hyphenated().to_string(),
            "name": name,
            "launch_index": launch_index,
            "meta": meta,
            "keys": keys_seen.into_iter().map(|(n, d)| json!({"name": n, "type": "ssh", "data": format!("ssh-ed25519 {d}")})).collect::<Vec<_>>(),
            "files": files.into_iter().map(|(p, c)| json!({"path": p, "contents": b64(&c)})).collect::<Vec<_>>(),
            "dedicated_cpus": cpus,
            "devices": devices.into_iter().enumerate().map(|(i, d)| match d {
                0 => json!({"type": "nic", "bus": "pci", "address": format!("0000:00:0{i}.0"), "mac": "fa:16:3e:00:00:01", "tags": ["t"], "vlan": 10}),
                1 => json!({"type": "disk", "serial": "s"}),
                _ => json!({"type": "share", "share_id": "x", "tag": "y"}),
            }).collect::<Vec<_>>(),
        });
        if let Some(ud) = user_data { doc["user_data"] = b64(&ud).into(); }
        if let Some(net) = net { doc["network"] = net; }
        if let Some(seed) = seed { doc["random_seed"] = b64(&seed).into(); }
        if let Some(p) = admin_pass { doc["admin_pass"] = p.into(); }
        if metadata_tags { doc["metadata_tags"] = true.into(); }
        if let Some(z) = zone { doc["availability_zone"] = z.into(); }
        if let Some(p) = project {
            doc["project_id"] = p.into();
            doc["public_ipv4"] = "203.0.113.7".into();
        }
        doc
    }
}

prop_compose! {
    fn settings()(
        os_mask in 1u16..(1 << 10),
        ec2_mask in 1u32..(1 << 28),
        serve_files in any::<bool>(),
        domain in proptest::option::of(r"[a-z]{1,10}"),
        nova_ec2 in any::<bool>(),
        ec2_tags in any::<bool>(),
    ) -> Settings {
        let mut s = Settings {
            openstack_versions: OpenStackVersion::ALL.iter().enumerate().filter(|(i, _)| os_mask & (1 << i) != 0).map(|(_, v)| *v).collect(),
            ec2_versions: Ec2Version::ALL.iter().enumerate().filter(|(i, _)| ec2_mask & (1 << i) != 0).map(|(_, v)| *v).collect(),
            serve_files,
            dhcp_domain: domain,
            ..Settings::default()
        };
        s.ec2_tags = ec2_tags;
        if nova_ec2 {
            s.use_nova_ec2();
            if s.ec2_versions.is_empty() {
                s.ec2_versions.push(Ec2Version::V2009_04_04);
            }
        }
        s
    }
}

/// Listing lines name the children exactly: directories with a trailing `/` (or by
/// their `_name` form `N=name`), leaves bare; `content` under `/openstack` and the
/// `unlisted` children are the only ones never listed.
fn check_dir(path: &str, dir: &Dir, unlisted: &[&str]) -> Result<(), TestCaseError> {
    let mut children: Vec<String> = dir.entries().map(|(n, _)| n.to_owned()).collect();
    if let Some(listing) = &dir.listing {
        let text = std::str::from_utf8(listing).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(!text.ends_with('\n'), "{path}: listing ends with a newline");
        let mut listed: Vec<String> = Vec::new();
        for line in text.split('\n').filter(|l| !l.is_empty()) {
            let (name, is_dir) = match line.strip_suffix('/') {
                Some(n) => (n.to_owned(), true),
                None => match line.split_once('=') {
                    Some((n, _)) if path.ends_with("public-keys") => (n.to_owned(), true),
                    _ => (line.to_owned(), false),
                },
            };
            let child = dir.get(&name);
            prop_assert!(child.is_some(), "{path}: lists {line} which is not a child");
            let child_is_dir = matches!(child, Some(Entry::Dir(_)));
            // Version listings name directories without a slash, as Nova does.
            if !(path == "ec2" || path == "openstack") {
                prop_assert_eq!(
                    child_is_dir,
                    is_dir,
                    "{}: {} listed as dir={}",
                    path,
                    line,
                    is_dir
                );
            }
            listed.push(name);
        }
        children.retain(|c| !unlisted.contains(&c.as_str()));
        listed.sort();
        children.sort();
        prop_assert_eq!(listed, children, "{}: listing and children differ", path);
    }
    for (name, entry) in dir.entries() {
        let child = format!("{path}/{name}");
        match entry {
            // The walk reaches nested directories itself.
            Entry::Dir(_) => {}
            Entry::File(f) => {
                if name.ends_with(".json") {
                    let bytes = f.body.with_seed("QUJD");
                    let parsed: Result<Value, _> = serde_json::from_slice(&bytes);
                    prop_assert!(parsed.is_ok(), "{child} does not parse");
                    prop_assert!(bytes.is_ascii(), "{child} is not ASCII");
                }
            }
            Entry::Password => prop_assert!(name == "password"),
            Entry::Live(leaf) => {
                let want = match leaf {
                    LiveLeaf::IdentitySignature => "signature",
                    LiveLeaf::IdentityPkcs7 => "pkcs7",
                    LiveLeaf::IdentityRsa2048 => "rsa2048",
                    LiveLeaf::MaintenanceScheduled => "scheduled",
                    LiveLeaf::MaintenanceHistory => "history",
                };
                prop_assert_eq!(name, want, "{}", child);
            }
        }
    }
    Ok(())
}

/// Children a directory has without listing them: Nova answers network_data.json at
/// the OpenStack versions before 2015-10-15, which do not list it; with the AWS API,
/// Nova's 2009-04-04 answers `dynamic/` without listing it (its listing is Nova's).
fn unlisted_children(path: &str, settings: &Settings) -> Vec<&'static str> {
    let ec2 = match path.strip_prefix("ec2/") {
        Some("latest") => settings.latest_ec2(),
        Some(name) => name.parse::<Ec2Version>().ok(),
        None => None,
    };
    if let Some(v) = ec2 {
        let aws = settings.ec2_api == Ec2Api::Aws;
        return match aws && v.is_nova() && v >= Ec2Version::V2009_04_04 {
            true => vec!["dynamic"],
            false => Vec::new(),
        };
    }
    let version = match path.strip_prefix("openstack/") {
        Some("latest") => settings.latest_openstack(),
        Some(name) => name.parse::<OpenStackVersion>().ok(),
        None => None,
    };
    match version {
        Some(v) if v < OpenStackVersion::V2015_10_15 => vec!["network_data.json"],
        _ => Vec::new(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_valid_document_renders_consistently(doc in document(), settings in settings()) {
        let instance = Instance::from_json(doc.to_string().as_bytes())
            .map_err(|e| TestCaseError::fail(format!("generator made an invalid document: {e}")))?;
        let tree = render_service(&instance, &settings);
        // A lookup before the walk must see what the walk sees (laziness is invisible).
        let early = tree.lookup(&["openstack", "latest", "meta_data.json"]).cloned();
        for (path, entry) in tree.walk() {
            match (path.as_str(), entry) {
                ("ec2", Entry::Dir(d)) => {
                    let want: Vec<&str> = settings.ec2_versions.iter().map(|v| v.as_str()).chain(["latest"]).collect();
                    let want = want.join("\n");
                    prop_assert_eq!(d.listing.as_deref(), Some(want.as_bytes()));
                }
                ("openstack", Entry::Dir(d)) => {
                    let want: Vec<&str> = settings.openstack_versions.iter().map(|v| v.as_str()).chain(["latest"]).collect();
                    let want = want.join("\n");
                    prop_assert_eq!(d.listing.as_deref(), Some(want.as_bytes()));
                }
                (_, Entry::Dir(d)) => check_dir(&path, d, &unlisted_children(&path, &settings))?,
                _ => {}
            }
            prop_assert!(tree.lookup(&path.split('/').collect::<Vec<_>>()).is_some(), "{path} walked but not found");
        }
        prop_assert_eq!(early.as_ref(), tree.lookup(&["openstack", "latest", "meta_data.json"]));
        // network_data.json exists exactly when the instance has a network, and shows
        // a DHCP network with Nova's four keys only, whatever address it knows.
        let has_network = instance.network().is_some();
        for v in &settings.openstack_versions {
            let served = tree.lookup(&["openstack", v.as_str(), "network_data.json"]);
            prop_assert_eq!(served.is_some(), has_network, "openstack/{}/network_data.json", v);
            if let Some(Entry::File(f)) = served {
                let nd: Value = serde_json::from_slice(&f.body.with_seed("")).map_err(|e| TestCaseError::fail(e.to_string()))?;
                for n in nd["networks"].as_array().into_iter().flatten() {
                    if n["type"].as_str().is_some_and(|t| t.ends_with("_dhcp")) {
                        let keys: Vec<&String> = n.as_object().into_iter().flat_map(|o| o.keys()).collect();
                        prop_assert_eq!(keys, ["id", "type", "link", "network_id"]);
                    }
                }
            }
        }
        // EC2 local-ipv4 is the first IPv4 fixed address, static or DHCP.
        let first_v4 = instance.fixed_ips().into_iter().find(|ip| ip.is_ipv4()).map(|ip| ip.to_string());
        if let Some(v) = settings.latest_ec2() {
            match tree.lookup(&["ec2", v.as_str(), "meta-data", "local-ipv4"]) {
                Some(Entry::File(f)) => prop_assert_eq!(String::from_utf8_lossy(&f.body.with_seed("")).into_owned(), first_v4.unwrap_or_default()),
                other => prop_assert!(false, "ec2/{}/meta-data/local-ipv4 is {:?}", v, other),
            }
        }
        // AWS's versions add to Nova's answers and change none: every leaf of Nova's
        // 2009-04-04 meta-data has the same bytes there.
        if settings.ec2_versions.contains(&Ec2Version::V2009_04_04) {
            let nova: Vec<(String, Vec<u8>)> = tree.walk().into_iter().filter_map(|(p, e)| match e {
                Entry::File(f) => p.strip_prefix("ec2/2009-04-04/meta-data/").map(|rest| (rest.to_owned(), f.body.with_seed("").to_vec())),
                _ => None,
            }).collect();
            prop_assert!(!nova.is_empty());
            for v in settings.ec2_versions.iter().filter(|v| !v.is_nova()) {
                for (rest, bytes) in &nova {
                    let mut at = vec!["ec2", v.as_str(), "meta-data"];
                    at.extend(rest.split('/'));
                    match tree.lookup(&at) {
                        Some(Entry::File(f)) => prop_assert_eq!(&f.body.with_seed("").to_vec(), bytes, "{}", at.join("/")),
                        other => prop_assert!(false, "{} is {:?}", at.join("/"), other),
                    }
                }
            }
        }
        // The drive view: every JSON parses, and no password is ever written.
        let drive = render_drive(&instance, &settings);
        prop_assert!(drive.contains_key("ec2/latest/meta-data.json"));
        prop_assert!(drive.contains_key("openstack/latest/meta_data.json"));
        prop_assert_eq!(drive.contains_key("openstack/2015-10-15/network_data.json"), has_network);
        for (path, bytes) in &drive {
            prop_assert!(!path.ends_with("/password"));
            prop_assert!(has_network || !path.ends_with("/network_data.json"), "{} without a network", path);
            if path.ends_with(".json") {
                prop_assert!(serde_json::from_slice::<Value>(bytes).is_ok(), "{path} does not parse");
            }
        }
        // admin_pass is on drives only, never served.
        if let Some(Entry::File(f)) = tree.lookup(&["openstack", "latest", "meta_data.json"]) {
            let v: Value = serde_json::from_slice(&f.body.with_seed("QUJD")).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(v.get("admin_pass").is_none());
        }
    }

    #[test]
    fn arbitrary_json_never_panics_the_parser(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Instance::from_json(&bytes);
    }
}
