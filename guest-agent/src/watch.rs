//! `guest-agent watch`: keep the guest configured as its metadata changes. It looks
//! at `meta_data.json` once, applies, then long-polls the service
//! (`?wait_for_change=true&last_etag=...`, GCE-style) and applies again whenever
//! the document's ETag changes. A run is idempotent (compare first, write only what
//! differs), so a change that touches nothing the agent configures writes nothing.
//!
//! Errors (the service restarting, a network hiccup, an expired token) are retried
//! with exponential backoff, up to a bounded pause, for as long as
//! [`WatchOptions::give_up_after`]; then the watch fails. SIGTERM ends it: at once
//! while it waits, after the current run while it applies.
//!
//! The long poll blocks (ureq), so it runs on a blocking thread while a
//! current-thread runtime waits for it, SIGTERM or the backoff timer; runs happen
//! outside the runtime (the network step starts its own).

use crate::source::{MetadataSource, Polled, RetryPolicy, SourceError};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::signal::unix::{signal, Signal, SignalKind};

/// How the watcher asks and retries.
#[derive(Debug, Clone)]
pub struct WatchOptions {
    pub metadata_url: String,
    /// For each (re)connection: token and version negotiation, with their retries.
    pub connect: RetryPolicy,
    /// How long the service may hold one request (its `timeout_sec`).
    pub wait: Duration,
    /// First pause after a failure; it doubles up to `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// Fail when nothing succeeded for this long.
    pub give_up_after: Duration,
}

impl WatchOptions {
    pub fn new(metadata_url: String, connect: RetryPolicy, wait: Duration) -> Self {
        WatchOptions {
            metadata_url,
            connect,
            wait,
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            give_up_after: Duration::from_secs(3600),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("cannot start the watcher's runtime")]
    Runtime(#[source] std::io::Error),
    #[error("cannot listen for SIGTERM")]
    Signal(#[source] std::io::Error),
    #[error("the metadata service did not answer for {0:?}; giving up")]
    GaveUp(Duration, #[source] SourceError),
}

/// Why a wait ended.
enum Woke {
    Polled(Result<(Arc<MetadataSource>, Polled), SourceError>),
    Terminated,
}

/// Watches until SIGTERM (`Ok`) or until the service stayed away too long. `apply`
/// runs once at the start and after every change.
pub fn watch(opts: &WatchOptions, mut apply: impl FnMut()) -> Result<(), WatchError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(WatchError::Runtime)?;
    let mut term = {
        let _entered = rt.enter();
        signal(SignalKind::terminate()).map_err(WatchError::Signal)?
    };
    let result = watch_loop(&rt, &mut term, opts, &mut apply);
    // A long poll still in flight on its thread is dropped, not waited for.
    rt.shutdown_background();
    result
}

fn watch_loop(
    rt: &tokio::runtime::Runtime,
    term: &mut Signal,
    opts: &WatchOptions,
    apply: &mut dyn FnMut(),
) -> Result<(), WatchError> {
    let mut source: Option<Arc<MetadataSource>> = None;
    // The tag applied last; `None` until the first look.
    let mut applied: Option<Option<String>> = None;
    let mut backoff = opts.min_backoff;
    let mut failing_since: Option<Instant> = None;
    loop {
        let last = applied.clone().flatten();
        let asked = source.clone();
        let (url, connect, wait) = (opts.metadata_url.clone(), opts.connect, opts.wait);
        let first = applied.is_none();
        let woke = rt.block_on(async {
            let poll = tokio::task::spawn_blocking(move || {
                let src = match asked {
                    Some(s) => s,
                    None => Arc::new(MetadataSource::connect(&url, connect)?),
                };
                let tag = if first { None } else { last.as_deref() };
                let polled = src.poll_meta_data(tag, wait)?;
                Ok((src, polled))
            });
            tokio::select! {
                joined = poll => Woke::Polled(joined.unwrap_or_else(|_| {
                    Err(SourceError::Unsupported("a long poll whose thread failed"))
                })),
                _ = term.recv() => Woke::Terminated,
            }
        });
        match woke {
            Woke::Terminated => return Ok(()),
            Woke::Polled(Ok((src, polled))) => {
                source = Some(src);
                backoff = opts.min_backoff;
                if let Some(since) = failing_since.take() {
                    tracing::info!(
                        away_secs = since.elapsed().as_secs_f64(),
                        "the metadata service answers again"
                    );
                }
                let changed = match &applied {
                    None => true,
                    Some(tag) => polled.etag.is_none() || *tag != polled.etag,
                };
                if changed {
                    tracing::info!(
                        etag = polled.etag.as_deref().unwrap_or("-"),
                        "metadata changed; applying"
                    );
                    // A SIGTERM meanwhile is seen by the next wait, at once.
                    apply();
                    applied = Some(polled.etag);
                }
            }
            Woke::Polled(Err(e)) => {
                source = None;
                let since = *failing_since.get_or_insert_with(Instant::now);
                if since.elapsed() >= opts.give_up_after {
                    return Err(WatchError::GaveUp(since.elapsed(), e));
                }
                tracing::warn!(
                    error = %crate::report::error_chain(&e),
                    retry_in_secs = backoff.as_secs_f64(),
                    "watching the metadata failed; retrying"
                );
                let paused = rt.block_on(async {
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => false,
                        _ = term.recv() => true,
                    }
                });
                if paused {
                    return Ok(());
                }
                backoff = (backoff * 2).min(opts.max_backoff);
            }
        }
    }
}
