//! The instance's network interfaces as EC2 shows them (`network/interfaces/macs/`),
//! derived from the document's `network`: one interface per link with a MAC, its
//! addresses (static and DHCP alike, from [`Instance::fixed_addresses`]' source) and
//! the CIDRs of the networks they sit in, and stable AWS-shaped ids made from ours.

use crate::instance::{Instance, Link, NetworkData};
use crate::mac::MacAddr;
use ipnetwork::IpNetwork;
use sha2::{Digest, Sha256};
use std::net::IpAddr;

/// One interface, in the document's link order (its `device-number`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Nic {
    pub mac: MacAddr,
    pub device_number: usize,
    /// `eni-` + 17 hex digits.
    pub interface_id: String,
    /// `subnet-` + 17 hex digits, when the link has a network.
    pub subnet_id: Option<String>,
    /// `vpc-` + 17 hex digits, when the link has a network.
    pub vpc_id: Option<String>,
    pub ipv4s: Vec<IpAddr>,
    pub ipv6s: Vec<IpAddr>,
    /// The networks (address and prefix, host bits cleared) of the link's addresses,
    /// IPv4 and IPv6, in document order without repeats.
    pub ipv4_cidrs: Vec<IpNetwork>,
    pub ipv6_cidrs: Vec<IpNetwork>,
}

/// Whether a link is an interface the guest sees as its own NIC: bonds and VLANs are
/// made inside the guest from NICs and are not interfaces of their own on EC2.
fn is_interface(link: &Link) -> bool {
    !matches!(link.kind.as_str(), "bond" | "vlan")
}

/// The interfaces, one per distinct MAC, in link order.
pub(super) fn nics(instance: &Instance) -> Vec<Nic> {
    let Some(net) = instance.network() else {
        return Vec::new();
    };
    let mut out: Vec<Nic> = Vec::new();
    for link in net.links.iter().filter(|l| is_interface(l)) {
        let Some(mac) = link
            .ethernet_mac_address
            .as_deref()
            .and_then(|m| m.parse::<MacAddr>().ok())
        else {
            continue;
        };
        if out.iter().any(|n| n.mac == mac) {
            continue;
        }
        out.push(nic(instance, net, link, mac, out.len()));
    }
    out
}

fn nic(instance: &Instance, net: &NetworkData, link: &Link, mac: MacAddr, index: usize) -> Nic {
    let mut n = Nic {
        mac,
        device_number: index,
        interface_id: format!(
            "eni-{}",
            id17(
                link.vif_id
                    .as_deref()
                    .unwrap_or(&format!("{}/{}", instance.uuid_str(), link.id))
            )
        ),
        subnet_id: None,
        vpc_id: None,
        ipv4s: Vec::new(),
        ipv6s: Vec::new(),
        ipv4_cidrs: Vec::new(),
        ipv6_cidrs: Vec::new(),
    };
    let networks: Vec<_> = net.networks.iter().filter(|x| x.link == link.id).collect();
    for network in &networks {
        let Some(ip) = network
            .ip_address
            .as_deref()
            .and_then(|a| a.parse::<IpAddr>().ok())
        else {
            continue;
        };
        let cidr = network
            .netmask
            .as_deref()
            .and_then(|m| m.parse::<IpAddr>().ok())
            .and_then(|mask| IpNetwork::with_netmask(ip, mask).ok())
            .and_then(|n| IpNetwork::new(n.network(), n.prefix()).ok());
        let (ips, cidrs) = match ip {
            IpAddr::V4(_) => (&mut n.ipv4s, &mut n.ipv4_cidrs),
            IpAddr::V6(_) => (&mut n.ipv6s, &mut n.ipv6_cidrs),
        };
        if !ips.contains(&ip) {
            ips.push(ip);
        }
        if let Some(c) = cidr.filter(|c| !cidrs.contains(c)) {
            cidrs.push(c);
        }
    }
    // The subnet is the link's first network (IPv4 first, as AWS subnets are); the
    // VPC is the Neutron network it belongs to, else that subnet's range.
    let first = networks
        .iter()
        .find(|x| x.kind.is_ipv4())
        .or(networks.first());
    if let Some(first) = first {
        let cidr = n
            .ipv4_cidrs
            .first()
            .or(n.ipv6_cidrs.first())
            .map(|c| c.to_string())
            .unwrap_or_default();
        let network_id = first.network_id.as_deref().unwrap_or("");
        n.subnet_id = Some(format!(
            "subnet-{}",
            id17(&format!("{network_id}|{cidr}|{}", first.id))
        ));
        let vpc_source = match (network_id, cidr.as_str()) {
            ("", "") => format!("{}/{}", instance.uuid_str(), first.id),
            ("", c) => c.to_owned(),
            (id, _) => id.to_owned(),
        };
        n.vpc_id = Some(format!("vpc-{}", id17(&vpc_source)));
    }
    n
}

