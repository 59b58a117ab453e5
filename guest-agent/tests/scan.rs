//! Finding the drive by scanning block devices (a fake `/sys/class/block` and
//! `/dev` laid out like the real ones), label matched in any case, with a deadline.

mod common;
use common::*;
use guest_agent::source::{BlockScan, SourceError};
use std::time::Duration;

fn fake_device(sys: &std::path::Path, dev: &std::path::Path, name: &str, image: &[u8]) {
    std::fs::create_dir_all(sys.join(name)).expect("mkdir");
    std::fs::write(
        sys.join(name).join("size"),
        format!("{}\n", image.len() / 512),
    )
    .expect("size");
    std::fs::write(dev.join(name), image).expect("dev");
}

#[test]
fn finds_the_drive_whatever_the_label_case() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tree = dir.path().join("tree");
    render_drive_tree(&fixture(BASIC), &tree);
    let iso = dir.path().join("upper.iso");
    run_tool(
        std::process::Command::new("genisoimage")
            .args(["-quiet", "-J", "-r", "-V", "CONFIG-2", "-o"])
            .arg(&iso)
            .arg(&tree),
    );
    let (sys, dev) = (dir.path().join("sys"), dir.path().join("dev"));
    std::fs::create_dir_all(&sys).expect("mkdir");
    std::fs::create_dir_all(&dev).expect("mkdir");
    fake_device(&sys, &dev, "vda", &vec![0u8; 64 * 1024]);
    fake_device(&sys, &dev, "vdb", &std::fs::read(&iso).expect("iso"));
    std::fs::create_dir_all(sys.join("ram0")).expect("mkdir");
    let scan = BlockScan {
        sys_class_block: sys,
        dev_dir: dev.clone(),
        deadline: Duration::from_secs(5),
        poll: Duration::from_millis(10),
    };
    assert_eq!(scan.find().expect("found"), dev.join("vdb"));

    // The same image read through the agent, label in upper case.
    show_json(&iso);
}

#[test]
fn no_drive_is_an_error_after_the_deadline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let scan = BlockScan {
        sys_class_block: dir.path().join("sys"),
        dev_dir: dir.path().join("dev"),
        deadline: Duration::from_millis(200),
        poll: Duration::from_millis(50),
    };
    match scan.find() {
        Err(SourceError::NoDrive { .. }) => {}
        other => panic!("expected NoDrive, got {other:?}"),
    }
}
