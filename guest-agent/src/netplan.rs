//! The desired network state, from `network_data.json`: which link (by MAC) gets
//! which MTU, static addresses and routes, and which DNS servers. Pure, so that the
//! same plan drives netlink, `resolv.conf` and systemd-networkd files alike. What the
//! document's strings mean (netmasks, routes, MACs) is `compute`'s network model's to
//! say, the same reading the instance was validated with; this module only decides
//! what the agent configures.

use compute::instance::{NetworkData, NetworkError, StaticRoute};
use compute::mac::MacAddr;
use ipnetwork::IpNetwork;
use std::net::IpAddr;

/// A field of `network_data.json` that `compute`'s network model cannot read, and
/// where it is.
#[derive(Debug, thiserror::Error)]
pub enum NetPlanError {
    #[error("link `{link}`")]
    Link {
        link: String,
        #[source]
        source: NetworkError,
    },
    #[error("network `{network}`")]
    Network {
        network: String,
        #[source]
        source: NetworkError,
    },
    /// The instance-wide `services`: the error's field says which.
    #[error(transparent)]
    Services(NetworkError),
}

/// One interface, matched by its MAC address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkPlan {
    pub id: String,
    pub mac: MacAddr,
    pub mtu: Option<u32>,
    pub addresses: Vec<IpNetwork>,
    pub routes: Vec<StaticRoute>,
    /// DHCP or SLAAC networks on this link, left to the OS (networkd files say so).
    pub dhcp4: bool,
    pub dhcp6: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkPlan {
    pub links: Vec<LinkPlan>,
    pub dns: Vec<IpAddr>,
    /// Links the agent does not configure (bonds, VLANs), with why.
    pub unsupported: Vec<String>,
}

pub fn plan(data: &NetworkData) -> Result<NetworkPlan, NetPlanError> {
    let mut out = NetworkPlan::default();
    for link in &data.links {
        let mac = match link.mac() {
            Ok(None) => {
                out.unsupported.push(format!(
                    "link {} ({}) has no MAC address",
                    link.id, link.kind
                ));
                continue;
            }
            _ if link.kind == "vlan" || link.kind == "bond" => {
                out.unsupported.push(format!(
                    "link {} is a {}, not configured",
                    link.id, link.kind
                ));
                continue;
            }
            Ok(Some(mac)) => mac,
            Err(source) => {
                return Err(NetPlanError::Link {
                    link: link.id.clone(),
                    source,
                })
            }
        };
        out.links.push(LinkPlan {
            id: link.id.clone(),
            mac,
            mtu: link.mtu,
            addresses: Vec::new(),
            routes: Vec::new(),
            dhcp4: false,
            dhcp6: false,
        });
    }
    for net in &data.networks {
        let err = |source| NetPlanError::Network {
            network: net.id.clone(),
            source,
        };
        let Some(link) = out.links.iter_mut().find(|l| l.id == net.link) else {
            out.unsupported.push(format!(
                "network {} is on link {}, which is not configured",
                net.id, net.link
            ));
            continue;
        };
        if !net.kind.is_static() {
            match net.kind.is_ipv4() {
                true => link.dhcp4 = true,
                false => link.dhcp6 = true,
            }
            continue;
        }
        if let Some(address) = net.address().map_err(err)? {
            link.addresses.push(address);
        }
        for route in net.routes() {
            link.routes.push(route.map_err(err)?);
        }
        for ip in net.dns_servers() {
            push_dns(&mut out.dns, ip.map_err(err)?);
        }
    }
    for ip in data.dns_servers() {
        push_dns(&mut out.dns, ip.map_err(NetPlanError::Services)?);
    }
    Ok(out)
}

fn push_dns(dns: &mut Vec<IpAddr>, ip: IpAddr) {
    if !dns.contains(&ip) {
        dns.push(ip);
    }
}

/// `/etc/resolv.conf` for the plan's DNS servers (`None` when there are none).
pub fn resolv_conf(plan: &NetworkPlan) -> Option<String> {
    if plan.dns.is_empty() {
        return None;
    }
    let mut s = String::from("# Written by guest-agent from network_data.json.\n");
    for ip in &plan.dns {
        s.push_str(&format!("nameserver {ip}\n"));
    }
    Some(s)
}

/// systemd-networkd `.network` files, one per link: (file name, contents).
pub fn networkd_files(plan: &NetworkPlan) -> Vec<(String, String)> {
    plan.links
        .iter()
        .map(|l| {
            let mut s = format!(
                "# Written by guest-agent for link {}.\n[Match]\nMACAddress={}\n",
                l.id, l.mac
            );
            if let Some(mtu) = l.mtu {
                s.push_str(&format!("\n[Link]\nMTUBytes={mtu}\n"));
            }
            s.push_str("\n[Network]\n");
            match (l.dhcp4, l.dhcp6) {
                (true, true) => s.push_str("DHCP=yes\n"),
                (true, false) => s.push_str("DHCP=ipv4\n"),
                (false, true) => s.push_str("DHCP=ipv6\n"),
                (false, false) => {}
            }
            for a in &l.addresses {
                s.push_str(&format!("Address={a}\n"));
            }
            for d in &plan.dns {
                s.push_str(&format!("DNS={d}\n"));
            }
            for r in &l.routes {
                s.push_str(&format!(
                    "\n[Route]\nDestination={}\nGateway={}\n",
                    r.destination, r.gateway
                ));
            }
            let name: String = l.mac.to_string().replace(':', "");
            (format!("50-guest-agent-{name}.network"), s)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multinic_fixture_plans() {
        let doc = include_bytes!("../../compute/tests/fixtures/multinic.json");
        let inst = compute::Instance::from_json(doc).expect("valid");
        let p = plan(inst.network().expect("has network")).expect("plans");
        assert_eq!(p.links.len(), 2);
        let l = &p.links[0];
        assert_eq!(l.mtu, Some(1450));
        let addrs: Vec<String> = l.addresses.iter().map(|a| a.to_string()).collect();
        assert_eq!(addrs, ["10.0.0.5/24", "2001:db8::5/64"]);
        assert_eq!(l.routes[0].destination.to_string(), "0.0.0.0/0");
        assert_eq!(l.routes[1].destination.to_string(), "192.168.10.0/24");
        assert_eq!(l.routes[2].destination.to_string(), "::/0");
        assert!(p.links[1].dhcp4);
        assert_eq!(p.dns.len(), 2);
        assert_eq!(resolv_conf(&p).expect("dns").lines().count(), 3);
        let files = networkd_files(&p);
        assert_eq!(files[0].0, "50-guest-agent-fa163e000001.network");
        assert!(files[0].1.contains("MTUBytes=1450\n") && files[1].1.contains("DHCP=ipv4"));
    }

    #[test]
    fn what_the_model_cannot_read_is_named_with_its_network() {
        let doc = include_bytes!("../../compute/tests/fixtures/multinic.json");
        let inst = compute::Instance::from_json(doc).expect("valid");
        let mut data = inst.network().expect("has network").clone();
        data.networks[0].netmask = Some("24".into());
        let e = plan(&data).expect_err("not Nova's spelling of a netmask");
        assert_eq!(
            crate::report::error_chain(&e),
            "network `network0`: netmask = \"24\": is not an IP address"
        );
        let mut data = inst.network().expect("has network").clone();
        data.services[0].address = "dns.example".into();
        let e = plan(&data).expect_err("not an address");
        assert_eq!(
            crate::report::error_chain(&e),
            "services[0].address = \"dns.example\": is not an IP address"
        );
    }
}
