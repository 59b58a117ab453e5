//! Live network changes through rtnetlink: find links by MAC, set MTU, bring them up,
//! add addresses and routes. Every request is idempotent (`replace`), so running at
//! every boot converges on the plan. Only this module talks to the kernel's network.

use crate::netplan::{LinkPlan, NetworkPlan};
use compute::mac::MacAddr;
use futures_util::TryStreamExt;
use netlink_packet_route::link::LinkAttribute;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

const NETLINK_DEADLINE: Duration = Duration::from_secs(20);

#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("cannot open a netlink socket")]
    Socket(#[source] std::io::Error),
    #[error("cannot start the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error("{what}")]
    Request {
        what: String,
        #[source]
        source: Box<rtnetlink::Error>,
    },
    #[error("netlink did not answer within {NETLINK_DEADLINE:?}")]
    Timeout,
}

/// What happened to each link: done lines and problems (a MAC with no interface
/// is reported, not fatal).
#[derive(Debug, Default)]
pub struct NetlinkOutcome {
    pub done: Vec<String>,
    pub missing: Vec<String>,
}

/// Applies the plan to the running kernel (in the caller's network namespace).
pub fn apply(plan: &NetworkPlan) -> Result<NetlinkOutcome, NetlinkError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(NetlinkError::Runtime)?;
    rt.block_on(async {
        tokio::time::timeout(NETLINK_DEADLINE, apply_async(plan))
            .await
            .map_err(|_| NetlinkError::Timeout)?
    })
}

async fn apply_async(plan: &NetworkPlan) -> Result<NetlinkOutcome, NetlinkError> {
    let (conn, handle, _) = rtnetlink::new_connection().map_err(NetlinkError::Socket)?;
    let conn = tokio::spawn(conn);
    let result = async {
        let by_mac = links_by_mac(&handle).await?;
        let mut out = NetlinkOutcome::default();
        for link in &plan.links {
            match by_mac.get(&link.mac) {
                Some((index, name)) => configure(&handle, link, *index, name, &mut out).await?,
                None => out.missing.push(format!(
                    "link {} ({}): no interface has this MAC",
                    link.id, link.mac
                )),
            }
        }
        Ok(out)
    }
    .await;
    conn.abort();
    result
}

async fn links_by_mac(
    handle: &rtnetlink::Handle,
) -> Result<HashMap<MacAddr, (u32, String)>, NetlinkError> {
    let err = |source| NetlinkError::Request {
        what: "listing links".into(),
        source: Box::new(source),
    };
    let mut links = handle.link().get().execute();
    let mut out = HashMap::new();
    while let Some(msg) = links.try_next().await.map_err(err)? {
        let mut mac = None;
        let mut name = String::new();
        for attr in &msg.attributes {
            match attr {
                LinkAttribute::Address(a) if a.len() == 6 => {
                    mac = Some(MacAddr([a[0], a[1], a[2], a[3], a[4], a[5]]));
                }
                LinkAttribute::IfName(n) => name = n.clone(),
                _ => {}
            }
        }
        if let Some(mac) = mac {
            // The first interface wins when a MAC repeats (a bond's slaves).
            out.entry(mac).or_insert((msg.header.index, name));
        }
    }
    Ok(out)
}

async fn configure(
    handle: &rtnetlink::Handle,
    link: &LinkPlan,
    index: u32,
    name: &str,
    out: &mut NetlinkOutcome,
) -> Result<(), NetlinkError> {
    let req = |what: String| {
        move |source| NetlinkError::Request {
            what,
            source: Box::new(source),
        }
    };
    let mut set = handle.link().set(index).up();
    if let Some(mtu) = link.mtu {
        set = set.mtu(mtu);
    }
    set.execute()
        .await
        .map_err(req(format!("{name}: setting MTU and up")))?;
    out.done.push(match link.mtu {
        Some(mtu) => format!("{name} ({}): up, mtu {mtu}", link.mac),
        None => format!("{name} ({}): up", link.mac),
    });
    for a in &link.addresses {
        handle
            .address()
            .add(index, a.ip(), a.prefix())
            .replace()
            .execute()
            .await
            .map_err(req(format!("{name}: adding address {a}")))?;
        out.done.push(format!("{name}: address {a}"));
    }
    for r in &link.routes {
        let what = format!("{name}: route {} via {}", r.destination, r.gateway);
        match (r.destination.ip(), r.gateway) {
            (IpAddr::V4(dst), IpAddr::V4(gw)) => handle
                .route()
                .add()
                .v4()
                .replace()
                .destination_prefix(dst, r.destination.prefix())
                .gateway(gw)
                .output_interface(index)
                .execute()
                .await
                .map_err(req(what.clone()))?,
            (IpAddr::V6(dst), IpAddr::V6(gw)) => handle
                .route()
                .add()
                .v6()
                .replace()
                .destination_prefix(dst, r.destination.prefix())
                .gateway(gw)
                .output_interface(index)
                .execute()
                .await
                .map_err(req(what.clone()))?,
            _ => {
                out.missing
                    .push(format!("{what}: gateway and destination differ in family"));
                continue;
            }
        }
        out.done.push(what);
    }
    Ok(())
}
