//! Command-line verbs of `compute`. Each verb lives in its own module; this one only
//! declares the grammar and dispatches.

mod agent;
mod api;
mod boot;
mod console_log;
mod flavor;
mod host;
mod hosts;
mod identity;
mod image;
mod keypair;
mod lifecycle;
mod list;
mod meta;
mod queue;
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

/// The verbs. Each has its own one-line description here (Nova's words where
/// `nova help` has them), never its argument struct's doc comment: several verbs
/// share one struct. `render` is the exception: its struct carries the long help.
#[derive(Debug, Subcommand)]
pub enum Command {
    Render(render::RenderArgs),
    /// Check an instance document and name every invalid field (exit 1 when invalid).
    Validate(validate::ValidateArgs),
    /// Boot a new server.
    Boot(boot::BootArgs),
    /// List servers.
    List(list::ListArgs),
    /// Show details about the given server.
    Show(show::ShowArgs),
    /// Stop a server: ACPI shutdown, then a hard stop after --timeout.
    Stop(lifecycle::StopArgs),
    /// Start a stopped server.
    Start(lifecycle::Target),
    /// Reboot a server (--hard restarts QEMU itself).
    Reboot(lifecycle::RebootArgs),
    /// Pause a server (its vCPUs stop, its memory stays).
    Pause(lifecycle::Target),
    /// Unpause a paused server.
    Unpause(lifecycle::Target),
    /// Suspend a server: its state is saved to disk and QEMU exits.
    Suspend(lifecycle::Target),
    /// Resume a suspended server from its saved state.
    Resume(lifecycle::Target),
    /// Shutdown, re-image, and re-boot a server (same uuid and addresses).
    Rebuild(lifecycle::RebuildArgs),
    /// Immediately shut down and delete a server and its files.
    Delete(lifecycle::Target),
    /// Get console log output of a server.
    ConsoleLog(console_log::ConsoleLogArgs),
    /// Import a qcow2 or raw disk image, optionally with a kernel for direct boot.
    ImageImport(image::ImageImportArgs),
    /// Print a list of available images to boot from.
    ImageList(image::ImageListArgs),
    /// Show details about the given image.
    ImageShow(image::ImageKeyArgs),
    /// Delete an image (refused while a server uses it).
    ImageDelete(image::ImageKeyArgs),
    /// Create a new image by taking a snapshot of a server's root disk.
    ImageCreate(image::ImageCreateArgs),
    /// Create a new key pair (the private key is printed once), or import one.
    KeypairAdd(keypair::KeypairAddArgs),
    /// Print a list of keypairs.
    KeypairList(keypair::KeypairListArgs),
    /// Show details about the given keypair.
    KeypairShow(keypair::KeypairNameArgs),
    /// Delete keypair given by its name.
    KeypairDelete(keypair::KeypairNameArgs),
    /// Print a list of available flavors (sizes of servers).
    FlavorList(flavor::FlavorListArgs),
    /// Create a new flavor.
    FlavorCreate(flavor::FlavorCreateArgs),
    /// Delete a specific flavor.
    FlavorDelete(flavor::FlavorDeleteArgs),
    /// Set or update metadata on a server (the metadata service shows it; drives
    /// already built do not).
    MetaSet(meta::MetaSetArgs),
    /// Delete metadata from a server.
    MetaDelete(meta::MetaDeleteArgs),
    /// List compute hosts: status (enabled/disabled) and state (up/down).
    HostList(hosts::HostListArgs),
    /// Show a compute host: capacity, allocation ratios and what is used.
    HostShow(hosts::HostNameArgs),
    /// Disable a compute host: no new instance is placed on it.
    HostDisable(hosts::HostDisableArgs),
    /// Enable a compute host.
    HostEnable(hosts::HostEnableArgs),
    /// Run this machine as a compute host of a shared database: heartbeat, carry out
    /// the work queued for it, reconcile its guests (a daemon; SIGTERM stops it,
    /// its guests keep running).
    HostAgent(agent::HostAgentArgs),
    /// Serve the OpenStack API for `openstack` and openstacksdk: Compute (8774),
    /// Image (9292) and Identity (5000) over this deployment's records (a daemon;
    /// SIGTERM stops it).
    Api(api::ApiArgs),
    /// Create a user of the OpenStack API (prints its id).
    UserCreate(identity::UserCreateArgs),
    /// List the users of the OpenStack API.
    UserList(identity::ListArgs),
    /// Enable, disable a user or change its password.
    UserSet(identity::UserSetArgs),
    /// Create a project (prints its id).
    ProjectCreate(identity::ProjectCreateArgs),
    /// List the projects.
    ProjectList(identity::ListArgs),
    /// Grant a user a role on a project (admin sees every project; member its own).
    RoleAdd(identity::RoleArgs),
    /// Take a role back.
    RoleRemove(identity::RoleArgs),
    /// List who holds which role on which project.
    RoleList(identity::ListArgs),
}

