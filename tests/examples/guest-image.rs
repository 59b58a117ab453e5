//! The demo guest's image, outside the test suite: Debian's kernel and a busybox
//! initramfs with the static guest-agent (and optionally an SSH server), the same
//! image the e2e tests boot (`e2e::agent_guest`). `summary` turns the guest's console
//! log into a readable account of what it learned.
//!
//! ```sh
//! cargo run -p e2e --example guest-image -- build --agent PATH [--ssh-server /usr/sbin/dropbear] --out DIR
//! cargo run -p e2e --example guest-image -- summary --console console.log
//! ```
//!
//! Errors (a missing tool, kernel or file) are printed once, as one line naming what
//! is missing and how to get it; the exit status is then 1.

use anyhow::Context;
use clap::{Parser, Subcommand};
use e2e::agent_guest;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "guest-image",
    about = "The demo guest's image (Debian kernel, busybox, static guest-agent) and its report"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write DIR/vmlinuz, DIR/initramfs.cpio, DIR/root.qcow2 and DIR/cmdline.
    Build {
        /// A statically linked guest-agent.
        #[arg(long, value_name = "FILE")]
        agent: PathBuf,
        /// An SSH server (dropbear) to start once the agent is done.
        #[arg(long, value_name = "FILE")]
        ssh_server: Option<PathBuf>,
        /// Power off after printing the results (tests) instead of staying up.
        #[arg(long)]
        poweroff: bool,
        /// The folder to write the image into (created when missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Print what the guest printed between the agent's markers; exit 3 when they
    /// are not (yet) in the log.
    Summary {
        /// The guest's serial console log (`compute console-log`).
        #[arg(long, value_name = "FILE")]
        console: PathBuf,
    },
}

fn build(
    agent: &Path,
    ssh_server: Option<&Path>,
    poweroff: bool,
    out: &Path,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let img = agent_guest::build(out, agent, ssh_server)?;
    let cmdline = if poweroff {
        agent_guest::TEST_CMDLINE
    } else {
        agent_guest::DEMO_CMDLINE
    };
    let kernel = out.join("vmlinuz");
    std::fs::copy(&img.kernel, &kernel).with_context(|| {
        format!(
            "cannot copy {} to {}",
            img.kernel.display(),
            kernel.display()
        )
    })?;
    let cmdline_file = out.join("cmdline");
    std::fs::write(&cmdline_file, cmdline)
        .with_context(|| format!("cannot write {}", cmdline_file.display()))?;
    println!("{}", out.display());
    Ok(())
}

/// The summary, or None when the agent's end marker is not in the log yet.
fn summary(console: &Path) -> anyhow::Result<Option<String>> {
    let bytes =
        std::fs::read(console).with_context(|| format!("cannot read {}", console.display()))?;
    let log = String::from_utf8_lossy(&bytes);
    let out = agent_guest::parse(&log)
        .with_context(|| format!("the agent's results in {}", console.display()))?;
    Ok(out.map(|o| agent_guest::summary(&o)))
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Build {
            agent,
            ssh_server,
            poweroff,
            out,
        } => build(&agent, ssh_server.as_deref(), poweroff, &out).map(|()| ExitCode::SUCCESS),
        Command::Summary { console } => summary(&console).map(|s| match s {
            Some(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            None => ExitCode::from(3),
        }),
    };
    result.unwrap_or_else(|e| {
        eprintln!("guest-image: {e:#}");
        ExitCode::FAILURE
    })
}

#[cfg(test)]
compute_flags::cli_help_tests!(Cli);
