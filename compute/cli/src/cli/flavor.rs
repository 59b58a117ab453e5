//! Flavor verbs: `flavor-list`, `flavor-create`, `flavor-delete`.

use super::host::HostArgs;
use super::Format;
use compute::flavor::Flavor;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct FlavorListArgs {
    /// Output format: text for people, json for scripts.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// Create a custom flavor.
#[derive(Debug, clap::Args)]
pub struct FlavorCreateArgs {
    /// Unique name of the new flavor.
    pub name: String,
    /// Number of vcpus.
    #[arg(long)]
    pub vcpus: u32,
    /// Memory size in MiB.
    #[arg(long, value_name = "MiB")]
    pub ram: u32,
    /// Root disk size in GB.
    #[arg(long, value_name = "GB")]
    pub disk: u32,
    /// Ephemeral space size in GB.
    #[arg(long, value_name = "GB", default_value_t = 0)]
    pub ephemeral: u32,
    /// Swap space size in MiB.
    #[arg(long, value_name = "MiB", default_value_t = 0)]
    pub swap: u32,
}

#[derive(Debug, clap::Args)]
pub struct FlavorDeleteArgs {
    /// Name of the flavor to delete.
    pub name: String,
}

pub fn run_list(host: &HostArgs, a: FlavorListArgs) -> anyhow::Result<ExitCode> {
    let host = host.records()?;
    let flavors = host.store().flavors()?;
    match a.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&flavors)?),
        Format::Text => super::table::print(
            &["Name", "Memory_MiB", "Disk", "Ephemeral", "Swap", "VCPUs"],
            flavors.iter().map(|f| {
                vec![
                    f.name.clone(),
                    f.ram_mb.to_string(),
                    f.disk_gb.to_string(),
                    f.ephemeral_gb.to_string(),
                    f.swap_mb.to_string(),
                    f.vcpus.to_string(),
                ]
            }),
        ),
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run_create(host: &HostArgs, a: FlavorCreateArgs) -> anyhow::Result<ExitCode> {
    let host = host.records()?;
    let f = Flavor {
        name: a.name,
        vcpus: a.vcpus,
        ram_mb: a.ram,
        disk_gb: a.disk,
        ephemeral_gb: a.ephemeral,
        swap_mb: a.swap,
    };
    f.validate()?;
    host.store().add_flavor(&f)?;
    Ok(ExitCode::SUCCESS)
}

pub fn run_delete(host: &HostArgs, a: FlavorDeleteArgs) -> anyhow::Result<ExitCode> {
    let host = host.records()?;
    host.store().delete_flavor(&a.name)?;
    Ok(ExitCode::SUCCESS)
}
