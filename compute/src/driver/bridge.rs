//! Bridge networking: one Linux bridge per host (default `cbr0`) carrying the
//! subnet's gateway address and 169.254.169.254/32, and one tap per instance
//! (`tap` + the first 11 characters of its uuid, the link id its network data
//! names) enslaved to it. Guests reach the metadata server on the bridge directly,
//! and it knows them by their source address (their fixed IP).
//!
//! QEMU creates the tap itself (`-netdev tap,ifname=...`, running as root): creating
//! a tap is a `TUNSETIFF` ioctl, not an rtnetlink request, and a tap that QEMU owns
//! disappears with QEMU, so a crashed guest leaves none behind. Everything else goes
//! through rtnetlink, behind the few functions below, in the caller's network
//! namespace.

use futures_util::TryStreamExt;
use ipnetwork::Ipv4Network;
use netlink_packet_route::link::LinkAttribute;
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
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot open a netlink socket: {0}")]
    Socket(std::io::Error),
    #[error("{what}: {source} (bridge networking needs root)")]
    Request {
        what: String,
        source: Box<rtnetlink::Error>,
    },
    #[error("interface {0} does not exist")]
    NoSuchLink(String),
    #[error("interface name {0:?} is not 1 to {MAX_IFNAME} letters, digits, '-', '_' or '.'")]
    BadName(String),
    #[error("netlink requests took longer than {NETLINK_DEADLINE:?}")]
    Timeout,
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

fn run<T>(
    work: impl AsyncFnOnce(&rtnetlink::Handle) -> Result<T, BridgeError>,
) -> Result<T, BridgeError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(BridgeError::Runtime)?;
    rt.block_on(async {
        // The socket is opened here, on the calling thread: in its network namespace.
        let (conn, handle, _) = rtnetlink::new_connection().map_err(BridgeError::Socket)?;
        let conn = tokio::spawn(conn);
        let out = tokio::time::timeout(NETLINK_DEADLINE, work(&handle))
            .await
            .map_err(|_| BridgeError::Timeout)
            .and_then(|r| r);
        conn.abort();
        out
    })
}

fn req(what: String) -> impl FnOnce(rtnetlink::Error) -> BridgeError {
    move |source| BridgeError::Request {
        what,
        source: Box::new(source),
    }
}

/// The index of the named link, if it exists.
async fn index_of(handle: &rtnetlink::Handle, name: &str) -> Result<Option<u32>, BridgeError> {
    let mut links = handle.link().get().execute();
    while let Some(msg) = links
        .try_next()
        .await
        .map_err(req("listing links".into()))?
    {
        let named = msg
            .attributes
            .iter()
            .any(|a| matches!(a, LinkAttribute::IfName(n) if n == name));
        if named {
            return Ok(Some(msg.header.index));
        }
    }
    Ok(None)
}

/// Makes the bridge unless it exists, sets it up, and puts the gateway address
/// (with the subnet's prefix) and 169.254.169.254/32 on it. Idempotent.
pub fn ensure_bridge(name: &str, gateway: Ipv4Network) -> Result<(), BridgeError> {
    check_name(name)?;
    run(async |h: &rtnetlink::Handle| {
        let index = match index_of(h, name).await? {
            Some(i) => i,
            None => {
                h.link()
                    .add()
                    .bridge(name.to_owned())
                    .execute()
                    .await
                    .map_err(req(format!("creating bridge {name}")))?;
                index_of(h, name)
                    .await?
                    .ok_or_else(|| BridgeError::NoSuchLink(name.to_owned()))?
            }
        };
        h.link()
            .set(index)
            .up()
            .execute()
            .await
            .map_err(req(format!("setting {name} up")))?;
        for (ip, prefix) in [(gateway.ip(), gateway.prefix()), (METADATA_ADDR, 32)] {
            h.address()
                .add(index, IpAddr::V4(ip), prefix)
                .replace()
                .execute()
                .await
                .map_err(req(format!("adding {ip}/{prefix} to {name}")))?;
        }
        Ok(())
    })
}

/// Puts the tap on the bridge and sets it up.
pub fn attach(tap: &str, bridge: &str) -> Result<(), BridgeError> {
    check_name(tap)?;
    check_name(bridge)?;
    run(async |h: &rtnetlink::Handle| {
        let b = index_of(h, bridge)
            .await?
            .ok_or_else(|| BridgeError::NoSuchLink(bridge.to_owned()))?;
        let t = index_of(h, tap)
            .await?
            .ok_or_else(|| BridgeError::NoSuchLink(tap.to_owned()))?;
        h.link()
            .set(t)
            .controller(b)
            .up()
            .execute()
            .await
            .map_err(req(format!("putting {tap} on {bridge}")))
    })
}

/// True when the named link exists.
pub fn exists(name: &str) -> Result<bool, BridgeError> {
    check_name(name)?;
    run(async |h: &rtnetlink::Handle| Ok(index_of(h, name).await?.is_some()))
}

/// Deletes the named link; nothing to do when it is gone.
pub fn delete_link(name: &str) -> Result<(), BridgeError> {
    check_name(name)?;
    run(async |h: &rtnetlink::Handle| {
        let Some(index) = index_of(h, name).await? else {
            return Ok(());
        };
        let mut links = h.link();
        match links.del(index).execute().await {
            // A tap QEMU owns vanishes when QEMU exits, possibly between the lookup
            // and the request: gone is what was asked.
            Err(rtnetlink::Error::NetlinkError(m)) if m.raw_code() == -ENODEV => Ok(()),
            other => other.map_err(req(format!("deleting {name}"))),
        }
    })
}

/// `ENODEV`: "no such device", what the kernel answers for a link that is gone.
const ENODEV: i32 = 19;

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
