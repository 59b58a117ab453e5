//! Flags every instance verb shares (`--state-dir`, `--qemu`, `--accel`, `--cidr`,
//! `--network`, `--bridge`, `--metadata-server`, and the rendering settings) and
//! opening the host with them (which reconciles with running QEMU processes).

use anyhow::Context;
use compute_flags::SettingsArgs;
use compute_host::drive_builder::ConfigDriveBuilder;
use compute_host::driver::{Host, HostConfig, NetworkMode, Networking};
use compute_host::qemu::accel::AccelChoice;
use std::path::PathBuf;

#[derive(Debug, Clone, clap::Args)]
pub struct HostArgs {
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

impl HostArgs {
    pub fn open(&self) -> anyhow::Result<Host> {
        let settings = self.settings.to_settings()?;
        let networking = Networking {
            mode: self.network,
            metadata_server: self
                .metadata_server
                .clone()
                .unwrap_or_else(default_metadata_server),
            bridge: self.bridge.clone(),
        };
        Host::open_networked(
            HostConfig {
                state_dir: self.state_dir.clone(),
                qemu: self.qemu.clone(),
                accel: self.accel,
                cidr: self.cidr,
                settings,
                drive_builder: Box::new(ConfigDriveBuilder::default()),
                host_name: None,
            },
            networking,
        )
        .with_context(|| format!("cannot open the state folder {}", self.state_dir.display()))
    }
}
