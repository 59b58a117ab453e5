//! `guest-agent run|show|watch`: the thin command line over the library.

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use guest_agent::apply::{apply, ApplyOptions};
use guest_agent::discover::{discover, DiscoverOptions, SourceChoice};
use guest_agent::plan::{self, PlanOptions};
use guest_agent::report::{error_chain, Step};
use guest_agent::source::{BlockScan, RetryPolicy, DEFAULT_METADATA_URL};
use guest_agent::view;
use guest_agent::watch::{watch, WatchOptions};
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
    /// Apply, then apply again whenever the metadata service's meta_data.json
    /// changes (long polls with its ETag); SIGTERM stops it.
    Watch(WatchArgs),
}

#[derive(Debug, clap::Args)]
struct WatchArgs {
    #[command(flatten)]
    run: RunArgs,
    /// How long the service may hold each request before answering unchanged.
    #[arg(long, value_name = "SECONDS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..=600))]
    wait: u64,
    /// Exit (code 2) when the service has not answered for this long.
    #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
    give_up_after: u64,
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
    let run = match cli.command {
        Command::Watch(w) => return watch_metadata(c, &w, opts),
        Command::Show => None,
        Command::Run(args) => Some(args),
    };
    let mut provider = discover(&opts).context("finding the instance's data")?;
    let data = view::read(provider.as_mut()).context("reading the instance's data")?;
    match run {
        None => {
            let json = data.to_json();
            match c.format {
                Format::Json => println!("{}", serde_json::to_string(&json)?),
                Format::Text => println!("{}", serde_json::to_string_pretty(&json)?),
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(args) => apply_and_report(data, provider.as_mut(), &args, c.format),
    }
}

/// Plans and applies what was read, prints the report; exit 1 when a step failed.
fn apply_and_report(
    data: view::InstanceData,
    provider: &mut dyn guest_agent::source::Provider,
    args: &RunArgs,
    format: Format,
) -> anyhow::Result<ExitCode> {
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
        root: args.root.clone(),
        dry_run: args.dry_run,
        networkd: args.networkd,
        steps: if args.steps.is_empty() {
            Step::ALL.to_vec()
        } else {
            args.steps.clone()
        },
    };
    let report = apply(&plan, &apply_opts, Some(provider));
    match format {
        Format::Json => println!("{}", serde_json::to_string(&report)?),
        Format::Text => print!("{}", report.to_text()),
    }
    Ok(if report.failed() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// `watch`: a run now and after every change of the service's data.
fn watch_metadata(c: &Common, w: &WatchArgs, opts: DiscoverOptions) -> anyhow::Result<ExitCode> {
    if c.source == SourceChoice::ConfigDrive || c.device.is_some() {
        anyhow::bail!(
            "watch follows the metadata service: --source config-drive and --device do not apply"
        );
    }
    let opts = DiscoverOptions {
        choice: SourceChoice::Metadata,
        ..opts
    };
    let mut watching = WatchOptions::new(
        c.metadata_url.clone(),
        opts.retry,
        Duration::from_secs(w.wait),
    );
    watching.give_up_after = Duration::from_secs(w.give_up_after);
    watch(&watching, || {
        let ran = discover(&opts)
            .context("finding the instance's data")
            .and_then(|mut provider| {
                let data = view::read(provider.as_mut()).context("reading the instance's data")?;
                apply_and_report(data, provider.as_mut(), &w.run, c.format)
            });
        if let Err(e) = ran {
            eprintln!("guest-agent: {}", error_chain(e.as_ref()));
        }
        use std::io::Write;
        let _ = std::io::stdout().flush();
    })?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
compute_flags::cli_help_tests!(Cli);
