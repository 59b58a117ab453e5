//! [`FileBatch`]: replacing a set of files atomically, compare-first, under the
//! durability rule of [`super`] for the whole set.
//!
//! Callers hand in final paths: resolving guest paths, refusing `..` and keeping
//! symlinks inside a root are the caller's business, as is creating parent folders
//! (tell the batch about created folders with [`FileBatch::also_sync`]).
//!
//! # Compare first
//! [`FileBatch::stage`] looks at what is on disk: a regular file with the same
//! bytes, the same permission bits and (when one is asked for) the same owner is
//! left alone and the answer is [`Staged::Unchanged`]. Nothing is written, so its
//! inode, mtime and ctime stay as they are. Staging a path again replaces the earlier
//! staged contents (the earlier ticket ends as [`Written::Superseded`]);
//! [`FileBatch::pending`] shows what a later read of the path should see.
//!
//! # One rule for the set
//! [`FileBatch::commit`] takes every staged file through each step of the rule
//! before any file starts the next: all temporary files are written (step 1), then
//! all `fsync`ed together (step 2); only then are they renamed (step 3), and every
//! folder that received a rename (and everything given to
//! [`FileBatch::also_sync`]) is `fsync`ed once (step 4). So every staged file is
//! either its old self or its complete new self, never empty or partial, even across
//! a crash, and when it reports [`Written::Replaced`] its directory entry is durable.
//!
//! The result of a file is known only after step 4: a file whose folder could not be
//! synced is reported failed even though its new contents are visible. Two commits
//! in a row are ordered: everything the first reports replaced is durable before
//! the second writes anything. A crash between renames leaves some files new and
//! the others old, each of them whole.
//!
//! A file staged with [`FileBatch::stage_after`] waits for the files it names: its
//! temporary file goes through steps 1 and 2 with all the others, but its rename
//! and folder sync come in a later wave of steps 3 and 4, once theirs are done, and
//! if one of them failed it is not renamed at all. That orders, say, a "done"
//! marker after the work it stands for at the cost of one more rename-and-sync
//! round, not a second commit.
//!
//! # Why it is fast
//! The `fsync`s of steps 2 and 4 are issued together, so a step waits for the disk
//! about once rather than once per file; on a disk busy with other programs' writes,
//! where each flush queues behind them, that is most of the run. Not `syncfs`: it
//! would also flush every unrelated dirty page of the file system (other programs'
//! writes), which on a busy disk costs far more than the few files here.

use super::steps::{concurrently, parent_of, set_attrs, sync_paths, Temp};
use std::collections::{BTreeSet, HashMap};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum FileBatchError {
    #[error("{path} is not an absolute path with a file name")]
    BadPath { path: PathBuf },
    #[error("{path} is a folder; remove it or choose another path")]
    IsFolder { path: PathBuf },
    #[error("cannot read {path} to compare it with the new contents")]
    Compare {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the new contents of {path} to {temp}; the old file is intact")]
    Temp {
        path: PathBuf,
        temp: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot make the new contents of {path} durable; the old file is intact")]
    Sync {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot rename the new {path} into place; the old file is intact")]
    Rename {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} was not written because a file it must follow was not; the old file is intact"
    )]
    Prerequisite { path: PathBuf },
    #[error("{path} was replaced, but folder {dir} could not be synced: the change may not survive a crash")]
    SyncDir {
        path: PathBuf,
        dir: PathBuf,
        #[source]
        source: Arc<std::io::Error>,
    },
}

/// The desired state of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFile {
    /// Absolute host path, already resolved by the caller.
    pub path: PathBuf,
    pub contents: Vec<u8>,
    /// Permission bits (`0o7777` at most).
    pub mode: u32,
    /// `(uid, gid)`. `None`: any owner is fine for an existing file, and a new one
    /// belongs to whoever runs the commit.
    pub owner: Option<(u32, u32)>,
}

/// Names one staged file; its result comes back from [`FileBatch::commit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ticket(u64);

/// What [`FileBatch::stage`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Staged {
    /// The file on disk is already as asked; nothing will be written.
    Unchanged,
    /// The file will be replaced by the next commit.
    Pending(Ticket),
}

/// How a staged file ended, when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// Replaced, and durable.
    Replaced,
    /// A later [`FileBatch::stage`] of the same path took its place.
    Superseded,
}

