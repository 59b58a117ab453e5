//! Running the agent again: a second run on the same drive writes nothing and says
//! `unchanged`; changed data replaces only what changed; a write that fails, or a
//! run killed while writing, leaves every old file as it was.

mod common;
use common::*;
use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What a write would change: inode, size, mode, owner, mtime and ctime.
type Stamp = (u64, u64, u32, u32, u32, i64, i64, i64, i64);

fn stamp(p: &Path) -> Stamp {
    let m = std::fs::symlink_metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    (
        m.ino(),
        m.size(),
        m.mode(),
        m.uid(),
        m.gid(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec(),
    )
}

/// Every file and folder under `root` (relative path -> stamp). A folder's mtime
/// changes when anything is created in it, a temporary file included.
fn stamps(root: &Path) -> BTreeMap<PathBuf, Stamp> {
    fn go(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Stamp>) {
        for e in std::fs::read_dir(dir).expect("list") {
            let p = e.expect("entry").path();
            out.insert(p.strip_prefix(root).expect("under").into(), stamp(&p));
            if std::fs::symlink_metadata(&p).expect("stat").is_dir() {
                go(root, &p, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    out.insert(PathBuf::from("."), stamp(root));
    go(root, root, &mut out);
    out
}

/// The guest paths a report says were written (`ok: wrote PATH ...`).
fn written(report: &serde_json::Value) -> Vec<String> {
    report["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .flat_map(|s| s["details"].as_array().expect("details"))
        .filter_map(|d| d.as_str()?.strip_prefix("ok: wrote "))
        .map(|d| d.split(' ').next().expect("path").to_owned())
        .collect()
}

fn run_args<'a>(drive: &'a str, root: &'a str) -> Vec<&'a str> {
    vec![
        "--device",
        drive,
        "--root",
        root,
        "--user",
        "debian",
        "--networkd",
    ]
}

fn temporaries(root: &Path) -> Vec<String> {
    files_under(root)
        .into_iter()
        .filter(|f| f.ends_with(".tmp"))
        .collect()
}

#[test]
fn second_run_writes_nothing_and_says_unchanged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let iso = iso_for(&fixture(MULTINIC), dir.path(), "cd");
    let root = guest_root(dir.path());
    let (d, r) = (iso.to_str().expect("utf8"), root.to_str().expect("utf8"));

    let (code, first, stderr) = run_json(&run_args(d, r));
    assert_eq!(code, 0, "{first}\n{stderr}");
    let wrote = written(&first);
    for expected in [
        "/etc/resolv.conf",
        "/etc/hostname",
        "/etc/hosts",
        "/etc/systemd/network/50-guest-agent-fa163e000001.network",
        "/var/lib/guest-agent/2f1d4c3b-8a7e-4b6d-9c5f-0e1a2b3c4d5e/scripts/runcmd-000",
    ] {
        assert!(wrote.iter().any(|w| w == expected), "{expected}: {first}");
    }
    let before = stamps(&root);
    for w in &wrote {
        assert!(
            before.contains_key(Path::new(w.trim_start_matches('/'))),
            "{w}"
        );
    }

    let (code, second, stderr) = run_json(&run_args(d, r));
    assert_eq!(code, 0, "{second}\n{stderr}");
    let out = agent(&[&["run"][..], &run_args(d, r)].concat());
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);

    // Not a byte, mode, owner, inode or timestamp changed, folders included (no
    // temporary file was made either).
    assert_eq!(
        stamps(&root),
        before,
        "the second and third runs changed something"
    );
    assert!(written(&second).is_empty(), "{second}");

    for name in ["network", "hostname", "user-data"] {
        let (outcome, details) = step(&second, name);
        assert_eq!(outcome, "unchanged", "{name}: {second}");
        assert!(
            details.iter().all(|l| !l.starts_with("ok:")),
            "{name}: {details:?}"
        );
        assert!(
            text.lines()
                .any(|l| l.starts_with(name) && l.ends_with(" unchanged")),
            "{name}: {text}"
        );
    }
    let (_, net) = step(&second, "network");
    assert!(
        net.contains(&"unchanged: /etc/resolv.conf (92 bytes, mode 644)"),
        "{net:?}"
    );
    let (_, host) = step(&second, "hostname");
    assert!(
        host.contains(&"unchanged: /etc/hostname (7 bytes, mode 644)")
            && host.iter().any(|l| l.starts_with("unchanged: /etc/hosts ")),
        "{host:?}"
    );
    assert!(
        text.contains("    unchanged: /etc/hostname (7 bytes, mode 644)\n"),
        "{text}"
    );
    // Once-per-instance steps are not even looked at again.
    for name in ["ssh-keys", "files", "password", "vendor-data"] {
        assert_eq!(step(&second, name).0, "skipped", "{name}");
    }
}

#[test]
fn changed_data_replaces_only_what_changed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let iso = iso_for(&fixture(MULTINIC), dir.path(), "cd");
    let root = guest_root(dir.path());
    let r = root.to_str().expect("utf8");
    let (code, report, _) = run_json(&run_args(iso.to_str().expect("utf8"), r));
    assert_eq!(code, 0, "{report}");
    let before = stamps(&root);

    // The fixture's user data names the host; a new name there.
    use base64::Engine;
    let mut doc = fixture(MULTINIC);
    let user_data = "#cloud-config\nhostname: web-03\nruncmd:\n - [touch, /tmp/ran]\n";
    doc["user_data"] = base64::engine::general_purpose::STANDARD
        .encode(user_data)
        .into();
    let renamed = iso_for(&doc, dir.path(), "renamed");
    let (code, report, _) = run_json(&run_args(renamed.to_str().expect("utf8"), r));
    assert_eq!(code, 0, "{report}");
    let after = stamps(&root);

    assert_eq!(step(&report, "hostname").0, "ok", "{report}");
    assert_eq!(step(&report, "network").0, "unchanged", "{report}");
    assert_eq!(read(&root.join("etc/hostname")), "web-03\n");
    assert!(read(&root.join("etc/hosts")).contains("127.0.1.1\tweb-03.novalocal web-03\n"));
    for changed in ["etc/hostname", "etc/hosts"] {
        let (old, new) = (before[Path::new(changed)], after[Path::new(changed)]);
        assert_ne!(old.0, new.0, "{changed}: replaced by a rename, a new inode");
    }
    for kept in [
        "etc/resolv.conf",
        "etc/systemd/network/50-guest-agent-fa163e000001.network",
        "etc/motd",
        "etc/shadow",
    ] {
        assert_eq!(before[Path::new(kept)], after[Path::new(kept)], "{kept}");
    }
    assert!(temporaries(&root).is_empty(), "{:?}", temporaries(&root));
}

/// A drive whose `/etc/motd` is `size` bytes, and a root that already has one.
fn big_motd_setup(dir: &Path, size: usize) -> (PathBuf, PathBuf) {
    use base64::Engine;
    let mut doc = fixture(MULTINIC);
    let big = "x".repeat(size);
    doc["files"][0]["contents"] = base64::engine::general_purpose::STANDARD
        .encode(&big)
        .into();
    let iso = iso_for(&doc, dir, "big");
    let root = guest_root(dir);
    std::fs::write(root.join("etc/motd"), "old motd\n").expect("motd");
    (iso, root)
}

#[test]
fn a_failed_write_keeps_the_old_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (iso, root) = big_motd_setup(dir.path(), 64 * 1024);
    let old_motd = stamp(&root.join("etc/motd"));

    // Files above 16 KiB cannot be written (EFBIG: SIGXFSZ ignored, inherited
    // through exec): the motd's temporary file fails half-way.
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        "trap '' XFSZ; exec prlimit --fsize=16384 \"$@\"",
        "sh",
        AGENT,
    ])
    .args(["run", "--format", "json"])
    .args(run_args(
        iso.to_str().expect("utf8"),
        root.to_str().expect("utf8"),
    ));
    let out = guarded(&mut cmd);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("no report ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(out.status.code(), Some(1), "{report}");

    let (outcome, details) = step(&report, "files");
    assert_eq!(outcome, "failed", "{report}");
    assert!(
        details.iter().any(
            |d| d.starts_with("failed: cannot write the new contents of ")
                && d.contains("etc/motd")
                && d.contains("the old file is intact")
                && d.contains("File too large")
        ),
        "{details:?}"
    );
    assert_eq!(read(&root.join("etc/motd")), "old motd\n");
    assert_eq!(stamp(&root.join("etc/motd")), old_motd);
    assert!(temporaries(&root).is_empty(), "{:?}", temporaries(&root));
    // The rest of the run went on, and the failed step stays owed.
    assert_eq!(
        read(&root.join("opt/app/config.ini")),
        "[app]\nport = 8080\n"
    );
    assert_eq!(step(&report, "hostname").0, "ok");
    let state = root.join("var/lib/guest-agent/2f1d4c3b-8a7e-4b6d-9c5f-0e1a2b3c4d5e");
    assert!(!state.join("files.done").exists() && state.join("ssh-keys.done").exists());
}

#[test]
fn a_run_killed_while_writing_changes_no_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (iso, root) = big_motd_setup(dir.path(), 64 * 1024);
    let before: BTreeMap<_, _> = ["etc/motd", "etc/hosts", "etc/shadow", "etc/passwd"]
        .into_iter()
        .map(|f| (f, (stamp(&root.join(f)), read(&root.join(f)))))
        .collect();

    // SIGXFSZ's default kills the agent while it writes the motd's temporary file:
    // a crash in the middle of the run.
    let mut cmd = Command::new("prlimit");
    cmd.arg("--fsize=16384")
        .arg(AGENT)
        .args(["run", "--format", "json"])
        .args(run_args(
            iso.to_str().expect("utf8"),
            root.to_str().expect("utf8"),
        ));
    let out = guarded(&mut cmd);
    assert_eq!(out.status.signal(), Some(25), "killed by SIGXFSZ: {out:?}");

    // Every new file is written before any is renamed: nothing was replaced or
    // created, only temporary files are left.
    for (f, (s, text)) in &before {
        assert_eq!(
            (&stamp(&root.join(f)), &read(&root.join(f))),
            (s, text),
            "{f}"
        );
    }
    for absent in [
        "etc/hostname",
        "etc/resolv.conf",
        "home/debian/.ssh/authorized_keys",
    ] {
        assert!(!root.join(absent).exists(), "{absent}");
    }
    assert!(!temporaries(&root).is_empty(), "the run did get to write");

    // The next boot finishes the work.
    let (d, r) = (iso.to_str().expect("utf8"), root.to_str().expect("utf8"));
    let (code, report, _) = run_json(&run_args(d, r));
    assert_eq!(code, 0, "{report}");
    assert_eq!(read(&root.join("etc/motd")).len(), 64 * 1024);
    assert_eq!(read(&root.join("etc/hostname")), "web-02\n");
}

