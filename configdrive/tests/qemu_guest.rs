//! The Linux kernel mounts both formats: Debian's kernel in a QEMU guest with a
//! busybox-static initramfs (isofs, vfat, nls and virtio modules from /lib/modules)
//! lists every entry with its mode, owner and SHA-256 on the serial console; the
//! ISO with Rock Ridge, `-o norock` (Joliet), `-o nojoliet` and both (primary
//! names), and the VFAT drive. TCG only: nested KVM hangs on this kind of machine
//! (set CONFIGDRIVE_QEMU_ACCEL=kvm to try it).

#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const MODULES: &[&str] = &[
    "virtio_pci",
    "virtio_blk",
    "isofs",
    "vfat",
    "nls_cp437",
    "nls_iso8859-1",
    "nls_utf8",
    "nls_ascii",
];
const BOOT_TIMEOUT: Duration = Duration::from_secs(600);

/// The newest kernel with both an image in /boot and modules in /lib/modules.
fn kernel() -> (String, PathBuf) {
    let mut versions: Vec<String> = std::fs::read_dir("/lib/modules")
        .expect("/lib/modules: install linux-image-amd64")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|v| Path::new(&format!("/boot/vmlinuz-{v}")).exists())
        .collect();
    versions.sort();
    let v = versions
        .pop()
        .expect("no /boot/vmlinuz-* with modules: install linux-image-amd64");
    let k = PathBuf::from(format!("/boot/vmlinuz-{v}"));
    (v, k)
}

