//! MAC addresses: parsed once, printed the way Nova and Neutron print them.

use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

/// A 48-bit Ethernet address, printed lowercase with colons (`fa:16:3e:00:00:01`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a MAC address (want six hex pairs separated by `:`, like fa:16:3e:12:34:56)")]
pub struct MacError(pub String);

impl MacAddr {
    /// The IPv6 link-local address a kernel derives from this MAC (RFC 4291
    /// appendix A, modified EUI-64): `fe80::`, then the MAC with `ff:fe` in its
    /// middle and the universal/local bit flipped.
    pub fn eui64_link_local(self) -> Ipv6Addr {
        let m = self.0;
        Ipv6Addr::from([
            0xfe,
            0x80,
            0,
            0,
            0,
            0,
            0,
            0,
            m[0] ^ 0x02,
            m[1],
            m[2],
            0xff,
            0xfe,
            m[3],
            m[4],
            m[5],
        ])
    }
}

impl FromStr for MacAddr {
    type Err = MacError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; 6];
        let mut parts = s.split([':', '-']);
        for byte in &mut out {
            let part = parts.next().ok_or_else(|| MacError(s.to_owned()))?;
            if part.len() != 2 {
                return Err(MacError(s.to_owned()));
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| MacError(s.to_owned()))?;
        }
        if parts.next().is_some() {
            return Err(MacError(s.to_owned()));
        }
        Ok(MacAddr(out))
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_link_local_address_is_the_kernels_eui64_one() {
        let ll = |mac: &str| {
            mac.parse::<MacAddr>()
                .expect("mac")
                .eui64_link_local()
                .to_string()
        };
        assert_eq!(ll("52:54:00:12:34:56"), "fe80::5054:ff:fe12:3456");
        assert_eq!(ll("fa:16:3e:00:00:01"), "fe80::f816:3eff:fe00:1");
        assert_eq!(ll("02:00:00:00:00:00"), "fe80::ff:fe00:0");
    }

    #[test]
    fn parses_and_prints_lowercase() {
        let m: MacAddr = "FA:16:3E:0a:0B:0c".parse().expect("valid");
        assert_eq!(m.to_string(), "fa:16:3e:0a:0b:0c");
        assert!("fa:16:3e:0a:0b".parse::<MacAddr>().is_err());
        assert!("fa:16:3e:0a:0b:0c:0d".parse::<MacAddr>().is_err());
        assert!("fa:16:3e:0a:0b:zz".parse::<MacAddr>().is_err());
        assert!("fa:16:3e:0a:0b:c".parse::<MacAddr>().is_err());
    }
}
