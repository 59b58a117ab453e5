//! Finding the config drive: scan `/sys/class/block` until a device labelled
//! `config-2` shows up or the deadline passes.
//!
//! udev's `/dev/disk/by-label` links may not exist yet this early at boot, so the
//! scan looks at every block device itself (whole disks, partitions, `sr*`) and
//! reads its label from the device.

use super::drive::{probe, CONFIG_DRIVE_LABEL};
use super::SourceError;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Where to look and how long to wait.
#[derive(Debug, Clone)]
pub struct BlockScan {
    /// `/sys/class/block`: one entry per block device.
    pub sys_class_block: PathBuf,
    /// `/dev`: where the device nodes are.
    pub dev_dir: PathBuf,
    pub deadline: Duration,
    pub poll: Duration,
}

impl Default for BlockScan {
    fn default() -> Self {
        BlockScan {
            sys_class_block: "/sys/class/block".into(),
            dev_dir: "/dev".into(),
            deadline: Duration::from_secs(3),
            poll: Duration::from_millis(100),
        }
    }
}

impl BlockScan {
    /// The first device whose ISO9660 or FAT label is `config-2` (any case).
    pub fn find(&self) -> Result<PathBuf, SourceError> {
        let start = Instant::now();
        let mut scanned = 0;
        loop {
            for name in self.candidates() {
                scanned += 1;
                let dev = self.dev_dir.join(&name);
                // Unreadable or vanished devices are just not the drive.
                if let Ok(Some((_, label))) = probe(&dev) {
                    if label.eq_ignore_ascii_case(CONFIG_DRIVE_LABEL) {
                        return Ok(dev);
                    }
                }
            }
            let elapsed = start.elapsed();
            if elapsed >= self.deadline {
                return Err(SourceError::NoDrive {
                    waited: elapsed,
                    scanned,
                });
            }
            std::thread::sleep(self.poll.min(self.deadline - elapsed));
        }
    }

    /// Block devices with a non-zero size, CD-ROMs first (where Nova puts drives).
    fn candidates(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.sys_class_block) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| !n.starts_with("ram") && !n.starts_with("zram"))
            .filter(|n| {
                let size = std::fs::read_to_string(self.sys_class_block.join(n).join("size"))
                    .unwrap_or_default();
                size.trim().parse::<u64>().map(|s| s > 0).unwrap_or(false)
            })
            .collect();
        names.sort_by_key(|n| (!n.starts_with("sr"), n.clone()));
        names
    }
}
