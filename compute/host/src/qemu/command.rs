//! A typed description of one QEMU guest, and the argv it becomes.
//!
//! The only place a QEMU command line is written. Pure: no files are touched, nothing
//! is probed; the caller decides the accelerator and every path. Golden-tested.

use compute::mac::MacAddr;
use ipnetwork::Ipv4Network;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use uuid::Uuid;

/// The CPU accelerator QEMU runs the guest with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskFormat {
    Qcow2,
    Raw,
}

impl DiskFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            DiskFormat::Qcow2 => "qcow2",
            DiskFormat::Raw => "raw",
        }
    }
}

/// A virtio block disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    pub path: PathBuf,
    pub format: DiskFormat,
}

/// How the config drive is attached: ISO9660 as a CD-ROM, VFAT as a disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DriveMedium {
    Cdrom,
    Disk,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigDrive {
    pub path: PathBuf,
    pub medium: DriveMedium,
}

/// Direct kernel boot (`-kernel`, `-initrd`, `-append`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelBoot {
    pub kernel: PathBuf,
    pub ramdisk: Option<PathBuf>,
    pub cmdline: Option<String>,
}

/// QEMU user networking: a private subnet whose DHCP hands out the fixed IP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserNet {
    pub cidr: Ipv4Network,
    pub gateway: Ipv4Addr,
    pub dns: Ipv4Addr,
    pub fixed_ip: Ipv4Addr,
    pub mac: MacAddr,
    pub hostname: String,
    /// Port on 127.0.0.1 (in QEMU's network namespace) forwarded to the guest's SSH
    /// port; 0 lets the kernel choose one (`Qmp::host_forward_port` reads it back).
    pub ssh_port: Option<u16>,
}

/// A tap QEMU opens (and creates, running as root) by name; compute puts it on the
/// bridge once QEMU runs. No scripts: QEMU never runs a helper.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TapNet {
    /// At most 15 bytes (IFNAMSIZ), no commas.
    pub ifname: String,
    pub mac: MacAddr,
}

/// The guest's one NIC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Nic {
    User(UserNet),
    Tap(TapNet),
}

impl Nic {
    /// The port QEMU forwards to the guest's SSH (user networking only; 0 = any).
    pub fn ssh_port(&self) -> Option<u16> {
        match self {
            Nic::User(n) => n.ssh_port,
            Nic::Tap(_) => None,
        }
    }
}

/// Everything QEMU needs to know about one guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QemuCommand {
    pub binary: PathBuf,
    pub name: String,
    pub uuid: Uuid,
    pub accel: Accel,
    pub vcpus: u32,
    pub memory_mb: u32,
    pub kernel: Option<KernelBoot>,
    /// Root first (`vda`), then ephemeral (`vdb`) and swap.
    pub disks: Vec<Disk>,
    pub config_drive: Option<ConfigDrive>,
    pub net: Option<Nic>,
    pub console_log: PathBuf,
    pub qmp_socket: PathBuf,
    pub pidfile: PathBuf,
    /// Saved state to resume from (written by a suspend).
    pub incoming: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("path {0} is not UTF-8; QEMU options need text")]
    NonUtf8(PathBuf),
}

/// A path as a QEMU option value: commas doubled, as QEMU's option parser wants.
fn opt_path(p: &Path) -> Result<String, CommandError> {
    p.to_str()
        .map(|s| s.replace(',', ",,"))
        .ok_or_else(|| CommandError::NonUtf8(p.to_owned()))
}

fn opt_text(s: &str) -> String {
    s.replace(',', ",,")
}

/// A path for `exec:` migration URIs, which QEMU runs through `/bin/sh -c`.
fn shell_quote(p: &Path) -> Result<String, CommandError> {
    let s = p
        .to_str()
        .ok_or_else(|| CommandError::NonUtf8(p.to_owned()))?;
    Ok(format!("'{}'", s.replace('\'', r"'\''")))
}

