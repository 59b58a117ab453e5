//! rtnetlink requests from synchronous code: [`run`] opens a netlink socket on the
//! calling thread (so in that thread's network namespace), drives one batch of
//! requests on a current-thread runtime within a deadline, and closes it. The async
//! helpers below are the link (by name or by MAC), bridge, address and route
//! requests the workspace makes; each failure says what it was doing.
//!
//! Requests are idempotent where the kernel allows it (`replace`, "create unless it
//! exists", "delete unless gone"), so callers converge on a state by repeating them.
//! It holds no policy: which links, names and addresses is the caller's to say.

use futures_util::TryStreamExt;
use netlink_packet_route::address::{AddressAttribute, AddressFlag};
use netlink_packet_route::link::LinkAttribute;
use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

pub use rtnetlink::Handle;

/// Bound on one batch of requests, for callers with nothing better to go by.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(10);

/// `ENODEV`: "no such device", the kernel's answer about a link that is gone.
const ENODEV: i32 = 19;

#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("cannot start the runtime for netlink requests")]
    Runtime(#[source] std::io::Error),
    #[error("cannot open a netlink socket")]
    Socket(#[source] std::io::Error),
    #[error("{what}")]
    Request {
        what: String,
        #[source]
        source: Box<rtnetlink::Error>,
    },
    #[error("interface {0} does not exist")]
    NoSuchLink(String),
    #[error("route to {destination}/{prefix} via {gateway}: the addresses differ in family")]
    MixedFamilies {
        destination: IpAddr,
        prefix: u8,
        gateway: IpAddr,
    },
    #[error("netlink requests took longer than {0:?}")]
    Timeout(Duration),
}

/// One network interface as the kernel lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// Its hardware address, when it has a 6-byte one.
    pub mac: Option<[u8; 6]>,
}

/// Runs `work` on a new netlink connection, opened on this thread, within `deadline`.
pub fn run<T>(
    deadline: Duration,
    work: impl AsyncFnOnce(&Handle) -> Result<T, NetlinkError>,
) -> Result<T, NetlinkError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(NetlinkError::Runtime)?;
    rt.block_on(async {
        // The socket is opened here, on the calling thread: in its network namespace.
        let (conn, handle, _) = rtnetlink::new_connection().map_err(NetlinkError::Socket)?;
        let conn = tokio::spawn(conn);
        let out = tokio::time::timeout(deadline, work(&handle))
            .await
            .map_err(|_| NetlinkError::Timeout(deadline))
            .and_then(|r| r);
        conn.abort();
        out
    })
}

fn failed(what: String) -> impl FnOnce(rtnetlink::Error) -> NetlinkError {
    move |source| NetlinkError::Request {
        what,
        source: Box::new(source),
    }
}

/// Every link, in the kernel's order.
pub async fn links(h: &Handle) -> Result<Vec<Link>, NetlinkError> {
    let mut stream = h.link().get().execute();
    let mut out = Vec::new();
    while let Some(msg) = stream
        .try_next()
        .await
        .map_err(failed("listing links".into()))?
    {
        let mut link = Link {
            index: msg.header.index,
            name: String::new(),
            mac: None,
        };
        for attr in &msg.attributes {
            match attr {
                LinkAttribute::IfName(n) => link.name = n.clone(),
                LinkAttribute::Address(a) => link.mac = <[u8; 6]>::try_from(&a[..]).ok(),
                _ => {}
            }
        }
        out.push(link);
    }
    Ok(out)
}

/// The named link, if it exists.
pub async fn link_by_name(h: &Handle, name: &str) -> Result<Option<Link>, NetlinkError> {
    Ok(links(h).await?.into_iter().find(|l| l.name == name))
}

/// The first link, in the kernel's order, whose hardware address is `mac`: a bond
/// and its members share one, and the first found is the one meant.
pub async fn link_by_mac(h: &Handle, mac: [u8; 6]) -> Result<Option<Link>, NetlinkError> {
    Ok(links(h).await?.into_iter().find(|l| l.mac == Some(mac)))
}

/// The named link, which must exist.
pub async fn existing_link(h: &Handle, name: &str) -> Result<Link, NetlinkError> {
    link_by_name(h, name)
        .await?
        .ok_or_else(|| NetlinkError::NoSuchLink(name.to_owned()))
}

