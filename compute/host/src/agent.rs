//! The host agent: one per compute host of a shared PostgreSQL database, the
//! daemon behind `compute host-agent` (any front door can run it with [`run`]).
//!
//! It takes its host's lease first (an advisory lock on its own session, so that
//! two agents never act as one host: the second is refused, naming the holder),
//! puts back in the queue what a previous agent of this host was doing when it
//! died, opens the [`Host`] (registering its capacity and reconciling the database
//! with the QEMU processes really running), then loops: take the oldest queued
//! item (`FOR UPDATE SKIP LOCKED`), run it through the driver, record how it ended;
//! when the queue is empty, wait for a `compute_work` notification or the poll
//! interval, whichever comes first (a lost notification costs one interval), and
//! reconcile now and again. A thread heartbeats on the lease's session.
//!
//! When the database goes away, every step that needs it logs, waits with backoff
//! and tries again; nothing taken is forgotten (an outcome is recorded once the
//! database is back; an agent stopped before that leaves the item running, and its
//! next start queues it again). Guests never depend on the agent: stopping it
//! (`stop` set, e.g. on SIGTERM) finishes the item in progress, takes nothing new,
//! stops heartbeating and leaves every QEMU running, as Nova's compute service does.
//! It must not parse command lines, handle signals or print: the front door does.
//!
//! A state folder has no agent process: a front door that answers at once (the
//! OpenStack API) runs [`run_local`], the same loop on the folder's SQLite queue.

use crate::driver::{DriverError, Host, HostConfig, Networking};
use compute::error_chain;
use compute_store::{
    Location, PgHostLease, PgStore, PgWorkWatch, Store, StoreError, Work, WorkAction, WorkOutcome,
    CONSOLE_OUTPUT_LIMIT,
};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How an agent runs.
pub struct AgentConfig {
    /// The shared database (`postgresql://...`).
    pub database: String,
    /// The host's driver settings; `host_name` is the agent's host (required).
    pub host: HostConfig,
    pub networking: Networking,
    /// Between heartbeats; well under the up-timeout (30 s).
    pub heartbeat: Duration,
    /// Between looks at the queue when no notification comes.
    pub poll: Duration,
    /// Between reconciliations with the QEMU processes.
    pub reconcile: Duration,
}

impl AgentConfig {
    /// Heartbeat every 5 s, poll every 5 s, reconcile every 60 s.
    pub fn new(database: String, host: HostConfig, networking: Networking) -> AgentConfig {
        AgentConfig {
            database,
            host,
            networking,
            heartbeat: Duration::from_secs(5),
            poll: Duration::from_secs(5),
            reconcile: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("a host agent needs its host's name")]
    NoHostName,
    #[error("host agent {host} cannot start")]
    Start {
        host: String,
        #[source]
        source: Box<DriverError>,
    },
    #[error("host agent {host} lost its lease and stops")]
    LeaseLost {
        host: String,
        #[source]
        source: StoreError,
    },
    #[error("cannot start the heartbeat thread")]
    Thread(#[source] std::io::Error),
}

impl From<(String, StoreError)> for AgentError {
    fn from((host, e): (String, StoreError)) -> AgentError {
        AgentError::Start {
            host,
            source: Box::new(DriverError::Store(e)),
        }
    }
}

/// Waits that grow after each failure (0.5 s, doubling, at most `max`) and start
/// over after a success.
struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(500);

    fn new(max: Duration) -> Backoff {
        Backoff {
            next: Backoff::FIRST,
            max,
        }
    }

    fn failed(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d
    }

    fn reset(&mut self) {
        self.next = Backoff::FIRST;
    }
}

/// Sleeps `d`, or less when `stop` is set meanwhile.
fn pause(stop: &AtomicBool, d: Duration) {
    let end = Instant::now() + d;
    while !stop.load(Ordering::SeqCst) {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(100)));
    }
}

