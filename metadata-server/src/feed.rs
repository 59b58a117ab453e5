//! Following compute's database (`--state-dir` or `--database`): load a snapshot of
//! the instances (of one host, or all), then follow the store's change feed
//! ([`compute_store::DocumentFeed`]) and apply each batch of upserts and deletions to
//! the served set incrementally. One code path for both backends: PostgreSQL wakes
//! the follower with `LISTEN`, SQLite with a cheap poll of its revision row; either
//! way the follower catches up by revision, so a missed wake-up loses nothing.
//!
//! Static stability: when the database goes away, the served set stays as it is
//! and every read keeps its answer; the follower retries with exponential backoff
//! (bounded), and on return catches up from the last revision it applied (a fresh
//! snapshot if the tombstones it needed were purged meanwhile). [`FeedStatus`] says
//! whether it is connected, the revision applied and how stale that is.
//!
//! The feed is synchronous, so the follower is one thread of its own, never a tokio
//! worker. It owns no policy about passwords ([`crate::password`] writes them).

use crate::store::{Change, Document, InstanceStore};
use bytes::Bytes;
use compute::Instance;
use compute_store::{open_feed, Catchup, DocumentFeed, Location, Rev, StoreError, StoredDocument};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How the follower waits and retries.
#[derive(Debug, Clone)]
pub struct FeedConfig {
    pub location: Location,
    /// Serve only the instances placed on this host (`None`: all).
    pub host: Option<String>,
    /// Longest single wait for a change; the follower looks at its stop flag (and
    /// proves it is current) at least this often.
    pub wait: Duration,
    /// Shortest time between two catch-ups: under a stream of changes, each
    /// catch-up takes what came meanwhile in one batch (a change after a quiet
    /// spell is caught at once).
    pub min_interval: Duration,
    /// First pause after a failure; it doubles up to `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
}

