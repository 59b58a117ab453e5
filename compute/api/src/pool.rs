//! Store connections for handlers. The [`Store`] trait is synchronous and a store is
//! one connection (`Send`, not `Sync`), so each request takes one from the pool
//! (opening a new one when none is idle, up to a bound) and runs on tokio's blocking
//! threads with it; at most `max` run at once, the rest wait their turn (up to
//! [`WAIT`], then 503).

use crate::error::ApiError;
use compute_store::{Location, Store};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Semaphore;

/// How long a request waits for a free connection before it is answered 503.
pub const WAIT: Duration = Duration::from_secs(30);

pub struct StorePool {
    location: Location,
    cidr: ipnetwork::Ipv4Network,
    idle: Mutex<Vec<Box<dyn Store>>>,
    permits: Arc<Semaphore>,
}

impl StorePool {
    /// A pool over `location` of at most `max` connections (at least one).
    /// `cidr` is the fixed-IP network recorded if the database is new.
    pub fn new(location: Location, cidr: ipnetwork::Ipv4Network, max: usize) -> StorePool {
        StorePool {
            location,
            cidr,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(max.max(1))),
        }
    }

    /// Opens one connection now (checks the database at start-up).
    pub fn check(&self) -> Result<(), compute_store::StoreError> {
        let store = self.open()?;
        self.put(store);
        Ok(())
    }

    fn open(&self) -> Result<Box<dyn Store>, compute_store::StoreError> {
        compute_store::open_store(&self.location, self.cidr)
    }

    fn put(&self, store: Box<dyn Store>) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(store);
        }
    }

    fn take(&self) -> Option<Box<dyn Store>> {
        self.idle.lock().ok().and_then(|mut idle| idle.pop())
    }

    /// Runs `f` with a store on a blocking thread.
    pub async fn run<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut dyn Store) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let permit = tokio::time::timeout(WAIT, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| ApiError::Unavailable)?
            .map_err(|_| ApiError::Unavailable)?;
        let pool = self.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let mut store = match pool.take() {
                Some(s) => s,
                None => pool.open().map_err(|e| {
                    tracing::warn!(error = %::compute::error_chain(&e), "cannot open the store");
                    ApiError::Unavailable
                })?,
            };
            let out = f(store.as_mut());
            pool.put(store);
            out
        })
        .await;
        joined.map_err(|e| ApiError::Internal(Box::new(e)))?
    }
}
