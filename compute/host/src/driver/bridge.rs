//! Bridge networking: one Linux bridge per host (default `cbr0`) carrying the
//! subnet's gateway address and 169.254.169.254/32, and one tap per instance
//! (`tap` + the first 11 characters of its uuid, the link id its network data
//! names) enslaved to it. Guests reach the metadata server on the bridge directly,
//! and it knows them by their source address (their fixed IP).
//!
//! QEMU creates the tap itself (`-netdev tap,ifname=...`, running as root): creating
//! a tap is a `TUNSETIFF` ioctl, not an rtnetlink request, and a tap that QEMU owns
//! disappears with QEMU, so a crashed guest leaves none behind. Everything else goes
//! through rtnetlink (`compute_io::netlink`), behind the few functions below, in the
//! caller's network namespace.

use compute_io::netlink::{self, Handle, NetlinkError};
use ipnetwork::Ipv4Network;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

/// The bridge compute makes unless told otherwise (`--bridge`).
pub const DEFAULT_BRIDGE: &str = "cbr0";
/// The metadata address, on the bridge.
pub const METADATA_ADDR: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);
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

/// Makes the bridge unless it exists, sets it up, and puts the gateway address
/// (with the subnet's prefix) and 169.254.169.254/32 on it. Idempotent.
pub fn ensure_bridge(name: &str, gateway: Ipv4Network) -> Result<(), BridgeError> {
    check_name(name)?;
    run(async |h: &Handle| {
        let bridge = netlink::ensure_bridge(h, name).await?;
        netlink::set_up(h, &bridge, None).await?;
        for (ip, prefix) in [(gateway.ip(), gateway.prefix()), (METADATA_ADDR, 32)] {
            netlink::replace_address(h, &bridge, IpAddr::V4(ip), prefix).await?;
        }
        Ok(())
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
    fn bad_names_are_refused() {
        for bad in ["", "a-name-longer-than-15", "with space", "a,b", "x/y"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        check_name(DEFAULT_BRIDGE).expect("default");
    }
}