impl FeedConfig {
    pub fn new(location: Location, host: Option<String>) -> Self {
        FeedConfig {
            location,
            host,
            wait: Duration::from_secs(1),
            min_interval: Duration::from_millis(10),
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("cannot open the database {location}")]
    Open {
        location: String,
        #[source]
        source: StoreError,
    },
    #[error("cannot read the instances from {location}")]
    Snapshot {
        location: String,
        #[source]
        source: StoreError,
    },
    #[error("cannot start the feed's thread")]
    Thread(#[source] std::io::Error),
}

struct Applied {
    rev: Rev,
    /// When the follower last knew it had everything (the start of its last
    /// successful catch-up).
    synced: Instant,
}

/// What the follower knows about the database, shared with `/healthz`, `/metrics`
/// and password writers.
pub struct FeedStatus {
    location: String,
    host: Option<String>,
    connected: AtomicBool,
    applied: Mutex<Applied>,
    advanced: Condvar,
    resnapshot: AtomicBool,
    stop: AtomicBool,
}

impl FeedStatus {
    /// The database, for messages (a URL without its password).
    pub fn location(&self) -> &str {
        &self.location
    }

    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// Whether the last request to the database succeeded.
    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, Applied> {
        self.applied.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The last revision applied to the served set.
    pub fn rev(&self) -> Rev {
        self.lock().rev
    }

    /// How long since the follower last knew it had every change: what the
    /// served set may be missing, at most.
    pub fn stale(&self) -> Duration {
        self.lock().synced.elapsed()
    }

    /// Waits until revision `rev` is applied, at most `timeout`; `true` if it is.
    pub fn wait_applied(&self, rev: Rev, timeout: Duration) -> bool {
        let guard = self.lock();
        let (guard, _) = self
            .advanced
            .wait_timeout_while(guard, timeout, |a| a.rev < rev)
            .unwrap_or_else(|p| p.into_inner());
        guard.rev >= rev
    }

    /// Asks for a fresh snapshot at the next turn (SIGHUP).
    pub fn request_snapshot(&self) {
        self.resnapshot.store(true, Ordering::Relaxed);
    }

    /// Stops the follower at its next turn (within [`FeedConfig::wait`]).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    fn synced(&self, rev: Rev, at: Instant) {
        let mut a = self.lock();
        a.rev = rev;
        a.synced = at;
        drop(a);
        self.advanced.notify_all();
        self.connected.store(true, Ordering::Relaxed);
    }
}

/// Why a stored document is not served.
#[derive(Debug, thiserror::Error)]
enum Refused {
    #[error("its uuid `{0}` does not parse")]
    Uuid(String),
    #[error("its document is not a valid instance")]
    Document(#[source] compute::InstanceError),
    #[error("its document says uuid {0}")]
    OtherUuid(Uuid),
}

/// One stored document as the served set takes it, or why it cannot be served.
fn change_of(doc: StoredDocument, host: Option<&str>) -> Result<Change, Refused> {
    let uuid = Uuid::try_parse(&doc.uuid).map_err(|_| Refused::Uuid(doc.uuid.clone()))?;
    if host.is_some_and(|h| h != doc.host) {
        return Ok(Change::Delete(uuid));
    }
    let instance = Instance::from_json(&doc.document).map_err(Refused::Document)?;
    if instance.uuid() != uuid {
        return Err(Refused::OtherUuid(instance.uuid()));
    }
    Ok(Change::Upsert {
        document: Document::new(&instance),
        password: doc.password.map(Bytes::from),
    })
}

/// The changes that turn the served set into the snapshot's: every instance in it,
/// and a deletion of every served instance that it lacks.
fn snapshot_changes(
    store: &InstanceStore,
    documents: Vec<StoredDocument>,
    host: Option<&str>,
) -> Vec<Change> {
    let mut seen = HashSet::with_capacity(documents.len());
    let mut changes = Vec::with_capacity(documents.len());
    for doc in documents {
        let uuid = doc.uuid.clone();
        match change_of(doc, host) {
            Ok(c) => {
                if let Change::Upsert { document, .. } = &c {
                    seen.insert(document.uuid());
                }
                changes.push(c);
            }
            Err(refused) => {
                tracing::error!(instance = %uuid, problem = %crate::error_chain(&refused), "instance not served: its document is refused");
                if let Ok(u) = Uuid::try_parse(&uuid) {
                    seen.insert(u);
                }
            }
        }
    }
    let set = store.snapshot();
    for entry in set.entries() {
        let u = entry.uuid();
        if !seen.contains(&u) {
            changes.push(Change::Delete(u));
        }
    }
    changes
}

/// The feed's changes as the served set takes them; a refused document keeps the
/// instance's last good version.
fn catchup_changes(changes: Vec<compute_store::Change>, host: Option<&str>) -> Vec<Change> {
    let mut out = Vec::with_capacity(changes.len());
    for c in changes {
        match c {
            compute_store::Change::Upsert(doc) => {
                let uuid = doc.uuid.clone();
                match change_of(doc, host) {
                    Ok(c) => out.push(c),
                    Err(refused) => {
                        tracing::error!(instance = %uuid, problem = %crate::error_chain(&refused), "new document refused; still serving the last good one")
                    }
                }
            }
            compute_store::Change::Delete { uuid, .. } => match Uuid::try_parse(&uuid) {
                Ok(u) => out.push(Change::Delete(u)),
                Err(_) => {
                    tracing::error!(instance = %uuid, "a deletion of an instance whose uuid does not parse")
                }
            },
        }
    }
    out
}

/// The running follower (its thread ends at the next turn after
/// [`FeedStatus::stop`]; it holds nothing that needs flushing, so nobody waits).
pub struct Follower {
    pub status: Arc<FeedStatus>,
}

/// Opens the feed, loads the first snapshot into `store` (returning only once it
/// is served) and starts following. Blocking: call it off the async workers.
pub fn start(config: FeedConfig, store: Arc<InstanceStore>) -> Result<Follower, FeedError> {
    let location = config.location.describe();
    let mut feed = open_feed(&config.location).map_err(|source| FeedError::Open {
        location: location.clone(),
        source,
    })?;
    let started = Instant::now();
    let snapshot = feed
        .snapshot(config.host.as_deref())
        .map_err(|source| FeedError::Snapshot {
            location: location.clone(),
            source,
        })?;
    let rev = snapshot.rev;
    let changes = snapshot_changes(&store, snapshot.documents, config.host.as_deref());
    store.apply(changes);
    tracing::info!(
        location,
        host = config.host.as_deref().unwrap_or("(all)"),
        rev,
        instances = store.snapshot().len(),
        "snapshot loaded; following the change feed"
    );
    let status = Arc::new(FeedStatus {
        location,
        host: config.host.clone(),
        connected: AtomicBool::new(true),
        applied: Mutex::new(Applied {
            rev,
            synced: started,
        }),
        advanced: Condvar::new(),
        resnapshot: AtomicBool::new(false),
        stop: AtomicBool::new(false),
    });
    let follower = Loop {
        config,
        store,
        status: status.clone(),
        feed: Some(feed),
        rev: Some(rev),
        last_catchup: None,
    };
    std::thread::Builder::new()
        .name("feed".into())
        .spawn(move || follower.run())
        .map_err(FeedError::Thread)?;
    Ok(Follower { status })
}

struct Loop {
    config: FeedConfig,
    store: Arc<InstanceStore>,
    status: Arc<FeedStatus>,
    /// `None` after a failure: reopened at the next turn.
    feed: Option<Box<dyn DocumentFeed>>,
    /// The revision served; `None` when a snapshot is needed.
    rev: Option<Rev>,
    last_catchup: Option<Instant>,
}

impl Loop {
    fn run(mut self) {
        let mut backoff = self.config.min_backoff;
        let mut failing_since: Option<Instant> = None;
        while !self.status.stop.load(Ordering::Relaxed) {
            if self.status.resnapshot.swap(false, Ordering::Relaxed) {
                self.rev = None;
            }
            match self.turn() {
                Ok(()) => {
                    if let Some(since) = failing_since.take() {
                        tracing::info!(
                            location = self.status.location,
                            rev = self.status.rev(),
                            away_secs = since.elapsed().as_secs_f64(),
                            "the database is back; caught up"
                        );
                    }
                    backoff = self.config.min_backoff;
                }
                Err(e) => {
                    self.feed = None;
                    self.status.connected.store(false, Ordering::Relaxed);
                    if failing_since.is_none() {
                        failing_since = Some(Instant::now());
                        tracing::warn!(
                            location = self.status.location,
                            error = %crate::error_chain(&e),
                            "lost the database; serving what we have and retrying"
                        );
                    } else {
                        tracing::debug!(error = %crate::error_chain(&e), "the database is still away");
                    }
                    self.pause(backoff);
                    backoff = (backoff * 2).min(self.config.max_backoff);
                }
            }
        }
    }

    /// Sleeps `d`, waking early when asked to stop.
    fn pause(&self, d: Duration) {
        let until = Instant::now() + d;
        while !self.status.stop.load(Ordering::Relaxed) {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            std::thread::sleep(left.min(Duration::from_millis(50)));
        }
    }

    /// Catch up once, then wait for the next change.
    fn turn(&mut self) -> Result<(), StoreError> {
        let host = self.config.host.clone();
        let feed = match &mut self.feed {
            Some(f) => f,
            None => self.feed.insert(open_feed(&self.config.location)?),
        };
        if let Some(last) = self.last_catchup {
            let next = last + self.config.min_interval;
            if let Some(wait) = next.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        let at = Instant::now();
        self.last_catchup = Some(at);
        let rev = match self.rev {
            None => {
                let snapshot = feed.snapshot(host.as_deref())?;
                let changes = snapshot_changes(&self.store, snapshot.documents, host.as_deref());
                let n = self.store.apply(changes);
                tracing::info!(rev = snapshot.rev, changed = n, "took a fresh snapshot");
                snapshot.rev
            }
            Some(since) => match feed.changes_since(since, host.as_deref())? {
                Catchup::Changes { rev, changes } => {
                    if !changes.is_empty() {
                        let n = self.store.apply(catchup_changes(changes, host.as_deref()));
                        tracing::debug!(rev, changed = n, "caught up");
                    }
                    rev
                }
                Catchup::SnapshotNeeded { purged_through } => {
                    tracing::warn!(
                        since,
                        purged_through,
                        "changes were purged while we were away; taking a fresh snapshot"
                    );
                    self.rev = None;
                    return Ok(());
                }
            },
        };
        self.rev = Some(rev);
        self.status.synced(rev, at);
        feed.wait_for_change(rev, host.as_deref(), self.config.wait)?;
        Ok(())
    }
}

/// SIGHUP: take a fresh snapshot (the feed needs none; this is for an operator who
/// wants to be sure), until `shutdown` turns true.
pub async fn resnapshot_on_hangup(
    status: Arc<FeedStatus>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP");
            return;
        }
    };
    loop {
        tokio::select! {
            Some(()) = hup.recv() => {
                tracing::info!("SIGHUP: taking a fresh snapshot");
                status.request_snapshot();
            }
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn stored(uuid: &str, host: &str, document: &str) -> StoredDocument {
        StoredDocument {
            uuid: uuid.into(),
            host: host.into(),
            rev: 1,
            fixed_ip: Ipv4Addr::LOCALHOST,
            ssh_port: None,
            vm_state: "active".into(),
            document: document.as_bytes().to_vec(),
            password: Some("pw".into()),
        }
    }

    const U: &str = "aaaaaaaa-0000-4000-8000-000000000001";

    #[test]
    fn documents_become_changes_and_other_hosts_become_deletions() {
        let doc = format!(r#"{{"uuid": "{U}", "name": "a"}}"#);
        match change_of(stored(U, "h1", &doc), Some("h1")) {
            Ok(Change::Upsert { document, password }) => {
                assert_eq!(document.uuid().hyphenated().to_string(), U);
                assert_eq!(password.as_deref(), Some(&b"pw"[..]));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            change_of(stored(U, "h2", &doc), Some("h1")),
            Ok(Change::Delete(_))
        ));
        assert!(matches!(
            change_of(stored(U, "h2", &doc), None),
            Ok(Change::Upsert { .. })
        ));
        let other = r#"{"uuid": "bbbbbbbb-0000-4000-8000-000000000002", "name": "b"}"#;
        assert!(change_of(stored(U, "h1", other), None).is_err());
        assert!(change_of(stored(U, "h1", r#"{"uuid": 1}"#), None).is_err());
    }

    #[test]
    fn a_snapshot_deletes_what_it_lacks() {
        let store = InstanceStore::default();
        let doc = format!(r#"{{"uuid": "{U}", "name": "a"}}"#);
        store.apply(snapshot_changes(&store, vec![stored(U, "h", &doc)], None));
        assert_eq!(store.snapshot().len(), 1);
        store.apply(snapshot_changes(&store, Vec::new(), None));
        assert!(store.snapshot().is_empty());
    }
}
