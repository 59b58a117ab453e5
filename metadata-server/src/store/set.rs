//! An immutable set of instances with its indexes (by uuid, by fixed IP, by the
//! link-local address of each NIC's MAC), split into shards that are shared between
//! one set and the next: a change copies only the shards it touches, so following
//! a feed costs what changed, not the size of the set, while every request still
//! reads one consistent set.
//!
//! Two ways to make one: [`InstanceSet::build`] from a whole load (a file), which
//! refuses duplicate uuids and fixed IPs shared by two instances; and
//! [`InstanceSet::apply`], a batch of changes from a database feed, which cannot
//! refuse the database's word: an address two instances claim at once answers for
//! neither (logged) until one of them lets it go.

use super::{canonical_ip, Document, InstanceEntry, StoreError};
use bytes::Bytes;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use uuid::Uuid;

const SHARDS: usize = 256;

/// Who an address stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Owner {
    One(Uuid),
    /// Claimed by several instances at once: it identifies none of them.
    Shared(Arc<[Uuid]>),
}

impl Owner {
    fn only(&self) -> Option<&Uuid> {
        match self {
            Owner::One(u) => Some(u),
            Owner::Shared(_) => None,
        }
    }
}

/// Keys spread over the shards.
trait ShardKey: Hash + Eq + Clone {
    fn shard(&self) -> usize;
}

fn mix(bytes: &[u8]) -> usize {
    use std::hash::BuildHasher;
    (foldhash::fast::FixedState::with_seed(0).hash_one(bytes) >> 56) as usize % SHARDS
}

impl ShardKey for Uuid {
    fn shard(&self) -> usize {
        mix(self.as_bytes())
    }
}

impl ShardKey for IpAddr {
    fn shard(&self) -> usize {
        match self {
            IpAddr::V4(a) => mix(&a.octets()),
            IpAddr::V6(a) => mix(&a.octets()),
        }
    }
}

impl ShardKey for Ipv6Addr {
    fn shard(&self) -> usize {
        mix(&self.octets())
    }
}

/// The maps' hasher: fast, seeded at random per process. Only the store inserts
/// keys (uuids and addresses the cloud assigned); a request can only look one up,
/// so no caller can pile keys into one bucket.
type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// A map split into [`SHARDS`] copy-on-write parts.
#[derive(Debug, Clone)]
struct Sharded<K, V>(Box<[Arc<Map<K, V>>]>);

impl<K: ShardKey, V: Clone> Default for Sharded<K, V> {
    fn default() -> Self {
        Sharded((0..SHARDS).map(|_| Arc::new(Map::default())).collect())
    }
}

impl<K: ShardKey, V: Clone> Sharded<K, V> {
    fn get(&self, k: &K) -> Option<&V> {
        self.0[k.shard()].get(k)
    }

    /// The shard of `k`, copied first if another set still shares it.
    fn shard_mut(&mut self, k: &K) -> &mut Map<K, V> {
        Arc::make_mut(&mut self.0[k.shard()])
    }

    fn insert(&mut self, k: K, v: V) -> Option<V> {
        self.shard_mut(&k).insert(k, v)
    }

    fn remove(&mut self, k: &K) -> Option<V> {
        if !self.0[k.shard()].contains_key(k) {
            return None;
        }
        self.shard_mut(k).remove(k)
    }

    fn values(&self) -> impl Iterator<Item = &V> {
        self.0.iter().flat_map(|s| s.values())
    }
}

/// One change of a feed batch.
#[derive(Debug, Clone)]
pub enum Change {
    /// The instance as it is now, with the password its guest posted (if any).
    Upsert {
        document: Document,
        password: Option<Bytes>,
    },
    Delete(Uuid),
}

static GENERATION: AtomicU64 = AtomicU64::new(1);

fn next_generation() -> u64 {
    GENERATION.fetch_add(1, Ordering::Relaxed)
}

