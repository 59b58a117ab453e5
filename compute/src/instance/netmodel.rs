//! The one reading of `network_data.json`: what its strings mean, typed.
//!
//! [`super::network`] is the document's shape, strings as Nova writes them; this module
//! interprets them: a link's MAC, a network's address with its prefix, its routes, its
//! DNS servers. Everyone reads through these accessors (validation of the instance
//! document, the NoCloud writer, the guest agent), so a netmask means the same prefix
//! everywhere and what validates is exactly what the others can read. Pure: no I/O.
//!
//! A netmask is written as an address (`255.255.255.0`, `ffff:ffff:ffff:ffff::`), as
//! Nova writes it, and must be a contiguous mask of its network's family.

use super::error::shorten;
use super::network::{Link, Network, NetworkData, NetworkType, Route, Service};
use crate::mac::MacAddr;
use ipnetwork::IpNetwork;
use std::fmt;
use std::net::IpAddr;

/// IPv4 or IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpFamily {
    V4,
    V6,
}

impl IpFamily {
    pub fn of(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(_) => IpFamily::V4,
            IpAddr::V6(_) => IpFamily::V6,
        }
    }
}

impl fmt::Display for IpFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IpFamily::V4 => "IPv4",
            IpFamily::V6 => "IPv6",
        })
    }
}

impl NetworkType {
    /// The family of the network's addresses (DHCP and SLAAC networks included).
    pub fn family(self) -> IpFamily {
        if self.is_ipv4() {
            IpFamily::V4
        } else {
            IpFamily::V6
        }
    }
}

/// A route of a network, read: traffic for `destination` goes through `gateway`, an
/// address of the same family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaticRoute {
    pub destination: IpNetwork,
    pub gateway: IpAddr,
}

/// What is wrong with a field of `network_data.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkProblem {
    /// A static network needs its `ip_address` and its `netmask`.
    Missing,
    NotAnAddress,
    /// An address of the other family than its network's type.
    NetworkFamily(IpFamily),
    /// A route's gateway of the other family than the route's network.
    RouteFamily(IpFamily),
    NotAMask(IpFamily),
    NotAMac,
}

impl fmt::Display for NetworkProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetworkProblem::Missing => f.write_str("is required for a static network"),
            NetworkProblem::NotAnAddress => f.write_str("is not an IP address"),
            NetworkProblem::NetworkFamily(family) => {
                write!(f, "must be an {family} address for this network type")
            }
            NetworkProblem::RouteFamily(family) => {
                write!(f, "must be an {family} address, like the route's network")
            }
            NetworkProblem::NotAMask(family) => write!(f, "must be a contiguous {family} netmask"),
            NetworkProblem::NotAMac => f.write_str("is not a MAC address like fa:16:3e:12:34:56"),
        }
    }
}

/// A field that does not read as what it must be. `field` is its path inside the
/// item it belongs to (`netmask`, `routes[1].gateway`, `services[0].address`): the
/// caller says which link, network or document that is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} = {value:?}: {problem}")]
pub struct NetworkError {
    pub field: String,
    /// The offending value, shortened when long; empty when missing.
    pub value: String,
    pub problem: NetworkProblem,
}

impl NetworkError {
    fn new(field: impl Into<String>, value: &str, problem: NetworkProblem) -> Self {
        NetworkError {
            field: field.into(),
            value: shorten(value),
            problem,
        }
    }
}

fn parse_ip(field: &str, value: &str) -> Result<IpAddr, NetworkError> {
    value
        .parse()
        .map_err(|_| NetworkError::new(field, value, NetworkProblem::NotAnAddress))
}

/// The prefix length of a netmask of `family`.
fn prefix_of(field: &str, mask: &str, family: IpFamily) -> Result<u8, NetworkError> {
    let addr = parse_ip(field, mask)?;
    if IpFamily::of(addr) != family {
        return Err(NetworkError::new(
            field,
            mask,
            NetworkProblem::NotAMask(family),
        ));
    }
    ipnetwork::ip_mask_to_prefix(addr)
        .map_err(|_| NetworkError::new(field, mask, NetworkProblem::NotAMask(family)))
}

impl Link {
    /// `ethernet_mac_address`, parsed; `None` when the link has none.
    pub fn mac(&self) -> Result<Option<MacAddr>, NetworkError> {
        let Some(mac) = &self.ethernet_mac_address else {
            return Ok(None);
        };
        mac.parse()
            .map(Some)
            .map_err(|_| NetworkError::new("ethernet_mac_address", mac, NetworkProblem::NotAMac))
    }
}