/// The bridge `name`, made unless a link of that name exists.
pub async fn ensure_bridge(h: &Handle, name: &str) -> Result<Link, NetlinkError> {
    if let Some(link) = link_by_name(h, name).await? {
        return Ok(link);
    }
    h.link()
        .add()
        .bridge(name.to_owned())
        .execute()
        .await
        .map_err(failed(format!("creating bridge {name}")))?;
    existing_link(h, name).await
}

/// Sets the link up, with `mtu` when given.
pub async fn set_up(h: &Handle, link: &Link, mtu: Option<u32>) -> Result<(), NetlinkError> {
    let mut req = h.link().set(link.index).up();
    if let Some(mtu) = mtu {
        req = req.mtu(mtu);
    }
    let what = match mtu {
        Some(mtu) => format!("setting {} up with mtu {mtu}", link.name),
        None => format!("setting {} up", link.name),
    };
    req.execute().await.map_err(failed(what))
}

/// Puts `link` on the bridge (or bond) `controller` and sets it up.
pub async fn set_controller(
    h: &Handle,
    link: &Link,
    controller: &Link,
) -> Result<(), NetlinkError> {
    h.link()
        .set(link.index)
        .controller(controller.index)
        .up()
        .execute()
        .await
        .map_err(failed(format!(
            "putting {} on {}",
            link.name, controller.name
        )))
}

/// Adds `ip/prefix` to the link, replacing the same address with other properties.
pub async fn replace_address(
    h: &Handle,
    link: &Link,
    ip: IpAddr,
    prefix: u8,
) -> Result<(), NetlinkError> {
    h.address()
        .add(link.index, ip, prefix)
        .replace()
        .execute()
        .await
        .map_err(failed(format!("adding {ip}/{prefix} to {}", link.name)))
}

/// Adds the IPv6 address `ip/prefix` to the link without duplicate address detection
/// (`IFA_F_NODAD`, `ip addr add ... nodad`): it is never tentative, so a server can
/// bind it at once, even on a bridge with no port yet. For addresses that only this
/// host uses by construction (a service address), where DAD would only delay them.
/// Replaces the same address with other properties.
pub async fn replace_address_nodad(
    h: &Handle,
    link: &Link,
    ip: Ipv6Addr,
    prefix: u8,
) -> Result<(), NetlinkError> {
    let mut req = h
        .address()
        .add(link.index, IpAddr::V6(ip), prefix)
        .replace();
    req.message_mut()
        .attributes
        .push(AddressAttribute::Flags(vec![AddressFlag::Nodad]));
    req.execute().await.map_err(failed(format!(
        "adding {ip}/{prefix} (nodad) to {}",
        link.name
    )))
}

/// Routes `destination/prefix` via `gateway` out of the link, replacing a route to
/// the same destination.
pub async fn replace_route(
    h: &Handle,
    link: &Link,
    destination: IpAddr,
    prefix: u8,
    gateway: IpAddr,
) -> Result<(), NetlinkError> {
    let what = format!(
        "routing {destination}/{prefix} via {gateway} on {}",
        link.name
    );
    match (destination, gateway) {
        (IpAddr::V4(dst), IpAddr::V4(gw)) => h
            .route()
            .add()
            .v4()
            .replace()
            .destination_prefix(dst, prefix)
            .gateway(gw)
            .output_interface(link.index)
            .execute()
            .await
            .map_err(failed(what)),
        (IpAddr::V6(dst), IpAddr::V6(gw)) => h
            .route()
            .add()
            .v6()
            .replace()
            .destination_prefix(dst, prefix)
            .gateway(gw)
            .output_interface(link.index)
            .execute()
            .await
            .map_err(failed(what)),
        _ => Err(NetlinkError::MixedFamilies {
            destination,
            prefix,
            gateway,
        }),
    }
}

/// Deletes the named link; nothing to do when it is gone, even when it goes between
/// the lookup and the request (as a tap does when its QEMU exits).
pub async fn delete_link(h: &Handle, name: &str) -> Result<(), NetlinkError> {
    let Some(link) = link_by_name(h, name).await? else {
        return Ok(());
    };
    match h.link().del(link.index).execute().await {
        Err(rtnetlink::Error::NetlinkError(m)) if m.raw_code() == -ENODEV => Ok(()),
        other => other.map_err(failed(format!("deleting {name}"))),
    }
}

#[cfg(test)]
mod tests {
    //! Against the kernel, inside a network namespace each test makes (`cio-*`,
    //! removed on drop) and enters on a thread of its own: the host's network is
    //! never touched. Needs root, as the workspace's other namespace tests.
    use super::*;
    use netnstest::Netns;