/// `uuid` claims `key`; returns the other claimants when it becomes shared.
fn claim<K: ShardKey>(map: &mut Sharded<K, Owner>, key: K, uuid: Uuid) -> Option<Arc<[Uuid]>> {
    // Already this instance's (most changes keep an instance's addresses): looked
    // at, not copied.
    match map.get(&key) {
        Some(Owner::One(u)) if *u == uuid => return None,
        Some(Owner::Shared(all)) if all.contains(&uuid) => return None,
        _ => {}
    }
    let slot = map.shard_mut(&key).entry(key);
    let owner = slot.or_insert(Owner::One(uuid));
    let merged: Arc<[Uuid]> = match owner {
        Owner::One(u) if *u == uuid => return None,
        Owner::One(u) => Arc::from([*u, uuid]),
        Owner::Shared(all) if all.contains(&uuid) => return None,
        Owner::Shared(all) => all.iter().copied().chain([uuid]).collect(),
    };
    *owner = Owner::Shared(merged.clone());
    Some(merged)
}

/// `uuid` lets `key` go; the one claimant left, if any, has it to itself again.
fn release<K: ShardKey>(map: &mut Sharded<K, Owner>, key: &K, uuid: Uuid) {
    let left = match map.get(key) {
        None => return,
        Some(Owner::One(u)) if *u == uuid => None,
        Some(Owner::One(_)) => return,
        Some(Owner::Shared(all)) => {
            let rest: Vec<Uuid> = all.iter().copied().filter(|u| *u != uuid).collect();
            match rest.len() {
                0 => None,
                1 => Some(Owner::One(rest[0])),
                _ => Some(Owner::Shared(rest.into())),
            }
        }
    };
    match left {
        Some(o) => {
            map.insert(key.clone(), o);
        }
        None => {
            map.remove(key);
        }
    }
}

/// An immutable set of instances with its indexes.
#[derive(Debug, Clone, Default)]
pub struct InstanceSet {
    by_uuid: Sharded<Uuid, Arc<InstanceEntry>>,
    by_ip: Sharded<IpAddr, Owner>,
    /// EUI-64 link-local addresses of the instances' MACs.
    by_link_local: Sharded<Ipv6Addr, Owner>,
    len: usize,
}

impl InstanceSet {
    /// Builds a set, reusing entries (and so generations) of `previous` whose
    /// documents are unchanged. Refuses duplicate uuids and shared fixed IPs.
    pub fn build<D: Into<Document>>(
        instances: impl IntoIterator<Item = D>,
        previous: Option<&InstanceSet>,
    ) -> Result<Self, StoreError> {
        let mut set = InstanceSet::default();
        for document in instances {
            let document: Document = document.into();
            let uuid = document.uuid();
            for &ip in document.fixed_ips() {
                if let Some(shared) = claim(&mut set.by_ip, ip, uuid) {
                    return Err(StoreError::DuplicateIp {
                        ip,
                        first: shared[0],
                        second: uuid,
                    });
                }
            }
            for &ll in document.link_locals() {
                claim(&mut set.by_link_local, ll, uuid);
            }
            let entry = match previous.and_then(|p| p.get(&uuid)) {
                Some(old) if old.document == document => old.clone(),
                _ => Arc::new(InstanceEntry {
                    document,
                    generation: next_generation(),
                    password: None,
                }),
            };
            if set.by_uuid.insert(uuid, entry).is_some() {
                return Err(StoreError::DuplicateUuid(uuid));
            }
            set.len += 1;
        }
        Ok(set)
    }

