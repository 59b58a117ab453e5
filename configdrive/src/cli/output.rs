//! Writing results so that they are complete or absent (through
//! `compute_io::atomic`); an existing target is kept unless `--force`.

use anyhow::{bail, Context};
use compute_io::atomic;
use std::fs::File;
use std::path::Path;

/// Fails early, before any work, when `path` exists and `force` is off.
pub fn refuse_existing(path: &Path, force: bool) -> anyhow::Result<()> {
    if !force && path.symlink_metadata().is_ok() {
        bail!("{} exists; pass --force to replace it", path.display());
    }
    Ok(())
}

/// Writes through `fill` into a temporary file beside `path` and renames it into
/// place, so readers see the whole image or none, and it is on disk when this
/// returns. Without `force`, an existing `path` (even one that appeared while
/// writing) is left alone and the temporary file removed.
pub fn write_atomically(
    path: &Path,
    force: bool,
    fill: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    refuse_existing(path, force)?;
    let fill = |f: &mut File| {
        fill(f).map_err(|source| atomic::AtomicError::Write {
            path: path.to_owned(),
            source,
        })
    };
    // A finished image is an ordinary file.
    if force {
        atomic::replace_with(path, 0o644, fill)?;
    } else if atomic::create_with(path, 0o644, fill)?.is_none() {
        bail!("{} exists; pass --force to replace it", path.display());
    }
    Ok(())
}

/// Prints to standard output; a closed pipe (`| head`) is not an error.
pub fn print_stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).context("cannot write to standard output")
        }
        _ => Ok(()),
    }
}
