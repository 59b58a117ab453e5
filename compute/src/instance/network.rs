//! The `network_data.json` shape, typed.
//!
//! The instance document carries its network exactly as Nova's `network_data.json`
//! (links, networks, services). Field order in these structs is Nova's key order, so
//! serialising them gives Nova's bytes whatever order the operator wrote.

use serde::{Deserialize, Serialize};

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
