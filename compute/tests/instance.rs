//! The instance document contract: parsing, validation errors, derived values.

use compute::instance::FieldError;
use compute::{Instance, InstanceError};
use serde_json::{json, Value};

fn base() -> Value {
    json!({"uuid": "d8e02d56-2648-49a3-bf97-6be8f1204f38", "name": "test"})
}

fn with(patch: Value) -> Value {
    let mut doc = base();
    for (k, v) in patch.as_object().expect("object").clone() {
        doc[k] = v;
    }
    doc
}

fn errors(doc: Value) -> Vec<FieldError> {
    match Instance::from_json(doc.to_string().as_bytes()) {
        Err(InstanceError::Invalid(list)) => list,
        other => panic!("expected validation errors, got {other:?}"),
    }
}

fn has_error(doc: Value, field: &str, value_part: &str) {
    let errs = errors(doc);
    assert!(
        errs.iter()
            .any(|e| e.field == field && e.value.contains(value_part)),
        "no error for {field} with {value_part:?} in {errs:#?}"
    );
}

#[test]
fn minimal_document_gets_novas_defaults() {
    let i = Instance::from_json(base().to_string().as_bytes()).expect("valid");
    assert_eq!(i.hostname(), "test");
    assert_eq!(i.availability_zone(), "nova");
    assert_eq!(i.instance_type(), "m1.small");
    assert_eq!(i.ec2_id(), "i-d8e02d56");
    assert_eq!(i.reservation_id(), "r-f1204f38");
    assert_eq!(i.security_groups(), ["default"]);
    assert_eq!(i.root_device_name(), "/dev/vda");
    assert_eq!(i.launch_index(), 0);
    assert!(i.user_data().is_none());
    assert!(i.local_ipv4().is_none());
}

#[test]
fn unknown_fields_are_rejected_by_name_even_when_nested() {
    let err = Instance::from_json(with(json!({"hostnme": "x"})).to_string().as_bytes())
        .expect_err("typo");
    assert!(err.to_string().contains("hostnme"), "{err}");
    let doc = with(json!({"keys": [{"name": "k", "type": "ssh", "data": "x", "extra": 1}]}));
    let err = Instance::from_json(doc.to_string().as_bytes()).expect_err("nested typo");
    let text = err.to_string();
    assert!(text.contains("keys[0]") && text.contains("extra"), "{text}");
}

#[test]
fn wrong_types_and_bad_json_name_the_place() {
    let err = Instance::from_json(with(json!({"launch_index": "one"})).to_string().as_bytes())
        .expect_err("type");
    assert!(err.to_string().contains("launch_index"), "{err}");
    let err = Instance::from_json(b"{\"uuid\": ").expect_err("truncated");
    assert!(matches!(err, InstanceError::Parse { .. }));
    let err =
        Instance::from_json(json!({"name": "x"}).to_string().as_bytes()).expect_err("no uuid");
    assert!(err.to_string().contains("uuid"), "{err}");
}

#[test]
fn every_invalid_field_is_named_with_its_value() {
    has_error(with(json!({"uuid": "not-a-uuid"})), "uuid", "not-a-uuid");
    has_error(
        with(json!({"hostname": "a".repeat(64)})),
        "hostname",
        "aaaa",
    );
    has_error(
        with(json!({"hostname": "bad_host"})),
        "hostname",
        "bad_host",
    );
    has_error(
        with(json!({"files": [{"path": "etc/motd", "contents": ""}]})),
        "files[0].path",
        "etc/motd",
    );
    has_error(
        with(json!({"files": [{"path": "/etc/../shadow", "contents": ""}]})),
        "files[0].path",
        "/etc/../shadow",
    );
    has_error(
        with(json!({"files": [{"path": "/a", "contents": ""}, {"path": "//a", "contents": ""}]})),
        "files[1].path",
        "//a",
    );
    has_error(
        with(json!({"files": [{"path": "/a", "contents": "***"}]})),
        "files[0].contents",
        "***",
    );
    has_error(
        with(json!({"user_data": "A".repeat(65536)})),
        "user_data",
        "65536 bytes",
    );
    has_error(
        with(json!({"user_data": "not base64!"})),
        "user_data",
        "not base64!",
    );
    has_error(
        with(json!({"public_ipv4": "1.2.3"})),
        "public_ipv4",
        "1.2.3",
    );
    has_error(
        with(json!({"created_at": "yesterday"})),
        "created_at",
        "yesterday",
    );
    has_error(with(json!({"random_seed": "%%%"})), "random_seed", "%%%");
}

#[test]
fn user_data_at_the_limit_is_accepted() {
    // 65535 base64 characters is not a multiple of 4; 65532 is the largest valid one.
    let ud = "QUFB".repeat(65532 / 4);
    let i =
        Instance::from_json(with(json!({"user_data": ud})).to_string().as_bytes()).expect("valid");
    assert_eq!(i.user_data().map(<[u8]>::len), Some(65532 / 4 * 3));
}

