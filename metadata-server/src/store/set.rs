//! An immutable set of instances with its indexes (by uuid, by fixed IP, by the
//! link-local address of each NIC's MAC), split into shards that are shared between
//! one set and the next: a change copies only the shards it touches, so following
//! a feed costs what changed, not the size of the set, while every request still
//! reads one consistent set.
//!
//! The address indexes are small so that they stay in the CPU's cache when the set
//! is large: an address maps to a [`Slot`] (four bytes: the uuid shard and the
//! entry's place in it), not to a uuid that a second map would resolve. Finding
//! the caller is one probe of a compact table and one read of the slot's entry
//! pointer; with 100,000 instances the address tables and entry pointers take
//! about 2 MB.
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
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use uuid::Uuid;

const SHARDS: usize = 256;

/// Bits of a [`Slot`] that number the entry within its shard.
const INDEX_BITS: u32 = 24;
const INDEX_MASK: u32 = (1 << INDEX_BITS) - 1;

/// Where an instance's entry is: its uuid's shard (the top 8 bits) and its place
/// in that shard's table. Stable for the instance's life in the set and its
/// successors; a deleted instance's place is reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot(u32);

/// An address several instances claim: who they are is in [`Addresses::contested`].
/// No entry has this slot (a shard's places stop one short of it).
const CONTESTED: Slot = Slot(u32::MAX);

impl Slot {
    fn new(shard: usize, index: u32) -> Slot {
        Slot(((shard as u32) << INDEX_BITS) | index)
    }

    fn shard(self) -> usize {
        (self.0 >> INDEX_BITS) as usize
    }

    fn index(self) -> usize {
        (self.0 & INDEX_MASK) as usize
    }
}

