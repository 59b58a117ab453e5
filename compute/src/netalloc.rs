//! Fixed-IP and MAC allocation for the host's one network. Pure: the caller passes
//! what is in use (from the database, inside the same transaction) and, for MACs,
//! the random bytes.
//!
//! Addresses are handed out from the configured IPv4 CIDR, skipping the network
//! address, the first three hosts (QEMU user networking's gateway `.2` and DNS `.3`
//! live there, and `.1` is kept for a bridge) and the broadcast address.

use crate::mac::MacAddr;
use ipnetwork::Ipv4Network;
use std::collections::HashSet;
use std::net::Ipv4Addr;

/// Nova's (Neutron's) MAC prefix.
pub const MAC_PREFIX: [u8; 3] = [0xfa, 0x16, 0x3e];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetAllocError {
    #[error("no free fixed IP left in {cidr}")]
    Exhausted { cidr: Ipv4Network },
    #[error("network {cidr} is too small: want a prefix of /29 or shorter")]
    TooSmall { cidr: Ipv4Network },
    #[error("no free MAC address found after {tries} tries")]
    NoMac { tries: usize },
}

/// The plan of one network: where guests, the gateway and DNS sit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    pub cidr: Ipv4Network,
}

impl Subnet {
    pub fn new(cidr: Ipv4Network) -> Result<Subnet, NetAllocError> {
        if cidr.prefix() > 29 {
            return Err(NetAllocError::TooSmall { cidr });
        }
        // Normalise to the network address.
        let cidr = Ipv4Network::new(cidr.network(), cidr.prefix())
            .map_err(|_| NetAllocError::TooSmall { cidr })?;
        Ok(Subnet { cidr })
    }

    fn nth(&self, n: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.cidr.network()) + n)
    }

    /// The gateway guests use (QEMU user networking's host address).
    pub fn gateway(&self) -> Ipv4Addr {
        self.nth(2)
    }

    /// The DNS server guests use (QEMU user networking's resolver).
    pub fn dns(&self) -> Ipv4Addr {
        self.nth(3)
    }

    pub fn netmask(&self) -> Ipv4Addr {
        self.cidr.mask()
    }

    /// The first address not in `used`.
    pub fn allocate_ip(&self, used: &HashSet<Ipv4Addr>) -> Result<Ipv4Addr, NetAllocError> {
        let last = self.cidr.size() - 1;
        (4..last)
            .map(|n| self.nth(n))
            .find(|ip| !used.contains(ip))
            .ok_or(NetAllocError::Exhausted { cidr: self.cidr })
    }
}

/// A `fa:16:3e` MAC from the candidates' random bytes, skipping any in use.
pub fn allocate_mac(
    used: &HashSet<MacAddr>,
    candidates: impl IntoIterator<Item = [u8; 3]>,
) -> Result<MacAddr, NetAllocError> {
    let mut tries = 0;
    for tail in candidates {
        tries += 1;
        let mac = MacAddr([
            MAC_PREFIX[0],
            MAC_PREFIX[1],
            MAC_PREFIX[2],
            tail[0],
            tail[1],
            tail[2],
        ]);
        if !used.contains(&mac) {
            return Ok(mac);
        }
    }
    Err(NetAllocError::NoMac { tries })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_past_the_reserved_and_releases() {
        let s = Subnet::new("10.0.0.0/29".parse().expect("cidr")).expect("subnet");
        let mut used = HashSet::new();
        let a = s.allocate_ip(&used).expect("first");
        assert_eq!(a, Ipv4Addr::new(10, 0, 0, 4));
        used.insert(a);
        let b = s.allocate_ip(&used).expect("second");
        used.insert(b);
        used.insert(s.allocate_ip(&used).expect("third"));
        assert_eq!(
            s.allocate_ip(&used),
            Err(NetAllocError::Exhausted { cidr: s.cidr })
        );
        used.remove(&a);
        assert_eq!(s.allocate_ip(&used), Ok(a));
        assert_eq!(
            (s.gateway(), s.dns()),
            (Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 3))
        );
    }

    #[test]
    fn macs_have_novas_prefix_and_are_unique() {
        let used: HashSet<MacAddr> = ["fa:16:3e:00:00:01".parse().expect("mac")].into();
        let mac = allocate_mac(&used, [[0, 0, 1], [0, 0, 2]]).expect("mac");
        assert_eq!(mac.to_string(), "fa:16:3e:00:00:02");
        assert!(allocate_mac(&used, [[0, 0, 1]]).is_err());
        assert!(Subnet::new("10.0.0.0/30".parse().expect("cidr")).is_err());
    }
}
