//! Booting the Debian guest ([`crate::debian_image`]) for one test: an overlay of the
//! cached disk, TCG unless KVM really works (compute's probe), QEMU user networking
//! inside a network namespace the test creates ([`crate::netns::Netns`]), the serial console in a
//! file, and `ssh` into the guest from inside that namespace. The SSH forward
//! (`127.0.0.1:`[`SSH_PORT`]) and any service the guest should reach, such as a
//! metadata server on 169.254.169.254:80 ([`crate::netns::MetadataServer`]), exist only in that
//! namespace: no host port is taken, nothing touches the host's network, and slirp's
//! outbound NAT delivers the guest's connections to 169.254.169.254 to a listener
//! there. Whatever is started here is killed when its owner is dropped, and also when
//! the test process dies (`setpriv --pdeathsig KILL`).

use crate::debian_image::{DebianImage, CMDLINE};
use crate::netns::{in_netns, Netns};
use compute::qemu::accel::{self, AccelChoice};
use compute::qemu::command::{Accel, DriveMedium};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The SSH forward inside the guest's namespace: every guest has its own namespace,
/// so the port is always free.
pub const SSH_PORT: u16 = 2222;

/// Whether the console shows that cloud-init's last stage is over (after the user
/// data): `Cloud-init v. 22.4.2 finished at <date>. Datasource ...`.
pub fn cloud_init_finished(console: &str) -> bool {
    console
        .lines()
        .any(|l| l.contains("Cloud-init v. ") && l.contains(" finished at "))
}

/// SMBIOS type 1 (system), which cloud-init reads from `/sys/class/dmi/id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Smbios {
    pub manufacturer: String,
    pub product: String,
    pub serial: String,
    pub uuid: String,
    pub family: String,
}

impl Smbios {
    /// What compute (and Nova) give an instance: product `OpenStack Nova`, which
    /// makes cloud-init's OpenStack datasource ask http://169.254.169.254.
    pub fn nova(uuid: &str) -> Smbios {
        Smbios {
            manufacturer: "OpenStack Foundation".into(),
            product: "OpenStack Nova".into(),
            serial: uuid.into(),
            uuid: uuid.into(),
            family: "Virtual Machine".into(),
        }
    }
}

/// One Debian guest's QEMU, as a value; [`GuestSpec::argv`] is its command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestSpec {
    pub name: String,
    pub accel: Accel,
    pub memory_mb: u32,
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub cmdline: String,
    /// The qcow2 overlay the guest writes to.
    pub disk: PathBuf,
    pub console_log: PathBuf,
    /// A config drive: a VFAT one as a read-only virtio disk, an ISO9660 one as an IDE
    /// CD-ROM, as compute attaches them.
    pub config_drive: Option<(PathBuf, DriveMedium)>,
    pub smbios: Option<Smbios>,
    pub ssh_port: u16,
}

/// An option value: commas doubled, as QEMU's option parser wants.
fn opt(s: impl AsRef<std::ffi::OsStr>) -> String {
    s.as_ref().to_string_lossy().replace(',', ",,")
}

