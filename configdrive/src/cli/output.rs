//! Writing results so that they are complete or absent: a temporary file in the
//! target's folder, then a rename; an existing target is kept unless `--force`.

use anyhow::{bail, Context};
use std::fs::File;
use std::path::{Path, PathBuf};

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Fails early, before any work, when `path` exists and `force` is off.
pub fn refuse_existing(path: &Path, force: bool) -> anyhow::Result<()> {
    if !force && path.symlink_metadata().is_ok() {
        bail!("{} exists; pass --force to replace it", path.display());
    }
    Ok(())
}

/// Writes through `fill` into a temporary file beside `path` and renames it into
/// place, so readers see the whole image or none. Without `force`, an existing
/// `path` (even one that appeared while writing) is left alone and the temporary
/// file removed. No fsync: like cp and genisoimage, durability across a power cut
/// is left to the caller.
pub fn write_atomically(
    path: &Path,
    force: bool,
    fill: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    refuse_existing(path, force)?;
    let dir = parent_of(path);
    let mut tmp = tempfile::Builder::new()
        .prefix(".configdrive-")
        .tempfile_in(&dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    // Temporary files are private; a finished image is an ordinary file.
    tmp.as_file()
        .set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .with_context(|| format!("cannot set permissions on {}", tmp.path().display()))?;
    fill(tmp.as_file_mut()).with_context(|| format!("cannot write {}", tmp.path().display()))?;
    let result = if force {
        tmp.persist(path).map(|_| ())
    } else {
        tmp.persist_noclobber(path).map(|_| ())
    };
    result
        .map_err(|e| e.error)
        .with_context(|| format!("cannot move the image into {}", path.display()))
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