impl Network {
    /// `ip_address`, of the network's family: required on a static network, optional
    /// on the others (the address a DHCP server hands out, when known).
    pub fn ip(&self) -> Result<Option<IpAddr>, NetworkError> {
        const FIELD: &str = "ip_address";
        let Some(text) = self.required(FIELD, self.ip_address.as_deref())? else {
            return Ok(None);
        };
        let ip = parse_ip(FIELD, text)?;
        let family = self.kind.family();
        if IpFamily::of(ip) != family {
            return Err(NetworkError::new(
                FIELD,
                text,
                NetworkProblem::NetworkFamily(family),
            ));
        }
        Ok(Some(ip))
    }

    /// `netmask` as a prefix length; required and optional like [`Self::ip`].
    pub fn prefix(&self) -> Result<Option<u8>, NetworkError> {
        const FIELD: &str = "netmask";
        match self.required(FIELD, self.netmask.as_deref())? {
            Some(mask) => prefix_of(FIELD, mask, self.kind.family()).map(Some),
            None => Ok(None),
        }
    }

    /// The address with its prefix (`10.0.0.5/24`): always there on a valid static
    /// network; on the others when the document gives both.
    pub fn address(&self) -> Result<Option<IpNetwork>, NetworkError> {
        let (ip, prefix) = (self.ip()?, self.prefix()?);
        let (Some(ip), Some(prefix)) = (ip, prefix) else {
            return Ok(None);
        };
        // The prefix comes from a mask of the address's family, so it fits.
        IpNetwork::new(ip, prefix).map(Some).map_err(|_| {
            NetworkError::new(
                "netmask",
                self.netmask.as_deref().unwrap_or_default(),
                NetworkProblem::NotAMask(self.kind.family()),
            )
        })
    }

    /// Each of `routes`, read, in order.
    pub fn routes(&self) -> impl Iterator<Item = Result<StaticRoute, NetworkError>> + '_ {
        self.routes
            .iter()
            .flatten()
            .enumerate()
            .map(|(j, r)| r.read(&format!("routes[{j}]")))
    }

    /// Every problem of every route, for validation to name them all ([`Self::routes`]
    /// stops at a route's first).
    pub(super) fn route_problems(&self) -> Vec<NetworkError> {
        self.routes
            .iter()
            .flatten()
            .enumerate()
            .flat_map(|(j, r)| r.problems(&format!("routes[{j}]")))
            .collect()
    }

    /// The addresses of the network's `dns` services, in order.
    pub fn dns_servers(&self) -> impl Iterator<Item = Result<IpAddr, NetworkError>> + '_ {
        dns_servers(self.services.as_deref().unwrap_or_default())
    }

    fn required<'a>(
        &self,
        field: &str,
        value: Option<&'a str>,
    ) -> Result<Option<&'a str>, NetworkError> {
        match value {
            None if self.kind.is_static() => {
                Err(NetworkError::new(field, "", NetworkProblem::Missing))
            }
            other => Ok(other),
        }
    }
}

impl Route {
    /// The route, typed; `at` is where it sits (`routes[1]`), for the error.
    fn read(&self, at: &str) -> Result<StaticRoute, NetworkError> {
        let field = |f: &str| format!("{at}.{f}");
        let dest = parse_ip(&field("network"), &self.network)?;
        let family = IpFamily::of(dest);
        let prefix = prefix_of(&field("netmask"), &self.netmask, family)?;
        let gateway = parse_ip(&field("gateway"), &self.gateway)?;
        if IpFamily::of(gateway) != family {
            return Err(NetworkError::new(
                field("gateway"),
                &self.gateway,
                NetworkProblem::RouteFamily(family),
            ));
        }
        let destination = IpNetwork::new(dest, prefix).map_err(|_| {
            NetworkError::new(
                field("netmask"),
                &self.netmask,
                NetworkProblem::NotAMask(family),
            )
        })?;
        Ok(StaticRoute {
            destination,
            gateway,
        })
    }

