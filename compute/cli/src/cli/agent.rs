//! `compute host-agent`: this machine as one compute host of a shared database
//! (the loop is `compute_host::agent`; here only its flags and signals).

use super::host::HostArgs;
use anyhow::{bail, Context};
use compute_host::agent::{self, AgentConfig};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct HostAgentArgs {
    /// This compute host's name (what `boot --host` and `host-list` say); one agent
    /// per name: a second one is refused while the first runs.
    #[arg(long, value_name = "NAME", env = "COMPUTE_HOST")]
    pub host: String,
    /// Seconds between heartbeats (a host is down after 30 s without one).
    #[arg(long, value_name = "SECS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=20))]
    pub heartbeat: u64,
    /// Seconds between looks at the queue when no notification wakes the agent.
    #[arg(long, value_name = "SECS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub poll: u64,
    /// Seconds between reconciliations of the database with the QEMU processes.
    #[arg(long, value_name = "SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub reconcile: u64,
}

pub fn run(host: &HostArgs, a: HostAgentArgs) -> anyhow::Result<ExitCode> {
    let Some(url) = host.database.clone() else {
        bail!(
            "host-agent serves a shared PostgreSQL database: give it --database URL (or \
             COMPUTE_DATABASE); on a state folder alone, compute does the work itself"
        );
    };
    compute_store::validate_host_name(&a.host)?;
    // The first SIGTERM (or SIGINT) asks for a clean stop: the work in progress is
    // finished, nothing new is taken. A second one ends the process at once (what it
    // was doing is queued again at the next start).
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register_conditional_shutdown(signal, 1, stop.clone())
            .context("cannot handle signals")?;
        signal_hook::flag::register(signal, stop.clone()).context("cannot handle signals")?;
    }
    let mut config = host.host_config()?;
    config.host_name = Some(a.host.clone());
    let mut agent = AgentConfig::new(url, config, host.networking());
    agent.heartbeat = Duration::from_secs(a.heartbeat);
    agent.poll = Duration::from_secs(a.poll);
    agent.reconcile = Duration::from_secs(a.reconcile);
    agent::run(agent, &stop)?;
    Ok(ExitCode::SUCCESS)
}
