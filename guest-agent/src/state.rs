//! Once-per-instance state: a marker file per step under
//! `/var/lib/guest-agent/<instance id>/` (inside the root). A new instance id (an
//! image cloned to another instance) has no markers, so everything runs again.

use crate::guestfs::{Attrs, FsRoot, GuestFiles, GuestFilesError, RootError};
use crate::report::Step;
use compute_io::atomic::{Staged, Ticket};

pub const STATE_DIR: &str = "/var/lib/guest-agent";

#[derive(Debug, Clone)]
pub struct InstanceState {
    dir: String,
}

impl InstanceState {
    /// The instance id is checked to be one path component by [`crate::view`].
    pub fn new(instance_id: &str) -> Self {
        InstanceState {
            dir: format!("{STATE_DIR}/{instance_id}"),
        }
    }

    pub fn dir(&self) -> &str {
        &self.dir
    }

    fn marker(&self, step: Step) -> String {
        format!("{}/{}.done", self.dir, step.as_str())
    }

    pub fn is_done(&self, root: &FsRoot, step: Step) -> bool {
        root.resolve(&self.marker(step))
            .map(|p| p.exists())
            .unwrap_or(false)
    }

    /// Creates the instance's folder (0700) if missing; whatever goes in it (markers,
    /// saved scripts) comes after this.
    pub fn create_dir(&self, files: &mut GuestFiles) -> Result<(), RootError> {
        files.create_dirs(
            STATE_DIR,
            Attrs {
                mode: 0o755,
                owner: None,
            },
        )?;
        files.create_dirs(
            &self.dir,
            Attrs {
                mode: 0o700,
                owner: None,
            },
        )
    }

    /// Stages the step's marker to follow the step's own files (`after`); it is
    /// written by the caller's next commit.
    pub fn mark_done(
        &self,
        files: &mut GuestFiles,
        step: Step,
        after: &[Ticket],
    ) -> Result<Staged, GuestFilesError> {
        self.create_dir(files)?;
        let attrs = Attrs {
            mode: 0o600,
            owner: None,
        };
        files.stage_after(&self.marker(step), b"", attrs, after)
    }
}