/// A newc cpio of busybox, the init script and the modules in load order.
fn initramfs(dir: &Path, version: &str) -> PathBuf {
    let root = dir.join("root");
    for d in ["bin", "proc", "sys", "dev", "mnt", "modules"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox"))
        .expect("/bin/busybox: install busybox-static");
    let init = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/guest/init.sh");
    std::fs::copy(init, root.join("init")).unwrap();
    let exec = std::os::unix::fs::PermissionsExt::from_mode(0o755);
    std::fs::set_permissions(root.join("init"), exec).unwrap();
    let mut order = Vec::new();
    for m in MODULES {
        let deps = stdout(Command::new("modprobe").args(["-S", version, "--show-depends", m]));
        for line in deps.lines() {
            let Some(path) = line.strip_prefix("insmod ").map(str::trim) else {
                continue;
            };
            let name = Path::new(path)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            assert!(
                name.ends_with(".ko"),
                "compressed module {path}: teach the test to decompress it"
            );
            if !order.contains(&name) {
                std::fs::copy(path, root.join("modules").join(&name)).unwrap();
                order.push(name);
            }
        }
    }
    std::fs::write(root.join("modules.order"), order.join("\n") + "\n").unwrap();
    let out = dir.join("initramfs.cpio");
    let list = stdout(Command::new("find").arg(".").current_dir(&root));
    let mut cpio = Command::new("cpio")
        .args(["-o", "-H", "newc", "--quiet"])
        .current_dir(&root)
        .stdin(Stdio::piped())
        .stdout(std::fs::File::create(&out).unwrap())
        .spawn()
        .expect("cpio: install cpio");
    std::io::Write::write_all(&mut cpio.stdin.take().unwrap(), list.as_bytes()).unwrap();
    assert!(cpio.wait().unwrap().success());
    out
}

/// Boots the guest with the two drives and returns its console output.
fn boot(dir: &Path, iso: &Path, vfat: &Path) -> String {
    let (version, kernel) = kernel();
    let initrd = initramfs(dir, &version);
    let accel = std::env::var("CONFIGDRIVE_QEMU_ACCEL").unwrap_or_else(|_| "tcg".into());
    let drive = |p: &Path| format!("file={},format=raw,if=virtio,readonly=on", p.display());
    let log = dir.join("console.log");
    let mut child = Command::new("qemu-system-x86_64")
        .args([
            "-machine",
            "q35",
            "-accel",
            &accel,
            "-m",
            "256",
            "-smp",
            "1",
            "-nodefaults",
            "-no-reboot",
        ])
        .args(["-display", "none", "-serial"])
        .arg(format!("file:{}", log.display()))
        .arg("-kernel")
        .arg(&kernel)
        .arg("-initrd")
        .arg(&initrd)
        .args(["-append", "console=ttyS0 panic=-1 quiet loglevel=3"])
        .args(["-drive", &drive(iso), "-drive", &drive(vfat)])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("qemu-system-x86_64: install qemu-system-x86");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > BOOT_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "guest did not power off within {BOOT_TIMEOUT:?}:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let console = String::from_utf8_lossy(&std::fs::read(&log).unwrap()).replace('\r', "");
    assert!(status.success(), "qemu failed ({status}): {err}\n{console}");
    console
}

/// Each section's lines, by name.
fn sections(console: &str) -> BTreeMap<String, Vec<String>> {
    let body = console
        .split("===BEGIN===\n")
        .nth(1)
        .and_then(|b| b.split("===END===").next())
        .unwrap_or_else(|| panic!("no markers in the console output:\n{console}"));
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current = String::new();
    for line in body.lines() {
        if let Some(name) = line.strip_prefix("=== ") {
            current = name.to_owned();
            out.entry(current.clone()).or_default();
        } else if !line.is_empty() {
            out.entry(current.clone())
                .or_default()
                .push(line.to_owned());
        }
    }
    out
}

/// The lines the guest should print for the rendered tree, with names mapped by
/// `name` and modes given by `modes` (None: not compared).
fn expected(
    name: impl Fn(&str, bool) -> String,
    modes: Option<(&str, &str)>,
) -> Vec<(String, String)> {
    let tree = expected_tree();
    let mut dirs = std::collections::BTreeSet::new();
    for p in tree.keys() {
        let mut acc = String::new();
        for part in p.split('/').collect::<Vec<_>>().split_last().unwrap().1 {
            acc = if acc.is_empty() {
                (*part).to_owned()
            } else {
                format!("{acc}/{part}")
            };
            dirs.insert(acc.clone());
        }
    }
    let map_path = |p: &str, is_dir: bool| {
        let parts: Vec<&str> = p.split('/').collect();
        let last = parts.len() - 1;
        parts
            .iter()
            .enumerate()
            .map(|(i, s)| name(s, is_dir || i < last))
            .collect::<Vec<_>>()
            .join("/")
    };
    let mut out: Vec<(String, String)> = Vec::new();
    for d in &dirs {
        let mode = modes.map(|m| format!(" {}", m.1)).unwrap_or_default();
        out.push((map_path(d, true), format!("D{mode}")));
    }
    for (p, bytes) in &tree {
        let mode = modes.map(|m| format!(" {}", m.0)).unwrap_or_default();
        out.push((
            map_path(p, false),
            format!("F{mode} {}", hex::encode(Sha256::digest(bytes))),
        ));
    }
    out.sort();
    out
}

/// A guest line `F 444:0:0 <sha> path` as (path, `F 444:0:0 <sha>`), modes dropped
/// unless `keep_modes`.
fn parse(lines: &[String], keep_modes: bool) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = lines
        .iter()
        .map(|l| {
            let parts: Vec<&str> = l
                .splitn(if l.starts_with('F') { 4 } else { 3 }, ' ')
                .collect();
            let path = parts.last().unwrap().to_string();
            let mut desc = vec![parts[0]];
            if keep_modes {
                desc.push(parts[1]);
            }
            if parts[0] == "F" {
                desc.push(parts[2]);
            }
            (path, desc.join(" "))
        })
        .collect();
    out.sort();
    out
}

#[test]
fn linux_mounts_both_formats_every_way() {
    let dir = tempfile::tempdir().unwrap();
    let iso = build(dir.path(), "iso9660", &[]);
    let vfat = build(dir.path(), "vfat", &[]);
    let console = boot(dir.path(), &iso, &vfat);
    assert!(
        !console.contains("INSMOD-FAILED") && !console.contains("MOUNT-FAILED"),
        "{console}"
    );
    let s = sections(&console);
    let same = |n: &str, _: bool| n.to_owned();
    let rr_modes = Some(("444:0:0", "555:0:0"));
    assert_eq!(
        parse(&s["iso-rock"], true),
        expected(same, rr_modes),
        "Rock Ridge view"
    );
    assert_eq!(
        parse(&s["iso-nojoliet"], true),
        expected(same, rr_modes),
        "-o nojoliet view"
    );
    assert_eq!(
        parse(&s["iso-norock"], false),
        expected(same, None),
        "-o norock (Joliet) view"
    );
    let primary = |n: &str, _: bool| n.replace('-', "_");
    assert_eq!(
        parse(&s["iso-primary"], false),
        expected(primary, None),
        "-o norock,nojoliet view"
    );
    assert_eq!(parse(&s["vfat"], false), expected(same, None), "vfat view");
}
