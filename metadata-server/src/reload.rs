//! Keeps the served set in step with its source: polls the source's fingerprint and
//! reloads on change, and reloads on SIGHUP. Loading runs off the async workers; a
//! failed load is logged and the last good set keeps serving.

use crate::source::{Fingerprint, InstanceSource};
use crate::store::InstanceStore;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error(transparent)]
    Source(#[from] crate::source::SourceError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("loader task failed")]
    Join(#[from] tokio::task::JoinError),
}

/// Loads the source into the store once; returns how many instances are served.
pub async fn reload(
    source: &Arc<dyn InstanceSource>,
    store: &Arc<InstanceStore>,
) -> Result<usize, ReloadError> {
    let (source, store) = (source.clone(), store.clone());
    tokio::task::spawn_blocking(move || -> Result<usize, ReloadError> {
        Ok(store.replace(source.load()?)?)
    })
    .await?
}

async fn fingerprint(source: &Arc<dyn InstanceSource>) -> Option<Fingerprint> {
    let source = source.clone();
    tokio::task::spawn_blocking(move || source.fingerprint().ok())
        .await
        .ok()
        .flatten()
}

/// Watches until `shutdown` turns true.
pub async fn watch_source(
    source: Arc<dyn InstanceSource>,
    store: Arc<InstanceStore>,
    interval: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; relying on change polling");
            None
        }
    };
    let mut last = fingerprint(&source).await;
    loop {
        let forced = tokio::select! {
            _ = tokio::time::sleep(interval) => false,
            Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => true,
            _ = shutdown.wait_for(|s| *s) => return,
        };
        let now = fingerprint(&source).await;
        if !forced && now == last {
            continue;
        }
        last = now;
        match reload(&source, &store).await {
            Ok(n) => {
                tracing::info!(source = %source.describe(), instances = n, forced, "instances reloaded")
            }
            Err(e) => {
                tracing::error!(source = %source.describe(), error = %crate::error_chain(&e), "reload failed; still serving the last good set")
            }
        }
    }
}
