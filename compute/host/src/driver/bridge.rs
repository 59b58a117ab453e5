//! Bridge networking: one Linux bridge per host (default `cbr0`) carrying the
//! subnet's gateway address and the metadata service's addresses (169.254.169.254/32,
//! and over IPv6 AWS's `fd00:ec2::254/128` and OpenStack's link-local
//! `fe80::a9fe:a9fe/64`), and one tap per instance (`tap` + the first 11 characters of
//! its uuid, the link id its network data names) enslaved to it. Guests reach the
//! metadata server on the bridge directly, and it knows them by their source address
//! (their fixed IP, or over link-local the EUI-64 address of their MAC).
//!
//! The IPv6 addresses skip duplicate address detection: they are this host's by
//! construction, and a tentative address could not be bound until the bridge has a
//! port with carrier, that is after the server must already listen. On a host whose
//! kernel has IPv6 off for the bridge they are left out (with a warning) and the
//! service is IPv4 only.
//!
//! QEMU creates the tap itself (`-netdev tap,ifname=...`, running as root): creating
//! a tap is a `TUNSETIFF` ioctl, not an rtnetlink request, and a tap that QEMU owns
//! disappears with QEMU, so a crashed guest leaves none behind. Everything else goes
//! through rtnetlink (`compute_io::netlink`), behind the few functions below, in the
//! caller's network namespace.

use compute_io::netlink::{self, Handle, NetlinkError};
use ipnetwork::Ipv4Network;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::time::Duration;

/// The bridge compute makes unless told otherwise (`--bridge`).
pub const DEFAULT_BRIDGE: &str = "cbr0";
/// The metadata address, on the bridge.
pub const METADATA_ADDR: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);
/// AWS's IPv6 metadata address (botocore's endpoint mode IPv6), on the bridge as /128.
pub const METADATA_ADDR6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);
/// OpenStack's link-local metadata address, on the bridge as /64 (the guests' link).
pub const METADATA_LINK_LOCAL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0xa9fe, 0xa9fe);
/// The metadata server's port on every address.
pub const METADATA_PORT: u16 = 80;
/// Longest interface name the kernel takes (IFNAMSIZ - 1).
pub const MAX_IFNAME: usize = 15;
/// Bound on one batch of netlink requests.
pub const NETLINK_DEADLINE: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error("bridge networking failed (it needs root)")]
    Netlink(#[from] NetlinkError),
    #[error("interface name {0:?} is not 1 to {MAX_IFNAME} letters, digits, '-', '_' or '.'")]
    BadName(String),
}

/// The tap of an instance.
pub fn tap_name(uuid: &str) -> String {
    format!("tap{}", uuid.get(..11).unwrap_or(uuid))
}

/// Checks an interface name (what `--bridge` takes).
pub fn check_name(name: &str) -> Result<(), BridgeError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_IFNAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(BridgeError::BadName(name.to_owned()))
    }
}

fn run<T>(work: impl AsyncFnOnce(&Handle) -> Result<T, NetlinkError>) -> Result<T, BridgeError> {
    Ok(netlink::run(NETLINK_DEADLINE, work)?)
}

/// The bridge as made: what the metadata server listens on depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BridgeLink {
    /// Its interface index: the scope of its link-local address.
    pub index: u32,
    /// Whether it carries the IPv6 metadata addresses.
    pub ipv6: bool,
}

impl BridgeLink {
    /// Where the metadata server listens for the guests of this bridge:
    /// 169.254.169.254:80, and with IPv6 `[fd00:ec2::254]:80` and
    /// `[fe80::a9fe:a9fe%<index>]:80`.
    pub fn metadata_listen(&self) -> Vec<SocketAddr> {
        let mut listen = vec![SocketAddr::from((METADATA_ADDR, METADATA_PORT))];
        if self.ipv6 {
            listen.push(SocketAddr::V6(SocketAddrV6::new(
                METADATA_ADDR6,
                METADATA_PORT,
                0,
                0,
            )));
            listen.push(SocketAddr::V6(SocketAddrV6::new(
                METADATA_LINK_LOCAL,
                METADATA_PORT,
                0,
                self.index,
            )));
        }
        listen
    }
}