#[test]
fn the_kernel_hostname_is_compared_first() {
    let dir = tempfile::tempdir().expect("tempdir");
    let iso = iso_for(&fixture(MULTINIC), dir.path(), "cd");
    let root = guest_root(dir.path());
    let (d, r) = (iso.to_str().expect("utf8"), root.to_str().expect("utf8"));
    let (code, report, _) = run_json(&run_args(d, r));
    assert_eq!(code, 0, "{report}");

    for (before, outcome) in [("web-02", "unchanged"), ("old-name", "ok")] {
        // A UTS namespace of its own: the host's name is never touched. The name
        // the kernel has afterwards goes to stderr.
        let script = "hostname \"$1\" && shift && \"$@\" && hostname >&2";
        let mut cmd = Command::new("unshare");
        cmd.args(["--uts", "sh", "-c", script, "sh", before, AGENT])
            .args(["run", "--format", "json", "--live", "--steps", "hostname"])
            .args(["--device", d, "--root", r]);
        let out = guarded(&mut cmd);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{before}: {stderr}");
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        let (got, details) = step(&report, "hostname");
        assert_eq!(got, outcome, "{before}: {details:?}");
        assert!(
            details.contains(&format!("{outcome}: kernel hostname web-02").as_str()),
            "{details:?}"
        );
        assert_eq!(stderr.lines().last(), Some("web-02"), "{stderr}");
    }
}