#[test]
fn network_references_and_addresses_are_checked() {
    let net = json!({
        "links": [{"id": "eth0", "type": "phy", "ethernet_mac_address": "fa:16:3e:zz:00:01", "mtu": 9000},
                  {"id": "bond0", "type": "bond", "bond_links": ["eth0", "eth9"]}],
        "networks": [
            {"id": "n0", "type": "ipv4", "link": "eth1", "ip_address": "10.0.0.300", "netmask": "255.0.255.0"},
            {"id": "n1", "type": "ipv6", "link": "eth0", "ip_address": "10.0.0.1", "netmask": "ffff::"},
            {"id": "n1", "type": "ipv4_dhcp", "link": "eth0"}
        ],
        "services": [{"type": "dns", "address": "8.8.8"}]
    });
    let errs = errors(with(json!({ "network": net })));
    let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
    for want in [
        "network.links[0].ethernet_mac_address",
        "network.links[1].bond_links[1]",
        "network.networks[0].link",
        "network.networks[0].ip_address",
        "network.networks[0].netmask",
        "network.networks[1].ip_address",
        "network.networks[2].id",
        "network.services[0].address",
    ] {
        assert!(fields.contains(&want), "missing {want} in {fields:?}");
    }
    // The message says what to do and shows the value.
    let text = InstanceError::Invalid(errs).to_string();
    assert!(
        text.contains("\"eth1\"") && text.contains("names no link"),
        "{text}"
    );
}

#[test]
fn routes_validate_as_their_readers_read_them() {
    // Each of these was once let through here while a reader dropped or refused it.
    let net = json!({
        "links": [{"id": "a", "type": "phy", "ethernet_mac_address": "fa:16:3e:00:00:01"}],
        "networks": [{"id": "n0", "type": "ipv4", "link": "a", "ip_address": "10.0.0.5",
                      "netmask": "255.255.255.0", "routes": [
            {"network": "10.1.0.0", "netmask": "255.0.255.0", "gateway": "10.0.0.1"},
            {"network": "10.2.0.0", "netmask": "ffff::", "gateway": "10.0.0.1"},
            {"network": "10.3.0.0", "netmask": "255.255.0.0", "gateway": "2001:db8::1"},
            {"network": "10.4.0", "netmask": "255.255.0.0", "gateway": "10.0.0.x"},
            {"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "10.0.0.1"}
        ]}]
    });
    let errs = errors(with(json!({ "network": net })));
    let got: Vec<String> = errs.iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        [
            "network.networks[0].routes[0].netmask = \"255.0.255.0\": must be a contiguous IPv4 netmask",
            "network.networks[0].routes[1].netmask = \"ffff::\": must be a contiguous IPv4 netmask",
            "network.networks[0].routes[2].gateway = \"2001:db8::1\": must be an IPv4 address, like the route's network",
            "network.networks[0].routes[3].network = \"10.4.0\": is not an IP address",
            "network.networks[0].routes[3].gateway = \"10.0.0.x\": is not an IP address",
        ]
    );
}

#[test]
fn unknown_network_type_is_rejected() {
    let net = json!({"links": [{"id": "l", "type": "phy"}], "networks": [{"id": "n", "type": "ipv5", "link": "l"}]});
    let err = Instance::from_json(with(json!({ "network": net })).to_string().as_bytes())
        .expect_err("bad type");
    assert!(
        err.to_string().contains("network.networks[0].type"),
        "{err}"
    );
}

#[test]
fn local_ipv4_and_mac_come_from_the_first_ipv4_address_static_or_dhcp() {
    let net = json!({
        "links": [{"id": "a", "type": "phy", "ethernet_mac_address": "fa:16:3e:00:00:0a"},
                  {"id": "b", "type": "phy", "ethernet_mac_address": "FA:16:3E:00:00:0B"}],
        "networks": [
            {"id": "n0", "type": "ipv4_dhcp", "link": "a"},
            {"id": "n1", "type": "ipv6", "link": "a", "ip_address": "2001:db8::9", "netmask": "ffff:ffff:ffff:ffff::"},
            {"id": "n2", "type": "ipv4", "link": "b", "ip_address": "192.0.2.7", "netmask": "255.255.255.0"}
        ]
    });
    let i =
        Instance::from_json(with(json!({ "network": net })).to_string().as_bytes()).expect("valid");
    let (ip, mac) = i.local_ipv4().expect("has one");
    assert_eq!(ip.to_string(), "192.0.2.7");
    assert_eq!(mac.expect("mac").to_string(), "fa:16:3e:00:00:0b");
    assert_eq!(i.fixed_ips().len(), 2);

    // A DHCP network that knows its address comes first: it is local-ipv4.
    let mut net = net;
    net["networks"][0]["ip_address"] = "10.20.0.14".into();
    let i =
        Instance::from_json(with(json!({ "network": net })).to_string().as_bytes()).expect("valid");
    let (ip, mac) = i.local_ipv4().expect("has one");
    assert_eq!(ip.to_string(), "10.20.0.14");
    assert_eq!(mac.expect("mac").to_string(), "fa:16:3e:00:00:0a");
    let ips: Vec<String> = i.fixed_ips().iter().map(ToString::to_string).collect();
    assert_eq!(ips, ["10.20.0.14", "2001:db8::9", "192.0.2.7"]);
    // fixed_ips and local_ipv4 are views of the one list of fixed addresses.
    let addrs = i.fixed_addresses();
    assert_eq!(
        addrs.iter().map(|a| a.ip).collect::<Vec<_>>(),
        i.fixed_ips()
    );
    assert_eq!(addrs[0].kind, compute::instance::NetworkType::Ipv4Dhcp);
}

