//! Writing a file (or a folder) whole: a reader sees the old contents or the new,
//! never a mix, and after a power cut the path holds one or the other.
//!
//! One durability rule for every caller: a temporary file in the target's own folder
//! (a rename never crosses file systems), written, fsynced, renamed over the target,
//! then the folder fsynced so that the rename itself is on disk. Folders are filled
//! the same way and every file and folder in them is fsynced before the rename.
//!
//! It owns only the mechanics: what to write, with which mode, and whether an
//! existing target may be replaced are the caller's to say.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum AtomicError {
    #[error("cannot create a temporary file or folder in {dir}")]
    Create {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot flush {path} to disk")]
    Sync {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot remove the old {path}")]
    Remove {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot move the new {path} into place")]
    Rename {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Replaces `path` with `bytes`, with permissions `mode` (e.g. `0o644`).
pub fn replace(path: &Path, bytes: &[u8], mode: u32) -> Result<(), AtomicError> {
    replace_with(path, mode, |file| {
        file.write_all(bytes).map_err(|source| AtomicError::Write {
            path: path.to_owned(),
            source,
        })
    })
}

/// Replaces `path` with what `fill` writes into the (empty) temporary file; when
/// `fill` fails, `path` is left as it was and the temporary file is removed.
pub fn replace_with<T, E: From<AtomicError>>(
    path: &Path,
    mode: u32,
    fill: impl FnOnce(&mut File) -> Result<T, E>,
) -> Result<T, E> {
    let mut tmp = temp_file(path, mode)?;
    let out = fill(tmp.as_file_mut())?;
    sync_file(tmp.as_file(), path)?;
    tmp.persist(path).map_err(|e| AtomicError::Rename {
        path: path.to_owned(),
        source: e.error,
    })?;
    sync_dir(&parent_of(path))?;
    Ok(out)
}

/// [`replace_with`], but an existing `path` is never replaced, even one that appears
/// while `fill` runs: then the new file is dropped and the answer is `None`.
pub fn create_with<T, E: From<AtomicError>>(
    path: &Path,
    mode: u32,
    fill: impl FnOnce(&mut File) -> Result<T, E>,
) -> Result<Option<T>, E> {
    let mut tmp = temp_file(path, mode)?;
    let out = fill(tmp.as_file_mut())?;
    sync_file(tmp.as_file(), path)?;
    match tmp.persist_noclobber(path) {
        Ok(_) => {}
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => return Ok(None),
        Err(e) => {
            return Err(AtomicError::Rename {
                path: path.to_owned(),
                source: e.error,
            }
            .into())
        }
    }
    sync_dir(&parent_of(path))?;
    Ok(Some(out))
}

/// Replaces the folder `path` with what `fill` puts in an empty temporary folder
/// beside it. An existing folder at `path` is removed just before the rename; when
/// `fill` fails, it is left as it was and the temporary folder is removed.
pub fn replace_dir<T, E: From<AtomicError>>(
    path: &Path,
    fill: impl FnOnce(&Path) -> Result<T, E>,
) -> Result<T, E> {
    let dir = parent_of(path);
    let tmp = tempfile::Builder::new()
        .prefix(&prefix(path))
        .tempdir_in(&dir)
        .map_err(|source| AtomicError::Create {
            dir: dir.clone(),
            source,
        })?;
    let out = fill(tmp.path())?;
    sync_tree(tmp.path())?;
    if path.symlink_metadata().is_ok() {
        std::fs::remove_dir_all(path).map_err(|source| AtomicError::Remove {
            path: path.to_owned(),
            source,
        })?;
    }
    std::fs::rename(tmp.path(), path).map_err(|source| AtomicError::Rename {
        path: path.to_owned(),
        source,
    })?;
    // Renamed away: nothing is left for the guard to remove.
    let _ = tmp.keep();
    sync_dir(&dir)?;
    Ok(out)
}

/// The folder a relative or bare `path` lives in.
fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// `.NAME.`: a temporary sibling says whose it is, and is hidden.
fn prefix(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(".{name}.")
}

fn temp_file(path: &Path, mode: u32) -> Result<tempfile::NamedTempFile, AtomicError> {
    let dir = parent_of(path);
    let tmp = tempfile::Builder::new()
        .prefix(&prefix(path))
        .tempfile_in(&dir)
        .map_err(|source| AtomicError::Create { dir, source })?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(|source| AtomicError::Write {
            path: tmp.path().to_owned(),
            source,
        })?;
    Ok(tmp)
}

fn sync_file(file: &File, path: &Path) -> Result<(), AtomicError> {
    file.sync_all().map_err(|source| AtomicError::Sync {
        path: path.to_owned(),
        source,
    })
}

fn sync_dir(dir: &Path) -> Result<(), AtomicError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| AtomicError::Sync {
            path: dir.to_owned(),
            source,
        })
}

/// Fsyncs every file and folder under `root`, and `root` itself.
fn sync_tree(root: &Path) -> Result<(), AtomicError> {
    let entries = std::fs::read_dir(root).map_err(|source| AtomicError::Sync {
        path: root.to_owned(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| AtomicError::Sync {
            path: root.to_owned(),
            source,
        })?;
        let path = entry.path();
        let kind = entry.file_type().map_err(|source| AtomicError::Sync {
            path: path.clone(),
            source,
        })?;
        if kind.is_dir() {
            sync_tree(&path)?;
        } else if kind.is_file() {
            let file = File::open(&path).map_err(|source| AtomicError::Sync {
                path: path.clone(),
                source,
            })?;
            sync_file(&file, &path)?;
        }
    }
    sync_dir(root)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).expect("metadata").mode() & 0o7777
    }

    #[test]
    fn replace_writes_the_bytes_with_the_mode_and_leaves_nothing_else() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("listeners");
        replace(&path, b"first\n", 0o600).expect("create");
        assert_eq!(std::fs::read(&path).expect("read"), b"first\n");
        assert_eq!(mode(&path), 0o600);
        replace(&path, b"second\n", 0o644).expect("replace");
        assert_eq!(std::fs::read(&path).expect("read"), b"second\n");
        assert_eq!(mode(&path), 0o644);
        assert_eq!(names(dir.path()), ["listeners"]);
    }

    #[test]
    fn a_failing_fill_keeps_the_old_file_and_removes_the_temporary_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("disk");
        replace(&path, b"old", 0o644).expect("create");
        let err = replace_with(&path, 0o644, |f| {
            f.write_all(b"half").expect("write");
            Err::<(), _>(AtomicError::Write {
                path: path.clone(),
                source: std::io::Error::other("source went away"),
            })
        })
        .expect_err("fill failed");
        assert!(matches!(err, AtomicError::Write { .. }), "{err:?}");
        assert_eq!(std::fs::read(&path).expect("read"), b"old");
        assert_eq!(names(dir.path()), ["disk"]);
    }

    #[test]
    fn replace_with_hands_back_what_fill_returns() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("image");
        let n = replace_with(&path, 0o644, |f| {
            f.write_all(b"12345").map_err(|source| AtomicError::Write {
                path: path.clone(),
                source,
            })?;
            Ok::<_, AtomicError>(5)
        })
        .expect("replace");
        assert_eq!(n, 5);
        assert_eq!(std::fs::read(&path).expect("read"), b"12345");
    }

    #[test]
    fn create_with_never_replaces_an_existing_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("password");
        let write = |bytes: &'static [u8]| {
            move |f: &mut File| {
                f.write_all(bytes).map_err(|source| AtomicError::Write {
                    path: PathBuf::new(),
                    source,
                })
            }
        };
        assert_eq!(
            create_with(&path, 0o600, write(b"first")).expect("create"),
            Some(())
        );
        assert_eq!(
            create_with(&path, 0o600, write(b"second")).expect("kept"),
            None
        );
        assert_eq!(std::fs::read(&path).expect("read"), b"first");
        assert_eq!(mode(&path), 0o600);
        assert_eq!(names(dir.path()), ["password"]);
    }

    #[test]
    fn replace_dir_swaps_a_whole_folder_or_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("tree");
        let fill = |files: &'static [&'static str]| {
            move |tmp: &Path| -> Result<usize, AtomicError> {
                for f in files {
                    let p = tmp.join(f);
                    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
                    std::fs::write(&p, f.as_bytes()).expect("write");
                }
                Ok(files.len())
            }
        };
        assert_eq!(replace_dir(&out, fill(&["a", "sub/b"])).expect("first"), 2);
        assert_eq!(names(&out), ["a", "sub"]);
        assert_eq!(replace_dir(&out, fill(&["c"])).expect("second"), 1);
        assert_eq!(names(&out), ["c"]);
        let err = replace_dir(&out, |tmp: &Path| {
            std::fs::write(tmp.join("d"), b"d").expect("write");
            Err::<(), _>(AtomicError::Write {
                path: tmp.join("e"),
                source: std::io::Error::other("no room"),
            })
        })
        .expect_err("fill failed");
        assert!(matches!(err, AtomicError::Write { .. }), "{err:?}");
        assert_eq!(names(&out), ["c"], "the old folder stays");
        assert_eq!(names(dir.path()), ["tree"], "no temporary folder left");
    }

    #[test]
    fn a_bare_file_name_is_written_in_the_current_folder() {
        assert_eq!(parent_of(Path::new("x")), PathBuf::from("."));
        assert_eq!(parent_of(Path::new("/a/x")), PathBuf::from("/a"));
        assert_eq!(prefix(Path::new("/a/x.json")), ".x.json.");
    }
}
