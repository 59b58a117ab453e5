//! Anti-spoofing for `bridge` mode: the metadata server tells guests apart by source
//! address, so a guest must not be able to send as another. One nftables table of
//! the bridge family holds, for every running guest's tap, "only this MAC, this IPv4
//! address (or 0.0.0.0, for address probes), and over IPv6 its own addresses"; frames
//! from any other tap are dropped. Like the listeners file, the table is derived from
//! what runs and replaced whole (`nft -f` applies a script atomically), never edited
//! rule by rule.
//!
//! A guest's own IPv6 addresses are the link-local address its kernel derives from
//! its MAC (modified EUI-64, what the server knows it by over `fe80::a9fe:a9fe`) and
//! the fixed IPv6 addresses of its document. Beyond those, neighbour discovery needs
//! (RFC 4861, 4862, 3810), from the unspecified address `::` to link-scope multicast
//! only: duplicate address detection's neighbour solicitation for one of its own
//! addresses, router solicitations, and MLD reports (sent before its link-local
//! address is usable). Its neighbour advertisements may announce only its own
//! addresses (else it could take another guest's replies, as a forged ARP reply
//! would), and router advertisements and redirects are dropped: guests are not
//! routers on this bridge. Only IPv4, ARP and IPv6 frames pass (a VLAN-tagged frame
//! would carry its addresses past the rules above).

use compute::mac::MacAddr;
use compute_io::tool::{ToolError, NFT};
use compute_store::InstanceRecord;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::Stdio;

#[derive(Debug, thiserror::Error)]
pub enum AntiSpoofError {
    #[error(transparent)]
    Tool(#[from] ToolError),
    #[error("cannot hand the anti-spoofing rules to nft")]
    Pipe(#[source] std::io::Error),
    #[error("nft refused the anti-spoofing rules: {0}")]
    Failed(String),
    #[error("the stored document of instance {uuid} does not parse")]
    Document {
        uuid: String,
        #[source]
        source: compute::InstanceError,
    },
}

/// A guest's port on the bridge and the only addresses it may send from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    pub tap: String,
    pub mac: MacAddr,
    pub ip: Ipv4Addr,
    /// Its fixed IPv6 addresses (its link-local address follows from `mac`).
    pub ipv6: Vec<Ipv6Addr>,
}

impl Port {
    /// The port of an instance: its tap, MAC, fixed IP and fixed IPv6 addresses.
    pub fn of(rec: &InstanceRecord) -> Result<Port, AntiSpoofError> {
        let instance = compute::Instance::from_json(rec.document.as_bytes()).map_err(|source| {
            AntiSpoofError::Document {
                uuid: rec.uuid.clone(),
                source,
            }
        })?;
        let ipv6 = instance
            .fixed_ips()
            .into_iter()
            .filter_map(|ip| match ip {
                IpAddr::V6(v6) => Some(v6),
                IpAddr::V4(_) => None,
            })
            .collect();
        Ok(Port {
            tap: super::bridge::tap_name(&rec.uuid),
            mac: rec.mac,
            ip: rec.fixed_ip,
            ipv6,
        })
    }

    /// Every IPv6 address it may send from: the link-local one, then the fixed ones.
    fn own_ipv6(&self) -> Vec<Ipv6Addr> {
        let mut own = vec![self.mac.eui64_link_local()];
        for ip in &self.ipv6 {
            if !own.contains(ip) {
                own.push(*ip);
            }
        }
        own
    }
}

/// The table's name for `bridge` (bridge names are checked to be `[A-Za-z0-9_-]`).
fn table(bridge: &str) -> String {
    format!("compute_{}", bridge.replace('-', "_"))
}

fn set<T: std::fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    let items: Vec<String> = items.into_iter().map(|i| i.to_string()).collect();
    format!("{{ {} }}", items.join(", "))
}

/// An ND message's target address (bytes 8..24 of the ICMPv6 header) is matched as
/// raw payload, `@th,64,128`, which nft compares with integers, not addresses.
fn hex(ip: &Ipv6Addr) -> String {
    format!("0x{:032x}", u128::from(*ip))
}