#[test]
fn addresses_on_dhcp_and_slaac_networks_are_checked_like_static_ones() {
    let net = json!({
        "links": [{"id": "a", "type": "phy"}],
        "networks": [
            {"id": "n0", "type": "ipv4_dhcp", "link": "a", "ip_address": "10.20.0.300"},
            {"id": "n1", "type": "ipv4_dhcp", "link": "a", "ip_address": "2001:db8::1"},
            {"id": "n2", "type": "ipv6_dhcp", "link": "a", "ip_address": "2001:db8::2", "netmask": "255.255.255.0"},
            {"id": "n3", "type": "ipv4_dhcp", "link": "a", "netmask": "255.255.255.0"},
            {"id": "n4", "type": "ipv6_slaac", "link": "a", "ip_address": "10.0.0.4", "netmask": "ffff:ffff:ffff:ffff::"},
            {"id": "n5", "type": "ipv4_dhcp", "link": "a", "ip_address": "10.20.0.5", "netmask": "255.0.255.0",
             "routes": [{"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "10.20.0.1"}],
             "services": [{"type": "dns", "address": "10.20.0.2"}]}
        ]
    });
    let errs = errors(with(json!({ "network": net })));
    let got: Vec<(&str, &str)> = errs
        .iter()
        .map(|e| (e.field.as_str(), e.value.as_str()))
        .collect();
    for want in [
        ("network.networks[0].ip_address", "10.20.0.300"),
        ("network.networks[1].ip_address", "2001:db8::1"),
        ("network.networks[2].netmask", "255.255.255.0"),
        ("network.networks[3].netmask", "255.255.255.0"),
        ("network.networks[4].ip_address", "10.0.0.4"),
        ("network.networks[5].netmask", "255.0.255.0"),
        ("network.networks[5].routes", "1 route(s)"),
        ("network.networks[5].services", "1 service(s)"),
    ] {
        assert!(got.contains(&want), "missing {want:?} in {got:?}");
    }
    assert_eq!(got.len(), 8, "{errs:#?}");
    let text = InstanceError::Invalid(errs).to_string();
    assert!(text.contains("give ip_address too"), "{text}");
    assert!(
        text.contains("remove them, or make the network static"),
        "{text}"
    );

    // Valid: an address with or without its netmask, empty routes and services.
    let ok = json!({
        "links": [{"id": "a", "type": "phy"}],
        "networks": [
            {"id": "n0", "type": "ipv4_dhcp", "link": "a", "ip_address": "10.20.0.14"},
            {"id": "n1", "type": "ipv6_dhcp", "link": "a", "ip_address": "2001:db8::2",
             "netmask": "ffff:ffff:ffff:ffff::", "routes": [], "services": []}
        ]
    });
    let i =
        Instance::from_json(with(json!({ "network": ok })).to_string().as_bytes()).expect("valid");
    assert_eq!(i.fixed_ips().len(), 2);
}

#[test]
fn hostname_is_derived_from_the_name_like_nova() {
    let i = Instance::from_json(
        with(json!({"name": "My Web_Server.01"}))
            .to_string()
            .as_bytes(),
    )
    .expect("valid");
    assert_eq!(i.hostname(), "my-web-server-01");
    let i =
        Instance::from_json(with(json!({"name": "!!!"})).to_string().as_bytes()).expect("valid");
    assert_eq!(i.hostname(), "Server-d8e02d56-2648-49a3-bf97-6be8f1204f38");
}

#[test]
fn region_is_the_documents_else_derived_from_an_aws_shaped_zone() {
    let region = |patch: Value| {
        Instance::from_json(with(patch).to_string().as_bytes())
            .expect("valid")
            .region()
            .to_owned()
    };
    assert_eq!(
        region(json!({})),
        "RegionOne",
        "zone `nova` is not AWS-shaped"
    );
    assert_eq!(
        region(json!({"availability_zone": "us-east-1a"})),
        "us-east-1"
    );
    assert_eq!(region(json!({"availability_zone": "zone-b"})), "RegionOne");
    assert_eq!(region(json!({"availability_zone": "az1"})), "RegionOne");
    assert_eq!(
        region(json!({"availability_zone": "us-east-1a", "region": "lab"})),
        "lab"
    );
    has_error(with(json!({"region": ""})), "region", "");
    has_error(with(json!({"region": "a/b"})), "region", "a/b");
    let tagged = Instance::from_json(with(json!({"metadata_tags": true})).to_string().as_bytes())
        .expect("valid");
    assert!(tagged.metadata_tags());
    assert!(!Instance::from_json(base().to_string().as_bytes())
        .expect("valid")
        .metadata_tags());
}
