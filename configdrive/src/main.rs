//! The `configdrive` CLI: build, inspect and extract config drives. The only place
//! with `anyhow`, files and the environment; the library does the rest.

mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("configdrive: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
