//! Once-per-instance state: a marker file per step under
//! `/var/lib/guest-agent/<instance id>/` (inside the root). A new instance id (an
//! image cloned to another instance) has no markers, so everything runs again.

use crate::apply::root::{Attrs, FsRoot, RootError};
use crate::report::Step;

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

    pub fn mark_done(&self, root: &FsRoot, step: Step) -> Result<(), RootError> {
        root.create_dirs(
            STATE_DIR,
            Attrs {
                mode: 0o755,
                owner: None,
            },
        )?;
        root.create_dirs(
            &self.dir,
            Attrs {
                mode: 0o700,
                owner: None,
            },
        )?;
        root.write(
            &self.marker(step),
            b"",
            Attrs {
                mode: 0o600,
                owner: None,
            },
        )?;
        Ok(())
    }
}
