//! The compact core under every other crate of the workspace.
//!
//! `instance` is the document every part renders from; `metadata` is the one
//! renderer of the OpenStack and EC2 trees (for the service and for config drives);
//! `pyjson` writes JSON bytes exactly as Nova's Python does. This crate is pure data
//! and rendering: sockets, disks and processes live at the edges.

pub mod cli_help;
pub mod flavor;
pub mod instance;
pub mod keypair;
pub mod lifecycle;
pub mod mac;
pub mod media;
pub mod metadata;
pub mod netalloc;
pub mod pyjson;
pub mod quota;
pub mod settings_args;

pub use instance::{Instance, InstanceDocument, InstanceError};
pub use metadata::{render_drive, render_service, MetadataTree, Settings};
