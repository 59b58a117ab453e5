//! The lifecycle verbs on one instance: stop, start, reboot, pause, unpause,
//! suspend, resume, rebuild, delete. Each prints the instance afterwards.

use super::host::HostArgs;
use super::Format;
use compute_flags::SettingsArgs;
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

pub fn run_simple(host: &HostArgs, verb: Verb, t: Target) -> anyhow::Result<ExitCode> {
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
    let mut host = host.open()?;
    let rec = host.stop(
        &args.target.instance,
        Duration::from_secs(args.timeout.min(3600)),
    )?;
    super::show::print(&rec, args.target.format)?;
    Ok(ExitCode::SUCCESS)
}

pub fn run_reboot(host: &HostArgs, args: RebootArgs) -> anyhow::Result<ExitCode> {
    let mut host = host.open()?;
    let rec = host.reboot(&args.target.instance, args.hard)?;
    super::show::print(&rec, args.target.format)?;
    Ok(ExitCode::SUCCESS)
}

pub fn run_rebuild(host: &HostArgs, args: RebuildArgs) -> anyhow::Result<ExitCode> {
    let mut host = host.open()?;
    let rec = host.rebuild(&args.target.instance, args.image.as_deref())?;
    super::show::print(&rec, args.target.format)?;
    Ok(ExitCode::SUCCESS)
}
