//! Reproducible config drives.
//!
//! The writers are pure functions from a drive tree (`compute::render_drive`'s
//! [`DriveTree`](compute::metadata::DriveTree)) and [`DriveOptions`] to image bytes:
//! [`IsoWriter`] makes ISO9660 with Rock Ridge and Joliet, [`FatImage`] makes VFAT.
//! Nothing here reads a clock or draws random numbers, and nothing opens a path:
//! [`DiskImage::write_sparse`] writes into a file its caller opened, [`read`] reads
//! what it is given (bytes or a reader), and the CLI (`cli/`) decides which files
//! those are.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod drive;
pub mod fat;
pub mod image;
pub mod iso;
pub mod nocloud;
pub mod options;
pub mod read;
pub mod tree;

pub use drive::{build_image, ironic_encode, DriveError, Encoding, Format, Target};
pub use fat::{FatError, FatImage};
pub use image::DiskImage;
pub use iso::{IsoError, IsoWriter};
pub use options::{DriveOptions, OptionsError};
pub use read::{ReadDrive, ReadError};