/// 17 hex digits standing for one of our ids, as AWS ids have: the id's own digits
/// when it is a UUID (so an operator can tell which port or network it is), else
/// the start of its SHA-256.
pub(super) fn id17(source: &str) -> String {
    match uuid::Uuid::try_parse(source) {
        Ok(u) => u.simple().to_string()[..17].to_owned(),
        Err(_) => hex::encode(Sha256::digest(source.as_bytes()))[..17].to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(network: serde_json::Value) -> Instance {
        let doc = serde_json::json!({
            "uuid": "d8e02d56-2648-49a3-bf97-6be8f1204f38", "name": "n", "network": network,
        });
        Instance::from_json(doc.to_string().as_bytes()).expect("valid")
    }

    #[test]
    fn one_interface_per_mac_with_its_addresses_and_cidrs() {
        let i = instance(serde_json::json!({
            "links": [
                {"id": "a", "type": "ovs", "vif_id": "1a2b3c4d-5e6f-7081-92a3-b4c5d6e7f809",
                 "ethernet_mac_address": "FA:16:3E:00:00:01"},
                {"id": "b", "type": "phy", "ethernet_mac_address": "fa:16:3e:00:00:02"},
                {"id": "bond0", "type": "bond", "ethernet_mac_address": "fa:16:3e:00:00:09",
                 "bond_links": ["b"]},
                {"id": "dup", "type": "phy", "ethernet_mac_address": "fa:16:3e:00:00:01"}
            ],
            "networks": [
                {"id": "n0", "type": "ipv4", "link": "a", "ip_address": "10.0.0.5",
                 "netmask": "255.255.255.0", "network_id": "0e6d3f1a-1111-2222-3333-444455556666"},
                {"id": "n1", "type": "ipv4", "link": "a", "ip_address": "10.0.0.6",
                 "netmask": "255.255.255.0"},
                {"id": "n2", "type": "ipv6", "link": "a", "ip_address": "2001:db8::5",
                 "netmask": "ffff:ffff:ffff:ffff::"},
                {"id": "n3", "type": "ipv4_dhcp", "link": "b", "ip_address": "10.1.0.9"}
            ]
        }));
        let nics = nics(&i);
        assert_eq!(nics.len(), 2, "bond and repeated MAC are not interfaces");
        let a = &nics[0];
        assert_eq!(a.mac.to_string(), "fa:16:3e:00:00:01");
        assert_eq!(a.device_number, 0);
        assert_eq!(a.interface_id, "eni-1a2b3c4d5e6f70819");
        assert_eq!(a.vpc_id.as_deref(), Some("vpc-0e6d3f1a111122223"));
        assert_eq!(
            a.ipv4s,
            [
                "10.0.0.5".parse::<IpAddr>().expect("ip"),
                "10.0.0.6".parse().expect("ip")
            ]
        );
        assert_eq!(
            a.ipv4_cidrs
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["10.0.0.0/24"]
        );
        assert_eq!(
            a.ipv6_cidrs
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["2001:db8::/64"]
        );
        let b = &nics[1];
        assert_eq!(b.device_number, 1);
        assert_eq!(b.ipv4s, ["10.1.0.9".parse::<IpAddr>().expect("ip")]);
        assert!(
            b.ipv4_cidrs.is_empty(),
            "a DHCP address without netmask has no CIDR"
        );
        assert!(b.subnet_id.as_deref().is_some_and(|s| s.len() == 7 + 17));
        assert_ne!(a.subnet_id, b.subnet_id);
        assert_eq!(nics, super::nics(&i), "ids are stable");
    }

    #[test]
    fn no_network_no_interfaces() {
        let doc = r#"{"uuid": "d8e02d56-2648-49a3-bf97-6be8f1204f38", "name": "n"}"#;
        assert!(nics(&Instance::from_json(doc.as_bytes()).expect("valid")).is_empty());
    }
}
