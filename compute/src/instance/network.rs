//! The `network_data.json` shape, typed.
//!
//! The instance document carries its network in the shape of Nova's
//! `network_data.json` (links, networks, services). Field order in these structs is
//! Nova's key order, so serialising them gives Nova's bytes whatever order the
//! operator wrote. One difference: a DHCP network may carry the address the DHCP
//! server hands out, which the document keeps and [`NetworkData::published`] leaves
//! out, as Nova does. What the strings mean (addresses, prefixes, routes, MACs) is
//! read in one place, [`super::netmodel`].

use crate::mac::MacAddr;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// The whole `network_data.json` document.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkData {
    #[serde(default)]
    pub links: Vec<Link>,
    #[serde(default)]
    pub networks: Vec<Network>,
    #[serde(default)]
    pub services: Vec<Service>,
}

/// One fixed address of an instance: a network's `ip_address`, whatever the network's
/// type (static, DHCP or SLAAC), with the MAC of the link it sits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedAddress {
    pub ip: IpAddr,
    pub kind: NetworkType,
    pub mac: Option<MacAddr>,
}

impl NetworkData {
    /// The instance's fixed addresses in document order: the one definition behind
    /// EC2 `local-ipv4` and `mac` and the metadata server's lookup by source address.
    /// Addresses the network model cannot read are skipped (validation refuses them).
    pub fn fixed_addresses(&self) -> Vec<FixedAddress> {
        self.networks
            .iter()
            .filter_map(|n| {
                let ip = n.ip().ok()??;
                let mac = self.link_of(n).and_then(|l| l.mac().ok().flatten());
                Some(FixedAddress {
                    ip,
                    kind: n.kind,
                    mac,
                })
            })
            .collect()
    }

    /// What `network_data.json` shows: the document's network with the `ipv4_dhcp`
    /// and `ipv6_dhcp` networks cut to Nova's `id`, `type`, `link` and `network_id`
    /// (their address is known but left to DHCP, as Nova leaves it).
    pub fn published(&self) -> NetworkData {
        let mut out = self.clone();
        for n in out.networks.iter_mut().filter(|n| n.kind.is_dhcp()) {
            n.ip_address = None;
            n.netmask = None;
            n.routes = None;
            n.services = None;
        }
        out
    }
}

/// A layer-2 link: a VIF, a physical NIC, a bond or a VLAN.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Link {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vif_id: Option<String>,
    #[serde(rename = "type")]
    pub kind: String,
    /// Nova always writes `mtu`, as `null` when the network has none.
    #[serde(default)]
    pub mtu: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ethernet_mac_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bond_links: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bond_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bond_miimon: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bond_xmit_hash_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlan_link: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlan_id: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vlan_mac_address: Option<String>,
}

/// A layer-3 network on a link: static (`ipv4`, `ipv6`) or left to the OS (DHCP, SLAAC).
/// `ip_address` is the instance's fixed address on it, whatever the type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Network {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: NetworkType,
    pub link: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netmask: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routes: Option<Vec<Route>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services: Option<Vec<Service>>,
}

/// The network types Nova and its consumers know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NetworkType {
    #[serde(rename = "ipv4")]
    Ipv4,
    #[serde(rename = "ipv6")]
    Ipv6,
    #[serde(rename = "ipv4_dhcp")]
    Ipv4Dhcp,
    #[serde(rename = "ipv6_dhcp")]
    Ipv6Dhcp,
    #[serde(rename = "ipv6_slaac")]
    Ipv6Slaac,
    #[serde(rename = "ipv6_dhcpv6-stateful")]
    Ipv6Dhcpv6Stateful,
    #[serde(rename = "ipv6_dhcpv6-stateless")]
    Ipv6Dhcpv6Stateless,
}

impl NetworkType {
    /// Static networks carry an address the guest must configure itself.
    pub fn is_static(self) -> bool {
        matches!(self, NetworkType::Ipv4 | NetworkType::Ipv6)
    }

    pub fn is_ipv4(self) -> bool {
        matches!(self, NetworkType::Ipv4 | NetworkType::Ipv4Dhcp)
    }

    /// Nova's DHCP networks: `network_data.json` shows only their `id`, `type`,
    /// `link` and `network_id`.
    pub fn is_dhcp(self) -> bool {
        matches!(self, NetworkType::Ipv4Dhcp | NetworkType::Ipv6Dhcp)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    pub network: String,
    pub netmask: String,
    pub gateway: String,
}

/// A service such as a DNS server, per network or for the whole instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    #[serde(rename = "type")]
    pub kind: String,
    pub address: String,
}
