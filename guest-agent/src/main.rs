//! `guest-agent run|show`: the thin command line over the library.

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use guest_agent::apply::{apply, ApplyOptions};
use guest_agent::discover::{discover, DiscoverOptions, SourceChoice};
use guest_agent::plan::{self, PlanOptions};
use guest_agent::report::{error_chain, Step};
use guest_agent::source::{BlockScan, RetryPolicy, DEFAULT_METADATA_URL};
use guest_agent::view;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Configure this guest from its config drive or the metadata service.
#[derive(Debug, Parser)]
#[command(name = "guest-agent", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply the instance's configuration (network, hostname, keys, files, ...).
    Run(RunArgs),
    /// Print what was found, as JSON (secrets redacted).
    Show,
}

#[derive(Debug, clap::Args)]
struct Common {
    /// Where to read the instance's data from.
    #[arg(long, value_enum, default_value_t, global = true)]
    source: SourceChoice,
    /// A drive image or block device to read instead of scanning.
    #[arg(long, value_name = "PATH", global = true)]
    device: Option<PathBuf>,
    /// The metadata service's base URL.
    #[arg(long, value_name = "URL", default_value = DEFAULT_METADATA_URL, global = true)]
    metadata_url: String,
    /// How long to wait for a config drive to appear.
    #[arg(long, value_name = "SECONDS", default_value_t = 3.0, global = true)]
    device_wait: f64,
    /// Overall deadline for the metadata service, retries included.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0, global = true)]
    metadata_timeout: f64,
    /// Output format: text for people, json (one line) for scripts.
    #[arg(long, value_enum, default_value_t, global = true)]
    format: Format,
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Apply under this folder instead of `/`; live changes are then skipped.
    #[arg(long, value_name = "DIR", default_value = "/")]
    root: PathBuf,
    /// With --root: still make live changes (netlink, kernel hostname, urandom),
    /// e.g. from an initramfs with the real root at /sysroot.
    #[arg(long)]
    live: bool,
    /// Whose authorized_keys get the SSH keys (root when the user does not exist).
    #[arg(long, value_name = "NAME", default_value = "root")]
    user: String,
    /// Plan and report, change nothing.
    #[arg(long)]
    dry_run: bool,
    /// When the metadata has no admin_pass: generate one, set it, and post it
    /// encrypted with the instance's RSA key (for `nova get-password`).
    #[arg(long)]
    generate_password: bool,
    /// Also write systemd-networkd files so the network survives reboots.
    #[arg(long)]
    networkd: bool,
    /// Only these steps (comma-separated); default all.
    #[arg(long, value_enum, value_delimiter = ',')]
    steps: Vec<Step>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
enum Format {
    /// The report as lines of text (`show`: indented JSON).
    #[default]
    Text,
    /// One line of JSON.
    Json,
}

fn main() -> ExitCode {
    // A plain level (GUEST_AGENT_LOG=info), not an env-filter: that would link a
    // regex engine into a binary meant to stay small. Secrets are never logged.
    let level = std::env::var("GUEST_AGENT_LOG")
        .ok()
        .and_then(|l| l.parse::<tracing::Level>().ok())
        .unwrap_or(tracing::Level::WARN);
    let subscriber = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .finish();
    // Errors are reported once, by us; a second global subscriber cannot happen here.
    let _ = tracing::subscriber::set_global_default(subscriber);
    match real_main() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("guest-agent: {}", error_chain(e.as_ref()));
            ExitCode::from(2)
        }
    }
}

fn seconds(s: f64, what: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(s)
        .with_context(|| format!("{what} must be a non-negative number of seconds"))
}

fn real_main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    let c = &cli.common;
    let opts = DiscoverOptions {
        choice: c.source,
        device: c.device.clone(),
        metadata_url: c.metadata_url.clone(),
        scan: BlockScan {
            deadline: seconds(c.device_wait, "--device-wait")?,
            ..BlockScan::default()
        },
        retry: RetryPolicy {
            deadline: seconds(c.metadata_timeout, "--metadata-timeout")?,
            ..RetryPolicy::default()
        },
    };
    let mut provider = discover(&opts).context("finding the instance's data")?;
    let data = view::read(provider.as_mut()).context("reading the instance's data")?;
    match cli.command {
        Command::Show => {
            let json = data.to_json();
            match c.format {
                Format::Json => println!("{}", serde_json::to_string(&json)?),
                Format::Text => println!("{}", serde_json::to_string_pretty(&json)?),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Run(args) => {
            let plan = plan::build(
                data,
                &PlanOptions {
                    user: args.user.clone(),
                    generate_password: args.generate_password,
                },
            );
            let is_root = args.root == std::path::Path::new("/");
            let apply_opts = ApplyOptions {
                live: is_root || args.live,
                root: args.root,
                dry_run: args.dry_run,
                networkd: args.networkd,
                steps: if args.steps.is_empty() {
                    Step::ALL.to_vec()
                } else {
                    args.steps
                },
            };
            let report = apply(&plan, &apply_opts, Some(provider.as_mut()));
            match c.format {
                Format::Json => println!("{}", serde_json::to_string(&report)?),
                Format::Text => print!("{}", report.to_text()),
            }
            Ok(if report.failed() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    #[test]
    fn every_verb_and_flag_explains_itself() {
        assert_eq!(
            compute_flags::cli_help::problems(&Cli::command()),
            Vec::<String>::new()
        );
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
