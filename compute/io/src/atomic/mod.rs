//! Writing a file (or a folder) whole: a reader sees the old contents or the new,
//! never a mix, and after a power cut the path holds one or the other.
//!
//! # The durability rule
//! One rule for every writer of the workspace, written once (module `steps`) and
//! followed by [`replace`], [`replace_with`], [`create_with`], [`replace_dir`] and
//! the [`FileBatch`] alike:
//!
//! 1. the new contents go to a temporary file in the target's own folder (a rename
//!    never crosses file systems), private until it is filled, then given its owner
//!    and mode; a folder is filled the same way;
//! 2. the temporary file is `fsync`ed (a folder: every file and folder in it);
//! 3. only then it is renamed over the target: a crash before this point leaves the
//!    old target, and a rename never exposes unsynced data;
//! 4. the folder that received the rename is `fsync`ed, making the rename durable.
//!
//! It owns only the mechanics: what to write, with which mode, and whether an
//! existing target may be replaced are the caller's to say.

mod batch;
mod steps;
#[cfg(test)]
mod testing;

pub use batch::{FileBatch, FileBatchError, NewFile, Staged, Ticket, Written};

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use steps::{parent_of, set_attrs, sync_paths, Temp};

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
    let (temp, out) = filled(path, mode, fill)?;
    temp.rename().map_err(|source| AtomicError::Rename {
        path: path.to_owned(),
        source,
    })?;
    sync_folder(path)?;
    Ok(out)
}

/// [`replace_with`], but an existing `path` is never replaced, even one that appears
/// while `fill` runs: then the new file is dropped and the answer is `None`.
pub fn create_with<T, E: From<AtomicError>>(
    path: &Path,
    mode: u32,
    fill: impl FnOnce(&mut File) -> Result<T, E>,
) -> Result<Option<T>, E> {
    let (temp, out) = filled(path, mode, fill)?;
    match temp.rename_noclobber() {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(None),
        Err(source) => {
            return Err(AtomicError::Rename {
                path: path.to_owned(),
                source,
            }
            .into())
        }
    }
    sync_folder(path)?;
    Ok(Some(out))
}

/// Replaces the folder `path` with what `fill` puts in an empty temporary folder
/// (mode `0700`) beside it. An existing folder at `path` is removed just before the
/// rename; when `fill` fails, it is left as it was and the temporary folder is
/// removed.
pub fn replace_dir<T, E: From<AtomicError>>(
    path: &Path,
    fill: impl FnOnce(&Path) -> Result<T, E>,
) -> Result<T, E> {
    let temp = Temp::dir(path).map_err(|(_, source)| AtomicError::Create {
        dir: parent_of(path),
        source,
    })?;
    let out = fill(temp.path())?;
    sync_tree(temp.path())?;
    temp.sync().map_err(|source| AtomicError::Sync {
        path: temp.path().to_owned(),
        source,
    })?;
    if path.symlink_metadata().is_ok() {
        std::fs::remove_dir_all(path).map_err(|source| AtomicError::Remove {
            path: path.to_owned(),
            source,
        })?;
    }
    temp.rename().map_err(|source| AtomicError::Rename {
        path: path.to_owned(),
        source,
    })?;
    sync_folder(path)?;
    Ok(out)
}

/// Steps 1 and 2 for one file: a temporary file beside `path`, filled, given its
/// mode and synced.
fn filled<T, E: From<AtomicError>>(
    path: &Path,
    mode: u32,
    fill: impl FnOnce(&mut File) -> Result<T, E>,
) -> Result<(Temp, T), E> {
    let mut temp = Temp::file(path).map_err(|(_, source)| AtomicError::Create {
        dir: parent_of(path),
        source,
    })?;
    let out = fill(temp.file_mut())?;
    set_attrs(temp.file_mut(), mode, None).map_err(|source| AtomicError::Write {
        path: temp.path().to_owned(),
        source,
    })?;
    temp.sync().map_err(|source| AtomicError::Sync {
        path: path.to_owned(),
        source,
    })?;
    Ok((temp, out))
}

/// Step 4 for one target: its folder.
fn sync_folder(path: &Path) -> Result<(), AtomicError> {
    let dir = parent_of(path);
    match sync_paths(std::slice::from_ref(&dir)).pop() {
        Some(Err(source)) => Err(AtomicError::Sync { path: dir, source }),
        _ => Ok(()),
    }
}

/// Step 2 for what a folder holds: every file and folder under `root`, together.
fn sync_tree(root: &Path) -> Result<(), AtomicError> {
    let mut paths = Vec::new();
    let mut todo = vec![root.to_owned()];
    while let Some(dir) = todo.pop() {
        let list = |source| AtomicError::Sync {
            path: dir.clone(),
            source,
        };
        for entry in std::fs::read_dir(&dir).map_err(list)? {
            let entry = entry.map_err(list)?;
            let kind = entry.file_type().map_err(list)?;
            if kind.is_dir() {
                todo.push(entry.path());
                paths.push(entry.path());
            } else if kind.is_file() {
                paths.push(entry.path());
            }
        }
    }
    let outcomes = sync_paths(&paths);
    match paths.into_iter().zip(outcomes).find(|(_, r)| r.is_err()) {
        Some((path, Err(source))) => Err(AtomicError::Sync { path, source }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{mode, names};
    use super::*;

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
}
