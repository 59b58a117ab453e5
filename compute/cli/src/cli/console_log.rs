//! `compute console-log`: the guest's serial console (`nova console-log`).

use super::host::HostArgs;
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
}

pub fn run(host: &HostArgs, args: ConsoleLogArgs) -> anyhow::Result<ExitCode> {
    let host = host.open()?;
    let text = host.console_log(&args.instance, args.length)?;
    std::io::stdout().write_all(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}
