//! The steps of the durability rule (see [`super`]), written once: the single-file
//! and folder functions and the file batch all go through these.
//!
//! - step 1, [`Temp::file`] and [`Temp::dir`]: a new file or folder beside its
//!   target, private (`0600`, `0700`) until [`set_attrs`] gives it owner and mode;
//! - step 2, [`Temp::sync`] (and [`sync_paths`] for what a folder holds);
//! - step 3, [`Temp::rename`] or [`Temp::rename_noclobber`];
//! - step 4, [`sync_paths`] on the folders that received a rename.
//!
//! Many `fsync`s of one step are issued together ([`concurrently`]): the kernel folds
//! concurrent `fsync`s into shared journal commits and disk-cache flushes, so a step
//! waits for the disk about once rather than once per file.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Numbers the temporary names of this process, so two writers of one file in the
/// same process never meet.
static NEXT_TEMP: AtomicU64 = AtomicU64::new(0);

/// A new file or folder beside its target, removed when dropped unless it was renamed
/// into place.
#[derive(Debug)]
pub(super) struct Temp {
    path: PathBuf,
    target: PathBuf,
    /// A file while it is being filled; `None` for a folder or a closed file.
    file: Option<File>,
    is_dir: bool,
    placed: bool,
}

impl Temp {
    /// Step 1 for a file: an empty private file beside `target`. On failure, the
    /// name it tried.
    pub(super) fn file(target: &Path) -> Result<Temp, (PathBuf, io::Error)> {
        let path = temp_name(target);
        let file = create_file(&path).map_err(|e| (path.clone(), e))?;
        Ok(Temp {
            path,
            target: target.to_owned(),
            file: Some(file),
            is_dir: false,
            placed: false,
        })
    }

    /// Step 1 for a folder: an empty private folder beside `target`.
    pub(super) fn dir(target: &Path) -> Result<Temp, (PathBuf, io::Error)> {
        let path = temp_name(target);
        create_dir(&path).map_err(|e| (path.clone(), e))?;
        Ok(Temp {
            path,
            target: target.to_owned(),
            file: None,
            is_dir: true,
            placed: false,
        })
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// The open file being filled.
    ///
    /// # Panics
    /// On a folder or a closed file: a caller's bug.
    pub(super) fn file_mut(&mut self) -> &mut File {
        self.file
            .as_mut()
            .expect("only an open temporary file is filled")
    }

    /// Closes a filled file, so that a batch of many holds no descriptors; [`Self::sync`]
    /// opens it again.
    pub(super) fn close(&mut self) {
        self.file = None;
    }

    /// Step 2: the file's data and inode on disk (a folder's own entry list: what is
    /// in it is the caller's to sync first).
    pub(super) fn sync(&self) -> io::Result<()> {
        match &self.file {
            Some(f) => f.sync_all(),
            None => sync_path(&self.path),
        }
    }

    /// Step 3: renamed over the target (a folder's target must be gone or empty).
    /// On failure the temporary file is removed.
    pub(super) fn rename(mut self) -> io::Result<()> {
        fs::rename(&self.path, &self.target)?;
        self.placed = true;
        Ok(())
    }

    /// Step 3, but an existing target is kept: then the error is `AlreadyExists` and
    /// the temporary file is removed.
    pub(super) fn rename_noclobber(mut self) -> io::Result<()> {
        use rustix::fs::{renameat_with, RenameFlags, CWD};
        match renameat_with(CWD, &self.path, CWD, &self.target, RenameFlags::NOREPLACE) {
            Ok(()) => {}
            // A file system without the flag: a hard link fails the same way on an
            // existing name.
            Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOSYS) => {
                fs::hard_link(&self.path, &self.target)?;
                let _ = fs::remove_file(&self.path);
            }
            Err(e) => return Err(e.into()),
        }
        self.placed = true;
        Ok(())
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        if self.placed {
            return;
        }
        self.file = None;
        let _ = if self.is_dir {
            fs::remove_dir_all(&self.path)
        } else {
            fs::remove_file(&self.path)
        };
    }
}

/// A new private file at a temporary name; a leftover there (of a crashed process
/// that had this pid) is replaced.
fn create_file(path: &Path) -> io::Result<File> {
    let create = || {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
    };
    create().or_else(|e| {
        if e.kind() != io::ErrorKind::AlreadyExists {
            return Err(e);
        }
        fs::remove_file(path)?;
        create()
    })
}

/// [`create_file`] for a folder.
fn create_dir(path: &Path) -> io::Result<()> {
    let create = || fs::DirBuilder::new().mode(0o700).create(path);
    create().or_else(|e| {
        if e.kind() != io::ErrorKind::AlreadyExists {
            return Err(e);
        }
        fs::remove_dir_all(path)?;
        create()
    })
}

/// Owner, then mode (a change of owner may clear set-id bits that the mode sets), on
/// a filled file.
pub(super) fn set_attrs(file: &File, mode: u32, owner: Option<(u32, u32)>) -> io::Result<()> {
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::fchown(file, Some(uid), Some(gid))?;
    }
    file.set_permissions(fs::Permissions::from_mode(mode & 0o7777))
}

/// `fsync` of a file or folder by its path.
fn sync_path(path: &Path) -> io::Result<()> {
    let file = match File::open(path) {
        // A file whose mode lets its owner write but not read.
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
            OpenOptions::new().write(true).open(path)?
        }
        other => other?,
    };
    file.sync_all()
}