/// Whether the kernel has IPv6 off for the link (`disable_ipv6`, or no IPv6 at all).
/// Read from this thread's network namespace, as the netlink requests are.
fn ipv6_disabled(name: &str) -> bool {
    std::fs::read_to_string(format!("/proc/sys/net/ipv6/conf/{name}/disable_ipv6"))
        .map_or(true, |v| v.trim() == "1")
}

/// Makes the bridge unless it exists, sets it up, and puts the gateway address
/// (with the subnet's prefix), 169.254.169.254/32 and, unless IPv6 is off,
/// `fd00:ec2::254/128` and `fe80::a9fe:a9fe/64` (both `nodad`) on it. Idempotent.
pub fn ensure_bridge(name: &str, gateway: Ipv4Network) -> Result<BridgeLink, BridgeError> {
    check_name(name)?;
    let bridge = run(async |h: &Handle| {
        let bridge = netlink::ensure_bridge(h, name).await?;
        netlink::set_up(h, &bridge, None).await?;
        for (ip, prefix) in [(gateway.ip(), gateway.prefix()), (METADATA_ADDR, 32)] {
            netlink::replace_address(h, &bridge, IpAddr::V4(ip), prefix).await?;
        }
        Ok(bridge)
    })?;
    let ipv6 = !ipv6_disabled(name);
    if ipv6 {
        run(async |h: &Handle| {
            netlink::replace_address_nodad(h, &bridge, METADATA_ADDR6, 128).await?;
            netlink::replace_address_nodad(h, &bridge, METADATA_LINK_LOCAL, 64).await
        })?;
    } else {
        tracing::warn!(
            bridge = name,
            "IPv6 is off for the bridge: the metadata service answers over IPv4 only"
        );
    }
    Ok(BridgeLink {
        index: bridge.index,
        ipv6,
    })
}

/// Puts the tap on the bridge and sets it up.
pub fn attach(tap: &str, bridge: &str) -> Result<(), BridgeError> {
    check_name(tap)?;
    check_name(bridge)?;
    run(async |h: &Handle| {
        let b = netlink::existing_link(h, bridge).await?;
        let t = netlink::existing_link(h, tap).await?;
        netlink::set_controller(h, &t, &b).await
    })
}

/// True when the named link exists.
pub fn exists(name: &str) -> Result<bool, BridgeError> {
    check_name(name)?;
    run(async |h: &Handle| Ok(netlink::link_by_name(h, name).await?.is_some()))
}

/// Deletes the named link; nothing to do when it is gone (a tap QEMU owns vanishes
/// when QEMU exits).
pub fn delete_link(name: &str) -> Result<(), BridgeError> {
    check_name(name)?;
    run(async |h: &Handle| netlink::delete_link(h, name).await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tap_names_fit_and_match_the_link_id() {
        let name = tap_name("d8e02d56-2648-49a3-bf97-6be8f1204f38");
        assert_eq!(name, "tapd8e02d56-26");
        check_name(&name).expect("valid");
    }

    #[test]
    fn the_server_listens_on_every_metadata_address_of_the_bridge() {
        let with_v6 = BridgeLink {
            index: 7,
            ipv6: true,
        };
        let shown: Vec<String> = with_v6
            .metadata_listen()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            shown,
            [
                "169.254.169.254:80",
                "[fd00:ec2::254]:80",
                "[fe80::a9fe:a9fe%7]:80"
            ]
        );
        let v4_only = BridgeLink {
            ipv6: false,
            ..with_v6
        };
        assert_eq!(
            v4_only.metadata_listen(),
            [SocketAddr::from((METADATA_ADDR, 80))]
        );
    }

    #[test]
    fn bad_names_are_refused() {
        for bad in ["", "a-name-longer-than-15", "with space", "a,b", "x/y"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        check_name(DEFAULT_BRIDGE).expect("default");
    }
}
