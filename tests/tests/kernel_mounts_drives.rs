//! The Linux kernel mounts both drive formats: Debian's kernel in a QEMU guest with a
//! busybox-static initramfs (isofs, vfat, nls and virtio modules) lists every entry
//! with its mode, owner and SHA-256 on the serial console; the ISO with Rock Ridge,
//! `-o norock` (Joliet), `-o nojoliet` and both (primary names), and the VFAT drive.
//! Each view is compared with the rendered tree. The drives come from compute-host's
//! `ConfigDriveBuilder`, the builder compute uses. TCG unless E2E_QEMU_ACCEL says
//! otherwise: nested KVM hangs on this kind of machine.

use compute::metadata::DriveTree;
use compute_host::drive_builder::ConfigDriveBuilder;
use compute_host::drive_builder::DriveBuilder;
use configdrive::Format;
use e2e::console;
use e2e::guest::{self, DirectBoot};
use e2e::initramfs::Initramfs;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

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

/// Mounts each drive each way and prints what it sees between markers.
const BODY: &str = r#"n=0
while [ ! -b /dev/vdb ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done

list() {
    echo "=== $1"
    if mount -t "$2" -o "ro,$3" "$4" /mnt; then
        cd /mnt
        find . -mindepth 1 | sort | while read -r f; do
            if [ -d "$f" ]; then
                echo "D $(stat -c %a:%u:%g "$f") ${f#./}"
            else
                echo "F $(stat -c %a:%u:%g "$f") $(sha256sum < "$f" | cut -c1-64) ${f#./}"
            fi
        done
        cd /
        umount /mnt
    else
        echo "MOUNT-FAILED $1"
    fi
}

echo "===BEGIN==="
list iso-rock iso9660 "" /dev/vda
list iso-norock iso9660 norock /dev/vda
list iso-nojoliet iso9660 nojoliet /dev/vda
list iso-primary iso9660 norock,nojoliet /dev/vda
list vfat vfat iocharset=utf8 /dev/vdb
echo "===END==="
poweroff -f
"#;

fn fixture() -> compute::Instance {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../compute/tests/fixtures/multinic.json");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    compute::Instance::from_json(&bytes).expect("valid fixture")
}

/// What the guest should find: the rendered tree of the multinic fixture.
fn expected_tree() -> DriveTree {
    compute::render_drive(&fixture(), &compute::Settings::default())
}

fn build(dir: &Path, format: Format) -> PathBuf {
    let out = dir.join(format!("drive.{format:?}"));
    let inst = fixture();
    ConfigDriveBuilder { format }
        .build(&inst, &expected_tree(), &out)
        .expect("build drive");
    out
}

/// Boots the guest with the two drives and returns its console output.
fn boot(dir: &Path, iso: &Path, vfat: &Path) -> String {
    let kernel = guest::kernel().expect("kernel");
    let initrd = dir.join("initramfs.cpio");
    Initramfs::new(BODY)
        .expect("initramfs")
        .modules(&kernel.version, MODULES)
        .expect("modules")
        .write(&initrd)
        .expect("write initramfs");
    let accel = std::env::var("E2E_QEMU_ACCEL").unwrap_or_else(|_| "tcg".into());
    let drive = |p: &Path| {
        vec![
            "-drive".to_owned(),
            format!("file={},format=raw,if=virtio,readonly=on", p.display()),
        ]
    };
    guest::run_to_poweroff(
        dir,
        &DirectBoot {
            kernel: &kernel.image,
            initramfs: &initrd,
            append: "console=ttyS0 panic=-1 quiet loglevel=3",
            accel: &accel,
            args: [drive(iso), drive(vfat)].concat(),
            patience: Duration::from_secs(600),
        },
    )
}

/// The lines the guest should print for the rendered tree, with names mapped by
/// `name` and modes given by `modes` (None: not compared).
fn expected(
    name: impl Fn(&str, bool) -> String,
    modes: Option<(&str, &str)>,
) -> Vec<(String, String)> {
    let tree = expected_tree();
    let mut dirs = BTreeSet::new();
    for p in tree.keys() {
        let parts: Vec<&str> = p.split('/').collect();
        for i in 1..parts.len() {
            dirs.insert(parts[..i].join("/"));
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
            assert!(parts.len() >= 3, "unexpected guest line {l:?}");
            let path = parts[parts.len() - 1].to_owned();
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
    let dir = tempfile::tempdir().expect("tempdir");
    let iso = build(dir.path(), Format::Iso9660);
    let vfat = build(dir.path(), Format::Vfat);
    let console = boot(dir.path(), &iso, &vfat);
    assert!(
        !console.contains("INSMOD-FAILED") && !console.contains("MOUNT-FAILED"),
        "{console}"
    );
    let s: BTreeMap<String, Vec<String>> = console::sections(&console, "===BEGIN===", "===END===")
        .unwrap_or_else(|| panic!("no markers in the console output:\n{console}"));
    let view = |name: &str| {
        s.get(name)
            .unwrap_or_else(|| panic!("no {name} section:\n{console}"))
    };
    let same = |n: &str, _: bool| n.to_owned();
    let rr_modes = Some(("444:0:0", "555:0:0"));
    assert_eq!(
        parse(view("iso-rock"), true),
        expected(same, rr_modes),
        "Rock Ridge view"
    );
    assert_eq!(
        parse(view("iso-nojoliet"), true),
        expected(same, rr_modes),
        "-o nojoliet view"
    );
    assert_eq!(
        parse(view("iso-norock"), false),
        expected(same, None),
        "-o norock (Joliet) view"
    );
    let primary = |n: &str, _: bool| n.replace('-', "_");
    assert_eq!(
        parse(view("iso-primary"), false),
        expected(primary, None),
        "-o norock,nojoliet view"
    );
    assert_eq!(
        parse(view("vfat"), false),
        expected(same, None),
        "vfat view"
    );
}
