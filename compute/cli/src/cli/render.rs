//! `compute render`: write out exactly what a guest will see, as files.

use anyhow::{bail, Context};
use base64::Engine;
use compute::metadata::{render_drive, render_service, Entry};
use compute::Instance;
use compute_flags::SettingsArgs;
use compute_io::atomic;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum View {
    /// The files of a config drive, laid out as on the drive.
    #[default]
    Drive,
    /// Every path the metadata service answers.
    Service,
}

/// Render an instance's metadata into a folder.
///
/// `--view drive` writes the config-drive tree exactly as on the drive:
/// `ec2/<ver>/meta-data.json`, `ec2/<ver>/user-data`, `openstack/<ver>/<file>`,
/// `openstack/content/NNNN`.
///
/// `--view service` writes what `GET` answers for every path of the metadata
/// service: `ec2/<ver>/meta-data/<key>` and `ec2/<ver>/user-data` (served at
/// `/<ver>/...` and `/ec2/<ver>/...`), `openstack/<ver>/<file>` and, with
/// `--serve-files`, `openstack/content/NNNN`; each directory's listing (the body of
/// `GET` on the directory, such as `/`, `/openstack` or `/latest/meta-data/`) is
/// in a file named `.listing` inside it. The password endpoint has no file: its
/// contents are whatever the guest posted. An instance without `random_seed` gets a
/// fresh seed in `meta_data.json`, as every request to the service would.
#[derive(Debug, clap::Args)]
#[command(
    verbatim_doc_comment,
    about = "Render an instance's metadata into a folder"
)]
pub struct RenderArgs {
    /// The instance document (JSON); `-` reads standard input.
    #[arg(long, value_name = "FILE")]
    pub instance: PathBuf,
    /// Folder to write; it must not exist or be empty, unless --force.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// What to write: the config-drive tree, or every path the service answers.
    #[arg(long, value_enum, default_value_t)]
    pub view: View,
    /// Replace a non-empty output folder.
    #[arg(long)]
    pub force: bool,
    /// Base64 seed to use in the service view where the instance has none.
    #[arg(long, value_name = "BASE64")]
    pub random_seed: Option<String>,
}

pub(crate) fn read_input(path: &Path) -> anyhow::Result<Vec<u8>> {
    if path == Path::new("-") {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("reading the instance document from standard input")?;
        return Ok(buf);
    }
    std::fs::read(path).with_context(|| format!("cannot read instance document {}", path.display()))
}

pub fn run(args: RenderArgs, settings: &SettingsArgs) -> anyhow::Result<ExitCode> {
    let instance = Instance::from_json(&read_input(&args.instance)?)?;
    let settings = settings.to_settings()?;
    let files: Vec<(String, Vec<u8>)> = match args.view {
        View::Drive => render_drive(&instance, &settings)
            .into_iter()
            .map(|(p, b)| (p, b.to_vec()))
            .collect(),
        View::Service => {
            let seed = match args.random_seed {
                Some(s) => s,
                None => fresh_seed()?,
            };
            service_files(&instance, &settings, &seed)
        }
    };
    let count = files.len();
    write_atomically(&args.out, args.force, &files)?;
    eprintln!("wrote {count} files to {}", args.out.display());
    Ok(ExitCode::SUCCESS)
}

fn service_files(
    instance: &Instance,
    settings: &compute::Settings,
    seed: &str,
) -> Vec<(String, Vec<u8>)> {
    let tree = render_service(instance, settings);
    let mut out = Vec::new();
    for (path, entry) in tree.walk() {
        match entry {
            Entry::Dir(d) => {
                if let Some(listing) = &d.listing {
                    out.push((format!("{path}/.listing"), listing.to_vec()));
                }
            }
            Entry::File(f) => out.push((path, f.body.with_seed(seed).to_vec())),
            Entry::Password | Entry::Live(_) => {}
        }
    }
    out
}

/// 512 bytes from the kernel's generator, base64: what Nova puts in each answer.
fn fresh_seed() -> anyhow::Result<String> {
    let mut buf = [0u8; 512];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .context("reading /dev/urandom for a random_seed")?;
    Ok(base64::engine::general_purpose::STANDARD.encode(buf))
}

/// Writes every file into a fresh sibling folder, then renames it into place, so
/// that the output is either complete or absent.
fn write_atomically(out: &Path, force: bool, files: &[(String, Vec<u8>)]) -> anyhow::Result<()> {
    let nonempty = match std::fs::read_dir(out) {
        Ok(mut it) => it.next().is_some(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => {
            bail!(
                "{} exists and is not a folder; choose another --out",
                out.display()
            )
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", out.display())),
    };
    if nonempty && !force {
        bail!("{} is not empty; pass --force to replace it", out.display());
    }
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    atomic::replace_dir(out, |tmp| {
        for (rel, bytes) in files {
            let path = tmp.join(rel);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
            std::fs::write(&path, bytes)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        anyhow::Ok(())
    })
}
