//! The Debian guest image: Debian bookworm with Debian's own cloud-init (22.4), the
//! real client the drive and metadata tests must satisfy. `debootstrap --variant=minbase`,
//! then apt inside the chroot installs [`PACKAGES`] (the guest's own kernel and an
//! initramfs-tools initramfs among them), and `mkfs.ext4 -d` turns the tree into the
//! root file system of the first virtio disk: no loop device, nothing mounted on the
//! host. The guest boots its kernel directly (`-kernel`, `-initrd`, [`CMDLINE`]).
//!
//! Built once and cached under `<target>/debian-guest/<key>/` (`vmlinuz`, `initrd.img`,
//! `root.qcow2`, `recipe.txt`), where the key is a hash of [`recipe`]: what goes into
//! the image. Builds happen under a lock file and into a temporary folder that is
//! renamed into place, so test binaries running at once never see a half-built image;
//! other keys' folders are removed then. Guests must boot an overlay
//! (`qemu-img create -b`), never the cached disk itself.
//!
//! Needs root (debootstrap, chroot, mount namespaces) and http://deb.debian.org. A
//! failed step fails loudly with its command and the end of its output.

use sha2::{Digest, Sha256};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Instant;

pub const SUITE: &str = "bookworm";
pub const MIRROR: &str = "http://deb.debian.org/debian";

/// Installed by apt in the chroot, without recommends. Not by debootstrap's
/// `--include`: its resolver cannot pick providers of virtual packages (cloud-init's
/// python3-cryptography needs one). ifupdown and isc-dhcp-client are what Debian's
/// cloud-init renders network configuration for (`eni`) and runs for its ephemeral
/// DHCP; locales lets its locale module find en_US.UTF-8 already generated.
pub const PACKAGES: &[&str] = &[
    "linux-image-amd64",
    "initramfs-tools",
    "systemd-sysv",
    "udev",
    "cloud-init",
    "openssh-server",
    "sudo",
    "locales",
    "ifupdown",
    "isc-dhcp-client",
    "iproute2",
    "netbase",
];

/// Root on the first virtio disk, console on the first serial port.
pub const CMDLINE: &str = "root=/dev/vda rw console=ttyS0";

/// The user Debian's cloud-init creates and gives the instance's SSH keys to
/// (`system_info.default_user` in /etc/cloud/cloud.cfg); it may `sudo` without a
/// password. root's own key refuses logins and names this user.
pub const DEFAULT_USER: &str = "debian";

/// The root file system's size; the installed tree takes about 800 MB.
const DISK_BYTES: u64 = 2 << 30;

