//! The instances being served, indexed by uuid and by fixed IP (every address of
//! [`Instance::fixed_ips`]: static, DHCP or SLAAC), swapped as a whole. A guest that
//! asks over IPv6 link-local (OpenStack's `fe80::a9fe:a9fe` on its link) comes from
//! the address the kernel derives from its MAC (modified EUI-64), so each NIC's MAC
//! stands for that address too.
//!
//! A reload builds a new [`InstanceSet`] beside the old one and swaps an `Arc`, so
//! in-flight requests finish on the set they started with. An instance whose document
//! did not change keeps its generation, so its rendered tree stays cached.

use compute::Instance;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("instance {0} appears more than once")]
    DuplicateUuid(Uuid),
    #[error("fixed IP {ip} belongs to both {first} and {second}; callers from it could not be told apart")]
    DuplicateIp {
        ip: IpAddr,
        first: Uuid,
        second: Uuid,
    },
}

/// One instance as served: the validated document and its generation (bumped
/// whenever the document changes, which invalidates its rendered tree).
#[derive(Debug)]
pub struct InstanceEntry {
    pub instance: Instance,
    pub generation: u64,
}

/// An immutable set of instances with its indexes.
#[derive(Debug, Default)]
pub struct InstanceSet {
    by_uuid: HashMap<Uuid, Arc<InstanceEntry>>,
    by_ip: HashMap<IpAddr, Uuid>,
    /// EUI-64 link-local addresses of the instances' MACs; `None` where two
    /// instances share a MAC (then neither is known by it).
    by_link_local: HashMap<Ipv6Addr, Option<Uuid>>,
}

/// The IPv6 link-local address a kernel derives from `mac` (RFC 4291, modified
/// EUI-64): `fe80::` + the MAC with `ff:fe` in its middle and the U/L bit flipped.
pub fn eui64_link_local(mac: [u8; 6]) -> Ipv6Addr {
    let m = mac;
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

/// An IPv4 caller reaching a dual-stack socket shows as `::ffff:a.b.c.d`: use the v4 form.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

static GENERATION: AtomicU64 = AtomicU64::new(1);

impl InstanceSet {
    /// Builds a set, reusing entries (and so generations) of `previous` whose
    /// documents are unchanged. Refuses duplicate uuids and shared fixed IPs.
    pub fn build(
        instances: Vec<Instance>,
        previous: Option<&InstanceSet>,
    ) -> Result<Self, StoreError> {
        let mut set = InstanceSet::default();
        set.by_uuid.reserve(instances.len());
        for instance in instances {
            let uuid = instance.uuid();
            for ip in instance.fixed_ips() {
                if let Some(first) = set.by_ip.insert(ip, uuid) {
                    if first != uuid {
                        return Err(StoreError::DuplicateIp {
                            ip,
                            first,
                            second: uuid,
                        });
                    }
                }
            }
            let macs = instance
                .network()
                .into_iter()
                .flat_map(|n| n.links.iter())
                .filter_map(|l| l.ethernet_mac_address.as_deref())
                .filter_map(|m| m.parse::<compute::mac::MacAddr>().ok());
            for mac in macs {
                let ll = eui64_link_local(mac.0);
                let slot = set.by_link_local.entry(ll).or_insert(Some(uuid));
                if *slot != Some(uuid) {
                    *slot = None;
                }
            }
            let entry = match previous.and_then(|p| p.by_uuid.get(&uuid)) {
                Some(old) if old.instance == instance => old.clone(),
                _ => Arc::new(InstanceEntry {
                    instance,
                    generation: GENERATION.fetch_add(1, Ordering::Relaxed),
                }),
            };
            if set.by_uuid.insert(uuid, entry).is_some() {
                return Err(StoreError::DuplicateUuid(uuid));
            }
        }
        Ok(set)
    }

    pub fn get(&self, uuid: &Uuid) -> Option<&Arc<InstanceEntry>> {
        self.by_uuid.get(uuid)
    }

    pub fn by_ip(&self, ip: &IpAddr) -> Option<&Arc<InstanceEntry>> {
        let ip = canonical_ip(*ip);
        let uuid = match self.by_ip.get(&ip) {
            Some(u) => Some(u),
            None => match ip {
                IpAddr::V6(v6) if v6.is_unicast_link_local() => {
                    self.by_link_local.get(&v6).and_then(Option::as_ref)
                }
                _ => None,
            },
        };
        uuid.and_then(|u| self.by_uuid.get(u))
    }

    pub fn len(&self) -> usize {
        self.by_uuid.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_uuid.is_empty()
    }
}

/// The current set, shared by every connection.
#[derive(Debug, Default)]
pub struct InstanceStore {
    current: RwLock<Arc<InstanceSet>>,
}

impl InstanceStore {
    pub fn new(set: InstanceSet) -> Self {
        InstanceStore {
            current: RwLock::new(Arc::new(set)),
        }
    }

    /// The set to answer one request from.
    pub fn snapshot(&self) -> Arc<InstanceSet> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the set with one built from `instances`; on error the old set stays.
    pub fn replace(&self, instances: Vec<Instance>) -> Result<usize, StoreError> {
        let old = self.snapshot();
        let new = InstanceSet::build(instances, Some(&old))?;
        let n = new.len();
        match self.current.write() {
            Ok(mut g) => *g = Arc::new(new),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(new),
        }
        Ok(n)
    }
}
