//! `guest-agent run --root` against config drives built with the real tools: every
//! file written, its mode and owner; once-per-instance steps not repeated; a new
//! instance id runs them again.

mod common;
use common::*;

fn check_first_run(root: &std::path::Path, report: &serde_json::Value) {
    for name in ["network", "hostname", "ssh-keys", "files", "password"] {
        assert_eq!(step(report, name).0, "ok", "{name}: {report}");
    }
    // Live changes are skipped under --root, and say so.
    assert!(step(report, "network")
        .1
        .iter()
        .any(|d| d.starts_with("skipped: --root")));
    assert!(step(report, "hostname")
        .1
        .iter()
        .any(|d| d.contains("kernel hostname not changed")));
    assert_eq!(step(report, "random-seed").0, "skipped");

    assert_eq!(read(&root.join("etc/hostname")), "web-02\n");
    assert_eq!(
        read(&root.join("etc/hosts")),
        "127.0.0.1\tlocalhost\n127.0.1.1\tweb-02.novalocal web-02\n"
    );
    assert_eq!(
        read(&root.join("etc/resolv.conf")),
        "# Written by guest-agent from network_data.json.\nnameserver 10.0.0.2\nnameserver 2001:db8::2\n"
    );
    let nd = read(&root.join("etc/systemd/network/50-guest-agent-fa163e000001.network"));
    assert!(
        nd.contains("MACAddress=fa:16:3e:00:00:01\n") && nd.contains("MTUBytes=1450\n"),
        "{nd}"
    );
    assert!(
        nd.contains("Address=10.0.0.5/24\nAddress=2001:db8::5/64\n"),
        "{nd}"
    );
    assert!(
        nd.contains("[Route]\nDestination=0.0.0.0/0\nGateway=10.0.0.1\n"),
        "{nd}"
    );
    assert!(
        read(&root.join("etc/systemd/network/50-guest-agent-fa163e000002.network"))
            .contains("DHCP=ipv4\n")
    );

    let ssh = root.join("home/debian/.ssh");
    assert_eq!((mode(&ssh), owner(&ssh)), (0o700, (1000, 1000)));
    let ak = ssh.join("authorized_keys");
    assert_eq!((mode(&ak), owner(&ak)), (0o600, (1000, 1000)));
    // The x509 key is not an SSH key.
    assert_eq!(
        read(&ak),
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ops@example\n"
    );

    assert_eq!(read(&root.join("etc/motd")), "Welcome to web-02\n");
    assert_eq!(mode(&root.join("etc/motd")), 0o644);
    assert_eq!(
        read(&root.join("opt/app/config.ini")),
        "[app]\nport = 8080\n"
    );
    assert_eq!(mode(&root.join("opt/app/config.ini")), 0o644);

    let shadow = read(&root.join("etc/shadow"));
    let hash = shadow
        .lines()
        .next()
        .expect("root line")
        .split(':')
        .nth(1)
        .expect("hash");
    assert!(crypt_matches(hash, "s3cr3t-Pa55"), "{shadow}");
    assert!(
        shadow.contains("\ndebian:!:19000:0:99999:7:::\n"),
        "other users kept: {shadow}"
    );

    // The runcmd from user data is kept as a script, not run under --root.
    let state = root.join("var/lib/guest-agent/2f1d4c3b-8a7e-4b6d-9c5f-0e1a2b3c4d5e");
    assert_eq!(mode(&state), 0o700);
    assert_eq!(
        read(&state.join("scripts/runcmd-000")),
        "#!/bin/sh\n'touch' '/tmp/ran'\n"
    );
    let (_, ud) = step(report, "user-data");
    assert!(ud.iter().any(|d| d.contains("not run")), "{ud:?}");
    let (_, vd) = step(report, "vendor-data");
    assert!(
        vd.iter()
            .any(|d| d.contains("not applied: #cloud-config `packages`")),
        "{vd:?}"
    );
}

