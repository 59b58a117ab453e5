//! Shared helpers for the end-to-end tests in `tests/tests/`: one initramfs builder,
//! one set of guest images, one way to read what a guest printed.

pub mod agent_guest;
pub mod console;
pub mod debian_guest;
pub mod debian_image;
pub mod guest;
pub mod hostguest;
pub mod initramfs;
pub mod netguest;
pub mod netns;
