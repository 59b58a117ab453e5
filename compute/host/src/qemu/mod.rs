//! The QEMU driver's pieces: the typed command line (pure), the QMP client, process
//! handling, `qemu-img`, and the accelerator probe. Policy (what to run when) lives in
//! [`crate::driver`].

pub mod accel;
pub mod command;
pub mod img;
pub mod process;
pub mod qmp;

pub use command::{Accel, QemuCommand};
pub use qmp::Qmp;