/// Keys spread over the shards.
trait ShardKey: Hash + Eq + Copy {
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

impl ShardKey for Ipv4Addr {
    fn shard(&self) -> usize {
        mix(&self.octets())
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

/// [`SHARDS`] copy-on-write parts.
#[derive(Debug, Clone)]
struct Shards<T>(Box<[Arc<T>]>);

impl<T: Default> Default for Shards<T> {
    fn default() -> Self {
        Shards((0..SHARDS).map(|_| Arc::new(T::default())).collect())
    }
}

impl<T: Clone> Shards<T> {
    fn get(&self, shard: usize) -> &T {
        &self.0[shard]
    }

    /// Shard `shard`, copied first if another set still shares it.
    fn get_mut(&mut self, shard: usize) -> &mut T {
        Arc::make_mut(&mut self.0[shard])
    }
}

/// One shard of the instances: their entries, and where each uuid's is.
#[derive(Debug, Clone, Default)]
struct Instances {
    places: Map<Uuid, u32>,
    entries: Vec<Option<Arc<InstanceEntry>>>,
    /// Places emptied by deletions, reused first.
    free: Vec<u32>,
}

impl Instances {
    /// A place for a new uuid, if the shard has one left (it holds 2^24 - 1).
    fn place(&mut self, uuid: Uuid, entry: Arc<InstanceEntry>) -> Option<u32> {
        let index = match self.free.pop() {
            Some(i) => {
                self.entries[i as usize] = Some(entry);
                i
            }
            None if self.entries.len() < INDEX_MASK as usize => {
                self.entries.push(Some(entry));
                (self.entries.len() - 1) as u32
            }
            None => return None,
        };
        self.places.insert(uuid, index);
        Some(index)
    }

    fn remove(&mut self, uuid: &Uuid) {
        if let Some(i) = self.places.remove(uuid) {
            self.entries[i as usize] = None;
            self.free.push(i);
        }
    }
}

/// Every instance by uuid.
type ByUuid = Shards<Instances>;

fn entry_at(by_uuid: &ByUuid, slot: Slot) -> Option<&Arc<InstanceEntry>> {
    if slot == CONTESTED {
        return None;
    }
    by_uuid
        .get(slot.shard())
        .entries
        .get(slot.index())?
        .as_ref()
}

fn slot_of(by_uuid: &ByUuid, uuid: &Uuid) -> Option<Slot> {
    let shard = uuid.shard();
    let index = *by_uuid.get(shard).places.get(uuid)?;
    Some(Slot::new(shard, index))
}

/// One kind of address (IPv4, IPv6, link-local) and who it stands for.
#[derive(Debug, Clone)]
struct Addresses<K> {
    held: Shards<Map<K, Slot>>,
    /// The addresses held as [`CONTESTED`], with every instance that claims them.
    /// Rare (a database mid-change), so not sharded.
    contested: Arc<Map<K, Arc<[Uuid]>>>,
}

impl<K> Default for Addresses<K> {
    fn default() -> Self {
        Addresses {
            held: Shards::default(),
            contested: Arc::default(),
        }
    }
}

impl<K: ShardKey> Addresses<K> {
    fn get(&self, key: &K) -> Option<Slot> {
        self.held.get(key.shard()).get(key).copied()
    }

    fn set(&mut self, key: K, slot: Slot) {
        self.held.get_mut(key.shard()).insert(key, slot);
    }

    fn unset(&mut self, key: &K) {
        self.held.get_mut(key.shard()).remove(key);
        if self.contested.contains_key(key) {
            Arc::make_mut(&mut self.contested).remove(key);
        }
    }

    fn contest(&mut self, key: K, all: Arc<[Uuid]>) {
        self.set(key, CONTESTED);
        Arc::make_mut(&mut self.contested).insert(key, all);
    }

    /// `uuid` (at `slot`) claims `key`; returns every claimant when it becomes
    /// contested.
    fn claim(&mut self, by_uuid: &ByUuid, key: K, uuid: Uuid, slot: Slot) -> Option<Arc<[Uuid]>> {
        // Already this instance's (most changes keep an instance's addresses): looked
        // at, not copied.
        let first = match self.get(&key) {
            None => {
                self.set(key, slot);
                return None;
            }
            Some(s) if s == slot => return None,
            Some(CONTESTED) => {
                let all = self
                    .contested
                    .get(&key)
                    .cloned()
                    .unwrap_or_else(|| Arc::from([]));
                if all.contains(&uuid) {
                    return None;
                }
                let merged: Arc<[Uuid]> = all.iter().copied().chain([uuid]).collect();
                self.contest(key, merged.clone());
                return Some(merged);
            }
            Some(other) => entry_at(by_uuid, other).map(|e| e.uuid()),
        };
        match first {
            Some(first) => {
                let merged: Arc<[Uuid]> = Arc::from([first, uuid]);
                self.contest(key, merged.clone());
                Some(merged)
            }
            // Pointing at no entry: nobody else holds it.
            None => {
                self.set(key, slot);
                None
            }
        }
    }

    /// `uuid` (at `slot`) lets `key` go; the one claimant left, if any, has it to
    /// itself again.
    fn release(&mut self, by_uuid: &ByUuid, key: &K, uuid: Uuid, slot: Slot) {
        match self.get(key) {
            Some(s) if s == slot => self.unset(key),
            Some(CONTESTED) => {
                let Some(all) = self.contested.get(key) else {
                    return self.unset(key);
                };
                let rest: Vec<Uuid> = all.iter().copied().filter(|u| *u != uuid).collect();
                match rest.len() {
                    0 => self.unset(key),
                    1 => {
                        self.unset(key);
                        if let Some(s) = slot_of(by_uuid, &rest[0]) {
                            self.set(*key, s);
                        }
                    }
                    _ => self.contest(*key, rest.into()),
                }
            }
            _ => {}
        }
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

/// An immutable set of instances with its indexes.
#[derive(Debug, Clone, Default)]
pub struct InstanceSet {
    by_uuid: ByUuid,
    v4: Addresses<Ipv4Addr>,
    v6: Addresses<Ipv6Addr>,
    /// EUI-64 link-local addresses of the instances' MACs.
    link_local: Addresses<Ipv6Addr>,
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
            if set.get(&uuid).is_some() {
                return Err(StoreError::DuplicateUuid(uuid));
            }
            let entry = match previous.and_then(|p| p.get(&uuid)) {
                Some(old) if old.document == document => old.clone(),
                _ => Arc::new(InstanceEntry {
                    document,
                    generation: next_generation(),
                    password: None,
                }),
            };
            let Some(slot) = set.place(uuid, entry.clone()) else {
                continue;
            };
            for &ip in entry.document.fixed_ips() {
                if let Some(all) = set.claim_ip(ip, uuid, slot) {
                    return Err(StoreError::DuplicateIp {
                        ip,
                        first: all[0],
                        second: uuid,
                    });
                }
            }
            for &ll in entry.document.link_locals() {
                set.link_local.claim(&set.by_uuid, ll, uuid, slot);
            }
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
            let old = set.get(&uuid).cloned();
            let (old_ips, old_lls) = match &old {
                Some(e) => (e.document.fixed_ips(), e.document.link_locals()),
                None => (&[][..], &[][..]),
            };
            match change {
                Change::Delete(_) => {
                    let Some(slot) = slot_of(&set.by_uuid, &uuid) else {
                        continue;
                    };
                    for &ip in old_ips {
                        set.release_ip(ip, uuid, slot);
                    }
                    for ll in old_lls {
                        set.link_local.release(&set.by_uuid, ll, uuid, slot);
                    }
                    set.unplace(&uuid);
                }
                Change::Upsert { document, password } => {
                    let generation = match &old {
                        Some(e) if e.document == document && e.password == password => continue,
                        Some(e) if e.document == document => e.generation,
                        _ => next_generation(),
                    };
                    let entry = Arc::new(InstanceEntry {
                        document,
                        generation,
                        password,
                    });
                    let slot = match slot_of(&set.by_uuid, &uuid) {
                        Some(slot) => {
                            set.by_uuid.get_mut(slot.shard()).entries[slot.index()] =
                                Some(entry.clone());
                            slot
                        }
                        None => match set.place(uuid, entry.clone()) {
                            Some(slot) => slot,
                            None => continue,
                        },
                    };
                    let (ips, lls) = (entry.document.fixed_ips(), entry.document.link_locals());
                    for &ip in old_ips.iter().filter(|ip| !ips.contains(ip)) {
                        set.release_ip(ip, uuid, slot);
                    }
                    for ll in old_lls.iter().filter(|ll| !lls.contains(ll)) {
                        set.link_local.release(&set.by_uuid, ll, uuid, slot);
                    }
                    for &ip in ips {
                        if let Some(all) = set.claim_ip(ip, uuid, slot) {
                            tracing::error!(%ip, instances = ?all, "a fixed IP belongs to several instances; it identifies none of them until only one has it");
                        }
                    }
                    for &ll in lls {
                        set.link_local.claim(&set.by_uuid, ll, uuid, slot);
                    }
                }
            }
            changed.push(uuid);
        }
        (set, changed)
    }

    /// Puts a new instance's entry in its shard; `None` (logged) if the shard is
    /// full, which takes billions of instances.
    fn place(&mut self, uuid: Uuid, entry: Arc<InstanceEntry>) -> Option<Slot> {
        let shard = uuid.shard();
        match self.by_uuid.get_mut(shard).place(uuid, entry) {
            Some(index) => {
                self.len += 1;
                Some(Slot::new(shard, index))
            }
            None => {
                tracing::error!(instance = %uuid, "no room left in the instance set's shard; the instance is not served");
                None
            }
        }
    }

    /// Takes an instance's entry out of its shard (its place is reused).
    fn unplace(&mut self, uuid: &Uuid) {
        self.by_uuid.get_mut(uuid.shard()).remove(uuid);
        self.len -= 1;
    }

    fn claim_ip(&mut self, ip: IpAddr, uuid: Uuid, slot: Slot) -> Option<Arc<[Uuid]>> {
        match ip {
            IpAddr::V4(a) => self.v4.claim(&self.by_uuid, a, uuid, slot),
            IpAddr::V6(a) => self.v6.claim(&self.by_uuid, a, uuid, slot),
        }
    }

    fn release_ip(&mut self, ip: IpAddr, uuid: Uuid, slot: Slot) {
        match ip {
            IpAddr::V4(a) => self.v4.release(&self.by_uuid, &a, uuid, slot),
            IpAddr::V6(a) => self.v6.release(&self.by_uuid, &a, uuid, slot),
        }
    }

    pub fn get(&self, uuid: &Uuid) -> Option<&Arc<InstanceEntry>> {
        entry_at(&self.by_uuid, slot_of(&self.by_uuid, uuid)?)
    }

    pub fn by_ip(&self, ip: &IpAddr) -> Option<&Arc<InstanceEntry>> {
        let slot = match canonical_ip(*ip) {
            IpAddr::V4(a) => self.v4.get(&a),
            IpAddr::V6(a) => match self.v6.get(&a) {
                Some(slot) => Some(slot),
                None if a.is_unicast_link_local() => self.link_local.get(&a),
                None => None,
            },
        };
        entry_at(&self.by_uuid, slot?)
    }

    /// Every instance, in no particular order.
    pub fn entries(&self) -> impl Iterator<Item = &Arc<InstanceEntry>> {
        self.by_uuid
            .0
            .iter()
            .flat_map(|s| s.entries.iter().flatten())
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
        fn shared<K>(a: &Addresses<K>, b: &Addresses<K>) -> bool {
            let held = a.held.0.iter().zip(b.held.0.iter());
            held.into_iter().all(|(x, y)| Arc::ptr_eq(x, y))
                && Arc::ptr_eq(&a.contested, &b.contested)
        }
        assert!(shared(&one.v4, &two.v4));
        assert!(shared(&one.v6, &two.v6));
        assert!(shared(&one.link_local, &two.link_local));
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

    /// A document for `uuid` with fixed addresses `ips` (IPv4 or IPv6).
    fn with_ips(uuid: u128, ips: &[IpAddr]) -> Change {
        let networks: Vec<String> = ips
            .iter()
            .enumerate()
            .map(|(i, ip)| {
                let (kind, mask) = match ip {
                    IpAddr::V4(_) => ("ipv4", "255.255.255.0"),
                    IpAddr::V6(_) => ("ipv6", "ffff:ffff:ffff:ffff::"),
                };
                format!(
                    r#"{{"id": "n{i}", "type": "{kind}", "link": "l", "ip_address": "{ip}", "netmask": "{mask}"}}"#
                )
            })
            .collect();
        let doc = format!(
            r#"{{"uuid": "{}", "name": "x", "network": {{"links": [{{"id": "l", "type": "phy",
            "ethernet_mac_address": "fa:16:3e:00:01:{:02x}"}}], "networks": [{}], "services": []}}}}"#,
            Uuid::from_u128(uuid),
            uuid as u8,
            networks.join(", ")
        );
        Change::Upsert {
            document: Instance::from_json(doc.as_bytes()).expect("valid").into(),
            password: None,
        }
    }

    proptest::proptest! {
        /// Any sequence of batches over a few instances and addresses (so that
        /// addresses are contested, let go, and deleted instances' places reused)
        /// answers like the plain rule: an address stands for the one instance that
        /// has it, and for nobody when several do.
        #[test]
        fn the_indexes_answer_like_the_rule_after_any_changes(
            batches in proptest::collection::vec(
                proptest::collection::vec(
                    (1u128..7, proptest::option::of(proptest::sample::subsequence((0..8).collect::<Vec<usize>>(), 0..4))),
                    1..6,
                ),
                1..8,
            )
        ) {
            let pool: Vec<IpAddr> = (0..8)
                .map(|i| if i < 5 { format!("10.0.0.{i}") } else { format!("fd00::{i}") })
                .map(|a| a.parse().expect("ip"))
                .collect();
            let mut set = InstanceSet::default();
            let mut model: std::collections::BTreeMap<u128, Vec<IpAddr>> = Default::default();
            for batch in batches {
                let mut changes = Vec::new();
                for (uuid, ips) in batch {
                    match ips {
                        Some(ips) => {
                            let ips: Vec<IpAddr> = ips.iter().map(|&i| pool[i]).collect();
                            changes.push(with_ips(uuid, &ips));
                            model.insert(uuid, ips);
                        }
                        None => {
                            changes.push(Change::Delete(Uuid::from_u128(uuid)));
                            model.remove(&uuid);
                        }
                    }
                }
                set = set.apply(changes).0;
                proptest::prop_assert_eq!(set.len(), model.len());
                proptest::prop_assert_eq!(set.entries().count(), model.len());
                for u in 1u128..7 {
                    let got = set.get(&Uuid::from_u128(u)).map(|e| e.uuid().as_u128());
                    proptest::prop_assert_eq!(got, model.contains_key(&u).then_some(u));
                }
                for ip in &pool {
                    let holders: Vec<u128> = model
                        .iter()
                        .filter(|(_, ips)| ips.contains(ip))
                        .map(|(u, _)| *u)
                        .collect();
                    let expected = match holders[..] {
                        [one] => Some(one),
                        _ => None,
                    };
                    proptest::prop_assert_eq!(set.by_ip(ip).map(|e| e.uuid().as_u128()), expected, "{}", ip);
                }
            }
        }
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
