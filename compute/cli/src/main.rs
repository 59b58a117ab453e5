//! `compute`: the operator's command line (nova-style verbs).

mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                // netlink-packet-route warns on every link when the kernel is newer
                // than it (bridge mode lists links): noise, not a problem.
                .unwrap_or_else(|_| {
                    tracing_subscriber::EnvFilter::new("warn,netlink_packet_route=error")
                }),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli::run(args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(1)
        }
    }
}