/// Steps 2 and 4 for many paths (files or folders): all `fsync`ed together, the
/// results in their order.
pub(super) fn sync_paths(paths: &[PathBuf]) -> Vec<io::Result<()>> {
    concurrently(paths, |p| sync_path(p))
}

/// The folder a relative or bare `path` lives in.
pub(super) fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// `.NAME.PID-N.tmp` beside `target`: hidden, says whose it is, and stays within
/// the usual 255-byte name limit (long names are cut).
fn temp_name(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut cut = name.len().min(200);
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    let (pid, n) = (
        std::process::id(),
        NEXT_TEMP.fetch_add(1, Ordering::Relaxed),
    );
    parent_of(target).join(format!(".{}.{pid}-{n}.tmp", &name[..cut]))
}

/// At most this many `fsync`s in flight at once.
const MAX_CONCURRENT_SYNCS: usize = 16;

/// `f` on every item, several at a time (this thread included), results in the
/// items' order. Threads that cannot be started are done without.
pub(super) fn concurrently<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    if items.len() < 2 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(i) else {
                return done;
            };
            done.push((i, f(item)));
        }
    };
    let mut done: Vec<(usize, R)> = std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..items.len().min(MAX_CONCURRENT_SYNCS))
            .filter_map(|_| {
                std::thread::Builder::new()
                    .stack_size(64 * 1024)
                    .spawn_scoped(scope, work)
                    .ok()
            })
            .collect();
        let mut done = work();
        for h in helpers {
            match h.join() {
                Ok(d) => done.extend(d),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        done
    });
    done.sort_unstable_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::super::testing::{mode, names};
    use super::*;
    use std::io::Write;

    #[test]
    fn concurrently_keeps_the_order() {
        let items: Vec<usize> = (0..100).collect();
        let out = concurrently(&items, |i| {
            std::thread::sleep(std::time::Duration::from_micros((100 - *i as u64) * 10));
            i * 2
        });
        assert_eq!(out, (0..100).map(|i| i * 2).collect::<Vec<_>>());
        assert_eq!(concurrently(&[7], |i| i + 1), [8]);
        assert!(concurrently(&[] as &[u8], |i| *i).is_empty());
    }

    #[test]
    fn temporary_names_are_hidden_siblings_unique_and_short_enough() {
        let a = temp_name(Path::new("/etc/motd"));
        let b = temp_name(Path::new("/etc/motd"));
        assert_ne!(a, b);
        assert_eq!(a.parent(), Some(Path::new("/etc")));
        let name = a.file_name().expect("name").to_string_lossy().into_owned();
        let pid = std::process::id();
        assert!(name.starts_with(&format!(".motd.{pid}-")), "{name}");
        assert!(name.ends_with(".tmp"), "{name}");
        let long = temp_name(&Path::new("/x").join("é".repeat(200)));
        assert!(long.file_name().expect("name").len() <= 255);
        assert_eq!(temp_name(Path::new("bare")).parent(), Some(Path::new(".")));
        assert_eq!(parent_of(Path::new("x")), PathBuf::from("."));
        assert_eq!(parent_of(Path::new("/a/x")), PathBuf::from("/a"));
    }

    #[test]
    fn a_temporary_file_is_private_until_filled_and_removed_unless_placed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("f");
        let mut t = Temp::file(&target).expect("temp");
        assert_eq!(mode(t.path()), 0o600);
        t.file_mut().write_all(b"x").expect("write");
        drop(t);
        assert!(names(dir.path()).is_empty(), "dropped unplaced: removed");

        let mut t = Temp::file(&target).expect("temp");
        t.file_mut().write_all(b"new").expect("write");
        set_attrs(t.file_mut(), 0o640, None).expect("attrs");
        t.close();
        t.sync().expect("sync by path after closing");
        t.rename().expect("rename");
        assert_eq!(fs::read(&target).expect("read"), b"new");
        assert_eq!(mode(&target), 0o640);

        let t = Temp::file(&target).expect("temp");
        let err = t.rename_noclobber().expect_err("target exists");
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&target).expect("read"), b"new");
        assert_eq!(names(dir.path()), ["f"]);

        let d = Temp::dir(&dir.path().join("d")).expect("temp dir");
        fs::write(d.path().join("inside"), b"i").expect("write");
        drop(d);
        assert_eq!(names(dir.path()), ["f"], "an unplaced folder goes whole");
    }

    #[test]
    fn a_leftover_at_a_temporary_name_is_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let leftover = dir.path().join(".f.1-0.tmp");
        fs::write(&leftover, b"old").expect("leftover");
        let mut f = create_file(&leftover).expect("over a leftover file");
        f.write_all(b"new").expect("write");
        assert_eq!(fs::read(&leftover).expect("read"), b"new");
        let leftover = dir.path().join(".d.1-0.tmp");
        fs::create_dir(&leftover).expect("leftover folder");
        fs::write(leftover.join("inside"), b"old").expect("write");
        create_dir(&leftover).expect("over a leftover folder");
        assert!(names(&leftover).is_empty());
        assert_eq!(mode(&leftover), 0o700);
    }

    #[test]
    fn sync_paths_reports_each_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("f");
        fs::write(&file, b"x").expect("write");
        fs::set_permissions(&file, fs::Permissions::from_mode(0o200)).expect("chmod");
        let out = sync_paths(&[dir.path().to_owned(), file, dir.path().join("missing")]);
        assert!(out[0].is_ok() && out[1].is_ok(), "{out:?}");
        assert_eq!(
            out[2].as_ref().expect_err("missing").kind(),
            io::ErrorKind::NotFound
        );
    }
}