/// The nft script that replaces the bridge's table with rules for `ports`: pure, so
/// the rules are golden-tested. Taps are named `tap...` (see `bridge::tap_name`).
pub fn ruleset(bridge: &str, ports: &[Port]) -> String {
    let t = table(bridge);
    let mut s = format!(
        "table bridge {t}\ndelete table bridge {t}\ntable bridge {t} {{\n  chain prerouting {{\n    type filter hook prerouting priority -200; policy accept;\n"
    );
    for p in ports {
        let (tap, mac, ip) = (&p.tap, p.mac, p.ip);
        let own = p.own_ipv6();
        let targets = set(own.iter().map(hex));
        let rules = [
            format!("ether saddr != {mac} drop"),
            format!("ether type ip ip saddr != {{ {ip}, 0.0.0.0 }} drop"),
            format!("ether type arp arp saddr ip != {{ {ip}, 0.0.0.0 }} drop"),
            "ether type ip6 icmpv6 type { nd-router-advert, nd-redirect } drop".to_owned(),
            format!(
                "ether type ip6 icmpv6 type nd-neighbor-advert @th,64,128 != {targets} drop comment \"ND target: its own addresses\""
            ),
            format!(
                "ether type ip6 ip6 saddr :: ip6 daddr ff02::/16 icmpv6 type nd-neighbor-solicit @th,64,128 {targets} accept comment \"DAD of its own addresses\""
            ),
            "ether type ip6 ip6 saddr :: ip6 daddr ff02::/16 icmpv6 type { nd-router-solicit, mld-listener-report, mld2-listener-report } accept".to_owned(),
            format!("ether type ip6 ip6 saddr != {} drop", set(&own)),
            "ether type { ip, arp, ip6 } accept".to_owned(),
        ];
        for rule in rules {
            s.push_str(&format!("    iifname \"{tap}\" {rule}\n"));
        }
    }
    s.push_str("    iifname \"tap*\" drop\n  }\n}\n");
    s
}

/// The script that removes the bridge's table (when the bridge goes).
pub fn removal(bridge: &str) -> String {
    let t = table(bridge);
    format!("table bridge {t}\ndelete table bridge {t}\n")
}

/// Applies a script with `nft -f -` (all or nothing).
pub fn apply(script: &str) -> Result<(), AntiSpoofError> {
    let mut child = NFT
        .command()
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| NFT.error(e))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .map_err(AntiSpoofError::Pipe)?;
    }
    let out = child.wait_with_output().map_err(AntiSpoofError::Pipe)?;
    if out.status.success() {
        Ok(())
    } else {
        Err(AntiSpoofError::Failed(
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_tap_may_send_only_as_itself_and_unknown_taps_not_at_all() {
        let ports = [Port {
            tap: "tapd8e02d56-26".into(),
            mac: "fa:16:3e:00:00:01".parse().expect("mac"),
            ip: "10.0.0.5".parse().expect("ip"),
            ipv6: vec!["2001:db8::5".parse().expect("ip")],
        }];
        let want = "\
table bridge compute_cbr0
delete table bridge compute_cbr0
table bridge compute_cbr0 {
  chain prerouting {
    type filter hook prerouting priority -200; policy accept;
    iifname \"tapd8e02d56-26\" ether saddr != fa:16:3e:00:00:01 drop
    iifname \"tapd8e02d56-26\" ether type ip ip saddr != { 10.0.0.5, 0.0.0.0 } drop
    iifname \"tapd8e02d56-26\" ether type arp arp saddr ip != { 10.0.0.5, 0.0.0.0 } drop
    iifname \"tapd8e02d56-26\" ether type ip6 icmpv6 type { nd-router-advert, nd-redirect } drop
    iifname \"tapd8e02d56-26\" ether type ip6 icmpv6 type nd-neighbor-advert @th,64,128 != { 0xfe80000000000000f8163efffe000001, 0x20010db8000000000000000000000005 } drop comment \"ND target: its own addresses\"
    iifname \"tapd8e02d56-26\" ether type ip6 ip6 saddr :: ip6 daddr ff02::/16 icmpv6 type nd-neighbor-solicit @th,64,128 { 0xfe80000000000000f8163efffe000001, 0x20010db8000000000000000000000005 } accept comment \"DAD of its own addresses\"
    iifname \"tapd8e02d56-26\" ether type ip6 ip6 saddr :: ip6 daddr ff02::/16 icmpv6 type { nd-router-solicit, mld-listener-report, mld2-listener-report } accept
    iifname \"tapd8e02d56-26\" ether type ip6 ip6 saddr != { fe80::f816:3eff:fe00:1, 2001:db8::5 } drop
    iifname \"tapd8e02d56-26\" ether type { ip, arp, ip6 } accept
    iifname \"tap*\" drop
  }
}
";
        assert_eq!(ruleset("cbr0", &ports), want);
        assert!(ruleset("br-x", &[]).contains("table bridge compute_br_x {"));
        assert_eq!(
            removal("cbr0"),
            "table bridge compute_cbr0\ndelete table bridge compute_cbr0\n"
        );
    }
}
