//! `compute console-log`: the guest's serial console (`nova console-log`). The
//! console file is on the instance's host: with a shared database the host's agent
//! reads it and hands its end back through the work queue (at most 1 MiB, like
//! Nova's compute service answering over RPC).

use super::host::HostArgs;
use super::queue::{self, WaitArgs};
use compute_store::WorkAction;
use std::io::Write;
use std::process::ExitCode;

/// Print the instance's console output.
#[derive(Debug, clap::Args)]
pub struct ConsoleLogArgs {
    /// Name or ID of server.
    pub instance: String,
    /// Length in lines to tail (default: the whole log).
    #[arg(long, value_name = "N")]
    pub length: Option<usize>,
    /// Seconds to wait for the host's agent to read the console (with a shared
    /// database: --database) before giving up (exit status 2).
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    pub wait_timeout: u64,
}

pub fn run(host: &HostArgs, args: ConsoleLogArgs) -> anyhow::Result<ExitCode> {
    if let Some(url) = &host.database {
        let action = WorkAction::ConsoleLog {
            length: args.length.map(|n| n as u64),
        };
        let wait = WaitArgs {
            no_wait: false,
            wait_timeout: args.wait_timeout,
        };
        let done = queue::act(
            host,
            url,
            &args.instance,
            action,
            &wait,
            super::Format::Text,
        )?;
        if let Some(done) = done {
            std::io::stdout().write_all(done.work.output.unwrap_or_default().as_bytes())?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let host = host.open()?;
    let text = host.console_log(&args.instance, args.length)?;
    std::io::stdout().write_all(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}
