//! The lifecycle verbs on one instance: stop, start, reboot, pause, unpause,
//! suspend, resume, rebuild, delete. Each prints the instance afterwards. On a state
//! folder the command does the work; with a shared database it is queued for the
//! instance's host agent ([`super::queue`]).

use super::host::HostArgs;
use super::queue::{self, WaitArgs};
use super::Format;
use compute_flags::SettingsArgs;
use compute_store::WorkAction;
use std::process::ExitCode;
use std::time::Duration;

// The arguments of every verb on one instance. No `///` here: a doc comment on an
// argument struct becomes the about line of each verb using it (the verbs have theirs).
#[derive(Debug, clap::Args)]
pub struct Target {
    /// Name or ID of server.
    pub instance: String,
    /// Output format of the server afterwards: text for people, json for scripts.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
    #[command(flatten)]
    pub wait: WaitArgs,
}

#[derive(Debug, clap::Args)]
pub struct StopArgs {
    #[command(flatten)]
    pub target: Target,
    /// Seconds to wait for the guest's ACPI shutdown before a hard stop.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
}

#[derive(Debug, clap::Args)]
pub struct RebootArgs {
    #[command(flatten)]
    pub target: Target,
    /// Restart QEMU itself instead of resetting the guest.
    #[arg(long)]
    pub hard: bool,
}

#[derive(Debug, clap::Args)]
pub struct RebuildArgs {
    #[command(flatten)]
    pub target: Target,
    /// The new image (default: the current one).
    #[arg(long)]
    pub image: Option<String>,
    #[command(flatten)]
    pub settings: SettingsArgs,
}

/// Which verb.
#[derive(Debug, Clone, Copy)]
pub enum Verb {
    Start,
    Pause,
    Unpause,
    Suspend,
    Resume,
    Delete,
}

/// With a shared database: queues `action`, waits, prints as on a state folder.
fn queued(host: &HostArgs, url: &str, t: &Target, action: WorkAction) -> anyhow::Result<ExitCode> {
    let delete = action == WorkAction::Delete;
    let Some(done) = queue::act(host, url, &t.instance, action, &t.wait, t.format)? else {
        return Ok(ExitCode::SUCCESS);
    };
    let (store, rec) = (done.store, done.rec);
    if delete {
        eprintln!("Request to delete server {} has been accepted.", rec.uuid);
        return Ok(ExitCode::SUCCESS);
    }
    super::show::print(&queue::current(store.as_ref(), &rec)?, t.format)?;
    Ok(ExitCode::SUCCESS)
}

pub fn run_simple(host: &HostArgs, verb: Verb, t: Target) -> anyhow::Result<ExitCode> {
    if let Some(url) = &host.database {
        let action = match verb {
            Verb::Start => WorkAction::Start,
            Verb::Pause => WorkAction::Pause,
            Verb::Unpause => WorkAction::Unpause,
            Verb::Suspend => WorkAction::Suspend,
            Verb::Resume => WorkAction::Resume,
            Verb::Delete => WorkAction::Delete,
        };
        return queued(host, url, &t, action);
    }
    t.wait.local()?;
    let mut host = host.open()?;
    let rec = match verb {
        Verb::Start => host.start(&t.instance)?,
        Verb::Pause => host.pause(&t.instance)?,
        Verb::Unpause => host.unpause(&t.instance)?,
        Verb::Suspend => host.suspend(&t.instance)?,
        Verb::Resume => host.resume(&t.instance)?,
        Verb::Delete => {
            let rec = host.delete(&t.instance)?;
            eprintln!("Request to delete server {} has been accepted.", rec.uuid);
            return Ok(ExitCode::SUCCESS);
        }
    };
    super::show::print(&rec, t.format)?;
    Ok(ExitCode::SUCCESS)
}

pub fn run_stop(host: &HostArgs, args: StopArgs) -> anyhow::Result<ExitCode> {
    let timeout = args.timeout.min(3600);
    if let Some(url) = &host.database {
        let action = WorkAction::Stop {
            timeout_secs: timeout,
        };
        return queued(host, url, &args.target, action);
    }
    args.target.wait.local()?;
    let mut host = host.open()?;
    let rec = host.stop(&args.target.instance, Duration::from_secs(timeout))?;
    super::show::print(&rec, args.target.format)?;
    Ok(ExitCode::SUCCESS)
}

pub fn run_reboot(host: &HostArgs, args: RebootArgs) -> anyhow::Result<ExitCode> {
    if let Some(url) = &host.database {
        let action = WorkAction::Reboot { hard: args.hard };
        return queued(host, url, &args.target, action);
    }
    args.target.wait.local()?;
    let mut host = host.open()?;
    let rec = host.reboot(&args.target.instance, args.hard)?;
    super::show::print(&rec, args.target.format)?;
    Ok(ExitCode::SUCCESS)
}

pub fn run_rebuild(host: &HostArgs, args: RebuildArgs) -> anyhow::Result<ExitCode> {
    if let Some(url) = &host.database {
        // The image is checked here; the agent gets its id.
        let image = match &args.image {
            Some(i) => Some(queue::store(host, url)?.image(i)?.id),
            None => None,
        };
        return queued(host, url, &args.target, WorkAction::Rebuild { image });
    }
    args.target.wait.local()?;
    let mut host = host.open()?;
    let rec = host.rebuild(&args.target.instance, args.image.as_deref())?;
    super::show::print(&rec, args.target.format)?;
    Ok(ExitCode::SUCCESS)
}
