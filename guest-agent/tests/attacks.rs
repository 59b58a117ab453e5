//! Hostile or broken media: `..` paths, symlinks out of the root, oversized and
//! malformed documents, a truncated ISO, a FAT whose cluster chains loop. Each gives
//! a clear error, nothing lands outside the root, and nothing hangs (the helper kills
//! a run that does not finish and fails the test).

mod common;
use common::*;
use serde_json::Value;
use std::path::Path;

fn meta_path(tree: &Path) -> std::path::PathBuf {
    tree.join("openstack/latest/meta_data.json")
}

fn edit_meta(tree: &Path, f: impl FnOnce(&mut Value)) {
    let p = meta_path(tree);
    let mut v: Value = serde_json::from_slice(&std::fs::read(&p).expect("read")).expect("json");
    f(&mut v);
    std::fs::write(p, serde_json::to_vec(&v).expect("json")).expect("write");
}

#[test]
fn dotdot_paths_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let iso = edited_iso_for(&fixture(MULTINIC), dir.path(), "cd", |tree| {
        edit_meta(tree, |m| {
            m["files"][0]["path"] = "/../../../escape-1".into();
            m["files"][1]["content_path"] = "/content/../../openstack/latest/meta_data.json".into();
        });
        std::fs::write(
            tree.join("openstack/latest/user_data"),
            "#cloud-config\nwrite_files:\n  - path: /etc/../../escape-2\n    content: x\n  - path: /etc/fine\n    content: ok\n",
        )
        .expect("write");
    });
    let root = guest_root(dir.path());
    let (code, report, _) = run_on(&iso, &root, &[]);
    assert_eq!(code, 1, "{report}");
    let (outcome, details) = step(&report, "files");
    assert_eq!(outcome, "failed");
    assert!(
        details
            .iter()
            .any(|d| d.contains("`/../../../escape-1` contains `..`; refused")),
        "{details:?}"
    );
    assert!(
        details
            .iter()
            .any(|d| d.contains("is not of the form /content/NNNN")),
        "{details:?}"
    );
    let (outcome, details) = step(&report, "user-data");
    assert_eq!(outcome, "failed");
    assert!(
        details.iter().any(|d| d.contains("contains `..`")),
        "{details:?}"
    );
    assert_eq!(
        read(&root.join("etc/fine")),
        "ok",
        "the good entry is still written"
    );
    assert_eq!(step(&report, "hostname").0, "ok", "other steps still run");
    let outside = files_under(dir.path());
    assert!(outside.iter().all(|f| !f.contains("escape")), "{outside:?}");
}

#[test]
fn symlinks_never_lead_out_of_the_root() {
    let dir = tempfile::tempdir().expect("tempdir");
    let iso = iso_for(&fixture(MULTINIC), dir.path(), "cd");
    let outside = dir.path().join("outside");
    std::fs::create_dir(&outside).expect("mkdir");
    let root = dir.path().join("root");
    std::fs::create_dir(&root).expect("mkdir");
    // /etc points at an absolute host folder, /opt climbs out with `..`.
    std::os::unix::fs::symlink(&outside, root.join("etc")).expect("symlink");
    std::os::unix::fs::symlink("../../../../outside", root.join("opt")).expect("symlink");
    let (code, report, _) = run_on(&iso, &root, &[]);
    assert_eq!(code, 0, "{report}");
    assert!(
        files_under(&outside).is_empty(),
        "wrote outside the root: {:?}",
        files_under(&outside)
    );
    // Followed as a chroot would: inside the root.
    let inside_etc = root.join(outside.strip_prefix("/").expect("absolute"));
    assert_eq!(read(&inside_etc.join("hostname")), "web-02\n");
    assert_eq!(
        read(&root.join("outside/app/config.ini")),
        "[app]\nport = 8080\n"
    );
}