/// Runs the agent until `stop` is set (then returns `Ok`), or until it cannot go
/// on: it could not start, or another agent took its lease.
pub fn run(config: AgentConfig, stop: &AtomicBool) -> Result<(), AgentError> {
    let name = config
        .host
        .host_name
        .clone()
        .ok_or(AgentError::NoHostName)?;
    let start = |e: StoreError| AgentError::from((name.clone(), e));
    let mut lease = PgHostLease::acquire(&config.database, &name).map_err(start)?;
    let store = PgStore::connect(&config.database, config.host.cidr).map_err(start)?;
    let requeued = store.requeue_running(&name).map_err(start)?;
    if requeued > 0 {
        tracing::warn!(
            host = name,
            count = requeued,
            "work a previous agent of this host had taken is queued again"
        );
    }
    // The metadata server this host runs (user and bridge networking) follows the
    // same database, for this host's instances.
    let location = Location::Postgres(config.database.clone());
    let mut host = Host::with_store(config.host, config.networking, Box::new(store), location)
        .map_err(|e| AgentError::Start {
            host: name.clone(),
            source: Box::new(e),
        })?;
    lease.heartbeat().map_err(start)?;
    let mut watch = PgWorkWatch::connect(&config.database).map_err(start)?;
    tracing::info!(
        host = name,
        location = watch.location(),
        "host agent started"
    );

    let done = Arc::new(AtomicBool::new(false));
    let lost: Arc<Mutex<Option<StoreError>>> = Arc::new(Mutex::new(None));
    let beat = {
        let (done, lost) = (done.clone(), lost.clone());
        let every = config.heartbeat;
        std::thread::Builder::new()
            .name("heartbeat".into())
            .spawn(move || heartbeats(lease, every, &done, &lost))
            .map_err(AgentError::Thread)?
    };
    let stopped = |lost: &Mutex<Option<StoreError>>| -> Option<StoreError> {
        lost.lock().unwrap_or_else(|p| p.into_inner()).take()
    };

    let mut loop_state = Loop {
        name: name.clone(),
        backoff: Backoff::new(Duration::from_secs(10)),
        last_reconcile: Instant::now(),
    };
    let result = loop {
        if let Some(e) = stopped(&lost) {
            break Err(AgentError::LeaseLost {
                host: name.clone(),
                source: e,
            });
        }
        if stop.load(Ordering::SeqCst) {
            break Ok(());
        }
        match host.store().take_work(&name) {
            Ok(Some(work)) => {
                loop_state.backoff.reset();
                loop_state.run(&mut host, work, stop);
                continue;
            }
            Ok(None) => loop_state.backoff.reset(),
            Err(e) => {
                let wait = loop_state.backoff.failed();
                tracing::warn!(error = error_chain(&e), retry_in = ?wait, "cannot read the work queue");
                pause(stop, wait);
                continue;
            }
        }
        if loop_state.last_reconcile.elapsed() >= config.reconcile {
            loop_state.last_reconcile = Instant::now();
            if let Err(e) = host.reconcile() {
                tracing::warn!(error = error_chain(&e), "reconciliation failed");
            }
        }
        // Wait for work, in slices short enough to notice `stop` soon.
        let until = Instant::now() + config.poll;
        loop {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let mine = |n: &compute_store::WorkNotice| n.host == name && n.state == "queued";
            match watch.wait(left.min(Duration::from_millis(500)), &mine) {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) => {
                    let wait = loop_state.backoff.failed();
                    tracing::warn!(error = error_chain(&e), retry_in = ?wait, "cannot listen for work");
                    pause(stop, wait);
                    break;
                }
            }
        }
    };
    done.store(true, Ordering::SeqCst);
    let _ = beat.join();
    match &result {
        Ok(()) => tracing::info!(host = name, "host agent stopped; its guests keep running"),
        Err(e) => tracing::error!(host = name, error = error_chain(e), "host agent stops"),
    }
    result
}

