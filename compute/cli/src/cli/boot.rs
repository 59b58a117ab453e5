//! `compute boot`: create and start an instance (`nova boot`).

use super::host::HostArgs;
use super::queue::{self, WaitArgs};
use super::Format;
use anyhow::{bail, Context};
use compute_host::driver::BootRequest;
use compute_store::{PgWorkWatch, WorkAction};
use indexmap::IndexMap;
use std::path::PathBuf;
use std::process::ExitCode;

/// Boot a new instance.
#[derive(Debug, clap::Args)]
pub struct BootArgs {
    /// Name or ID of image (see `compute image-list`).
    #[arg(long)]
    pub image: String,
    /// Name of flavor (see `compute flavor-list`).
    #[arg(long)]
    pub flavor: String,
    /// Key name of keypair that should be created earlier with `compute keypair-add`.
    #[arg(long)]
    pub key_name: Option<String>,
    /// User data file (at most 65535 bytes once base64-encoded).
    #[arg(long, value_name = "FILE")]
    pub user_data: Option<PathBuf>,
    /// Inject a file: DST=SRC (guest path = local file); repeatable, at most 5.
    #[arg(long = "file", value_name = "DST=SRC")]
    pub files: Vec<String>,
    /// Metadata KEY=VALUE; repeatable.
    #[arg(long = "meta", value_name = "KEY=VALUE")]
    pub meta: Vec<String>,
    /// Attach a config drive (default true: it is how the guest gets its data).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub config_drive: bool,
    /// Admin password for the instance.
    #[arg(long)]
    pub admin_pass: Option<String>,
    /// The compute host to boot on (see `compute host-list`): honoured, or refused
    /// with the reason. On a state folder, only its own host.
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
    /// Output format: text for people, json for scripts.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
    #[command(flatten)]
    pub wait: WaitArgs,
    /// Name for the new server.
    pub name: String,
}

pub fn run(host: &HostArgs, args: BootArgs) -> anyhow::Result<ExitCode> {
    let mut files = Vec::new();
    for spec in &args.files {
        let Some((dst, src)) = spec.split_once('=') else {
            bail!("--file {spec}: want DST=SRC")
        };
        let bytes =
            std::fs::read(src).with_context(|| format!("--file {spec}: cannot read {src}"))?;
        files.push((dst.to_owned(), bytes));
    }
    let mut meta = IndexMap::new();
    for kv in &args.meta {
        let Some((k, v)) = kv.split_once('=') else {
            bail!("--meta {kv}: want KEY=VALUE")
        };
        meta.insert(k.to_owned(), v.to_owned());
    }
    let user_data = match &args.user_data {
        Some(p) => Some(
            std::fs::read(p).with_context(|| format!("cannot read user data {}", p.display()))?,
        ),
        None => None,
    };
    let req = BootRequest {
        name: args.name,
        image: args.image,
        flavor: args.flavor,
        key_name: args.key_name,
        user_data,
        files,
        meta,
        config_drive: args.config_drive,
        admin_pass: args.admin_pass,
        host: args.host,
        owner: Default::default(),
    };
    if let Some(url) = &host.database {
        // Validated, placed and recorded here with its boot queued, in one
        // transaction; the chosen host's agent builds it.
        let mut store = queue::store(host, url)?;
        let mut watch = PgWorkWatch::connect(url)?;
        let (rec, id) = compute_host::driver::queue_boot(store.as_mut(), &req)?;
        let action = WorkAction::Boot {
            config_drive: req.config_drive,
        };
        let done = queue::follow(
            store.as_ref(),
            &mut watch,
            id,
            &action,
            &rec,
            &args.wait,
            args.format,
        )?;
        if done.is_some() {
            super::show::print(&queue::current(store.as_ref(), &rec)?, args.format)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    args.wait.local()?;
    let mut host = host.open()?;
    let rec = host.boot(&req)?;
    super::show::print(&rec, args.format)?;
    Ok(ExitCode::SUCCESS)
}
