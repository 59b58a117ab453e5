//! Anti-spoofing for `bridge` mode: the metadata server tells guests apart by source
//! address, so a guest must not be able to send as another. One nftables table of
//! the bridge family holds, for every running guest's tap, "only this MAC and this
//! IPv4 address (or 0.0.0.0, for address probes)"; frames from any other tap are
//! dropped. Like the listeners file, the table is derived from what runs and replaced
//! whole (`nft -f` applies a script atomically), never edited rule by rule.

use compute::mac::MacAddr;
use compute_io::tool::{ToolError, NFT};
use std::io::Write;
use std::net::Ipv4Addr;
use std::process::Stdio;

#[derive(Debug, thiserror::Error)]
pub enum AntiSpoofError {
    #[error(transparent)]
    Tool(#[from] ToolError),
    #[error("cannot hand the anti-spoofing rules to nft")]
    Pipe(#[source] std::io::Error),
    #[error("nft refused the anti-spoofing rules: {0}")]
    Failed(String),
}

/// A guest's port on the bridge and the only addresses it may send from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    pub tap: String,
    pub mac: MacAddr,
    pub ip: Ipv4Addr,
}

/// The table's name for `bridge` (bridge names are checked to be `[A-Za-z0-9_-]`).
fn table(bridge: &str) -> String {
    format!("compute_{}", bridge.replace('-', "_"))
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
        s.push_str(&format!(
            "    iifname \"{tap}\" ether saddr != {mac} drop\n"
        ));
        s.push_str(&format!(
            "    iifname \"{tap}\" ether type ip ip saddr != {{ {ip}, 0.0.0.0 }} drop\n"
        ));
        s.push_str(&format!(
            "    iifname \"{tap}\" ether type arp arp saddr ip != {{ {ip}, 0.0.0.0 }} drop\n"
        ));
        s.push_str(&format!("    iifname \"{tap}\" accept\n"));
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
    iifname \"tapd8e02d56-26\" accept
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