/// The heartbeat thread: beats every `every` while the agent runs, retrying with
/// backoff while the database is away; another agent holding the lease ends it.
fn heartbeats(
    mut lease: PgHostLease,
    every: Duration,
    done: &AtomicBool,
    lost: &Mutex<Option<StoreError>>,
) {
    let mut backoff = Backoff::new(every.max(Duration::from_secs(1)));
    let mut failing = false;
    let mut next = Instant::now() + every;
    while !done.load(Ordering::SeqCst) {
        pause(done, next.saturating_duration_since(Instant::now()));
        if done.load(Ordering::SeqCst) {
            break;
        }
        match lease.heartbeat() {
            Ok(()) => {
                if failing {
                    tracing::info!(
                        host = lease.host(),
                        "heartbeats again: the database is back"
                    );
                }
                failing = false;
                backoff.reset();
                next = Instant::now() + every;
            }
            Err(e @ StoreError::HostAgentRunning { .. }) => {
                *lost.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                return;
            }
            Err(e) => {
                failing = true;
                let wait = backoff.failed();
                tracing::warn!(host = lease.host(), error = error_chain(&e), retry_in = ?wait, "heartbeat failed");
                next = Instant::now() + wait;
            }
        }
    }
    // Dropping the lease ends its session: the lock is free for the next agent.
}

/// The work loop's own state.
struct Loop {
    name: String,
    backoff: Backoff,
    last_reconcile: Instant,
}

impl Loop {
    /// Runs one item and records its outcome, retrying the record until the
    /// database takes it (or the agent is stopped: the item stays running and is
    /// queued again at the next start).
    fn run(&mut self, host: &mut Host, work: Work, stop: &AtomicBool) {
        let span = tracing::info_span!(
            "work",
            id = work.id,
            action = work.action.name(),
            uuid = work.uuid
        );
        let outcome = span.in_scope(|| {
            tracing::info!("work taken");
            let started = Instant::now();
            let outcome = match execute(host, &work) {
                Ok(None) => WorkOutcome::Done,
                Ok(Some(output)) => WorkOutcome::Output(output),
                Err(e) => WorkOutcome::Failed(error_chain(&e)),
            };
            let ms = started.elapsed().as_millis() as u64;
            match &outcome {
                WorkOutcome::Failed(error) => tracing::warn!(ms, error, "work failed"),
                _ => tracing::info!(ms, "work done"),
            }
            outcome
        });
        let mut backoff = Backoff::new(Duration::from_secs(10));
        loop {
            match host.store().finish_work(work.id, &outcome) {
                Ok(()) => return,
                Err(e @ StoreError::WorkNotRunning { .. }) => {
                    let _e = span.enter();
                    tracing::warn!(error = error_chain(&e), "outcome not recorded");
                    return;
                }
                Err(e) => {
                    let wait = backoff.failed();
                    let _e = span.enter();
                    tracing::warn!(error = error_chain(&e), retry_in = ?wait, "cannot record the outcome yet");
                    if stop.load(Ordering::SeqCst) {
                        tracing::warn!(
                            host = self.name,
                            "stopping: the item stays running, the next start queues it again"
                        );
                        return;
                    }
                    pause(stop, wait);
                }
            }
        }
    }
}

/// Wakes a [`run_local`] loop: a front door that queued work rings it, so that the
/// work starts at once rather than at the next poll.
#[derive(Debug, Default)]
pub struct Wake {
    rung: Mutex<bool>,
    bell: std::sync::Condvar,
}

impl Wake {
    pub fn ring(&self) {
        *self.rung.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.bell.notify_all();
    }

    /// Waits until rung or `timeout` passes; forgets the ring.
    fn wait(&self, timeout: Duration) {
        let rung = self.rung.lock().unwrap_or_else(|p| p.into_inner());
        let (mut rung, _) = self
            .bell
            .wait_timeout_while(rung, timeout, |r| !*r)
            .unwrap_or_else(|p| p.into_inner());
        *rung = false;
    }
}

/// How often the state folder's agent heartbeats (placement counts a host up for
/// 30 s after its last one).
pub const LOCAL_HEARTBEAT: Duration = Duration::from_secs(5);