fn second_and_new_instance(
    drive: &std::path::Path,
    root: &std::path::Path,
    dir: &std::path::Path,
    fat: bool,
) {
    let d = drive.to_str().expect("utf8");
    let r = root.to_str().expect("utf8");
    let (code, report, _) =
        run_json(&["--device", d, "--root", r, "--user", "debian", "--networkd"]);
    assert_eq!(code, 0, "{report}");
    for name in ["ssh-keys", "files", "password", "vendor-data"] {
        let (outcome, details) = step(&report, name);
        assert_eq!(outcome, "skipped", "{name}");
        assert!(
            details[0].contains("already applied for instance 2f1d4c3b"),
            "{details:?}"
        );
    }
    // Live changes left undone under --root stay owed to the instance: the seed
    // and the user-data script are still pending for the live boot.
    for name in ["random-seed", "user-data"] {
        let (_, details) = step(&report, name);
        assert!(
            !details[0].contains("already applied"),
            "{name}: {details:?}"
        );
    }
    let state = root.join("var/lib/guest-agent/2f1d4c3b-8a7e-4b6d-9c5f-0e1a2b3c4d5e");
    assert!(state.join("files.done").exists() && !state.join("user-data.done").exists());
    // Every-boot steps look again and find nothing to change.
    assert_eq!(step(&report, "network").0, "unchanged");
    assert_eq!(step(&report, "hostname").0, "unchanged");

    // An image cloned to a new instance: everything runs again.
    let mut doc = fixture(MULTINIC);
    doc["uuid"] = "0b5e3c1a-0000-4000-8000-000000000001".into();
    let tree = dir.join("tree-new");
    render_drive_tree(&doc, &tree);
    let img = dir.join("new.img");
    if fat {
        build_vfat(&tree, &img);
    } else {
        build_iso(&tree, &img);
    }
    let (code, report, _) = run_json(&[
        "--device",
        img.to_str().expect("utf8"),
        "--root",
        r,
        "--user",
        "debian",
    ]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(
        report["instance_id"],
        "0b5e3c1a-0000-4000-8000-000000000001"
    );
    // The same keys and files: looked at again, found in place, not rewritten.
    let (outcome, details) = step(&report, "ssh-keys");
    assert_eq!(outcome, "unchanged");
    assert!(
        details[0].contains("all 1 key(s) already there for debian"),
        "no duplicates: {details:?}"
    );
    assert_eq!(
        read(&root.join("home/debian/.ssh/authorized_keys"))
            .lines()
            .count(),
        1
    );
    assert_eq!(step(&report, "files").0, "unchanged");
    assert!(root
        .join("var/lib/guest-agent/0b5e3c1a-0000-4000-8000-000000000001/files.done")
        .exists());
}

#[test]
fn iso_drive_configures_the_root() {
    let dir = tempfile::tempdir().expect("tempdir");
    let iso = iso_for(&fixture(MULTINIC), dir.path(), "cd");
    let root = guest_root(dir.path());
    let (code, report, stderr) = run_on(&iso, &root, &["--user", "debian", "--networkd"]);
    assert_eq!(code, 0, "{report}\n{stderr}");
    assert!(
        report["source"]
            .as_str()
            .expect("source")
            .contains("iso9660"),
        "{report}"
    );
    assert!(
        !stderr.contains("s3cr3t") && !report.to_string().contains("s3cr3t"),
        "no secrets in output"
    );
    check_first_run(&root, &report);
    second_and_new_instance(&iso, &root, dir.path(), false);
}

#[test]
fn vfat_drive_configures_the_root() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tree = dir.path().join("tree");
    render_drive_tree(&fixture(MULTINIC), &tree);
    let img = dir.path().join("drive.img");
    build_vfat(&tree, &img);
    let root = guest_root(dir.path());
    let (code, report, stderr) = run_on(&img, &root, &["--user", "debian", "--networkd"]);
    assert_eq!(code, 0, "{report}\n{stderr}");
    assert!(
        report["source"].as_str().expect("source").contains("vfat"),
        "{report}"
    );
    check_first_run(&root, &report);
    second_and_new_instance(&img, &root, dir.path(), true);
}

#[test]
fn show_prints_the_view_without_secrets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let iso = iso_for(&fixture(MULTINIC), dir.path(), "cd");
    let v = show_json(&iso);
    assert_eq!(
        v["meta_data"]["uuid"],
        "2f1d4c3b-8a7e-4b6d-9c5f-0e1a2b3c4d5e"
    );
    assert_eq!(v["meta_data"]["admin_pass"], "<redacted>");
    assert_eq!(v["network_data"]["links"][0]["mtu"], 1450);
    assert_eq!(v["files"][0]["path"], "/etc/motd");
    assert!(!v.to_string().contains("s3cr3t"));
}

#[test]
fn dry_run_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let iso = iso_for(&fixture(MULTINIC), dir.path(), "cd");
    let root = dir.path().join("empty-root");
    std::fs::create_dir(&root).expect("mkdir");
    let (code, report, _) = run_on(&iso, &root, &["--dry-run"]);
    assert_eq!(code, 0);
    assert!(files_under(&root).is_empty(), "{:?}", files_under(&root));
    let (outcome, details) = step(&report, "hostname");
    assert_eq!(
        (outcome, details[0]),
        (
            "skipped",
            "skipped: dry run: hostname web-02 (web-02.novalocal)"
        )
    );
}
