//! The pure core under every other crate of the workspace. [`instance`] is the
//! document every part renders from (parsed, then validated); [`metadata`] is the one
//! renderer of the OpenStack and EC2 trees, for the service and for config drives,
//! with its [`Settings`]; [`pyjson`] writes JSON bytes exactly as Nova's Python does;
//! [`media`] reads ISO9660 and FAT drives from any `Read + Seek`. Beside them, the
//! rules of a compute host: [`flavor`], [`keypair`] (parsing and fingerprints),
//! [`quota`], the [`lifecycle`] state machine, [`mac`] and [`netalloc`], and
//! [`placement`] (which host runs an instance).
//!
//! Pure data and rules: no clock, no randomness, no processes, no sockets, no file
//! system writes. No command line (clap), runtime (tokio), database (rusqlite) or
//! HTTP (hyper) either: `compute-flags`, `compute-store`, `compute-host` and the
//! binaries above bring them.

pub mod error_chain;
pub mod flavor;
pub mod instance;
pub mod keypair;
pub mod lifecycle;
pub mod mac;
pub mod media;
pub mod meta_edit;
pub mod metadata;
pub mod netalloc;
pub mod placement;
pub mod pyjson;
pub mod quota;

pub use error_chain::error_chain;
pub use instance::{Instance, InstanceDocument, InstanceError};
pub use metadata::{render_drive, render_service, MetadataTree, Settings};