/// The agent of a state folder's one host, run inside a front door's process (the
/// OpenStack API over SQLite): the same queue and the same [`execute`] as a shared
/// database's agent, without a lease (a state folder is one machine's), woken by
/// `wake` or every `poll`. A thread heartbeats through `beat` (a connection of its
/// own, so a long action does not make the host look down). Returns when `stop` is
/// set, after the item in progress.
pub fn run_local(
    mut host: Host,
    beat: Box<dyn Store>,
    wake: &Wake,
    poll: Duration,
    stop: &AtomicBool,
) {
    let name = host.name().to_owned();
    let done = Arc::new(AtomicBool::new(false));
    let beating = {
        let (done, name) = (done.clone(), name.clone());
        std::thread::Builder::new()
            .name("heartbeat".into())
            .spawn(move || {
                while !done.load(Ordering::SeqCst) {
                    if let Err(e) = beat.heartbeat(&name) {
                        tracing::warn!(host = name, error = error_chain(&e), "heartbeat failed");
                    }
                    pause(&done, LOCAL_HEARTBEAT);
                }
            })
    };
    if let Err(e) = &beating {
        tracing::error!(error = %e, "cannot start the heartbeat thread: the host will look down");
    }
    match host.store().requeue_running(&name) {
        Ok(n) if n > 0 => tracing::warn!(host = name, count = n, "unfinished work queued again"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = error_chain(&e), "cannot requeue unfinished work"),
    }
    tracing::info!(host = name, "local agent started");
    let mut state = Loop {
        name: name.clone(),
        backoff: Backoff::new(Duration::from_secs(10)),
        last_reconcile: Instant::now(),
    };
    while !stop.load(Ordering::SeqCst) {
        match host.store().take_work(&name) {
            Ok(Some(work)) => {
                state.backoff.reset();
                state.run(&mut host, work, stop);
                continue;
            }
            Ok(None) => state.backoff.reset(),
            Err(e) => {
                let wait = state.backoff.failed();
                tracing::warn!(error = error_chain(&e), retry_in = ?wait, "cannot read the work queue");
                pause(stop, wait);
                continue;
            }
        }
        wake.wait(poll);
    }
    done.store(true, Ordering::SeqCst);
    if let Ok(b) = beating {
        let _ = b.join();
    }
    tracing::info!(host = name, "local agent stopped; its guests keep running");
}

/// Carries out one work item through the driver; returns its output, if any.
pub fn execute(host: &mut Host, work: &Work) -> Result<Option<String>, DriverError> {
    let key = work.uuid.as_str();
    match &work.action {
        WorkAction::Boot { config_drive } => host.build(key, *config_drive).map(|_| None),
        WorkAction::Stop { timeout_secs } => host
            .stop(key, Duration::from_secs((*timeout_secs).min(3600)))
            .map(|_| None),
        WorkAction::Start => host.start(key).map(|_| None),
        WorkAction::Reboot { hard } => host.reboot(key, *hard).map(|_| None),
        WorkAction::Pause => host.pause(key).map(|_| None),
        WorkAction::Unpause => host.unpause(key).map(|_| None),
        WorkAction::Suspend => host.suspend(key).map(|_| None),
        WorkAction::Resume => host.resume(key).map(|_| None),
        WorkAction::Rebuild { image } => host.rebuild(key, image.as_deref()).map(|_| None),
        WorkAction::Snapshot { image_name } => {
            host.snapshot(key, image_name).map(|image| Some(image.id))
        }
        WorkAction::Delete => match host.delete(key) {
            // Taken again after the agent died between the deletion and its record.
            Err(DriverError::Store(StoreError::NotFound {
                kind: "instance", ..
            })) => Ok(None),
            other => other.map(|_| None),
        },
        WorkAction::ConsoleLog { length } => {
            let lines = length.map(|n| usize::try_from(n).unwrap_or(usize::MAX));
            let text = host.console_log(key, lines)?;
            Ok(Some(tail(text, CONSOLE_OUTPUT_LIMIT)))
        }
    }
}

/// At most the last `limit` bytes of `text`, cut at a character boundary.
fn tail(text: String, limit: usize) -> String {
    if text.len() <= limit {
        return text;
    }
    let mut start = text.len() - limit;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_max_and_starts_over() {
        let mut b = Backoff::new(Duration::from_secs(3));
        let waits: Vec<u64> = (0..5).map(|_| b.failed().as_millis() as u64).collect();
        assert_eq!(waits, vec![500, 1000, 2000, 3000, 3000]);
        b.reset();
        assert_eq!(b.failed(), Duration::from_millis(500));
    }

    #[test]
    fn console_output_keeps_its_end_on_a_character_boundary() {
        assert_eq!(tail("abc".into(), 10), "abc");
        assert_eq!(tail("abcdef".into(), 3), "def");
        assert_eq!(tail("aé€".into(), 4), "€");
    }
}