impl QemuCommand {
    /// The argv, program first.
    pub fn argv(&self) -> Result<Vec<String>, CommandError> {
        let mut a: Vec<String> = Vec::with_capacity(64);
        let mut push = |xs: &[&str]| a.extend(xs.iter().map(|s| (*s).to_owned()));
        let bin = self
            .binary
            .to_str()
            .ok_or_else(|| CommandError::NonUtf8(self.binary.clone()))?;
        let uuid = self.uuid.hyphenated().to_string();
        push(&[bin, "-name", &opt_text(&self.name), "-uuid", &uuid]);
        push(&[
            "-machine",
            "pc",
            "-accel",
            match self.accel {
                Accel::Kvm => "kvm",
                Accel::Tcg => "tcg",
            },
        ]);
        if self.accel == Accel::Kvm {
            push(&["-cpu", "host"]);
        }
        push(&[
            "-smp",
            &self.vcpus.to_string(),
            "-m",
            &format!("{}M", self.memory_mb),
        ]);
        push(&[
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-rtc",
            "base=utc",
            "-msg",
            "timestamp=on",
        ]);
        let smbios = format!(
            "type=1,manufacturer=OpenStack Foundation,product=OpenStack Nova,serial={uuid},uuid={uuid},family=Virtual Machine"
        );
        push(&["-smbios", &smbios]);
        push(&[
            "-chardev",
            &format!(
                "file,id=console,path={},append=on",
                opt_path(&self.console_log)?
            ),
        ]);
        push(&["-serial", "chardev:console"]);
        push(&[
            "-chardev",
            &format!(
                "socket,id=qmp,path={},server=on,wait=off",
                opt_path(&self.qmp_socket)?
            ),
        ]);
        push(&["-mon", "chardev=qmp,mode=control"]);
        push(&["-pidfile", &opt_path(&self.pidfile)?, "-daemonize"]);
        if let Some(k) = &self.kernel {
            push(&["-kernel", &opt_path(&k.kernel)?]);
            if let Some(r) = &k.ramdisk {
                push(&["-initrd", &opt_path(r)?]);
            }
            if let Some(c) = &k.cmdline {
                push(&["-append", c]);
            }
        }
        for (i, d) in self.disks.iter().enumerate() {
            let drive = format!(
                "file={},format={},if=none,id=disk{i},discard=unmap",
                opt_path(&d.path)?,
                d.format.as_str()
            );
            let boot = if i == 0 { ",bootindex=1" } else { "" };
            push(&[
                "-drive",
                &drive,
                "-device",
                &format!("virtio-blk-pci,drive=disk{i}{boot}"),
            ]);
        }
        if let Some(cd) = &self.config_drive {
            let path = opt_path(&cd.path)?;
            match cd.medium {
                DriveMedium::Cdrom => push(&[
                    "-drive",
                    &format!("file={path},format=raw,if=none,id=config,media=cdrom,readonly=on"),
                    "-device",
                    "ide-cd,drive=config",
                ]),
                DriveMedium::Disk => push(&[
                    "-drive",
                    &format!("file={path},format=raw,if=none,id=config,readonly=on"),
                    "-device",
                    "virtio-blk-pci,drive=config",
                ]),
            }
        }
        match &self.net {
            Some(Nic::Tap(t)) => push(&[
                "-netdev",
                &format!(
                    "tap,id=net0,ifname={},script=no,downscript=no",
                    opt_text(&t.ifname)
                ),
                "-device",
                &format!("virtio-net-pci,netdev=net0,mac={}", t.mac),
            ]),
            Some(Nic::User(n)) => {
                let mut netdev = format!(
                    "user,id=net0,net={},host={},dns={},dhcpstart={},hostname={}",
                    n.cidr,
                    n.gateway,
                    n.dns,
                    n.fixed_ip,
                    opt_text(&n.hostname)
                );
                if let Some(port) = n.ssh_port {
                    netdev.push_str(&format!(",hostfwd=tcp:127.0.0.1:{port}-{}:22", n.fixed_ip));
                }
                push(&[
                    "-netdev",
                    &netdev,
                    "-device",
                    &format!("virtio-net-pci,netdev=net0,mac={}", n.mac),
                ]);
            }
            None => push(&["-nic", "none"]),
        }
        if let Some(state) = &self.incoming {
            push(&["-incoming", &format!("exec:cat {}", shell_quote(state)?)]);
        }
        Ok(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> QemuCommand {
        QemuCommand {
            binary: "qemu-system-x86_64".into(),
            name: "web,1".into(),
            uuid: Uuid::parse_str("d8e02d56-2648-49a3-bf97-6be8f1204f38").expect("uuid"),
            accel: Accel::Tcg,
            vcpus: 1,
            memory_mb: 512,
            kernel: Some(KernelBoot {
                kernel: "/s/images/i/kernel".into(),
                ramdisk: Some("/s/images/i/ramdisk".into()),
                cmdline: Some("console=ttyS0 quiet".into()),
            }),
            disks: vec![
                Disk {
                    path: "/s/instances/u/disk".into(),
                    format: DiskFormat::Qcow2,
                },
                Disk {
                    path: "/s/instances/u/disk.eph0".into(),
                    format: DiskFormat::Qcow2,
                },
            ],
            config_drive: Some(ConfigDrive {
                path: "/s/instances/u/disk.config".into(),
                medium: DriveMedium::Cdrom,
            }),
            net: Some(Nic::User(UserNet {
                cidr: "10.0.0.0/16".parse().expect("cidr"),
                gateway: Ipv4Addr::new(10, 0, 0, 2),
                dns: Ipv4Addr::new(10, 0, 0, 3),
                fixed_ip: Ipv4Addr::new(10, 0, 0, 4),
                mac: "fa:16:3e:00:00:01".parse().expect("mac"),
                hostname: "web-1".into(),
                ssh_port: Some(40022),
            })),
            console_log: "/s/instances/u/console.log".into(),
            qmp_socket: "/s/instances/u/qmp.sock".into(),
            pidfile: "/s/instances/u/qemu.pid".into(),
            incoming: None,
        }
    }

    fn golden(cmd: &QemuCommand) -> String {
        let mut s = cmd.argv().expect("argv").join("\n");
        s.push('\n');
        s
    }

    #[test]
    fn argv_matches_golden_tcg_kernel_boot() {
        assert_eq!(
            golden(&sample()),
            include_str!("golden/tcg-kernel-boot.argv")
        );
    }

    #[test]
    fn argv_matches_golden_kvm_vfat_resume() {
        let mut c = sample();
        c.accel = Accel::Kvm;
        c.kernel = None;
        c.net = None;
        c.disks.truncate(1);
        c.config_drive = Some(ConfigDrive {
            path: "/s/i/disk.config".into(),
            medium: DriveMedium::Disk,
        });
        c.incoming = Some("/s/it's/state".into());
        assert_eq!(golden(&c), include_str!("golden/kvm-vfat-resume.argv"));
    }

    #[test]
    fn argv_matches_golden_tcg_tap() {
        let mut c = sample();
        c.config_drive = None;
        c.disks.truncate(1);
        c.net = Some(Nic::Tap(TapNet {
            ifname: "tapd8e02d56-26".into(),
            mac: "fa:16:3e:00:00:01".parse().expect("mac"),
        }));
        assert_eq!(golden(&c), include_str!("golden/tcg-tap.argv"));
    }

    #[test]
    fn commas_in_paths_are_escaped() {
        let mut c = sample();
        c.console_log = "/a,b/console.log".into();
        let argv = c.argv().expect("argv");
        assert!(argv.contains(&"file,id=console,path=/a,,b/console.log,append=on".to_owned()));
    }
}
