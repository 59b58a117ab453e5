//! What this machine offers guests, as placement counts it, and its name: read from
//! the kernel each time a host opens (a machine can be resized), never configured.
//! vCPUs are the CPUs this process may run on, RAM is `MemTotal`, disk is the size
//! of the file system holding the state folder (where instance disks live), in GiB.

use compute::placement::Resources;
use std::path::Path;

/// This machine's capacity; a figure that cannot be read counts as 0 (placement
/// then refuses with the reason rather than overbooking).
pub fn detect(state_dir: &Path) -> Resources {
    let ram_mb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024);
    let vcpus = std::thread::available_parallelism().map_or(0, |n| n.get() as u64);
    let disk_gb =
        rustix::fs::statvfs(state_dir).map_or(0, |s| s.f_blocks.saturating_mul(s.f_frsize) >> 30);
    Resources {
        vcpus,
        ram_mb,
        disk_gb,
    }
}

/// The machine's host name (the kernel's), the default name of its compute host.
pub fn machine_name() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_machine_has_some_of_everything() {
        let r = detect(Path::new("/"));
        assert!(r.vcpus >= 1 && r.ram_mb >= 64 && r.disk_gb >= 1, "{r:?}");
        assert!(machine_name().is_some());
    }
}