    /// This set with `changes` applied in order, and the uuids whose entry changed
    /// (an upsert equal to what is served changes nothing). An instance whose
    /// document did not change keeps its entry's generation (its rendered tree).
    pub fn apply(&self, changes: Vec<Change>) -> (InstanceSet, Vec<Uuid>) {
        let mut set = self.clone();
        let mut changed = Vec::with_capacity(changes.len());
        for change in changes {
            let uuid = match &change {
                Change::Upsert { document, .. } => document.uuid(),
                Change::Delete(u) => *u,
            };
            let old = set.by_uuid.get(&uuid).cloned();
            let (old_ips, old_lls) = match &old {
                Some(e) => (e.document.fixed_ips(), e.document.link_locals()),
                None => (&[][..], &[][..]),
            };
            match change {
                Change::Delete(_) => {
                    if old.is_none() {
                        continue;
                    }
                    set.by_uuid.remove(&uuid);
                    set.len -= 1;
                    for ip in old_ips {
                        release(&mut set.by_ip, ip, uuid);
                    }
                    for ll in old_lls {
                        release(&mut set.by_link_local, ll, uuid);
                    }
                }
                Change::Upsert { document, password } => {
                    let generation = match &old {
                        Some(e) if e.document == document && e.password == password => continue,
                        Some(e) if e.document == document => e.generation,
                        _ => next_generation(),
                    };
                    let (ips, lls) = (document.fixed_ips(), document.link_locals());
                    for ip in old_ips.iter().filter(|ip| !ips.contains(ip)) {
                        release(&mut set.by_ip, ip, uuid);
                    }
                    for ll in old_lls.iter().filter(|ll| !lls.contains(ll)) {
                        release(&mut set.by_link_local, ll, uuid);
                    }
                    for &ip in ips {
                        if let Some(all) = claim(&mut set.by_ip, ip, uuid) {
                            tracing::error!(%ip, instances = ?all, "a fixed IP belongs to several instances; it identifies none of them until only one has it");
                        }
                    }
                    for &ll in lls {
                        claim(&mut set.by_link_local, ll, uuid);
                    }
                    let entry = Arc::new(InstanceEntry {
                        document,
                        generation,
                        password,
                    });
                    if set.by_uuid.insert(uuid, entry).is_none() {
                        set.len += 1;
                    }
                }
            }
            changed.push(uuid);
        }
        (set, changed)
    }

    pub fn get(&self, uuid: &Uuid) -> Option<&Arc<InstanceEntry>> {
        self.by_uuid.get(uuid)
    }

    pub fn by_ip(&self, ip: &IpAddr) -> Option<&Arc<InstanceEntry>> {
        let ip = canonical_ip(*ip);
        let uuid = match self.by_ip.get(&ip) {
            Some(owner) => owner.only(),
            None => match ip {
                IpAddr::V6(v6) if v6.is_unicast_link_local() => {
                    self.by_link_local.get(&v6).and_then(Owner::only)
                }
                _ => None,
            },
        };
        uuid.and_then(|u| self.by_uuid.get(u))
    }