    fn netns(tag: &str) -> Netns {
        Netns::new("cio", tag)
    }

    #[test]
    fn a_bridge_with_addresses_routes_and_a_member_is_made_once_and_removed() {
        let ns = netns("bridge");
        ns.ip(&[
            "link", "add", "veth0", "type", "veth", "peer", "name", "veth1",
        ]);
        ns.enter(|| {
            run(DEFAULT_DEADLINE, async |h: &Handle| {
                for _ in 0..2 {
                    let br = ensure_bridge(h, "br-test").await?;
                    set_up(h, &br, None).await?;
                    replace_address(h, &br, "10.9.0.1".parse().expect("ip"), 24).await?;
                    replace_address(h, &br, "169.254.169.254".parse().expect("ip"), 32).await?;
                    let member = existing_link(h, "veth0").await?;
                    set_up(h, &member, Some(1400)).await?;
                    set_controller(h, &member, &br).await?;
                    replace_route(
                        h,
                        &br,
                        "10.8.0.0".parse().expect("ip"),
                        16,
                        "10.9.0.2".parse().expect("ip"),
                    )
                    .await?;
                }
                Ok(())
            })
        })
        .expect("requests");
        let addrs = ns.ip(&["-br", "addr", "show", "br-test"]);
        assert!(addrs.contains("10.9.0.1/24"), "{addrs}");
        assert!(addrs.contains("169.254.169.254/32"), "{addrs}");
        let member = ns.ip(&["-d", "link", "show", "veth0"]);
        assert!(member.contains("master br-test"), "{member}");
        assert!(member.contains("mtu 1400"), "{member}");
        let routes = ns.ip(&["route", "show", "10.8.0.0/16"]);
        assert!(routes.contains("via 10.9.0.2 dev br-test"), "{routes}");

        let listed = ns.enter(|| run(DEFAULT_DEADLINE, async |h: &Handle| links(h).await));
        let veth = listed
            .expect("links")
            .into_iter()
            .find(|l| l.name == "veth0")
            .expect("veth0 listed");
        assert!(veth.mac.is_some(), "a veth has a MAC");

        ns.enter(|| {
            run(DEFAULT_DEADLINE, async |h: &Handle| {
                delete_link(h, "br-test").await?;
                delete_link(h, "br-test").await?;
                link_by_name(h, "br-test").await
            })
        })
        .map(|gone| assert_eq!(gone, None))
        .expect("deleted, twice");
    }

    #[test]
    fn nodad_ipv6_addresses_can_be_bound_at_once_on_a_bridge_without_ports() {
        let ns = netns("nodad");
        let ula: Ipv6Addr = "fd00:ec2::254".parse().expect("ip");
        let link_local: Ipv6Addr = "fe80::a9fe:a9fe".parse().expect("ip");
        let plain: Ipv6Addr = "fd00:1::1".parse().expect("ip");
        let bridge = ns
            .enter(|| {
                run(DEFAULT_DEADLINE, async |h: &Handle| {
                    let br = ensure_bridge(h, "br-six").await?;
                    set_up(h, &br, None).await?;
                    for _ in 0..2 {
                        replace_address_nodad(h, &br, ula, 128).await?;
                        replace_address_nodad(h, &br, link_local, 64).await?;
                    }
                    replace_address(h, &br, IpAddr::V6(plain), 64).await?;
                    Ok(br)
                })
            })
            .expect("requests");
        let shown = ns.ip(&["-6", "addr", "show", "dev", "br-six"]);
        let line = |ip: &str| {
            shown
                .lines()
                .find(|l| l.contains(&format!("inet6 {ip}/")))
                .unwrap_or_else(|| panic!("{ip} on the bridge: {shown}"))
                .to_owned()
        };
        for ip in ["fd00:ec2::254/128", "fe80::a9fe:a9fe/64"] {
            let l = line(ip.split('/').next().expect("ip"));
            assert!(l.contains(ip) && l.contains("nodad"), "{l}");
            assert!(!l.contains("tentative"), "{l}");
        }
        // With DAD, an address on a link without carrier stays tentative: unusable.
        assert!(line("fd00:1::1").contains("tentative"), "{shown}");
        let bound = ns.enter(|| {
            [
                std::net::SocketAddrV6::new(ula, 0, 0, 0),
                std::net::SocketAddrV6::new(link_local, 0, 0, bridge.index),
                std::net::SocketAddrV6::new(plain, 0, 0, 0),
            ]
            .map(|a| std::net::TcpListener::bind(a).map(|_| ()))
        });
        let [ula_bound, link_local_bound, plain_bound] = bound;
        ula_bound.expect("bind [fd00:ec2::254]");
        link_local_bound.expect("bind [fe80::a9fe:a9fe%bridge]");
        assert!(plain_bound.is_err(), "a tentative address cannot be bound");
    }

