//! Command-line verbs of `compute`. Each verb lives in its own module; this one only
//! declares the grammar and dispatches.

mod render;
mod validate;

use clap::{Parser, Subcommand, ValueEnum};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "compute",
    version,
    about = "A compact Nova for one host: instances, metadata, config drives"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Render(render::RenderArgs),
    Validate(validate::ValidateArgs),
}

/// Output for people (text) or for scripts (json).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Format {
    #[default]
    Text,
    Json,
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Render(args) => render::run(args),
        Command::Validate(args) => validate::run(args),
    }
}
