//! A networked test guest: Debian's kernel and a busybox-static initramfs carrying the
//! virtio network modules, with the caller's `/init` body after the common prelude
//! (which loads the modules). Built with [`crate::initramfs`], like every test guest.

use crate::guest::{blank_disk, kernel, GuestError, TestGuest};
use crate::initramfs::Initramfs;
use std::path::Path;

/// The modules a guest needs for its virtio NIC (their dependencies come along).
pub const NET_MODULES: &[&str] = &["virtio_pci", "virtio_net"];

/// Builds the guest in `dir`; `body` runs after the prelude has loaded the modules.
pub fn build(dir: &Path, body: &str) -> Result<TestGuest, GuestError> {
    let k = kernel()?;
    let initramfs = dir.join("initramfs-net.cpio");
    Initramfs::new(body)?
        .modules(&k.version, NET_MODULES)?
        .write(&initramfs)?;
    let disk = dir.join("net-root.qcow2");
    blank_disk(&disk, "64M")?;
    Ok(TestGuest {
        kernel: k.image,
        initramfs,
        disk,
    })
}