    #[test]
    fn a_link_found_by_mac_gets_mtu_addresses_and_routes_of_both_families() {
        let ns = netns("mac");
        ns.ip(&[
            "link",
            "add",
            "m0",
            "address",
            "02:00:00:00:00:01",
            "type",
            "veth",
            "peer",
            "name",
            "m1",
            "address",
            "02:00:00:00:00:02",
        ]);
        ns.ip(&["link", "set", "m1", "up"]);
        let ip = |s: &str| s.parse::<IpAddr>().expect("ip");
        let configure = async |h: &Handle| {
            let link = link_by_mac(h, [2, 0, 0, 0, 0, 1])
                .await?
                .ok_or_else(|| NetlinkError::NoSuchLink("02:00:00:00:00:01".into()))?;
            set_up(h, &link, Some(1450)).await?;
            replace_address(h, &link, ip("10.0.0.5"), 24).await?;
            replace_address(h, &link, ip("2001:db8::5"), 64).await?;
            replace_route(h, &link, ip("0.0.0.0"), 0, ip("10.0.0.1")).await?;
            replace_route(h, &link, ip("192.168.10.0"), 24, ip("10.0.0.254")).await?;
            replace_route(h, &link, ip("::"), 0, ip("2001:db8::1")).await?;
            Ok(link)
        };
        // Twice: every request converges instead of failing on what exists.
        let first = ns
            .enter(|| run(DEFAULT_DEADLINE, configure))
            .expect("first");
        let second = ns
            .enter(|| run(DEFAULT_DEADLINE, configure))
            .expect("second");
        assert_eq!(first, second);
        assert_eq!(first.name, "m0");
        assert_eq!(first.mac, Some([2, 0, 0, 0, 0, 1]));
        let none = ns.enter(|| {
            run(DEFAULT_DEADLINE, async |h: &Handle| {
                link_by_mac(h, [2, 0, 0, 0, 0, 9]).await
            })
        });
        assert_eq!(none.expect("lookup"), None);

        let link = ns.ip(&["link", "show", "m0"]);
        assert!(link.contains("mtu 1450") && link.contains(",UP"), "{link}");
        let addrs = ns.ip(&["-br", "addr", "show", "m0"]);
        assert!(
            addrs.contains("10.0.0.5/24") && addrs.contains("2001:db8::5/64"),
            "{addrs}"
        );
        let v4 = ns.ip(&["-4", "route", "show", "dev", "m0"]);
        assert!(v4.contains("default via 10.0.0.1"), "{v4}");
        assert!(v4.contains("192.168.10.0/24 via 10.0.0.254"), "{v4}");
        assert_eq!(
            v4.matches("default").count(),
            1,
            "replaced, not added: {v4}"
        );
        let v6 = ns.ip(&["-6", "route", "show", "dev", "m0"]);
        assert!(v6.contains("default via 2001:db8::1"), "{v6}");
    }

    #[test]
    fn refusals_say_what_was_asked() {
        let ns = netns("refuse");
        let err = ns
            .enter(|| {
                run(DEFAULT_DEADLINE, async |h: &Handle| {
                    existing_link(h, "no-such-link").await
                })
            })
            .expect_err("missing");
        assert_eq!(err.to_string(), "interface no-such-link does not exist");
        let route_on_lo = |gateway: &str| {
            let gateway: IpAddr = gateway.parse().expect("ip");
            ns.enter(|| {
                run(DEFAULT_DEADLINE, async |h: &Handle| {
                    let lo = existing_link(h, "lo").await?;
                    replace_route(h, &lo, "10.0.0.0".parse().expect("ip"), 8, gateway).await
                })
            })
        };
        let err = route_on_lo("fe80::1").expect_err("mixed");
        assert!(matches!(err, NetlinkError::MixedFamilies { .. }), "{err}");
        // A gateway on no attached network: the kernel refuses.
        let err = route_on_lo("192.0.2.1").expect_err("unreachable gateway");
        assert_eq!(
            err.to_string(),
            "routing 10.0.0.0/8 via 192.0.2.1 on lo",
            "{err:?}"
        );
        assert!(std::error::Error::source(&err).is_some());
    }
}
