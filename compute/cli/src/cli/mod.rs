//! Command-line verbs of `compute`. Each verb lives in its own module; this one only
//! declares the grammar and dispatches.

mod boot;
mod console_log;
mod flavor;
mod host;
mod image;
mod keypair;
mod lifecycle;
mod list;
mod render;
mod show;
mod table;
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
    #[command(flatten)]
    pub host: host::HostArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Render(render::RenderArgs),
    Validate(validate::ValidateArgs),
    Boot(boot::BootArgs),
    List(list::ListArgs),
    Show(show::ShowArgs),
    Stop(lifecycle::StopArgs),
    Start(lifecycle::Target),
    Reboot(lifecycle::RebootArgs),
    Pause(lifecycle::Target),
    Unpause(lifecycle::Target),
    Suspend(lifecycle::Target),
    Resume(lifecycle::Target),
    Rebuild(lifecycle::RebuildArgs),
    Delete(lifecycle::Target),
    ConsoleLog(console_log::ConsoleLogArgs),
    ImageImport(image::ImageImportArgs),
    ImageList(image::ImageListArgs),
    ImageShow(image::ImageKeyArgs),
    ImageDelete(image::ImageKeyArgs),
    ImageCreate(image::ImageCreateArgs),
    KeypairAdd(keypair::KeypairAddArgs),
    KeypairList(keypair::KeypairListArgs),
    KeypairShow(keypair::KeypairNameArgs),
    KeypairDelete(keypair::KeypairNameArgs),
    FlavorList(flavor::FlavorListArgs),
    FlavorCreate(flavor::FlavorCreateArgs),
    FlavorDelete(flavor::FlavorDeleteArgs),
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
        Command::Render(args) => render::run(args, &cli.host.settings),
        Command::Validate(args) => validate::run(args),
        Command::Boot(a) => boot::run(&cli.host, a),
        Command::List(a) => list::run(&cli.host, a),
        Command::Show(a) => show::run(&cli.host, a),
        Command::Stop(a) => lifecycle::run_stop(&cli.host, a),
        Command::Start(a) => lifecycle::run_simple(&cli.host, lifecycle::Verb::Start, a),
        Command::Reboot(a) => lifecycle::run_reboot(&cli.host, a),
        Command::Pause(a) => lifecycle::run_simple(&cli.host, lifecycle::Verb::Pause, a),
        Command::Unpause(a) => lifecycle::run_simple(&cli.host, lifecycle::Verb::Unpause, a),
        Command::Suspend(a) => lifecycle::run_simple(&cli.host, lifecycle::Verb::Suspend, a),
        Command::Resume(a) => lifecycle::run_simple(&cli.host, lifecycle::Verb::Resume, a),
        Command::Rebuild(a) => lifecycle::run_rebuild(&cli.host, a),
        Command::Delete(a) => lifecycle::run_simple(&cli.host, lifecycle::Verb::Delete, a),
        Command::ConsoleLog(a) => console_log::run(&cli.host, a),
        Command::ImageImport(a) => image::run_import(&cli.host, a),
        Command::ImageList(a) => image::run_list(&cli.host, a),
        Command::ImageShow(a) => image::run_show(&cli.host, a),
        Command::ImageDelete(a) => image::run_delete(&cli.host, a),
        Command::ImageCreate(a) => image::run_create(&cli.host, a),
        Command::KeypairAdd(a) => keypair::run_add(&cli.host, a),
        Command::KeypairList(a) => keypair::run_list(&cli.host, a),
        Command::KeypairShow(a) => keypair::run_show(&cli.host, a),
        Command::KeypairDelete(a) => keypair::run_delete(&cli.host, a),
        Command::FlavorList(a) => flavor::run_list(&cli.host, a),
        Command::FlavorCreate(a) => flavor::run_create(&cli.host, a),
        Command::FlavorDelete(a) => flavor::run_delete(&cli.host, a),
    }
}
