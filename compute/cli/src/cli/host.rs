//! Flags every instance verb shares (`--state-dir`, `--database`, `--qemu`,
//! `--accel`, `--cidr`, `--network`, `--bridge`, `--metadata-server`, and the
//! rendering settings), and opening what a verb needs with them: the host (which
//! reconciles with running QEMU processes) for verbs that touch guests, or just the
//! store for verbs on records, which against a shared PostgreSQL database open no
//! host at all.

use anyhow::{bail, Context};
use compute_flags::SettingsArgs;
use compute_host::drive_builder::ConfigDriveBuilder;
use compute_host::driver::layout::Layout;
use compute_host::driver::{Host, HostConfig, NetworkMode, Networking};
use compute_host::qemu::accel::AccelChoice;
use compute_store::{Location, Store};
use std::path::PathBuf;

#[derive(Debug, Clone, clap::Args)]
pub struct HostArgs {
    /// A PostgreSQL database that many hosts share (`postgresql://user@host/db`;
    /// a socket folder as the host: `postgresql://user@%2Frun%2Fpostgresql/db`)
    /// instead of the state folder's SQLite file. The state folder still holds this
    /// machine's files (images, instances).
    #[arg(long, global = true, env = "COMPUTE_DATABASE", value_name = "URL")]
    pub database: Option<String>,
    /// The state folder: database, images, instances.
    #[arg(
        long,
        global = true,
        env = "COMPUTE_STATE_DIR",
        default_value = "/var/lib/compute"
    )]
    pub state_dir: PathBuf,
    /// The QEMU binary.
    #[arg(
        long,
        global = true,
        env = "COMPUTE_QEMU",
        default_value = "qemu-system-x86_64"
    )]
    pub qemu: PathBuf,
    /// Accelerator: auto probes KVM (once per host boot) and falls back to TCG.
    #[arg(
        long,
        global = true,
        env = "COMPUTE_ACCEL",
        value_enum,
        default_value_t
    )]
    pub accel: AccelChoice,
    /// The host's network for fixed IPs (recorded on first use).
    #[arg(
        long,
        global = true,
        env = "COMPUTE_CIDR",
        default_value = "10.0.0.0/16"
    )]
    pub cidr: ipnetwork::Ipv4Network,
    /// How guests are networked: `user` runs each QEMU in its own network namespace
    /// with the metadata service at 169.254.169.254 (needs root); `plain` is QEMU
    /// user networking alone (no metadata service, no privileges); `bridge` puts
    /// each guest's tap on a Linux bridge carrying 169.254.169.254 (needs root).
    #[arg(
        long,
        global = true,
        env = "COMPUTE_NETWORK",
        value_enum,
        default_value_t
    )]
    pub network: NetworkMode,
    /// The Linux bridge of `--network bridge` (made on first boot, removed when the
    /// last guest stops).
    #[arg(
        long,
        global = true,
        env = "COMPUTE_BRIDGE",
        default_value = compute_host::driver::bridge::DEFAULT_BRIDGE
    )]
    pub bridge: String,
    /// The `metadata-server` binary compute runs (default: beside `compute`, else
    /// from PATH).
    #[arg(long, global = true, env = "COMPUTE_METADATA_SERVER")]
    pub metadata_server: Option<PathBuf>,
    /// How documents are rendered, for drives and the metadata service alike. They are
    /// the deployment's settings: give the same ones to every command (a change
    /// restarts the managed metadata server with the new ones).
    #[command(flatten)]
    pub settings: SettingsArgs,
}

/// `metadata-server` next to our own binary (a cargo build or an install), else PATH.
fn default_metadata_server() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("metadata-server")))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("metadata-server"))
}

/// The records a verb reads and writes: through the host on a state folder (which
/// is also this machine's compute host), or straight from a shared database.
pub enum Records {
    Local(Box<Host>),
    Shared(Box<dyn Store>),
}

impl Records {
    pub fn store(&self) -> &dyn Store {
        match self {
            Records::Local(h) => h.store(),
            Records::Shared(s) => s.as_ref(),
        }
    }

    pub fn store_mut(&mut self) -> &mut dyn Store {
        match self {
            Records::Local(h) => h.store_mut(),
            Records::Shared(s) => s.as_mut(),
        }
    }
}

impl HostArgs {
    /// This machine's state folder layout (its image and instance files).
    pub fn layout(&self) -> anyhow::Result<Layout> {
        let layout = Layout::new(&self.state_dir);
        layout.create().with_context(|| {
            format!("cannot make the state folder {}", self.state_dir.display())
        })?;
        Ok(layout)
    }

    /// The records for a verb that does not touch guests.
    pub fn records(&self) -> anyhow::Result<Records> {
        match &self.database {
            None => Ok(Records::Local(Box::new(self.open()?))),
            Some(url) => Ok(Records::Shared(compute_store::open_store(
                &Location::Postgres(url.clone()),
                self.cidr,
            )?)),
        }
    }

    /// The store alone, for verbs on records that need no host (users, projects,
    /// roles, the API): the state folder's database or the shared one.
    pub fn store_only(&self) -> anyhow::Result<Box<dyn Store>> {
        Ok(compute_store::open_store(&self.location()?, self.cidr)?)
    }

    /// Where the records are.
    pub fn location(&self) -> anyhow::Result<Location> {
        Ok(match &self.database {
            Some(url) => Location::Postgres(url.clone()),
            None => {
                std::fs::create_dir_all(&self.state_dir).with_context(|| {
                    format!("cannot make the state folder {}", self.state_dir.display())
                })?;
                Location::StateDir(self.state_dir.clone())
            }
        })
    }

    /// How this machine networks guests.
    pub fn networking(&self) -> Networking {
        Networking {
            mode: self.network,
            metadata_server: self
                .metadata_server
                .clone()
                .unwrap_or_else(default_metadata_server),
            bridge: self.bridge.clone(),
        }
    }

    /// The driver's settings from these flags (the host's name: the store's only
    /// one, else this machine's).
    pub fn host_config(&self) -> anyhow::Result<HostConfig> {
        Ok(HostConfig {
            state_dir: self.state_dir.clone(),
            qemu: self.qemu.clone(),
            accel: self.accel,
            cidr: self.cidr,
            settings: self.settings.to_settings()?,
            drive_builder: Box::new(ConfigDriveBuilder::default()),
            host_name: None,
        })
    }

    /// The host, for verbs that start, change or look at guests on this machine
    /// (a state folder: with a shared database, hosts' agents do that work).
    pub fn open(&self) -> anyhow::Result<Host> {
        if let Some(url) = &self.database {
            bail!(
                "with a shared database ({}) guests are the work of each host's agent \
                 (compute host-agent)",
                compute_store::postgres::describe_url(url)
            );
        }
        Host::open_networked(self.host_config()?, self.networking())
            .with_context(|| format!("cannot open the state folder {}", self.state_dir.display()))
    }
}