    /// Every instance, in no particular order.
    pub fn entries(&self) -> impl Iterator<Item = &Arc<InstanceEntry>> {
        self.by_uuid.values()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use compute::Instance;

    fn instance(uuid: u128, ip: &str, name: &str) -> Instance {
        let doc = format!(
            r#"{{"uuid": "{}", "name": "{name}", "network": {{"links": [{{"id": "l", "type": "phy",
            "ethernet_mac_address": "fa:16:3e:00:00:{:02x}"}}], "networks": [{{"id": "n", "type": "ipv4", "link": "l",
            "ip_address": "{ip}", "netmask": "255.255.255.0"}}], "services": []}}}}"#,
            Uuid::from_u128(uuid),
            uuid as u8
        );
        Instance::from_json(doc.as_bytes()).expect("valid")
    }

    fn up(uuid: u128, ip: &str, name: &str) -> Change {
        Change::Upsert {
            document: instance(uuid, ip, name).into(),
            password: None,
        }
    }

    fn who(set: &InstanceSet, ip: &str) -> Option<u128> {
        set.by_ip(&ip.parse().expect("ip"))
            .map(|e| e.uuid().as_u128())
    }

    #[test]
    fn a_change_that_keeps_the_addresses_copies_no_address_shard() {
        let (one, _) = InstanceSet::default().apply(vec![up(1, "10.0.0.1", "a")]);
        let (two, changed) = one.apply(vec![up(1, "10.0.0.1", "renamed")]);
        assert_eq!(changed, vec![Uuid::from_u128(1)]);
        fn shared<K>(a: &Sharded<K, Owner>, b: &Sharded<K, Owner>) -> bool {
            a.0.iter().zip(b.0.iter()).all(|(x, y)| Arc::ptr_eq(x, y))
        }
        assert!(shared(&one.by_ip, &two.by_ip));
        assert!(shared(&one.by_link_local, &two.by_link_local));
        assert_eq!(who(&two, "10.0.0.1"), Some(1));
        let name = |s: &InstanceSet| {
            s.get(&Uuid::from_u128(1))
                .map(|e| e.instance().expect("parses").name().to_owned())
        };
        assert_eq!(name(&two).as_deref(), Some("renamed"));
    }

    #[test]
    fn changes_apply_in_order_and_keep_untouched_entries() {
        let (one, changed) = InstanceSet::default().apply(vec![
            up(1, "10.0.0.1", "a"),
            up(2, "10.0.0.2", "b"),
            up(3, "10.0.0.3", "c"),
        ]);
        assert_eq!((one.len(), changed.len()), (3, 3));
        let gen = |s: &InstanceSet, u: u128| s.get(&Uuid::from_u128(u)).map(|e| e.generation);

        let (two, changed) = one.apply(vec![
            up(1, "10.0.0.1", "a"),
            up(2, "10.0.0.9", "b"),
            Change::Delete(Uuid::from_u128(3)),
            Change::Delete(Uuid::from_u128(4)),
        ]);
        assert_eq!(changed, vec![Uuid::from_u128(2), Uuid::from_u128(3)]);
        assert_eq!(two.len(), 2);
        assert_eq!(gen(&two, 1), gen(&one, 1), "unchanged keeps its tree");
        assert_ne!(
            gen(&two, 2),
            gen(&one, 2),
            "a new address is a new document"
        );
        assert_eq!(who(&two, "10.0.0.2"), None, "the old address is let go");
        assert_eq!(who(&two, "10.0.0.9"), Some(2));
        assert_eq!(who(&two, "10.0.0.3"), None);
        assert_eq!(who(&one, "10.0.0.3"), Some(3), "the old set is untouched");

        let (three, _) = two.apply(vec![Change::Upsert {
            document: instance(1, "10.0.0.1", "a").into(),
            password: Some(Bytes::from_static(b"pw")),
        }]);
        assert_eq!(
            gen(&three, 1),
            gen(&two, 1),
            "a password is not in the tree"
        );
        let (four, _) = three.apply(vec![up(1, "10.0.0.1", "renamed")]);
        assert_ne!(gen(&four, 1), gen(&three, 1));
    }

    #[test]
    fn an_address_two_instances_claim_identifies_neither_until_one_lets_go() {
        let (set, _) = InstanceSet::default().apply(vec![up(1, "10.0.0.1", "a")]);
        let (set, _) = set.apply(vec![up(2, "10.0.0.1", "b")]);
        assert_eq!(who(&set, "10.0.0.1"), None);
        assert_eq!(set.len(), 2);
        let (set, _) = set.apply(vec![up(1, "10.0.0.5", "a")]);
        assert_eq!(who(&set, "10.0.0.1"), Some(2));
        assert_eq!(who(&set, "10.0.0.5"), Some(1));
        let (set, _) = set.apply(vec![Change::Delete(Uuid::from_u128(2))]);
        assert_eq!(who(&set, "10.0.0.1"), None);
    }

    #[test]
    fn a_whole_load_refuses_duplicates() {
        let dup_ip = InstanceSet::build(
            vec![instance(1, "10.0.0.1", "a"), instance(2, "10.0.0.1", "b")],
            None,
        );
        assert!(matches!(dup_ip, Err(StoreError::DuplicateIp { .. })));
        let dup_uuid = InstanceSet::build(
            vec![instance(1, "10.0.0.1", "a"), instance(1, "10.0.0.2", "b")],
            None,
        );
        assert!(matches!(dup_uuid, Err(StoreError::DuplicateUuid(_))));
    }
}