#[derive(Debug)]
struct Entry {
    ticket: Ticket,
    file: NewFile,
    superseded: bool,
    /// Renamed only once these are durable.
    after: Vec<Ticket>,
}

/// A set of file replacements committed together. See the module docs.
#[derive(Debug, Default)]
pub struct FileBatch {
    entries: Vec<Entry>,
    dirs: BTreeSet<PathBuf>,
    next_ticket: u64,
}

impl FileBatch {
    pub fn new() -> Self {
        Self::default()
    }

    /// Compares `file` with what is on disk and stages it when it differs.
    pub fn stage(&mut self, file: NewFile) -> Result<Staged, FileBatchError> {
        self.stage_after(file, &[])
    }

    /// [`Self::stage`], but the file is renamed into place only once the files of
    /// `after` are durable, and not at all if one of them fails (see the module
    /// docs). Tickets of earlier commits count as done.
    pub fn stage_after(
        &mut self,
        file: NewFile,
        after: &[Ticket],
    ) -> Result<Staged, FileBatchError> {
        let NewFile { path, mode, .. } = &file;
        if !path.is_absolute() || path.file_name().is_none() || path.parent().is_none() {
            return Err(FileBatchError::BadPath { path: path.clone() });
        }
        let mode = mode & 0o7777;
        let same = on_disk_matches(&file)?;
        // The latest wish for a path wins: an earlier staged version is dropped.
        for e in &mut self.entries {
            if e.file.path == file.path && !e.superseded {
                e.superseded = true;
            }
        }
        if same {
            return Ok(Staged::Unchanged);
        }
        let ticket = Ticket(self.next_ticket);
        self.next_ticket += 1;
        self.entries.push(Entry {
            ticket,
            file: NewFile { mode, ..file },
            superseded: false,
            after: after.to_vec(),
        });
        Ok(Staged::Pending(ticket))
    }

    /// What the next commit will put at `path`, if it will change it.
    pub fn pending(&self, path: &Path) -> Option<&NewFile> {
        self.entries
            .iter()
            .rev()
            .find(|e| !e.superseded && e.file.path == path)
            .map(|e| &e.file)
    }

    /// Also `fsync` this folder (or file) at the next commit, with the folders of
    /// the renames: the parent of a folder created for the batch's files, or
    /// something whose mode or owner was changed in place.
    pub fn also_sync(&mut self, path: PathBuf) {
        self.dirs.insert(path);
    }

    /// Nothing staged and no folder to sync.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.dirs.is_empty()
    }

    /// Writes, syncs and renames everything staged, in the order of the module docs,
    /// and empties the batch. Every ticket staged since the last commit gets a result.
    pub fn commit(&mut self) -> HashMap<Ticket, Result<Written, FileBatchError>> {
        let entries = std::mem::take(&mut self.entries);
        let mut results = HashMap::with_capacity(entries.len());

        // 1. Temporary files.
        let mut temps: Vec<(Entry, Temp)> = Vec::with_capacity(entries.len());
        for e in entries {
            if e.superseded {
                results.insert(e.ticket, Ok(Written::Superseded));
                continue;
            }
            match write_temp(&e.file) {
                Ok(temp) => temps.push((e, temp)),
                Err(error) => {
                    results.insert(e.ticket, Err(error));
                }
            }
        }

        // 2. Their data and inodes durable.
        let outcomes = concurrently(&temps, |(_, temp)| temp.sync());
        let mut waiting = Vec::with_capacity(temps.len());
        for ((e, temp), outcome) in temps.into_iter().zip(outcomes) {
            match outcome {
                Ok(()) => waiting.push((e, temp)),
                Err(source) => {
                    drop(temp);
                    let path = e.file.path;
                    results.insert(e.ticket, Err(FileBatchError::Sync { path, source }));
                }
            }
        }

        // 3 and 4, in waves: a file waits for the files it must follow.
        let mut dirs = std::mem::take(&mut self.dirs);
        loop {
            let unsettled: BTreeSet<Ticket> = waiting.iter().map(|(e, _)| e.ticket).collect();
            let (ready, rest): (Vec<_>, Vec<_>) = waiting
                .into_iter()
                .partition(|(e, _)| e.after.iter().all(|t| !unsettled.contains(t)));
            waiting = rest;
            if ready.is_empty() && dirs.is_empty() {
                break;
            }
            let renamed = rename_all(ready, &mut dirs, &mut results);
            sync_dirs(std::mem::take(&mut dirs), renamed, &mut results);
        }
        // Only an `after` naming a later ticket could stay waiting.
        for (e, temp) in waiting {
            drop(temp);
            let path = e.file.path;
            results.insert(e.ticket, Err(FileBatchError::Prerequisite { path }));
        }
        results
    }
}

