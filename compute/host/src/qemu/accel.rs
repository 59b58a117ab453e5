//! Choosing the accelerator: KVM only where it truly runs a guest, TCG otherwise.
//!
//! `/dev/kvm` can exist and accept a VM yet hang once a guest enters protected mode
//! (nested virtualisation on some hosts). So the probe boots the host's own kernel
//! under KVM with no root file system and `panic=-1`: a working KVM reaches the panic
//! and QEMU exits within seconds; a broken one is killed at the deadline. The answer
//! is cached per host boot (`/proc/sys/kernel/random/boot_id`) in the state folder.

use super::command::Accel;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long the probe guest may take to panic under KVM.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(8);

/// The user's choice on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum AccelChoice {
    /// KVM when the probe shows it works, else TCG.
    #[default]
    Auto,
    /// KVM, without probing (QEMU fails when it is unusable).
    Kvm,
    /// QEMU's emulator: slower, works everywhere.
    Tcg,
}

/// Resolves the choice, probing (once per host boot) when it is `auto`.
pub fn resolve(choice: AccelChoice, qemu: &Path, cache: &Path) -> Accel {
    match choice {
        AccelChoice::Kvm => Accel::Kvm,
        AccelChoice::Tcg => Accel::Tcg,
        AccelChoice::Auto => {
            let boot_id =
                std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
            let boot_id = boot_id.trim();
            if let Ok(cached) = std::fs::read_to_string(cache) {
                match cached.split_once(' ') {
                    Some((id, "kvm")) if id == boot_id => return Accel::Kvm,
                    Some((id, "tcg")) if id == boot_id => return Accel::Tcg,
                    _ => {}
                }
            }
            let accel = if probe_kvm(qemu) {
                Accel::Kvm
            } else {
                Accel::Tcg
            };
            let word = if accel == Accel::Kvm { "kvm" } else { "tcg" };
            // Only a cache: a failed write means probing again next time.
            let _ =
                compute_io::atomic::replace(cache, format!("{boot_id} {word}\n").as_bytes(), 0o644);
            accel
        }
    }
}

fn host_kernel() -> Option<PathBuf> {
    let mut kernels: Vec<PathBuf> = std::fs::read_dir("/boot")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("vmlinuz"))
        })
        .collect();
    kernels.sort();
    kernels.pop()
}

/// True when a kernel boots to its panic under KVM before the deadline.
pub fn probe_kvm(qemu: &Path) -> bool {
    let kvm_ok = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok();
    let Some(kernel) = host_kernel() else {
        return false;
    };
    if !kvm_ok {
        return false;
    }
    let child = Command::new(qemu)
        .args([
            "-accel",
            "kvm",
            "-cpu",
            "host",
            "-m",
            "128M",
            "-nodefaults",
            "-display",
            "none",
            "-no-reboot",
        ])
        .arg("-kernel")
        .arg(kernel)
        .args([
            "-append",
            "panic=-1 console=ttyS0 root=/dev/nonexistent",
            "-serial",
            "none",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = child else { return false };
    let deadline = Instant::now() + PROBE_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status.success(),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
        }
    }
}
