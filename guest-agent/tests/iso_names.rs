//! The ISO9660 reader against images made by genisoimage with each name set: Rock
//! Ridge, Joliet only, and plain ISO names (Nova's relaxed flags). Every file of the
//! tree reads back byte for byte.

mod common;
use common::*;
use guest_agent::source::{Device, IsoFs, NameSet, DEFAULT_READ_BUDGET};

#[test]
fn every_name_set_reads_back_the_tree() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tree = dir.path().join("tree");
    render_drive_tree(&fixture(MULTINIC), &tree);
    type Case<'a> = (&'a [&'a str], fn(NameSet) -> bool);
    let cases: [Case; 3] = [
        (&["-J", "-r"], |n| matches!(n, NameSet::RockRidge { .. })),
        (&["-J", "-joliet-long"], |n| n == NameSet::Joliet),
        (
            &["-l", "-allow-lowercase", "-allow-multidot", "-ldots"],
            |n| n == NameSet::Plain,
        ),
    ];
    for (flags, expect) in cases {
        let iso = dir.path().join("x.iso");
        run_tool(
            std::process::Command::new("genisoimage")
                .args(["-quiet", "-V", "config-2"])
                .args(flags)
                .arg("-o")
                .arg(&iso)
                .arg(&tree),
        );
        let file = std::fs::File::open(&iso).expect("open");
        let mut fs = IsoFs::open(Device::new(file, DEFAULT_READ_BUDGET)).expect("opens");
        assert!(expect(fs.name_set()), "{flags:?}: {:?}", fs.name_set());
        assert_eq!(fs.label(), "config-2");
        for rel in files_under(&tree) {
            let want = std::fs::read(tree.join(&rel)).expect("read");
            let got = fs
                .read_file(&rel, 1 << 20)
                .expect("readable")
                .unwrap_or_else(|| panic!("{flags:?}: {rel} missing"));
            assert_eq!(got, want, "{flags:?}: {rel}");
        }
        assert!(fs
            .read_file("openstack/latest/nope", 1 << 20)
            .expect("ok")
            .is_none());
    }
}
