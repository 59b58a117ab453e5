//! `configdrive extract`: an image's files into a folder, laid out as a guest sees
//! them; written into a temporary sibling folder, then renamed into place.

use super::inspect::read_image;
use anyhow::{bail, Context};
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;

/// Copy every file of an image into a new folder.
#[derive(Debug, clap::Args)]
pub struct ExtractArgs {
    /// The image file (ISO9660 or VFAT).
    pub image: PathBuf,
    /// Folder to create (must not exist, unless --force).
    pub dir: PathBuf,
    /// Replace an existing folder.
    #[arg(long)]
    pub force: bool,
}

/// A path from an image, kept inside the output folder whatever the image says.
fn safe_relative(path: &str) -> Option<PathBuf> {
    let p = Path::new(path);
    p.components()
        .all(|c| matches!(c, Component::Normal(_)))
        .then(|| p.to_path_buf())
}

pub fn run(args: ExtractArgs) -> anyhow::Result<ExitCode> {
    if args.dir.symlink_metadata().is_ok() && !args.force {
        bail!("{} exists; pass --force to replace it", args.dir.display());
    }
    let drive = read_image(&args.image)?;
    compute_io::atomic::replace_dir(&args.dir, |tmp| {
        for d in &drive.directories {
            let rel =
                safe_relative(d).with_context(|| format!("image holds an unsafe path `{d}`"))?;
            std::fs::create_dir_all(tmp.join(rel)).with_context(|| format!("cannot create {d}"))?;
        }
        for (path, bytes) in &drive.files {
            let rel = safe_relative(path)
                .with_context(|| format!("image holds an unsafe path `{path}`"))?;
            let out = tmp.join(rel);
            if let Some(dir) = out.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
            std::fs::write(&out, bytes)
                .with_context(|| format!("cannot write {}", out.display()))?;
        }
        anyhow::Ok(())
    })?;
    eprintln!(
        "extracted {} files to {}",
        drive.files.len(),
        args.dir.display()
    );
    Ok(ExitCode::SUCCESS)
}
