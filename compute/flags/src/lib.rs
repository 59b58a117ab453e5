//! The command-line spellings several binaries of the workspace share, with clap:
//! the rendering [`settings`] flags (`compute`, `configdrive`, `metadata-server`),
//! the arguments `compute` starts `metadata-server` with ([`metadata_server`]), and
//! [`cli_help`], the check that every verb and flag of a command line has help.
//!
//! It declares flags and turns them into the core's types and back into argv; it
//! runs nothing and touches no files (beyond reading a vendor data file it is named).

pub mod cli_help;
pub mod metadata_server;
pub mod settings;

pub use settings::{SettingsArgs, SettingsError};
