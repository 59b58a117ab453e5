//! Subcommands of the `configdrive` CLI, one module each, plus the atomic output
//! helper they share.

mod build;
mod extract;
mod inspect;
mod instance_flags;
mod output;

use std::process::ExitCode;

/// Reproducible OpenStack config drives (ISO9660 or VFAT), NoCloud seeds and
/// Ironic's encoded form.
#[derive(Debug, clap::Parser)]
#[command(name = "configdrive", version)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The verbs; each argument struct's doc comment is its verb's description (`build`
/// keeps a long one for `build --help`).
#[derive(Debug, clap::Subcommand)]
enum Command {
    Build(Box<build::BuildArgs>),
    Inspect(inspect::InspectArgs),
    Extract(extract::ExtractArgs),
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Build(a) => build::run(*a),
        Command::Inspect(a) => inspect::run(a),
        Command::Extract(a) => extract::run(a),
    }
}

#[cfg(test)]
compute_flags::cli_help_tests!(Cli);