impl GuestSpec {
    /// QEMU's arguments (the program not included).
    pub fn argv(&self) -> Vec<String> {
        let mut a: Vec<String> = Vec::new();
        let mut push = |xs: &[&str]| a.extend(xs.iter().map(|s| (*s).to_owned()));
        push(&["-name", &opt(&self.name), "-machine", "pc", "-accel"]);
        push(&[match self.accel {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }]);
        if self.accel == Accel::Kvm {
            push(&["-cpu", "host"]);
        }
        push(&["-smp", "1", "-m", &format!("{}M", self.memory_mb)]);
        push(&["-nodefaults", "-no-user-config", "-display", "none"]);
        push(&[
            "-chardev",
            &format!("file,id=console,path={}", opt(&self.console_log)),
            "-serial",
            "chardev:console",
        ]);
        push(&["-kernel", &opt(&self.kernel), "-initrd", &opt(&self.initrd)]);
        push(&["-append", &self.cmdline]);
        push(&[
            "-drive",
            &format!("file={},format=qcow2,if=none,id=root", opt(&self.disk)),
            "-device",
            "virtio-blk-pci,drive=root",
        ]);
        match &self.config_drive {
            Some((path, DriveMedium::Disk)) => push(&[
                "-drive",
                &format!(
                    "file={},format=raw,if=none,id=config,readonly=on",
                    opt(path)
                ),
                "-device",
                "virtio-blk-pci,drive=config",
            ]),
            Some((path, DriveMedium::Cdrom)) => push(&[
                "-drive",
                &format!(
                    "file={},format=raw,if=none,id=config,media=cdrom,readonly=on",
                    opt(path)
                ),
                "-device",
                "ide-cd,drive=config",
            ]),
            None => {}
        }
        if let Some(s) = &self.smbios {
            push(&["-uuid", &s.uuid]);
            push(&[
                "-smbios",
                &format!(
                    "type=1,manufacturer={},product={},serial={},uuid={},family={}",
                    opt(&s.manufacturer),
                    opt(&s.product),
                    opt(&s.serial),
                    opt(&s.uuid),
                    opt(&s.family)
                ),
            ]);
        }
        push(&[
            "-netdev",
            &format!("user,id=net0,hostfwd=tcp:127.0.0.1:{}-:22", self.ssh_port),
            "-device",
            "virtio-net-pci,netdev=net0",
        ]);
        a
    }
}

/// KVM only when compute's probe shows it really runs a guest (nested KVM hangs on
/// some hosts); once per test binary, cached per host boot beside the image cache.
pub fn accel() -> Accel {
    static ACCEL: OnceLock<Accel> = OnceLock::new();
    *ACCEL.get_or_init(|| {
        let root = crate::debian_image::cache_root();
        let _ = std::fs::create_dir_all(&root);
        accel::resolve(
            AccelChoice::Auto,
            Path::new("qemu-system-x86_64"),
            &root.join(".accel"),
        )
    })
}

/// `cmd`'s exit status, stdout and stderr, or None when it ran past `limit` (then it
/// is killed). Output goes through files so that nothing blocks on a full pipe.
pub fn output_within(mut cmd: Command, limit: Duration) -> Option<(ExitStatus, String, String)> {
    let dir = tempfile::tempdir().expect("tempdir");
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    let file = |p: &Path| std::fs::File::create(p).expect("output file");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(file(&out))
        .stderr(file(&err))
        .spawn()
        .unwrap_or_else(|e| panic!("{:?}: {e}", cmd.get_program()));
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let read =
        |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
    Some((status, read(&out), read(&err)))
}

/// A running Debian guest; its QEMU is killed on drop.
pub struct DebianGuest {
    qemu: Child,
    netns: String,
    console_log: PathBuf,
    qemu_log: PathBuf,
    started: Instant,
}

impl DebianGuest {
    /// Boots the image in `netns` with its own overlay and console log in `dir`.
    pub fn boot(
        netns: &Netns,
        dir: &Path,
        image: &DebianImage,
        name: &str,
        config_drive: Option<(PathBuf, DriveMedium)>,
        smbios: Option<Smbios>,
    ) -> DebianGuest {
        let disk = dir.join(format!("{name}.qcow2"));
        let out = Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"])
            .arg(&image.disk)
            .arg(&disk)
            .output()
            .unwrap_or_else(|e| {
                panic!("qemu-img not found: install it with 'apt-get install qemu-utils': {e}")
            });
        assert!(
            out.status.success(),
            "qemu-img create (overlay of {}): {}",
            image.disk.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let spec = GuestSpec {
            name: name.into(),
            accel: accel(),
            memory_mb: 1024,
            kernel: image.kernel.clone(),
            initrd: image.initrd.clone(),
            cmdline: CMDLINE.into(),
            disk,
            console_log: dir.join(format!("{name}.console.log")),
            config_drive,
            smbios,
            ssh_port: SSH_PORT,
        };
        let qemu_log = dir.join(format!("{name}.qemu.log"));
        let log = std::fs::File::create(&qemu_log).expect("qemu log");
        let qemu = netns
            .command("qemu-system-x86_64")
            .args(spec.argv())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("qemu log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("setpriv not found: install it with 'apt-get install util-linux': {e}")
            });
        DebianGuest {
            qemu,
            netns: netns.name().to_owned(),
            console_log: spec.console_log,
            qemu_log,
            started: Instant::now(),
        }
    }

