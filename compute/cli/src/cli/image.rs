//! Image verbs: `image-import`, `image-list`, `image-show`, `image-delete`,
//! `image-create` (snapshot of an instance).

use super::host::HostArgs;
use super::queue::{self, WaitArgs};
use super::Format;
use compute_host::driver::images::{self, ImageImport};
use compute_host::driver::layout::Layout;
use compute_store::Image;
use compute_store::WorkAction;
use std::path::PathBuf;
use std::process::ExitCode;

/// Import a qcow2 or raw disk image, optionally with a kernel for direct boot.
#[derive(Debug, clap::Args)]
pub struct ImageImportArgs {
    /// Name of the new image.
    #[arg(long)]
    pub name: String,
    /// The disk image file, qcow2 or raw (probed with qemu-img, never guessed).
    #[arg(long, value_name = "DISK")]
    pub file: PathBuf,
    /// A kernel to boot directly (Nova's `kernel_id`).
    #[arg(long, value_name = "FILE")]
    pub kernel: Option<PathBuf>,
    /// The initial ramdisk for --kernel (Nova's `ramdisk_id`).
    #[arg(long, value_name = "FILE")]
    pub ramdisk: Option<PathBuf>,
    /// Kernel command line (Nova's `os_command_line`).
    #[arg(long)]
    pub cmdline: Option<String>,
    /// Output format: text for people, json for scripts.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

// No `///`: it would become the about line of image-show and image-delete alike.
#[derive(Debug, clap::Args)]
pub struct ImageKeyArgs {
    /// Image name or id.
    pub image: String,
    /// Output format: text for people, json for scripts.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[derive(Debug, clap::Args)]
pub struct ImageListArgs {
    /// Output format: text for people, json for scripts.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// Snapshot an instance's root disk into a new image.
#[derive(Debug, clap::Args)]
pub struct ImageCreateArgs {
    /// Name or ID of server.
    pub instance: String,
    /// Name of snapshot.
    pub name: String,
    /// Output format: text for people, json for scripts.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
    #[command(flatten)]
    pub wait: WaitArgs,
}

fn print(image: &Image, format: Format) -> anyhow::Result<()> {
    let v = serde_json::to_value(image)?;
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&v)?),
        Format::Text => super::table::print(
            &["Property", "Value"],
            v.as_object().into_iter().flatten().map(|(k, v)| {
                vec![
                    k.clone(),
                    v.as_str().map_or_else(|| v.to_string(), str::to_owned),
                ]
            }),
        ),
    }
    Ok(())
}

/// This machine's image files: made when they live here (a state folder); with a
/// shared database they live in it, and nothing is written here.
fn files_layout(host: &HostArgs) -> anyhow::Result<Layout> {
    match host.database {
        Some(_) => Ok(Layout::new(&host.state_dir)),
        None => host.layout(),
    }
}

pub fn run_import(host: &HostArgs, a: ImageImportArgs) -> anyhow::Result<ExitCode> {
    let mut records = host.records()?;
    let layout = files_layout(host)?;
    let req = ImageImport {
        name: a.name,
        disk: a.file,
        kernel: a.kernel,
        ramdisk: a.ramdisk,
        cmdline: a.cmdline,
    };
    print(
        &images::import(&layout, records.store_mut(), &req)?,
        a.format,
    )?;
    Ok(ExitCode::SUCCESS)
}

pub fn run_list(host: &HostArgs, a: ImageListArgs) -> anyhow::Result<ExitCode> {
    let host = host.records()?;
    let images = host.store().images()?;
    match a.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&images)?),
        Format::Text => super::table::print(
            &["ID", "Name", "Format", "Size", "Kernel"],
            images.iter().map(|i| {
                vec![
                    i.id.clone(),
                    i.name.clone(),
                    i.format.clone(),
                    i.size.to_string(),
                    i.has_kernel.to_string(),
                ]
            }),
        ),
    }
    Ok(ExitCode::SUCCESS)
}

pub fn run_show(host: &HostArgs, a: ImageKeyArgs) -> anyhow::Result<ExitCode> {
    let host = host.records()?;
    print(&host.store().image(&a.image)?, a.format)?;
    Ok(ExitCode::SUCCESS)
}

pub fn run_delete(host: &HostArgs, a: ImageKeyArgs) -> anyhow::Result<ExitCode> {
    let mut records = host.records()?;
    let layout = files_layout(host)?;
    let image = images::delete(&layout, records.store_mut(), &a.image)?;
    eprintln!("deleted image {} ({})", image.name, image.id);
    Ok(ExitCode::SUCCESS)
}

pub fn run_create(host: &HostArgs, a: ImageCreateArgs) -> anyhow::Result<ExitCode> {
    if let Some(url) = &host.database {
        let action = WorkAction::Snapshot {
            image_name: a.name.clone(),
        };
        let done = queue::act(host, url, &a.instance, action, &a.wait, a.format)?;
        if let Some(done) = done {
            let id = done.work.output.unwrap_or_default();
            print(&done.store.image(&id)?, a.format)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    a.wait.local()?;
    let mut host = host.open()?;
    print(&host.snapshot(&a.instance, &a.name)?, a.format)?;
    Ok(ExitCode::SUCCESS)
}