    /// Every field of the route [`Self::read`] refuses, in its order: the first is
    /// what `read` says; the others are checked as far as they can be on their own.
    fn problems(&self, at: &str) -> Vec<NetworkError> {
        let field = |f: &str| format!("{at}.{f}");
        let mut out = Vec::new();
        let dest = parse_ip(&field("network"), &self.network);
        let gateway = parse_ip(&field("gateway"), &self.gateway);
        match &dest {
            Ok(dest) => {
                let family = IpFamily::of(*dest);
                out.extend(prefix_of(&field("netmask"), &self.netmask, family).err());
            }
            Err(e) => {
                out.push(e.clone());
                out.extend(parse_ip(&field("netmask"), &self.netmask).err());
            }
        }
        match (dest, gateway) {
            (_, Err(e)) => out.push(e),
            (Ok(dest), Ok(gateway)) if IpFamily::of(dest) != IpFamily::of(gateway) => {
                out.push(NetworkError::new(
                    field("gateway"),
                    &self.gateway,
                    NetworkProblem::RouteFamily(IpFamily::of(dest)),
                ))
            }
            _ => {}
        }
        out
    }
}

fn dns_servers(services: &[Service]) -> impl Iterator<Item = Result<IpAddr, NetworkError>> + '_ {
    services
        .iter()
        .enumerate()
        .filter(|(_, s)| s.kind == "dns")
        .map(|(j, s)| parse_ip(&format!("services[{j}].address"), &s.address))
}

impl NetworkData {
    /// The link a network sits on; `None` when its `link` names none.
    pub fn link_of(&self, network: &Network) -> Option<&Link> {
        self.links.iter().find(|l| l.id == network.link)
    }