    /// The serial console so far, without carriage returns and colour codes.
    pub fn console(&self) -> String {
        let raw = String::from_utf8_lossy(&std::fs::read(&self.console_log).unwrap_or_default())
            .replace('\r', "");
        strip_ansi(&raw)
    }

    /// How long ago QEMU was started.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Waits until `done(console)`, `what` saying what that means; the error says
    /// why not (QEMU's own output when it died) and carries the console.
    pub fn wait_for_console(
        &mut self,
        what: &str,
        done: impl Fn(&str) -> bool,
        patience: Duration,
    ) -> Result<Duration, String> {
        let start = Instant::now();
        loop {
            let console = self.console();
            if done(&console) {
                return Ok(start.elapsed());
            }
            if let Ok(Some(status)) = self.qemu.try_wait() {
                let qemu = std::fs::read_to_string(&self.qemu_log).unwrap_or_default();
                return Err(format!(
                    "QEMU exited ({status}) before {what}:\n{qemu}\n--- console ---\n{console}"
                ));
            }
            if start.elapsed() > patience {
                return Err(format!(
                    "not {what} within {patience:?}\n--- console ---\n{console}"
                ));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// `ssh -i key user@guest script` from inside the guest's namespace, in batch mode
    /// (a key or nothing), bounded by `limit`.
    pub fn ssh(&self, key: &Path, user: &str, script: &str, limit: Duration) -> SshResult {
        let mut cmd = in_netns(&self.netns, "ssh");
        cmd.arg("-i")
            .arg(key)
            .args(["-p", &SSH_PORT.to_string()])
            .args(["-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes"])
            .args([
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
            ])
            .args(["-o", "ConnectTimeout=20", "-o", "LogLevel=ERROR"])
            .arg(format!("{user}@127.0.0.1"))
            .arg(script);
        match output_within(cmd, limit) {
            Some((status, stdout, stderr)) => SshResult {
                ok: status.success(),
                stdout,
                stderr,
            },
            None => SshResult {
                ok: false,
                stdout: String::new(),
                stderr: format!("ssh did not finish within {limit:?}"),
            },
        }
    }

    /// Retries `ssh ... true` until it succeeds or `patience` is over; the last
    /// attempt's error otherwise.
    pub fn wait_for_ssh(
        &self,
        key: &Path,
        user: &str,
        patience: Duration,
    ) -> Result<Duration, String> {
        let start = Instant::now();
        loop {
            let r = self.ssh(key, user, "true", Duration::from_secs(60));
            if r.ok {
                return Ok(start.elapsed());
            }
            if start.elapsed() > patience {
                return Err(format!(
                    "ssh {user}@ the guest never succeeded within {patience:?}; last error: {}",
                    r.stderr.trim()
                ));
            }
            std::thread::sleep(Duration::from_secs(3));
        }
    }
}

impl Drop for DebianGuest {
    fn drop(&mut self) {
        let _ = self.qemu.kill();
        let _ = self.qemu.wait();
    }
}

/// What an `ssh` command gave.
#[derive(Debug)]
pub struct SshResult {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Removes terminal escape sequences (systemd colours its status lines).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The `configdrive` binary built beside the test binary, or `E2E_CONFIGDRIVE`.
pub fn configdrive() -> PathBuf {
    if let Some(p) = std::env::var_os("E2E_CONFIGDRIVE") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    let beside = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("configdrive"))
        .expect("target dir");
    assert!(
        beside.is_file(),
        "{} is missing: build it first (`cargo build -p configdrive`; `cargo test --workspace` does) or set E2E_CONFIGDRIVE",
        beside.display()
    );
    beside
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_of_a_nova_guest_with_a_vfat_drive() {
        let spec = GuestSpec {
            name: "deb,1".into(),
            accel: Accel::Tcg,
            memory_mb: 1024,
            kernel: "/c/vmlinuz".into(),
            initrd: "/c/initrd.img".into(),
            cmdline: CMDLINE.into(),
            disk: "/t/deb.qcow2".into(),
            console_log: "/t/console.log".into(),
            config_drive: Some(("/t/disk,config".into(), DriveMedium::Disk)),
            smbios: Some(Smbios::nova("d8e02d56-2648-49a3-bf97-6be8f1204f38")),
            ssh_port: SSH_PORT,
        };
        let expected = [
            "-name", "deb,,1", "-machine", "pc", "-accel", "tcg", "-smp", "1", "-m", "1024M",
            "-nodefaults", "-no-user-config", "-display", "none",
            "-chardev", "file,id=console,path=/t/console.log", "-serial", "chardev:console",
            "-kernel", "/c/vmlinuz", "-initrd", "/c/initrd.img",
            "-append", "root=/dev/vda rw console=ttyS0",
            "-drive", "file=/t/deb.qcow2,format=qcow2,if=none,id=root",
            "-device", "virtio-blk-pci,drive=root",
            "-drive", "file=/t/disk,,config,format=raw,if=none,id=config,readonly=on",
            "-device", "virtio-blk-pci,drive=config",
            "-uuid", "d8e02d56-2648-49a3-bf97-6be8f1204f38",
            "-smbios", "type=1,manufacturer=OpenStack Foundation,product=OpenStack Nova,serial=d8e02d56-2648-49a3-bf97-6be8f1204f38,uuid=d8e02d56-2648-49a3-bf97-6be8f1204f38,family=Virtual Machine",
            "-netdev", "user,id=net0,hostfwd=tcp:127.0.0.1:2222-:22",
            "-device", "virtio-net-pci,netdev=net0",
        ];
        assert_eq!(spec.argv(), expected);
    }

    #[test]
    fn kvm_takes_the_host_cpu_and_an_iso_drive_is_a_cdrom() {
        let spec = GuestSpec {
            name: "deb".into(),
            accel: Accel::Kvm,
            memory_mb: 512,
            kernel: "/k".into(),
            initrd: "/i".into(),
            cmdline: CMDLINE.into(),
            disk: "/d".into(),
            console_log: "/c".into(),
            config_drive: Some(("/t/disk.config".into(), DriveMedium::Cdrom)),
            smbios: None,
            ssh_port: 2200,
        };
        let argv = spec.argv().join(" ");
        assert!(
            argv.contains("-accel kvm -cpu host -smp 1 -m 512M"),
            "{argv}"
        );
        assert!(
            argv.contains("-drive file=/t/disk.config,format=raw,if=none,id=config,media=cdrom,readonly=on -device ide-cd,drive=config"),
            "{argv}"
        );
        assert!(
            !argv.contains("-smbios") && !argv.contains("-uuid"),
            "{argv}"
        );
        assert!(
            argv.ends_with("hostfwd=tcp:127.0.0.1:2200-:22 -device virtio-net-pci,netdev=net0"),
            "{argv}"
        );
    }

    #[test]
    fn colour_codes_are_removed_from_the_console() {
        assert_eq!(
            strip_ansi("[\u{1b}[0;32m  OK  \u{1b}[0m] Started \u{1b}[0;1;39mssh.service\u{1b}[0m."),
            "[  OK  ] Started ssh.service."
        );
    }
}
