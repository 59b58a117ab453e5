//! The verbs on guests over a shared database: each queues its work for the
//! instance's host agent and, unless `--no-wait`, waits for the outcome (woken by
//! `LISTEN compute_work`, reading the item's state at least every second, bounded
//! by `--wait-timeout`), then prints what the verb prints on a state folder.

use super::host::HostArgs;
use super::Format;
use anyhow::bail;
use compute::placement::DEFAULT_UP_TIMEOUT;
use compute_store::{
    InstanceRecord, Location, PgWorkWatch, Store, Work, WorkAction, WorkNotice, WorkState,
};
use serde_json::json;
use std::time::{Duration, Instant};

// How a verb on a guest waits for its host's agent (a shared database only). No
// `///`: it would become the about line of the verbs that flatten it.
#[derive(Debug, Clone, clap::Args)]
pub struct WaitArgs {
    /// Return once the work is queued for the host's agent, printing the work id
    /// (with a shared database: --database).
    #[arg(long)]
    pub no_wait: bool,
    /// Seconds to wait for the host's agent to finish the work before giving up
    /// (exit status 2; the work stays queued). With a shared database only.
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    pub wait_timeout: u64,
}

impl WaitArgs {
    /// Refuses `--no-wait` where the command does the work itself.
    pub fn local(&self) -> anyhow::Result<()> {
        if self.no_wait {
            bail!(
                "--no-wait needs a shared database (--database): on a state folder the \
                 command does the work itself"
            );
        }
        Ok(())
    }
}

/// The agent did not finish in time: exit status 2.
#[derive(Debug, thiserror::Error)]
#[error("{what} is still {state} after {secs} s (work item {id}): it stays queued for the host's agent; `compute show` tells when it is done{hint}")]
pub struct WaitTimedOut {
    pub what: String,
    pub state: &'static str,
    pub secs: u64,
    pub id: u64,
    pub hint: String,
}

/// The shared database of `url`.
pub fn store(host: &HostArgs, url: &str) -> anyhow::Result<Box<dyn Store>> {
    Ok(compute_store::open_store(
        &Location::Postgres(url.to_owned()),
        host.cidr,
    )?)
}

/// What a work item does, for messages: `stop of vm (uuid) on host h1`.
fn describe(action: &WorkAction, rec: &InstanceRecord) -> String {
    format!(
        "{} of {} ({}) on host {}",
        action.name().replace('_', "-"),
        rec.name,
        rec.uuid,
        rec.host
    )
}

/// A warning when the host's agent is not heartbeating: the work waits for it.
fn warn_if_down(store: &dyn Store, host: &str) -> String {
    let down = match store.host(host) {
        Ok(h) => !h.placement_state().is_up(DEFAULT_UP_TIMEOUT),
        Err(_) => true,
    };
    if down {
        let hint = format!(
            "host {host} is down (no heartbeat within {} s): its agent is not running",
            DEFAULT_UP_TIMEOUT.as_secs()
        );
        eprintln!("warning: {hint}; the work waits in its queue");
        format!(" ({hint})")
    } else {
        String::new()
    }
}

/// A finished work item, with the store it was read from and the instance as it
/// was when queued.
pub struct Finished {
    pub store: Box<dyn Store>,
    pub rec: InstanceRecord,
    pub work: Work,
}

/// Queues `action` on the instance `key` (after checking the lifecycle allows it
/// now) and waits for it as `wait` says; `None` when it only queued.
pub fn act(
    host: &HostArgs,
    url: &str,
    key: &str,
    action: WorkAction,
    wait: &WaitArgs,
    format: Format,
) -> anyhow::Result<Option<Finished>> {
    let store = store(host, url)?;
    let mut watch = PgWorkWatch::connect(url)?;
    let (rec, id) = compute_host::driver::control::queue_action(store.as_ref(), key, &action)?;
    let work = follow(store.as_ref(), &mut watch, id, &action, &rec, wait, format)?;
    Ok(work.map(|work| Finished { store, rec, work }))
}

/// After queueing work `id`: prints it and returns `None` with `--no-wait`, else
/// waits for it to finish; a failure is the agent's error.
pub fn follow(
    store: &dyn Store,
    watch: &mut PgWorkWatch,
    id: u64,
    action: &WorkAction,
    rec: &InstanceRecord,
    wait: &WaitArgs,
    format: Format,
) -> anyhow::Result<Option<Work>> {
    let what = describe(action, rec);
    let hint = warn_if_down(store, &rec.host);
    if wait.no_wait {
        match format {
            Format::Json => println!(
                "{}",
                serde_json::to_string_pretty(&json!({
                    "work": id,
                    "action": action.name(),
                    "instance": rec.uuid,
                    "host": rec.host,
                    "state": "queued",
                }))?
            ),
            Format::Text => println!("work {id} queued: {what}"),
        }
        return Ok(None);
    }
    let timeout = Duration::from_secs(wait.wait_timeout);
    let deadline = Instant::now() + timeout;
    loop {
        let work = store.work(id)?;
        match &work.state {
            WorkState::Done => return Ok(Some(work)),
            WorkState::Failed(error) => bail!("{what} failed: {error}"),
            WorkState::Queued | WorkState::Running => {}
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(WaitTimedOut {
                what,
                state: work.state.name(),
                secs: wait.wait_timeout,
                id,
                hint,
            }
            .into());
        }
        let this = |n: &WorkNotice| n.id == id;
        if watch.wait(left.min(Duration::from_secs(1)), &this).is_err() {
            // Reconnects at the next call; the state is read again first.
            std::thread::sleep(left.min(Duration::from_millis(500)));
        }
    }
}

/// The instance as it is now (after its work), or its last record when a deletion
/// took it away.
pub fn current(store: &dyn Store, rec: &InstanceRecord) -> anyhow::Result<InstanceRecord> {
    Ok(store.instance_by_uuid(&rec.uuid)?)
}
