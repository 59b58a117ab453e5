//! A tiny real guest for tests: Debian's kernel (package linux-image-amd64) and a
//! busybox-static initramfs ([`crate::initramfs`]). The "tick" guest's `/init` prints
//! `GUEST-BOOT serial=<smbios serial> product=<smbios product>` once per boot, then
//! `GUEST-TICK <n>` every second. Also a small qcow2 root disk made by `qemu-img`, and
//! [`run_to_poweroff`] for tests that drive QEMU themselves. A missing tool or kernel
//! is an error naming the package that brings it.

use crate::initramfs::{Initramfs, InitramfsError};
use compute_io::tool::{ToolError, QEMU_IMG, QEMU_SYSTEM};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum GuestError {
    #[error(
        "no kernel with its modules (/boot/vmlinuz-<v> and /lib/modules/<v>): install it \
         with 'apt-get install linux-image-amd64'"
    )]
    NoKernel,
    #[error(transparent)]
    Tool(#[from] ToolError),
    #[error("qemu-img create {path}: {stderr}")]
    QemuImg { path: PathBuf, stderr: String },
    #[error(transparent)]
    Initramfs(#[from] InitramfsError),
}

/// Printed once per boot by the tick guest's `/init`.
pub const BOOT_MARKER: &str = "GUEST-BOOT";
/// Printed every second with a counter that survives suspend/resume.
pub const TICK_MARKER: &str = "GUEST-TICK";
/// The kernel command line to import the image with.
pub const CMDLINE: &str = "console=ttyS0 quiet panic=-1";

/// The last `GUEST-TICK <n>` of the console's latest boot (0 before its first): a
/// new boot counts from 1 again, so ticks from an earlier boot are not its.
pub fn last_tick(console: &str) -> u64 {
    let boot = console.rfind(BOOT_MARKER).unwrap_or(0);
    console[boot..]
        .lines()
        .rev()
        .find_map(|l| {
            l.trim()
                .strip_prefix(TICK_MARKER)
                .and_then(|n| n.trim().parse().ok())
        })
        .unwrap_or(0)
}

const TICK_BODY: &str = r#"echo "GUEST-BOOT serial=$(cat /sys/class/dmi/id/product_serial) product=$(cat /sys/class/dmi/id/product_name)"
n=0
while true; do n=$((n+1)); echo "GUEST-TICK $n"; sleep 1; done
"#;

/// The kernel the guests boot: its image and the version naming its modules.
pub struct Kernel {
    pub version: String,
    pub image: PathBuf,
}

/// The newest kernel with both `/boot/vmlinuz-<v>` and `/lib/modules/<v>`. The host may
/// run another kernel (`uname -r`); the guest's modules must match the guest's kernel.
pub fn kernel() -> Result<Kernel, GuestError> {
    let mut versions: Vec<String> = std::fs::read_dir("/lib/modules")
        .map_err(|_| GuestError::NoKernel)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|v| Path::new(&format!("/boot/vmlinuz-{v}")).exists())
        .collect();
    versions.sort();
    let version = versions.pop().ok_or(GuestError::NoKernel)?;
    Ok(Kernel {
        image: PathBuf::from(format!("/boot/vmlinuz-{version}")),
        version,
    })
}

/// The files of a test guest.
pub struct TestGuest {
    pub kernel: PathBuf,
    pub initramfs: PathBuf,
    pub disk: PathBuf,
}

/// An empty qcow2 disk of `size` (e.g. "64M"): the root disk images need.
pub fn blank_disk(path: &Path, size: &str) -> Result<(), GuestError> {
    let out = QEMU_IMG
        .command()
        .args(["create", "-q", "-f", "qcow2"])
        .arg(path)
        .arg(size)
        .output()
        .map_err(|e| QEMU_IMG.error(e))?;
    if !out.status.success() {
        return Err(GuestError::QemuImg {
            path: path.to_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(())
}

/// Builds the tick guest's files in `dir`.
pub fn build(dir: &Path) -> Result<TestGuest, GuestError> {
    let kernel = kernel()?;
    let cpio = dir.join("initramfs.cpio");
    Initramfs::new(TICK_BODY)?.write(&cpio)?;
    let disk = dir.join("root.qcow2");
    blank_disk(&disk, "64M")?;
    Ok(TestGuest {
        kernel: kernel.image,
        initramfs: cpio,
        disk,
    })
}

/// A guest that runs to `poweroff -f` under plain QEMU (TCG unless `accel` says
/// otherwise: nested KVM hangs on this kind of machine).
pub struct DirectBoot<'a> {
    pub kernel: &'a Path,
    pub initramfs: &'a Path,
    pub append: &'a str,
    pub accel: &'a str,
    /// Extra QEMU arguments (drives, devices).
    pub args: Vec<String>,
    /// A safeguard against a hung guest, not a speed assertion.
    pub patience: Duration,
}

/// Runs the guest until it powers off; returns its serial console output (`\r`
/// removed). Panics with the console output when QEMU fails or the guest hangs.
pub fn run_to_poweroff(dir: &Path, boot: &DirectBoot<'_>) -> String {
    let log = dir.join("console.log");
    let mut child = QEMU_SYSTEM
        .command()
        .args([
            "-machine", "q35", "-accel", boot.accel, "-m", "256", "-smp", "1",
        ])
        .args(["-nodefaults", "-no-reboot", "-display", "none", "-serial"])
        .arg(format!("file:{}", log.display()))
        .arg("-kernel")
        .arg(boot.kernel)
        .arg("-initrd")
        .arg(boot.initramfs)
        .args(["-append", boot.append])
        .args(&boot.args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}", QEMU_SYSTEM.error(e)));
    let read_log =
        || String::from_utf8_lossy(&std::fs::read(&log).unwrap_or_default()).replace('\r', "");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for qemu") {
            break s;
        }
        if start.elapsed() > boot.patience {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "guest did not power off within {:?}:\n{}",
                boot.patience,
                read_log()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut err);
    }
    let console = read_log();
    assert!(status.success(), "qemu failed ({status}): {err}\n{console}");
    console
}

/// compute's driver on a state folder, as the `compute` binary opens it: QEMU from
/// PATH, KVM only when it really works (TCG otherwise), configdrive's ISO builder.
/// Each test uses its own `cidr` so that parallel tests never share addresses.
pub fn open_host(state: &Path, cidr: &str) -> compute_host::driver::Host {
    compute_host::driver::Host::open(host_config(state, cidr)).expect("open compute host")
}

/// The compute host every test guest runs on: state in `state`, fixed IPs from
/// `cidr`, KVM when it works, config drives built in-process.
pub fn host_config(state: &Path, cidr: &str) -> compute_host::driver::HostConfig {
    compute_host::driver::HostConfig {
        state_dir: state.to_owned(),
        qemu: "qemu-system-x86_64".into(),
        accel: compute_host::qemu::accel::AccelChoice::Auto,
        cidr: cidr.parse().expect("cidr"),
        settings: compute::Settings::default(),
        drive_builder: Box::new(compute_host::drive_builder::ConfigDriveBuilder::default()),
        host_name: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_tick_is_the_latest_boots() {
        let two_boots =
            "GUEST-BOOT\nGUEST-TICK 1\nGUEST-TICK 50\nGUEST-BOOT\nGUEST-TICK 1\nGUEST-TICK 2\n";
        assert_eq!(last_tick(two_boots), 2);
        assert_eq!(last_tick("GUEST-BOOT\nGUEST-TICK 7\nGUEST-BOOT\n"), 0);
        assert_eq!(last_tick(""), 0);
    }
}
