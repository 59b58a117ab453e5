//! A tiny real guest for tests: the host's Debian kernel and a busybox-static
//! initramfs whose `/init` prints markers on the serial console (ttyS0):
//! `GUEST-BOOT serial=<smbios serial> product=<smbios product>` once per boot, then
//! `GUEST-TICK <n>` every second. Also a small qcow2 root disk made by `qemu-img`.
//! Reused by every test that needs a guest; fails loudly when a tool is missing.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Printed once per boot by the guest's `/init`.
pub const BOOT_MARKER: &str = "GUEST-BOOT";
/// Printed every second with a counter that survives suspend/resume.
pub const TICK_MARKER: &str = "GUEST-TICK";
/// The kernel command line to import the image with.
pub const CMDLINE: &str = "console=ttyS0 quiet panic=-1";

const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /tmp
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
echo "GUEST-BOOT serial=$(cat /sys/class/dmi/id/product_serial) product=$(cat /sys/class/dmi/id/product_name)"
n=0
while true; do n=$((n+1)); echo "GUEST-TICK $n"; sleep 1; done
"#;

/// The files of the test guest.
pub struct TestGuest {
    pub kernel: PathBuf,
    pub initramfs: PathBuf,
    pub disk: PathBuf,
}

/// One newc ("070701") cpio entry.
fn newc(out: &mut Vec<u8>, ino: u32, name: &str, mode: u32, rdev: (u32, u32), data: &[u8]) {
    let fields = [
        ino,
        mode,
        0,
        0,
        1,
        0,
        data.len() as u32,
        0,
        0,
        rdev.0,
        rdev.1,
        name.len() as u32 + 1,
        0,
    ];
    out.extend_from_slice(b"070701");
    for f in fields {
        out.extend_from_slice(format!("{f:08X}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    while out.len() % 4 != 0 {
        out.push(0);
    }
    out.extend_from_slice(data);
    while out.len() % 4 != 0 {
        out.push(0);
    }
}

/// An uncompressed newc initramfs with busybox and the marker-printing `/init`.
pub fn initramfs(busybox: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(busybox.len() + 4096);
    newc(&mut out, 1, ".", 0o040755, (0, 0), &[]);
    newc(&mut out, 2, "bin", 0o040755, (0, 0), &[]);
    newc(&mut out, 3, "dev", 0o040755, (0, 0), &[]);
    newc(&mut out, 4, "dev/console", 0o020600, (5, 1), &[]);
    newc(&mut out, 5, "proc", 0o040755, (0, 0), &[]);
    newc(&mut out, 6, "sys", 0o040755, (0, 0), &[]);
    newc(&mut out, 7, "bin/busybox", 0o100755, (0, 0), busybox);
    newc(&mut out, 8, "init", 0o100755, (0, 0), INIT.as_bytes());
    newc(&mut out, 0, "TRAILER!!!", 0, (0, 0), &[]);
    out
}

/// The newest `/boot/vmlinuz-*` (package linux-image-amd64).
pub fn host_kernel() -> PathBuf {
    let mut kernels: Vec<PathBuf> = std::fs::read_dir("/boot")
        .expect("/boot must exist: install linux-image-amd64 (scripts/test does)")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("vmlinuz-"))
        })
        .collect();
    kernels.sort();
    kernels
        .pop()
        .expect("no /boot/vmlinuz-*: install linux-image-amd64 (scripts/test does)")
}

/// Builds the guest's files in `dir`.
pub fn build(dir: &Path) -> TestGuest {
    let busybox = std::fs::read("/bin/busybox")
        .expect("/bin/busybox: install busybox-static (scripts/test does)");
    let cpio = dir.join("initramfs.cpio");
    std::fs::write(&cpio, initramfs(&busybox)).expect("write initramfs");
    let disk = dir.join("root.qcow2");
    let status = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&disk)
        .arg("64M")
        .status()
        .expect("qemu-img: install qemu-utils (scripts/test does)");
    assert!(status.success(), "qemu-img create failed");
    TestGuest {
        kernel: host_kernel(),
        initramfs: cpio,
        disk,
    }
}