    /// The networks on a link, in order.
    pub fn networks_on<'a>(&'a self, link: &'a Link) -> impl Iterator<Item = &'a Network> + 'a {
        self.networks.iter().filter(move |n| n.link == link.id)
    }

    /// The addresses of the instance-wide `dns` services, in order.
    pub fn dns_servers(&self) -> impl Iterator<Item = Result<IpAddr, NetworkError>> + '_ {
        dns_servers(&self.services)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn network(kind: NetworkType, ip: Option<&str>, mask: Option<&str>) -> Network {
        Network {
            id: "n".into(),
            kind,
            link: "l".into(),
            ip_address: ip.map(Into::into),
            netmask: mask.map(Into::into),
            routes: None,
            network_id: None,
            services: None,
        }
    }

    fn problem<T: fmt::Debug>(r: Result<T, NetworkError>) -> (String, NetworkProblem) {
        let e = r.expect_err("refused");
        (e.field, e.problem)
    }

    #[test]
    fn netmasks_are_contiguous_masks_of_the_networks_family() {
        let read = |kind, mask| network(kind, None, Some(mask)).prefix();
        assert_eq!(read(NetworkType::Ipv4, "255.255.255.0"), Ok(Some(24)));
        assert_eq!(read(NetworkType::Ipv4, "0.0.0.0"), Ok(Some(0)));
        assert_eq!(
            read(NetworkType::Ipv6, "ffff:ffff:ffff:ffff::"),
            Ok(Some(64))
        );
        let v4 = IpFamily::V4;
        for bad in ["255.0.255.0", "ffff::"] {
            assert_eq!(
                problem(read(NetworkType::Ipv4, bad)),
                ("netmask".into(), NetworkProblem::NotAMask(v4))
            );
        }
        // Only Nova's spelling: a bare prefix length is not a netmask.
        assert_eq!(
            problem(read(NetworkType::Ipv4, "24")),
            ("netmask".into(), NetworkProblem::NotAnAddress)
        );
    }

    #[test]
    fn a_static_network_needs_its_address_and_netmask() {
        let n = network(NetworkType::Ipv4, Some("10.0.0.5"), Some("255.255.255.0"));
        assert_eq!(
            n.address().map(|a| a.map(|a| a.to_string())),
            Ok(Some("10.0.0.5/24".into()))
        );
        let n = network(NetworkType::Ipv6, Some("2001:db8::5"), None);
        assert_eq!(
            problem(n.address()),
            ("netmask".into(), NetworkProblem::Missing)
        );
        let n = network(NetworkType::Ipv6, Some("10.0.0.5"), Some("ffff::"));
        assert_eq!(
            problem(n.ip()),
            (
                "ip_address".into(),
                NetworkProblem::NetworkFamily(IpFamily::V6)
            )
        );
        // DHCP: optional, and read the same way when given.
        assert_eq!(
            network(NetworkType::Ipv4Dhcp, None, None).address(),
            Ok(None)
        );
        let n = network(NetworkType::Ipv4Dhcp, Some("10.0.0.5"), None);
        assert_eq!(n.ip(), Ok(Some("10.0.0.5".parse().expect("ip"))));
        assert_eq!(n.address(), Ok(None));
    }

    #[test]
    fn routes_and_dns_servers_are_read_with_their_place() {
        let mut n = network(NetworkType::Ipv4, Some("10.0.0.5"), Some("255.255.255.0"));
        let route = |network: &str, netmask: &str, gateway: &str| Route {
            network: network.into(),
            netmask: netmask.into(),
            gateway: gateway.into(),
        };
        n.routes = Some(vec![
            route("0.0.0.0", "0.0.0.0", "10.0.0.1"),
            route("10.1.0.0", "255.0.255.0", "10.0.0.1"),
            route("10.2.0.0", "255.255.0.0", "2001:db8::1"),
            route("::", "::", "2001:db8::1"),
        ]);
        let routes: Vec<_> = n.routes().collect();
        assert_eq!(
            routes[0]
                .as_ref()
                .map(|r| (r.destination.to_string(), r.gateway.to_string())),
            Ok(("0.0.0.0/0".into(), "10.0.0.1".into()))
        );
        let e = routes[1].clone().expect_err("not contiguous");
        assert_eq!(
            e.to_string(),
            "routes[1].netmask = \"255.0.255.0\": must be a contiguous IPv4 netmask"
        );
        assert_eq!(
            problem(routes[2].clone()),
            (
                "routes[2].gateway".into(),
                NetworkProblem::RouteFamily(IpFamily::V4)
            )
        );
        assert!(routes[3].is_ok());
        // Validation names each bad field; the first is what the route's reader says.
        n.routes = Some(vec![route("10.1.0", "255.0.0.0", "10.0.0.x")]);
        let all = n.route_problems();
        let fields: Vec<&str> = all.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["routes[0].network", "routes[0].gateway"]);
        assert_eq!(n.routes().next(), Some(Err(all[0].clone())));

        n.services = Some(vec![
            Service {
                kind: "ntp".into(),
                address: "ntp.example".into(),
            },
            Service {
                kind: "dns".into(),
                address: "dns.example".into(),
            },
        ]);
        let dns: Vec<_> = n.dns_servers().collect();
        assert_eq!(dns.len(), 1, "only dns services");
        assert_eq!(
            problem(dns[0].clone()),
            ("services[1].address".into(), NetworkProblem::NotAnAddress)
        );
    }

    proptest::proptest! {
        /// What the readers accept is exactly what validation lets through.
        #[test]
        fn a_route_reads_when_validation_finds_nothing(
            network in proptest::sample::select(SPELLINGS),
            netmask in proptest::sample::select(SPELLINGS),
            gateway in proptest::sample::select(SPELLINGS),
        ) {
            let mut n = network_of_route(network, netmask, gateway);
            let problems = n.route_problems();
            let read: Vec<_> = n.routes().collect();
            proptest::prop_assert_eq!(read.len(), 1);
            match &read[0] {
                Ok(r) => {
                    proptest::prop_assert!(problems.is_empty(), "{:?}", problems);
                    proptest::prop_assert_eq!(r.destination.ip(), network.parse::<IpAddr>().expect("read"));
                }
                Err(e) => proptest::prop_assert_eq!(Some(e), problems.first()),
            }
            n.routes = None;
            proptest::prop_assert!(n.route_problems().is_empty());
        }
    }

    const SPELLINGS: &[&str] = &[
        "10.1.0.0",
        "0.0.0.0",
        "255.255.0.0",
        "255.0.255.0",
        "10.0.0.1",
        "::",
        "ffff::",
        "ffff:0:ffff::",
        "2001:db8::1",
        "2001:DB8::1",
        "10.1.0",
        "x",
        "",
    ];

    fn network_of_route(destination: &str, netmask: &str, gateway: &str) -> Network {
        let mut n = network(NetworkType::Ipv4, Some("10.0.0.5"), Some("255.255.255.0"));
        n.routes = Some(vec![Route {
            network: destination.into(),
            netmask: netmask.into(),
            gateway: gateway.into(),
        }]);
        n
    }

    #[test]
    fn long_values_are_shortened() {
        let long = "9".repeat(1000);
        let e = network(NetworkType::Ipv4, Some(&long), None)
            .ip()
            .expect_err("not an address");
        assert!(e.value.chars().count() <= 80, "{}", e.value);
    }
}
