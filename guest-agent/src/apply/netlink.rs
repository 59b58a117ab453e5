//! Live network changes: each link of the plan, found by its MAC, is set up with its
//! MTU, addresses and routes through [`compute_io::netlink`], whose requests are
//! idempotent (`replace`), so running at every boot converges on the plan. This
//! module decides what to ask and reports it; the requests are `compute_io`'s.

use crate::netplan::{LinkPlan, NetworkPlan};
use compute_io::netlink::{self, Handle, Link, NetlinkError};
use std::time::Duration;

const NETLINK_DEADLINE: Duration = Duration::from_secs(20);

/// What happened to each link: done lines and problems (a MAC with no interface
/// is reported, not fatal).
#[derive(Debug, Default)]
pub struct NetlinkOutcome {
    pub done: Vec<String>,
    pub missing: Vec<String>,
}

/// Applies the plan to the running kernel (in the caller's network namespace).
pub fn apply(plan: &NetworkPlan) -> Result<NetlinkOutcome, NetlinkError> {
    netlink::run(NETLINK_DEADLINE, async |h: &Handle| {
        let mut out = NetlinkOutcome::default();
        for wanted in &plan.links {
            match netlink::link_by_mac(h, wanted.mac.0).await? {
                Some(link) => configure(h, wanted, &link, &mut out).await?,
                None => out.missing.push(format!(
                    "link {} ({}): no interface has this MAC",
                    wanted.id, wanted.mac
                )),
            }
        }
        Ok(out)
    })
}

async fn configure(
    h: &Handle,
    wanted: &LinkPlan,
    link: &Link,
    out: &mut NetlinkOutcome,
) -> Result<(), NetlinkError> {
    let name = &link.name;
    netlink::set_up(h, link, wanted.mtu).await?;
    out.done.push(match wanted.mtu {
        Some(mtu) => format!("{name} ({}): up, mtu {mtu}", wanted.mac),
        None => format!("{name} ({}): up", wanted.mac),
    });
    for a in &wanted.addresses {
        netlink::replace_address(h, link, a.ip(), a.prefix()).await?;
        out.done.push(format!("{name}: address {a}"));
    }
    for r in &wanted.routes {
        let (dst, prefix) = (r.destination.ip(), r.destination.prefix());
        match netlink::replace_route(h, link, dst, prefix, r.gateway).await {
            Ok(()) => out
                .done
                .push(format!("{name}: route {} via {}", r.destination, r.gateway)),
            Err(e @ NetlinkError::MixedFamilies { .. }) => out.missing.push(format!("{name}: {e}")),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
