//! The instances being served, indexed by uuid and by fixed IP (every address of
//! [`Instance::fixed_ips`]: static, DHCP or SLAAC), swapped as a whole. A guest that
//! asks over IPv6 link-local (OpenStack's `fe80::a9fe:a9fe` on its link) comes from
//! the address the kernel derives from its MAC (modified EUI-64), so each NIC's MAC
//! stands for that address too.
//!
//! An update builds a new [`InstanceSet`] beside the old one and swaps an `Arc`, so
//! in-flight requests finish on the set they started with: a whole reload
//! ([`InstanceStore::replace`]) or a feed's batch of changes
//! ([`InstanceStore::apply`], which copies only what it touches). An instance whose
//! document did not change keeps its generation, so its rendered tree stays cached.
//! Every update wakes the requests waiting for a change of the instances it changed
//! ([`InstanceStore::subscribe`]).

mod document;
mod set;
mod signals;

pub use document::Document;
pub use set::{Change, InstanceSet};
pub use signals::{Subscription, WaitLimits, WaitRefused};

use compute::Instance;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
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

/// One instance as served: the validated document (compact), its generation
/// (bumped whenever the document changes, which invalidates its rendered tree) and,
/// from a database, the password its guest posted.
#[derive(Debug)]
pub struct InstanceEntry {
    pub document: Document,
    pub generation: u64,
    pub password: Option<bytes::Bytes>,
}

impl InstanceEntry {
    pub fn uuid(&self) -> Uuid {
        self.document.uuid()
    }

    /// The instance, parsed again from the stored document (for rendering).
    pub fn instance(&self) -> Result<Instance, compute::InstanceError> {
        self.document.instance()
    }
}

/// An IPv4 caller reaching a dual-stack socket shows as `::ffff:a.b.c.d`: use the v4 form.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

static NEXT_STORE_ID: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// This thread's copy of a store's set: (store id, version, set).
    static THREAD_SET: std::cell::RefCell<Option<(u64, u64, Arc<InstanceSet>)>> =
        const { std::cell::RefCell::new(None) };
}

/// The current set, shared by every connection, and the waiters on its instances.
pub struct InstanceStore {
    current: RwLock<Arc<InstanceSet>>,
    /// Bumped after every swap: a thread's cached copy of `current` is good while
    /// this has not moved (see [`InstanceStore::with_snapshot`]).
    version: AtomicU64,
    /// Tells this store's cached copies from another's.
    id: u64,
    /// Held while an update computes the next set from the current one.
    writer: Mutex<()>,
    signals: signals::Signals,
}

impl Default for InstanceStore {
    fn default() -> Self {
        InstanceStore::new(InstanceSet::default(), WaitLimits::default())
    }
}

impl InstanceStore {
    pub fn new(set: InstanceSet, limits: WaitLimits) -> Self {
        InstanceStore {
            current: RwLock::new(Arc::new(set)),
            version: AtomicU64::new(0),
            id: NEXT_STORE_ID.fetch_add(1, Ordering::Relaxed),
            writer: Mutex::new(()),
            signals: signals::Signals::new(limits),
        }
    }

    /// The set to answer one request from.
    pub fn snapshot(&self) -> Arc<InstanceSet> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn swap(&self, new: Arc<InstanceSet>) {
        match self.current.write() {
            Ok(mut g) => *g = new,
            Err(poisoned) => *poisoned.into_inner() = new,
        }
        self.version.fetch_add(1, Ordering::Release);
    }

    /// `f` on the set served now, without taking the lock or touching the set's
    /// reference count when this thread's copy is current: every request reads the
    /// set, and on several cores the lock word and the count are lines they would
    /// all write. A thread keeps its copy (so an old set lives on, structurally
    /// shared with the new one, until that thread next asks). `f` must not call
    /// this again.
    pub fn with_snapshot<R>(&self, f: impl FnOnce(&InstanceSet) -> R) -> R {
        let version = self.version.load(Ordering::Acquire);
        THREAD_SET.with(|cell| {
            let mut cached = cell.borrow_mut();
            match &*cached {
                Some((id, v, set)) if *id == self.id && *v == version => f(set),
                _ => {
                    let set = self.snapshot();
                    let out = f(&set);
                    *cached = Some((self.id, version, set));
                    out
                }
            }
        })
    }

    fn write_lock(&self) -> MutexGuard<'_, ()> {
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces the set with one built from `instances`; on error the old set stays.
    pub fn replace<D: Into<Document>>(
        &self,
        instances: impl IntoIterator<Item = D>,
    ) -> Result<usize, StoreError> {
        let _writing = self.write_lock();
        let old = self.snapshot();
        let new = Arc::new(InstanceSet::build(instances, Some(&old))?);
        self.swap(new.clone());
        self.signals.wake_where(|u| match (old.get(u), new.get(u)) {
            (Some(a), Some(b)) => !Arc::ptr_eq(a, b),
            (None, None) => false,
            _ => true,
        });
        Ok(new.len())
    }

    /// Applies a feed's batch of changes, in order; returns how many instances
    /// changed.
    pub fn apply(&self, changes: Vec<Change>) -> usize {
        let _writing = self.write_lock();
        let (new, changed) = self.snapshot().apply(changes);
        self.swap(Arc::new(new));
        self.signals.wake(&changed);
        changed.len()
    }

    /// A place among the requests waiting for `uuid` to change, if one is free.
    pub fn subscribe(&self, uuid: Uuid) -> Result<Subscription<'_>, WaitRefused> {
        self.signals.subscribe(uuid)
    }

    /// Requests waiting for a change now.
    pub fn waiting(&self) -> usize {
        self.signals.waiting()
    }
}
