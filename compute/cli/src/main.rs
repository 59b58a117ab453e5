//! `compute`: the operator's command line (nova-style verbs).

mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    // A daemon tells what it does (info); a command only what goes wrong (warn).
    let level = if cli::is_daemon(&args) {
        "info"
    } else {
        "warn"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                // netlink-packet-route warns on every link when the kernel is newer
                // than it (bridge mode lists links): noise, not a problem.
                .unwrap_or_else(|_| {
                    tracing_subscriber::EnvFilter::new(format!(
                        "{level},netlink_packet_route=error"
                    ))
                }),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli::run(args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            // Scripts tell "not finished in time" (the work stays queued) apart.
            if err.downcast_ref::<cli::WaitTimedOut>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}
