//! Flags every instance verb shares (`--state-dir`, `--qemu`, `--accel`, `--cidr`)
//! and opening the host with them (which reconciles with running QEMU processes).

use anyhow::Context;
use compute::driver::{Host, HostConfig};
use compute::qemu::accel::AccelChoice;
use compute::Settings;
use configdrive::ConfigDriveBuilder;
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
}

impl HostArgs {
    pub fn open(&self, settings: Settings) -> anyhow::Result<Host> {
        Host::open(HostConfig {
            state_dir: self.state_dir.clone(),
            qemu: self.qemu.clone(),
            accel: self.accel,
            cidr: self.cidr,
            settings,
            drive_builder: Box::new(ConfigDriveBuilder::default()),
        })
        .with_context(|| format!("cannot open the state folder {}", self.state_dir.display()))
    }
}
