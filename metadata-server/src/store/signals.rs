//! Per-instance change signals for requests that wait for a change
//! (`?wait_for_change=true`): a waiter subscribes to its instance, and every update
//! of the served set wakes the subscribers of the instances it changed. A waiter
//! costs a future and a share of one `Notify` per instance, never a thread; there
//! are at most [`WaitLimits::per_instance`] per instance and [`WaitLimits::total`] in
//! all, beyond which a subscription is refused.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::futures::Notified;
use tokio::sync::Notify;
use uuid::Uuid;

/// Bounds on requests waiting for a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitLimits {
    pub per_instance: usize,
    pub total: usize,
}

impl Default for WaitLimits {
    fn default() -> Self {
        WaitLimits {
            per_instance: 16,
            total: 1024,
        }
    }
}

/// Why a waiter was turned away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WaitRefused {
    #[error("{0} requests already wait for this instance")]
    PerInstance(usize),
    #[error("{0} requests already wait in all")]
    Total(usize),
}

struct Slot {
    notify: Arc<Notify>,
    waiters: usize,
}

#[derive(Default)]
struct Slots {
    by_instance: HashMap<Uuid, Slot>,
    total: usize,
}

pub(super) struct Signals {
    limits: WaitLimits,
    slots: Mutex<Slots>,
}

impl Signals {
    pub fn new(limits: WaitLimits) -> Self {
        Signals {
            limits,
            slots: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn subscribe(&self, uuid: Uuid) -> Result<Subscription<'_>, WaitRefused> {
        let mut slots = self.lock();
        if slots.total >= self.limits.total {
            return Err(WaitRefused::Total(slots.total));
        }
        let slot = slots.by_instance.entry(uuid).or_insert_with(|| Slot {
            notify: Arc::new(Notify::new()),
            waiters: 0,
        });
        if slot.waiters >= self.limits.per_instance {
            return Err(WaitRefused::PerInstance(slot.waiters));
        }
        slot.waiters += 1;
        let notify = slot.notify.clone();
        slots.total += 1;
        Ok(Subscription {
            signals: self,
            uuid,
            notify,
        })
    }

    /// Wakes the subscribers of these instances.
    pub fn wake<'u>(&self, changed: impl IntoIterator<Item = &'u Uuid>) {
        let slots = self.lock();
        if slots.by_instance.is_empty() {
            return;
        }
        for uuid in changed {
            if let Some(slot) = slots.by_instance.get(uuid) {
                slot.notify.notify_waiters();
            }
        }
    }

    /// Wakes the subscribers of every instance for which `changed` says so.
    pub fn wake_where(&self, changed: impl Fn(&Uuid) -> bool) {
        let slots = self.lock();
        for (uuid, slot) in &slots.by_instance {
            if changed(uuid) {
                slot.notify.notify_waiters();
            }
        }
    }

    pub fn waiting(&self) -> usize {
        self.lock().total
    }
}

/// One waiter's hold on its instance's signal; dropping it lets its place go.
pub struct Subscription<'a> {
    signals: &'a Signals,
    uuid: Uuid,
    notify: Arc<Notify>,
}

impl Subscription<'_> {
    /// The next change of the instance. Call [`Notified::enable`] on it (pinned)
    /// before looking at the current answer, so that a change in between is not
    /// missed.
    pub fn changed(&self) -> Notified<'_> {
        self.notify.notified()
    }
}

impl Drop for Subscription<'_> {
    fn drop(&mut self) {
        let mut slots = self.signals.lock();
        slots.total -= 1;
        if let Some(slot) = slots.by_instance.get_mut(&self.uuid) {
            slot.waiters -= 1;
            if slot.waiters == 0 {
                slots.by_instance.remove(&self.uuid);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_hold_and_places_come_back() {
        let s = Signals::new(WaitLimits {
            per_instance: 2,
            total: 3,
        });
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let a1 = s.subscribe(a).expect("a1");
        let a2 = s.subscribe(a).expect("a2");
        assert_eq!(s.subscribe(a).err(), Some(WaitRefused::PerInstance(2)));
        let b1 = s.subscribe(b).expect("b1");
        assert_eq!(s.subscribe(b).err(), Some(WaitRefused::Total(3)));
        drop(a1);
        assert_eq!(s.waiting(), 2);
        let again = s.subscribe(b).expect("a place came back");
        drop((a2, b1, again));
        assert_eq!(s.waiting(), 0);
        assert!(s.lock().by_instance.is_empty());
    }

    #[tokio::test]
    async fn a_change_wakes_the_instances_waiters_only() {
        let s = Signals::new(WaitLimits::default());
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let (sa, sb) = (s.subscribe(a).expect("a"), s.subscribe(b).expect("b"));
        let mut wa = std::pin::pin!(sa.changed());
        let mut wb = std::pin::pin!(sb.changed());
        wa.as_mut().enable();
        wb.as_mut().enable();
        s.wake([&a]);
        let woke = tokio::time::timeout(std::time::Duration::from_secs(5), wa).await;
        assert!(woke.is_ok(), "a woke");
        let slept = tokio::time::timeout(std::time::Duration::from_millis(50), wb).await;
        assert!(slept.is_err(), "b did not");
    }
}