/// Runs inside the chroot (`/bin/sh -e`, the packages as arguments), in mount and PID
/// namespaces of its own: its mounts and any stray process end with it.
const CONFIGURE: &str = r#"mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devpts devpts /dev/pts
# No package may start a service here: it would run on the host.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
chmod 755 /usr/sbin/policy-rc.d
export DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8
apt-get update -q
apt-get install -y -q --no-install-recommends "$@"
echo 'en_US.UTF-8 UTF-8' > /etc/locale.gen
locale-gen
echo 'LANG=en_US.UTF-8' > /etc/default/locale
echo '/dev/vda / ext4 defaults,errors=remount-ro 0 1' > /etc/fstab
# What debootstrap copied from the build host, and what each guest makes anew.
rm -f /etc/hostname /etc/resolv.conf /etc/ssh/ssh_host_*
apt-get clean
rm -rf /var/lib/apt/lists/* /usr/sbin/policy-rc.d
umount /dev/pts /sys /proc
"#;

/// dpkg wants the sbin folders; `cargo test` may run without them.
const SBIN_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Bumped when the Rust side of the build (commands, options, layout) changes.
const BUILDER_VERSION: u32 = 1;

/// Everything that decides the image's content; its hash names the cache folder.
pub fn recipe() -> String {
    format!(
        "builder {BUILDER_VERSION}\nsuite {SUITE}\nmirror {MIRROR}\nvariant minbase\n\
         packages {}\ndisk {DISK_BYTES} ext4\ncmdline {CMDLINE}\nconfigure:\n{CONFIGURE}",
        PACKAGES.join(" ")
    )
}

fn cache_key() -> String {
    let digest = Sha256::digest(recipe().as_bytes());
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// The cached image's files.
#[derive(Debug, Clone)]
pub struct DebianImage {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    /// qcow2; boot an overlay of it.
    pub disk: PathBuf,
    /// What was hashed into the folder's name.
    pub recipe: PathBuf,
}

impl DebianImage {
    fn in_dir(dir: &Path) -> DebianImage {
        DebianImage {
            kernel: dir.join("vmlinuz"),
            initrd: dir.join("initrd.img"),
            disk: dir.join("root.qcow2"),
            recipe: dir.join("recipe.txt"),
        }
    }

    fn complete(&self) -> bool {
        [&self.kernel, &self.initrd, &self.disk, &self.recipe]
            .iter()
            .all(|p| p.is_file())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(
        "{tool} not found: install it with 'apt-get install {package}' (scripts/install-deps does)"
    )]
    MissingTool {
        tool: String,
        package: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} failed ({status}): {command}\n--- end of its output ({log}) ---\n{tail}")]
    Step {
        what: &'static str,
        command: String,
        status: std::process::ExitStatus,
        log: PathBuf,
        tail: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the chroot's /boot has {found:?}, not exactly one {prefix}*")]
    Boot {
        prefix: &'static str,
        found: Vec<String>,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ImageError + '_ {
    move |source| ImageError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The cache folder: `debian-guest` in the workspace's target folder (or
/// `CARGO_TARGET_DIR`).
pub fn cache_root() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"))
        .join("debian-guest")
}

/// The image, built on first use (several minutes) and cached; once per test binary.
/// A failed build is reported to every caller of the binary, not retried.
pub fn image() -> Result<DebianImage, String> {
    static IMAGE: OnceLock<Result<DebianImage, String>> = OnceLock::new();
    IMAGE
        .get_or_init(|| cached(&cache_root()).map_err(|e| error_chain(&e)))
        .clone()
}

use compute::error_chain;

/// The image under `root`, built there first when missing.
pub fn cached(root: &Path) -> Result<DebianImage, ImageError> {
    std::fs::create_dir_all(root).map_err(io(root))?;
    let lock_path = root.join(".lock");
    let lock = File::create(&lock_path).map_err(io(&lock_path))?;
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive).map_err(|e| {
        ImageError::Io {
            path: lock_path.clone(),
            source: e.into(),
        }
    })?;
    let key = cache_key();
    let dir = root.join(&key);
    let image = DebianImage::in_dir(&dir);
    if image.complete() {
        return Ok(image);
    }
    // Holding the lock: nobody else is building, so every other folder is stale
    // (an interrupted build, or another recipe's image).
    for entry in std::fs::read_dir(root).map_err(io(root))?.flatten() {
        if entry.path().is_dir() {
            let p = entry.path();
            std::fs::remove_dir_all(&p).map_err(io(&p))?;
        }
    }
    let tmp = root.join(format!(".build-{key}"));
    let started = Instant::now();
    build(&tmp)?;
    std::fs::rename(&tmp, &dir).map_err(io(&dir))?;
    eprintln!(
        "built the Debian guest image {} in {:.0?}",
        dir.display(),
        started.elapsed()
    );
    Ok(image)
}

/// Builds the image's files into `out` (created; the chroot tree is removed again).
fn build(out: &Path) -> Result<(), ImageError> {
    std::fs::create_dir_all(out).map_err(io(out))?;
    let tree = out.join("tree");
    let logs = out.join("logs");
    std::fs::create_dir_all(&logs).map_err(io(&logs))?;

    let mut debootstrap = isolated();
    debootstrap
        .args(["debootstrap", "--variant=minbase", SUITE])
        .arg(&tree)
        .arg(MIRROR);
    run("debootstrap", debootstrap, &logs.join("debootstrap.log")).map_err(|e| {
        // debootstrap's own log says which package failed.
        with_tail(e, &tree.join("debootstrap/debootstrap.log"))
    })?;

    let mut configure = isolated();
    configure
        .arg("chroot")
        .arg(&tree)
        .args(["/bin/sh", "-ec", CONFIGURE, "configure"])
        .args(PACKAGES);
    run("apt in the chroot", configure, &logs.join("configure.log"))?;

    let image = DebianImage::in_dir(out);
    copy_boot_file(&tree, "vmlinuz-", &image.kernel)?;
    copy_boot_file(&tree, "initrd.img-", &image.initrd)?;

    let raw = out.join("root.raw");
    File::create(&raw)
        .and_then(|f| f.set_len(DISK_BYTES))
        .map_err(io(&raw))?;
    let mut mkfs = Command::new("mkfs.ext4");
    mkfs.env("PATH", SBIN_PATH)
        .args(["-q", "-F", "-L", "debian-root", "-d"])
        .arg(&tree)
        .arg(&raw);
    run("mkfs.ext4 -d", mkfs, &logs.join("mkfs.log"))?;
    let mut convert = Command::new("qemu-img");
    convert
        .args(["convert", "-q", "-f", "raw", "-O", "qcow2"])
        .arg(&raw)
        .arg(&image.disk);
    run("qemu-img convert", convert, &logs.join("convert.log"))?;
    std::fs::remove_file(&raw).map_err(io(&raw))?;
    std::fs::remove_dir_all(&tree).map_err(io(&tree))?;
    std::fs::write(&image.recipe, recipe()).map_err(io(&image.recipe))?;
    Ok(())
}

/// `setpriv --pdeathsig KILL unshare --mount --pid --fork --kill-child
/// --propagation private`: what runs after it gets private mounts that vanish with it,
/// and it dies, with every process it started, when the test does.
fn isolated() -> Command {
    let mut c = Command::new("setpriv");
    c.env("PATH", SBIN_PATH)
        .args([
            "--pdeathsig",
            "KILL",
            "unshare",
            "--mount",
            "--pid",
            "--fork",
        ])
        .args(["--kill-child", "--propagation", "private"]);
    c
}

/// The package bringing each program the build runs.
fn package_of(tool: &str) -> &'static str {
    match tool {
        "debootstrap" => "debootstrap",
        "mkfs.ext4" => "e2fsprogs",
        "qemu-img" => "qemu-utils",
        _ => "util-linux",
    }
}

/// Runs `cmd` with its output in `log`; a failure carries the log's end.
fn run(what: &'static str, mut cmd: Command, log: &Path) -> Result<(), ImageError> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let command = std::iter::once(program.clone())
        .chain(cmd.get_args().map(|a| a.to_string_lossy().into_owned()))
        .map(|a| {
            if a.contains('\n') {
                "<script>".to_owned()
            } else {
                a
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    let out = File::create(log).map_err(io(log))?;
    let err = out.try_clone().map_err(io(log))?;
    let status = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .status()
        .map_err(|source| ImageError::MissingTool {
            package: package_of(&program),
            tool: program,
            source,
        })?;
    if status.success() {
        return Ok(());
    }
    Err(ImageError::Step {
        what,
        command,
        status,
        log: log.to_owned(),
        tail: tail(log),
    })
}

/// The last 60 lines of a log.
fn tail(log: &Path) -> String {
    let text = String::from_utf8_lossy(&std::fs::read(log).unwrap_or_default()).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(60)..].join("\n")
}

fn with_tail(e: ImageError, extra: &Path) -> ImageError {
    match e {
        ImageError::Step {
            what,
            command,
            status,
            log,
            tail: t,
        } if extra.is_file() => ImageError::Step {
            what,
            command,
            status,
            tail: format!("{t}\n--- end of {} ---\n{}", extra.display(), tail(extra)),
            log,
        },
        other => other,
    }
}

/// Copies the one `/boot/<prefix>*` of the chroot to `to`.
fn copy_boot_file(tree: &Path, prefix: &'static str, to: &Path) -> Result<(), ImageError> {
    let boot = tree.join("boot");
    let found: Vec<String> = std::fs::read_dir(&boot)
        .map_err(io(&boot))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix))
        .collect();
    let [name] = found.as_slice() else {
        return Err(ImageError::Boot { prefix, found });
    };
    let from = boot.join(name);
    std::fs::copy(&from, to).map_err(io(&from))?;
    Ok(())
}