/// Output for people (text) or for scripts (json).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Format {
    /// A table for people.
    #[default]
    Text,
    /// JSON for scripts.
    Json,
}

pub use queue::WaitTimedOut;

/// Whether the command is a daemon (whose log says what it does by default).
pub fn is_daemon(cli: &Cli) -> bool {
    matches!(cli.command, Command::HostAgent(_) | Command::Api(_))
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
        Command::MetaSet(a) => meta::run_set(&cli.host, a),
        Command::MetaDelete(a) => meta::run_delete(&cli.host, a),
        Command::HostList(a) => hosts::run_list(&cli.host, a),
        Command::HostShow(a) => hosts::run_show(&cli.host, a),
        Command::HostDisable(a) => hosts::run_disable(&cli.host, a),
        Command::HostEnable(a) => hosts::run_enable(&cli.host, a),
        Command::HostAgent(a) => agent::run(&cli.host, a),
        Command::Api(a) => api::run(&cli.host, a),
        Command::UserCreate(a) => identity::run_user_create(&cli.host, a),
        Command::UserList(a) => identity::run_user_list(&cli.host, a),
        Command::UserSet(a) => identity::run_user_set(&cli.host, a),
        Command::ProjectCreate(a) => identity::run_project_create(&cli.host, a),
        Command::ProjectList(a) => identity::run_project_list(&cli.host, a),
        Command::RoleAdd(a) => identity::run_role_add(&cli.host, a),
        Command::RoleRemove(a) => identity::run_role_remove(&cli.host, a),
        Command::RoleList(a) => identity::run_role_list(&cli.host, a),
    }
}

#[cfg(test)]
compute_flags::cli_help_tests!(Cli);

#[cfg(test)]
mod tests {
    use super::Cli;

    /// The systemd unit runs a command line that parses (its host from `%H`).
    #[test]
    fn the_systemd_unit_runs_a_host_agent() {
        use clap::Parser;
        let unit = include_str!("../../../host/systemd/compute-host-agent.service");
        let line = |key: &str| {
            unit.lines()
                .find_map(|l| l.strip_prefix(key))
                .unwrap_or_else(|| panic!("no {key} in the unit"))
                .to_owned()
        };
        let exec = line("ExecStart=");
        let argv: Vec<&str> = exec.split_whitespace().collect();
        assert_eq!(argv[0], "/usr/local/bin/compute");
        assert_eq!(line("Environment="), "COMPUTE_HOST=%H");
        assert_eq!(line("KillMode="), "process", "guests outlive the agent");
        let mut args = argv.clone();
        args.extend([
            "--host",
            "compute-1",
            "--database",
            "postgresql://nova@db/compute",
        ]);
        let cli = Cli::try_parse_from(args).expect("parses");
        assert!(super::is_daemon(&cli));
    }

    /// The API's unit runs `compute api` with the arguments of its environment file.
    #[test]
    fn the_systemd_unit_runs_the_api() {
        use clap::Parser;
        let unit = include_str!("../../../api/systemd/compute-api.service");
        let exec = unit
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart="))
            .expect("ExecStart");
        let example = unit
            .lines()
            .find_map(|l| l.strip_prefix("#   COMPUTE_API_ARGS="))
            .expect("an example");
        let line = exec.replace("$COMPUTE_API_ARGS", example);
        let argv: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(argv[0], "/usr/local/bin/compute");
        let cli = Cli::try_parse_from(argv).expect("parses");
        assert!(super::is_daemon(&cli));
        assert!(matches!(cli.command, super::Command::Api(_)));
    }
}
