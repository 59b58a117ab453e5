//! The demo guest's image, outside the test suite: Debian's kernel and a busybox
//! initramfs with the static guest-agent (and optionally an SSH server), the same
//! image the e2e tests boot (`e2e::agent_guest`). `summary` turns the guest's console
//! log into a readable account of what it learned.
//!
//! ```sh
//! cargo run -p e2e --example guest-image -- build --agent PATH [--ssh-server /usr/sbin/dropbear] --out DIR
//! cargo run -p e2e --example guest-image -- summary --console console.log
//! ```

use clap::{Parser, Subcommand};
use e2e::agent_guest;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(name = "guest-image")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Writes DIR/vmlinuz, DIR/initramfs.cpio, DIR/root.qcow2 and DIR/cmdline.
    Build {
        /// A statically linked guest-agent.
        #[arg(long)]
        agent: PathBuf,
        /// An SSH server (dropbear) to start once the agent is done.
        #[arg(long)]
        ssh_server: Option<PathBuf>,
        /// Power off after printing the results (tests) instead of staying up.
        #[arg(long)]
        poweroff: bool,
        #[arg(long)]
        out: PathBuf,
    },
    /// Prints what the guest printed between the agent's markers; exit 3 when they
    /// are not (yet) in the log.
    Summary {
        #[arg(long)]
        console: PathBuf,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Build {
            agent,
            ssh_server,
            poweroff,
            out,
        } => {
            if let Err(e) = std::fs::create_dir_all(&out) {
                eprintln!("guest-image: {}: {e}", out.display());
                return ExitCode::FAILURE;
            }
            let img = agent_guest::build(&out, &agent, ssh_server.as_deref());
            let cmdline = if poweroff {
                agent_guest::TEST_CMDLINE
            } else {
                agent_guest::DEMO_CMDLINE
            };
            let kernel = out.join("vmlinuz");
            let written = std::fs::copy(&img.kernel, &kernel)
                .and_then(|_| std::fs::write(out.join("cmdline"), cmdline));
            if let Err(e) = written {
                eprintln!("guest-image: {}: {e}", out.display());
                return ExitCode::FAILURE;
            }
            println!("{}", out.display());
            ExitCode::SUCCESS
        }
        Command::Summary { console } => {
            let log = match std::fs::read(&console) {
                Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                Err(e) => {
                    eprintln!("guest-image: {}: {e}", console.display());
                    return ExitCode::FAILURE;
                }
            };
            let Some(out) = agent_guest::parse(&log) else {
                return ExitCode::from(3);
            };
            print!("{}", agent_guest::summary(&out));
            ExitCode::SUCCESS
        }
    }
}
