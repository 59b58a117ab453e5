//! What the tests of [`super`] look at on disk.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The names in a folder, sorted.
pub(super) fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The permission bits of a file or folder.
pub(super) fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).expect("metadata").mode() & 0o7777
}