/// Step 3 for the files of one wave; returns those renamed.
fn rename_all(
    ready: Vec<(Entry, Temp)>,
    dirs: &mut BTreeSet<PathBuf>,
    results: &mut HashMap<Ticket, Result<Written, FileBatchError>>,
) -> Vec<Entry> {
    let mut renamed = Vec::with_capacity(ready.len());
    for (e, temp) in ready {
        let failed_before = e
            .after
            .iter()
            .any(|t| matches!(results.get(t), Some(Err(_))));
        // Dropped unrenamed, a temporary file is removed.
        let outcome = if failed_before {
            Err(None)
        } else {
            temp.rename().map_err(Some)
        };
        match outcome {
            Ok(()) => {
                dirs.insert(parent_of(&e.file.path));
                renamed.push(e);
            }
            Err(source) => {
                let path = e.file.path;
                let error = match source {
                    Some(source) => FileBatchError::Rename { path, source },
                    None => FileBatchError::Prerequisite { path },
                };
                results.insert(e.ticket, Err(error));
            }
        }
    }
    renamed
}

/// Step 4 for one wave: the folders once each, then the wave's results.
fn sync_dirs(
    dirs: BTreeSet<PathBuf>,
    renamed: Vec<Entry>,
    results: &mut HashMap<Ticket, Result<Written, FileBatchError>>,
) {
    let dirs: Vec<PathBuf> = dirs.into_iter().collect();
    let outcomes = sync_paths(&dirs);
    let failed_dirs: Vec<(PathBuf, Arc<std::io::Error>)> = dirs
        .into_iter()
        .zip(outcomes)
        .filter_map(|(d, outcome)| outcome.err().map(|e| (d, Arc::new(e))))
        .collect();
    for e in renamed {
        // A failed folder on the way to the file (its own, or a created parent's
        // entry) leaves the file's durability unknown.
        let failed = failed_dirs.iter().find(|(d, _)| e.file.path.starts_with(d));
        let result = match failed {
            None => Ok(Written::Replaced),
            Some((dir, source)) => Err(FileBatchError::SyncDir {
                path: e.file.path,
                dir: dir.clone(),
                source: Arc::clone(source),
            }),
        };
        results.insert(e.ticket, result);
    }
}

/// Same bytes, mode and (if asked) owner as a regular file on disk.
fn on_disk_matches(file: &NewFile) -> Result<bool, FileBatchError> {
    let compare = |source| FileBatchError::Compare {
        path: file.path.clone(),
        source,
    };
    let meta = match fs::symlink_metadata(&file.path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(compare(e)),
    };
    if meta.is_dir() {
        return Err(FileBatchError::IsFolder {
            path: file.path.clone(),
        });
    }
    let owner_ok = file
        .owner
        .is_none_or(|(uid, gid)| (meta.uid(), meta.gid()) == (uid, gid));
    if !meta.is_file()
        || meta.len() != file.contents.len() as u64
        || meta.mode() & 0o7777 != file.mode & 0o7777
        || !owner_ok
    {
        return Ok(false);
    }
    let mut on_disk = Vec::with_capacity(file.contents.len());
    File::open(&file.path)
        .and_then(|f| {
            f.take(file.contents.len() as u64 + 1)
                .read_to_end(&mut on_disk)
        })
        .map_err(compare)?;
    Ok(on_disk == file.contents)
}

/// Step 1 for one file: its temporary file written, with its owner and mode, and
/// closed.
fn write_temp(file: &NewFile) -> Result<Temp, FileBatchError> {
    let failed = |temp: &Path, source| FileBatchError::Temp {
        path: file.path.clone(),
        temp: temp.to_owned(),
        source,
    };
    let mut temp = Temp::file(&file.path).map_err(|(temp, source)| failed(&temp, source))?;
    let f = temp.file_mut();
    f.write_all(&file.contents)
        .and_then(|()| set_attrs(f, file.mode, file.owner))
        .map_err(|source| failed(temp.path(), source))?;
    temp.close();
    Ok(temp)
}

#[cfg(test)]
mod tests;
