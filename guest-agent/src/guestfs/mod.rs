//! The guest's filesystem as the agent sees it during a run.
//!
//! [`FsRoot`] resolves every guest path inside the root (`/`, or `--root DIR`) the
//! way a chroot would; [`GuestFiles`] stages the run's writes in one
//! [`compute_io::atomic::FileBatch`] and reads them back. The steps ([`crate::apply`]) and the
//! once-per-instance markers ([`crate::state`]) both write through here; this module
//! knows nothing of steps or instances.

mod files;
mod root;

pub use files::{GuestFiles, GuestFilesError};
pub use root::{Attrs, FsRoot, RootError, MAX_READ_BYTES};
