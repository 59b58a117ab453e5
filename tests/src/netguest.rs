//! A networked test guest: the host's Debian kernel, and a busybox-static initramfs
//! that carries the virtio network modules (with their dependencies, from
//! /lib/modules) and a caller's `/init` script, which loads them first. Fails loudly
//! when a tool is missing.

use crate::guest::TestGuest;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The modules a guest needs for its virtio NIC, loaded in this order (with deps).
pub const NET_MODULES: &[&str] = &["virtio_pci", "virtio_net"];

/// Loads `/modules/*.ko` in dependency order; `/init` scripts start with it.
pub const LOAD_MODULES: &str = "for m in $(cat /modules.order); do insmod /modules/$m; done";

fn stdout(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The newest kernel with both an image in /boot and modules in /lib/modules.
pub fn kernel() -> (String, PathBuf) {
    let mut versions: Vec<String> = std::fs::read_dir("/lib/modules")
        .expect("/lib/modules: install linux-image-amd64 (scripts/test does)")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|v| Path::new(&format!("/boot/vmlinuz-{v}")).exists())
        .collect();
    versions.sort();
    let v = versions
        .pop()
        .expect("no /boot/vmlinuz-* with modules: install linux-image-amd64");
    let k = PathBuf::from(format!("/boot/vmlinuz-{v}"));
    (v, k)
}

/// Builds the guest in `dir` with `init` as its `/init`.
pub fn build(dir: &Path, init: &str) -> TestGuest {
    let (version, kernel) = kernel();
    let root = dir.join("initramfs-root");
    for d in ["bin", "proc", "sys", "dev", "tmp", "modules"] {
        std::fs::create_dir_all(root.join(d)).expect("mkdir");
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox"))
        .expect("/bin/busybox: install busybox-static (scripts/test does)");
    std::fs::write(root.join("init"), init).expect("write init");
    let exec = std::os::unix::fs::PermissionsExt::from_mode(0o755);
    std::fs::set_permissions(root.join("init"), exec).expect("chmod");
    let mut order: Vec<String> = Vec::new();
    for m in NET_MODULES {
        let deps = stdout(Command::new("modprobe").args(["-S", &version, "--show-depends", m]));
        for line in deps.lines() {
            let Some(path) = line.strip_prefix("insmod ").map(str::trim) else {
                continue;
            };
            let name = Path::new(path)
                .file_name()
                .expect("module file name")
                .to_string_lossy()
                .into_owned();
            assert!(
                name.ends_with(".ko"),
                "compressed module {path}: teach the test to decompress it"
            );
            if !order.contains(&name) {
                std::fs::copy(path, root.join("modules").join(&name)).expect("copy module");
                order.push(name);
            }
        }
    }
    std::fs::write(root.join("modules.order"), order.join("\n") + "\n").expect("order");
    let initramfs = dir.join("initramfs-net.cpio");
    let list = stdout(Command::new("find").arg(".").current_dir(&root));
    let mut cpio = Command::new("cpio")
        .args(["-o", "-H", "newc", "--quiet"])
        .current_dir(&root)
        .stdin(Stdio::piped())
        .stdout(std::fs::File::create(&initramfs).expect("create cpio"))
        .spawn()
        .expect("cpio: install cpio (scripts/test does)");
    std::io::Write::write_all(&mut cpio.stdin.take().expect("cpio stdin"), list.as_bytes())
        .expect("feed cpio");
    assert!(cpio.wait().expect("cpio").success(), "cpio failed");
    let disk = dir.join("net-root.qcow2");
    let status = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&disk)
        .arg("64M")
        .status()
        .expect("qemu-img: install qemu-utils (scripts/test does)");
    assert!(status.success(), "qemu-img create failed");
    TestGuest {
        kernel,
        initramfs,
        disk,
    }
}
