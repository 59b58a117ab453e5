//! [`GuestFiles`]: the guest's files as the steps see them during one run.
//!
//! Writes are resolved in the [`FsRoot`] and staged in one [`FileBatch`]: a file
//! already as wanted is left alone (reported unchanged), the others are replaced
//! together when the run commits, under the batch's durability rule. Reads see what
//! earlier steps staged, so a step that edits a file another step wrote (an `append`
//! of user data, say) edits the new version. The batch is committed at the end of
//! the run, and earlier when something outside the agent is about to look at the
//! files (a user script about to run).

use super::root::{Attrs, FsRoot, RootError};
use compute_io::atomic::{FileBatch, FileBatchError, NewFile, Staged, Ticket, Written};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum GuestFilesError {
    #[error(transparent)]
    Root(#[from] RootError),
    #[error(transparent)]
    Batch(#[from] FileBatchError),
}

const PARENT_DIRS: Attrs = Attrs {
    mode: 0o755,
    owner: None,
};

#[derive(Debug)]
pub struct GuestFiles {
    root: FsRoot,
    batch: FileBatch,
    results: HashMap<Ticket, Result<Written, FileBatchError>>,
}

impl GuestFiles {
    pub fn new(root: FsRoot) -> Self {
        GuestFiles {
            root,
            batch: FileBatch::new(),
            results: HashMap::new(),
        }
    }

    pub fn root(&self) -> &FsRoot {
        &self.root
    }

    /// A guest file as it will be after this run's staged writes; `None` when it
    /// does not exist.
    pub fn read(&self, guest: &str) -> Result<Option<Vec<u8>>, RootError> {
        let host = self.root.resolve(guest)?;
        match self.batch.pending(&host) {
            Some(f) => Ok(Some(f.contents.clone())),
            None => self.root.read(guest),
        }
    }

    /// Mode and owner of a guest file as it will be after this run's staged writes.
    pub fn attrs_of(&self, guest: &str) -> Option<Attrs> {
        let host = self.root.resolve(guest).ok()?;
        match self.batch.pending(&host) {
            Some(f) => Some(Attrs {
                mode: f.mode,
                owner: f.owner,
            }),
            None => self.root.attrs_of(guest),
        }
    }

    /// Creates missing folders (new ones with `attrs`); their entries become durable
    /// with the next commit.
    pub fn create_dirs(&mut self, guest_dir: &str, attrs: Attrs) -> Result<(), RootError> {
        for dir in self.root.create_dirs(guest_dir, attrs)? {
            self.batch.also_sync(parent(&dir));
        }
        Ok(())
    }

    /// Sets mode and owner of an existing file or folder when they differ; the
    /// change becomes durable with the next commit.
    pub fn write_attrs(&mut self, guest: &str, attrs: Attrs) -> Result<(), RootError> {
        if let Some(host) = self.root.write_attrs(guest, attrs)? {
            self.batch.also_sync(host);
        }
        Ok(())
    }

    /// Stages a guest file, its missing parent folders created now (mode 0755).
    pub fn stage(
        &mut self,
        guest: &str,
        contents: &[u8],
        attrs: Attrs,
    ) -> Result<Staged, GuestFilesError> {
        self.stage_after(guest, contents, attrs, &[])
    }

    /// [`Self::stage`], renamed into place only after the files of `after` (see
    /// [`FileBatch::stage_after`]).
    pub fn stage_after(
        &mut self,
        guest: &str,
        contents: &[u8],
        attrs: Attrs,
        after: &[Ticket],
    ) -> Result<Staged, GuestFilesError> {
        // Refuses a bad path before making any folder for it.
        self.root.resolve(guest)?;
        let parent_guest = Path::new(guest)
            .parent()
            .and_then(Path::to_str)
            .unwrap_or("/");
        self.create_dirs(parent_guest, PARENT_DIRS)?;
        let path = self.root.resolve(guest)?;
        let file = NewFile {
            path,
            contents: contents.to_vec(),
            mode: attrs.mode,
            owner: attrs.owner,
        };
        Ok(self.batch.stage_after(file, after)?)
    }

    /// Commits everything staged so far; results are kept for [`Self::take_result`].
    pub fn commit(&mut self) {
        if !self.batch.is_empty() {
            let results = self.batch.commit();
            self.results.extend(results);
        }
    }

    /// Whether a committed file failed.
    pub fn failed(&self, ticket: Ticket) -> bool {
        matches!(self.results.get(&ticket), Some(Err(_)))
    }

    /// The result of a committed file; `None` before its commit (or if taken).
    pub fn take_result(&mut self, ticket: Ticket) -> Option<Result<Written, FileBatchError>> {
        self.results.remove(&ticket)
    }
}

fn parent(p: &Path) -> PathBuf {
    p.parent().unwrap_or(Path::new("/")).to_path_buf()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    const PUBLIC: Attrs = Attrs {
        mode: 0o644,
        owner: None,
    };

    #[test]
    fn reads_see_staged_writes_and_writes_stay_inside() {
        let outer = tempfile::tempdir().expect("tempdir");
        let root_dir = outer.path().join("root");
        fs::create_dir(&root_dir).expect("mkdir");
        symlink("../../..", root_dir.join("rel")).expect("symlink");
        let mut files = GuestFiles::new(FsRoot::new(&root_dir).expect("root"));

        let t = match files.stage("/rel/etc/motd", b"hi\n", PUBLIC) {
            Ok(Staged::Pending(t)) => t,
            other => panic!("{other:?}"),
        };
        assert!(root_dir.join("etc").is_dir(), "parents are made at once");
        assert!(
            !root_dir.join("etc/motd").exists(),
            "the file only at commit"
        );
        assert_eq!(
            files.read("/etc/motd").expect("read"),
            Some(b"hi\n".to_vec())
        );
        assert_eq!(files.attrs_of("/etc/motd"), Some(PUBLIC));
        files.commit();
        assert!(matches!(files.take_result(t), Some(Ok(Written::Replaced))));
        assert_eq!(
            fs::read(root_dir.join("etc/motd")).expect("inside"),
            b"hi\n"
        );
        assert!(!outer.path().join("etc").exists());
        assert!(matches!(
            files.stage("/etc/motd", b"hi\n", PUBLIC),
            Ok(Staged::Unchanged)
        ));
        assert!(matches!(
            files.stage("/etc/../x", b"", PUBLIC),
            Err(GuestFilesError::Root(RootError::DotDot(_)))
        ));
    }
}
