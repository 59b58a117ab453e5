//! The NoCloud seed (cloud-init's `cidata` volume): `meta-data`, `user-data` and,
//! when the instance has a network, `network-config` in cloud-init's network config
//! version 2, converted from the instance's `network_data.json` shape. YAML is
//! written as JSON, which every YAML parser reads. Pure.

use bytes::Bytes;
use compute::instance::{NetworkData, NetworkType};
use compute::metadata::DriveTree;
use compute::Instance;
use serde_json::{json, Map, Value};
use std::net::IpAddr;

/// The files of a NoCloud seed for an instance.
pub fn nocloud_tree(instance: &Instance) -> DriveTree {
    let mut tree = DriveTree::new();
    let meta = json!({ "instance-id": instance.uuid_str(), "local-hostname": instance.hostname() });
    tree.insert("meta-data".into(), to_bytes(&meta));
    // cloud-init needs the file even when there is nothing in it.
    let user_data = instance
        .user_data()
        .map(Bytes::copy_from_slice)
        .unwrap_or_default();
    tree.insert("user-data".into(), user_data);
    if let Some(net) = instance.network() {
        tree.insert("network-config".into(), to_bytes(&network_config(net)));
    }
    tree
}

fn to_bytes(v: &Value) -> Bytes {
    let mut s = serde_json::to_string_pretty(v).unwrap_or_default();
    s.push('\n');
    Bytes::from(s)
}

/// Network config version 2: one `ethernets` entry per link with a MAC, matched by
/// MAC; static addresses with their prefix, routes, DHCP flags and DNS servers.
///
/// Read through `compute`'s network model, which validation uses too: for a valid
/// instance nothing below is skipped as unreadable.
pub fn network_config(net: &NetworkData) -> Value {
    let mut ethernets = Map::new();
    let dns: Vec<IpAddr> = net.dns_servers().filter_map(Result::ok).collect();
    for link in &net.links {
        let Ok(Some(mac)) = link.mac() else {
            continue;
        };
        let mut eth = Map::new();
        eth.insert("match".into(), json!({ "macaddress": mac.to_string() }));
        if let Some(mtu) = link.mtu {
            eth.insert("mtu".into(), mtu.into());
        }
        let (mut addresses, mut routes) = (Vec::new(), Vec::new());
        let mut link_dns = dns.clone();
        for n in net.networks_on(link) {
            match n.kind {
                NetworkType::Ipv4Dhcp => {
                    eth.insert("dhcp4".into(), true.into());
                }
                NetworkType::Ipv6Dhcp | NetworkType::Ipv6Dhcpv6Stateful => {
                    eth.insert("dhcp6".into(), true.into());
                }
                NetworkType::Ipv6Slaac | NetworkType::Ipv6Dhcpv6Stateless => {
                    eth.insert("accept-ra".into(), true.into());
                }
                NetworkType::Ipv4 | NetworkType::Ipv6 => {
                    let Ok(Some(address)) = n.address() else {
                        continue;
                    };
                    addresses.push(Value::from(address.to_string()));
                    for r in n.routes().filter_map(Result::ok) {
                        routes.push(json!({
                            "to": r.destination.to_string(),
                            "via": r.gateway.to_string(),
                        }));
                    }
                    for ip in n.dns_servers().filter_map(Result::ok) {
                        if !link_dns.contains(&ip) {
                            link_dns.push(ip);
                        }
                    }
                }
            }
        }
        if !addresses.is_empty() {
            eth.insert("addresses".into(), addresses.into());
        }
        if !routes.is_empty() {
            eth.insert("routes".into(), routes.into());
        }
        if !link_dns.is_empty() {
            let addresses: Vec<String> = link_dns.iter().map(IpAddr::to_string).collect();
            eth.insert("nameservers".into(), json!({ "addresses": addresses }));
        }
        ethernets.insert(link.id.clone(), Value::Object(eth));
    }
    json!({ "version": 2, "ethernets": ethernets })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MULTINIC: &[u8] = include_bytes!("../../compute/tests/fixtures/multinic.json");

    #[test]
    fn seed_has_the_three_files() {
        let inst = Instance::from_json(MULTINIC).unwrap();
        let tree = nocloud_tree(&inst);
        let meta: Value = serde_json::from_slice(&tree["meta-data"]).unwrap();
        assert_eq!(meta["instance-id"], "2f1d4c3b-8a7e-4b6d-9c5f-0e1a2b3c4d5e");
        assert_eq!(meta["local-hostname"], "web-02");
        assert!(tree["user-data"].starts_with(b"#cloud-config"));
        let net: Value = serde_json::from_slice(&tree["network-config"]).unwrap();
        let tap = &net["ethernets"]["tap1a2b3c4d-5e"];
        assert_eq!(tap["match"]["macaddress"], "fa:16:3e:00:00:01");
        assert_eq!(tap["addresses"], json!(["10.0.0.5/24", "2001:db8::5/64"]));
        assert_eq!(
            tap["routes"][0],
            json!({"to": "0.0.0.0/0", "via": "10.0.0.1"})
        );
        assert_eq!(net["ethernets"]["interface1"]["dhcp4"], true);
    }
}
