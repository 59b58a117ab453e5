//! Property tests for the parsers that face untrusted bytes: corrupted ISO and FAT
//! images, user data, `#cloud-config`, and guest paths. None may panic, hang or
//! resolve outside the root.

mod common;
use common::*;
use guest_agent::guestfs::FsRoot;
use guest_agent::source::{ConfigDriveSource, Device, IsoFs, Provider};
use proptest::prelude::*;
use std::sync::OnceLock;

struct Images {
    _dir: tempfile::TempDir,
    iso: Vec<u8>,
    fat: Vec<u8>,
}

fn images() -> &'static Images {
    static IMAGES: OnceLock<Images> = OnceLock::new();
    IMAGES.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let tree = dir.path().join("tree");
        render_drive_tree(&fixture(BASIC), &tree);
        let iso = dir.path().join("cd.iso");
        build_iso(&tree, &iso);
        let fat = dir.path().join("fat.img");
        run_tool(
            std::process::Command::new("mkfs.vfat")
                .args(["-n", "config-2", "-C"])
                .arg(&fat)
                .arg("1024"),
        );
        run_tool(
            std::process::Command::new("mcopy")
                .args(["-s", "-i"])
                .arg(&fat)
                .arg(tree.join("openstack"))
                .arg("::/"),
        );
        Images {
            iso: std::fs::read(&iso).expect("iso"),
            fat: std::fs::read(&fat).expect("fat"),
            _dir: dir,
        }
    })
}

fn corrupt(image: &[u8], edits: &[(usize, u8)], cut: Option<usize>) -> Vec<u8> {
    let mut b = image.to_vec();
    for (at, v) in edits {
        let i = at % b.len();
        b[i] = *v;
    }
    if let Some(c) = cut {
        b.truncate(c % (b.len() + 1));
    }
    b
}

/// Reads everything an agent would from an image file, through the public source.
fn read_all(bytes: &[u8]) {
    let f = tempfile::NamedTempFile::new().expect("tmp");
    std::fs::write(f.path(), bytes).expect("write");
    if let Ok(mut src) = ConfigDriveSource::open(f.path()) {
        let _ = src.meta_data();
        let _ = src.network_data();
        let _ = src.user_data();
        let _ = src.vendor_data();
        let _ = src.content("/content/0000");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn corrupted_iso_never_panics(edits in prop::collection::vec((32768usize..120_000, any::<u8>()), 1..40), cut in prop::option::of(any::<usize>())) {
        let bytes = corrupt(&images().iso, &edits, cut);
        read_all(&bytes);
        let _ = IsoFs::open(Device::new(std::io::Cursor::new(bytes), 1 << 24)).map(|mut fs| fs.read_file("openstack/latest/meta_data.json", 1 << 20));
    }

    #[test]
    fn corrupted_fat_never_panics(edits in prop::collection::vec((0usize..64 * 1024, any::<u8>()), 1..40), cut in prop::option::of(any::<usize>())) {
        read_all(&corrupt(&images().fat, &edits, cut));
    }

    #[test]
    fn user_data_never_panics(data in prop::collection::vec(any::<u8>(), 0..2048), prefix in prop::sample::select(vec!["", "#!", "#cloud-config\n", "Content-Type: multipart/mixed; boundary=b\n\n--b\n", "\x1f\u{8b}"])) {
        let mut bytes = prefix.as_bytes().to_vec();
        bytes.extend_from_slice(&data);
        let _ = guest_agent::userdata::parse(&bytes, "user-data");
    }

    #[test]
    fn guest_paths_resolve_inside_the_root(parts in prop::collection::vec(prop::sample::select(vec!["etc", "..", ".", "a", "lnk", "abs", "", "x/y"]), 1..8)) {
        let dir = images()._dir.path().join("resolve-root");
        let _ = std::fs::create_dir(&dir);
        let _ = std::os::unix::fs::symlink("../../..", dir.join("lnk"));
        let _ = std::os::unix::fs::symlink("/", dir.join("abs"));
        let root = FsRoot::new(&dir).expect("root");
        let guest = format!("/{}", parts.join("/"));
        if let Ok(p) = root.resolve(&guest) {
            prop_assert!(p.starts_with(root.path()), "{guest} -> {}", p.display());
            prop_assert!(!guest.split('/').any(|c| c == ".."), "`..` accepted in {guest}");
        }
    }
}