#[test]
fn oversized_meta_data_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let iso = edited_iso_for(&fixture(BASIC), dir.path(), "cd", |tree| {
        let pad = "A".repeat(10 * 1024 * 1024);
        std::fs::write(
            meta_path(tree),
            format!("{{\"uuid\": \"x\", \"pad\": \"{pad}\"}}"),
        )
        .expect("write");
    });
    let root = dir.path().join("root");
    std::fs::create_dir(&root).expect("mkdir");
    let out = agent(&[
        "run",
        "--device",
        iso.to_str().expect("utf8"),
        "--root",
        root.to_str().expect("utf8"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("meta_data.json is larger than the 1048576 bytes allowed"),
        "{err}"
    );
    assert!(files_under(&root).is_empty());
}

#[test]
fn malformed_network_data_fails_only_the_network_step() {
    let dir = tempfile::tempdir().expect("tempdir");
    let iso = edited_iso_for(&fixture(MULTINIC), dir.path(), "cd", |tree| {
        std::fs::write(
            tree.join("openstack/latest/network_data.json"),
            "{\"links\": [}",
        )
        .expect("write");
    });
    let root = guest_root(dir.path());
    let (code, report, _) = run_on(&iso, &root, &[]);
    assert_eq!(code, 1);
    let (outcome, details) = step(&report, "network");
    assert_eq!(outcome, "failed");
    // The reason carries the parser's cause too.
    assert!(
        details[0].starts_with("failed: network_data.json is not valid: ")
            && details[0].contains("line 1 column"),
        "{details:?}"
    );
    for name in ["hostname", "ssh-keys", "files", "password"] {
        assert_eq!(step(&report, name).0, "ok", "{name}");
    }
}

#[test]
fn truncated_iso_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let iso = iso_for(&fixture(MULTINIC), dir.path(), "cd");
    let root = dir.path().join("root");
    std::fs::create_dir(&root).expect("mkdir");
    for (len, expect) in [
        (38 * 1024, "truncated image"),
        (34 * 1024, "truncated image"),
        (16 * 1024, "neither ISO9660 nor FAT"),
    ] {
        let cut = dir.path().join(format!("cut-{len}.iso"));
        let bytes = std::fs::read(&iso).expect("read");
        std::fs::write(&cut, &bytes[..len as usize]).expect("write");
        let out = agent(&[
            "run",
            "--device",
            cut.to_str().expect("utf8"),
            "--root",
            root.to_str().expect("utf8"),
        ]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{len}: {err}");
        assert!(err.contains(expect), "{len}: {err}");
    }
    assert!(files_under(&root).is_empty());
}

/// In a FAT16 image, makes every cluster chain of three or more clusters loop from
/// its second cluster back to its first: a directory that fills those clusters then
/// has no end marker, and walking it never ends on its own.
fn loop_fat16_chains(img: &Path) -> usize {
    let mut b = std::fs::read(img).expect("read");
    let bps = usize::from(u16::from_le_bytes([b[11], b[12]]));
    let reserved = usize::from(u16::from_le_bytes([b[14], b[15]]));
    let fats = usize::from(b[16]);
    let spf = usize::from(u16::from_le_bytes([b[22], b[23]]));
    assert!(spf > 0, "expected FAT16");
    let entries = spf * bps / 2;
    let fat_at = |b: &[u8], f: usize, i: usize| {
        let at = (reserved + f * spf) * bps + i * 2;
        usize::from(u16::from_le_bytes([b[at], b[at + 1]]))
    };
    let is_cluster = |v: usize| (2..0xFFF0).contains(&v);
    let targets: std::collections::HashSet<usize> = (2..entries)
        .map(|i| fat_at(&b, 0, i))
        .filter(|v| is_cluster(*v))
        .collect();
    let mut looped = 0;
    let starts: Vec<usize> = (2..entries)
        .filter(|i| is_cluster(fat_at(&b, 0, *i)) && !targets.contains(i))
        .collect();
    for start in starts {
        let second = fat_at(&b, 0, start);
        if is_cluster(fat_at(&b, 0, second)) {
            for f in 0..fats {
                let at = (reserved + f * spf) * bps + second * 2;
                b[at..at + 2].copy_from_slice(&(start as u16).to_le_bytes());
            }
            looped += 1;
        }
    }
    std::fs::write(img, b).expect("write");
    looped
}

#[test]
fn fat_with_a_cluster_chain_loop_does_not_hang() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tree = dir.path().join("tree");
    render_drive_tree(&fixture(MULTINIC), &tree);
    // Enough long names to spread openstack/latest over several clusters; without
    // user data, looking it up walks the whole (now looping) directory.
    let latest = tree.join("openstack/latest");
    std::fs::remove_file(latest.join("user_data")).expect("rm");
    for i in 0..150 {
        std::fs::write(
            latest.join(format!("padding-entry-with-a-long-name-{i:03}")),
            "",
        )
        .expect("pad");
    }
    let img = dir.path().join("drive.img");
    run_tool(
        std::process::Command::new("mkfs.vfat")
            .args(["-F", "16", "-n", "config-2", "-C"])
            .arg(&img)
            .arg("16384"),
    );
    let mut mcopy = std::process::Command::new("mcopy");
    mcopy
        .args(["-s", "-i"])
        .arg(&img)
        .arg(tree.join("openstack"))
        .arg(tree.join("ec2"))
        .arg("::/");
    run_tool(&mut mcopy);
    assert!(
        loop_fat16_chains(&img) >= 1,
        "no chain was long enough to loop"
    );
    let root = dir.path().join("root");
    std::fs::create_dir(&root).expect("mkdir");
    let out = agent(&[
        "run",
        "--format",
        "json",
        "--device",
        img.to_str().expect("utf8"),
        "--root",
        root.to_str().expect("utf8"),
    ]);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("more than 4096 entries (corrupt?)"), "{all}");
    let outside: Vec<String> = files_under(dir.path())
        .into_iter()
        .filter(|f| !f.starts_with("root/") && !f.starts_with("tree/") && f != "drive.img")
        .collect();
    assert!(outside.is_empty(), "{outside:?}");
}

#[test]
fn wrong_label_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tree = dir.path().join("tree");
    render_drive_tree(&fixture(BASIC), &tree);
    let iso = dir.path().join("other.iso");
    run_tool(
        std::process::Command::new("genisoimage")
            .args(["-quiet", "-J", "-r", "-V", "DATA", "-o"])
            .arg(&iso)
            .arg(&tree),
    );
    let out = agent(&["show", "--device", iso.to_str().expect("utf8")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is labelled `DATA`, not `config-2`"));
}
