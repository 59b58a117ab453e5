//! A host program compute needs and cannot find gives one line on standard error
//! naming the program and the command that installs it, exit status 1, no panic and
//! no backtrace (RUST_BACKTRACE=1 is set, so a panic would show one). PATH is a
//! folder holding only the programs a test leaves in.

mod common;

use common::{stderr, Env};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A folder for PATH with only `programs` in it (symlinks to the real ones).
fn path_with(env: &Env, name: &str, programs: &[&str]) -> PathBuf {
    let dir = env.path(name);
    std::fs::create_dir_all(&dir).expect("mkdir");
    for p in programs {
        let real = compute_io::tool::find_program(p.as_ref())
            .unwrap_or_else(|| panic!("{p} is not installed (scripts/test installs it)"));
        std::os::unix::fs::symlink(real, dir.join(p)).expect("symlink");
    }
    dir
}

fn run(mut cmd: Command, path: &Path) -> Output {
    cmd.env("PATH", path)
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("run compute")
}

/// Failed, with exactly `error: <line>` on standard error.
fn assert_one_line(out: &Output, line: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err, format!("error: {line}\n"));
    assert!(!err.contains("panicked") && !err.contains("backtrace"));
}

fn no_instance(env: &Env) {
    assert_eq!(
        env.json(&["list", "--format", "json"]),
        serde_json::json!([])
    );
    assert_eq!(env.instance_dirs(), 0);
}

#[test]
fn image_import_without_qemu_img() {
    let env = Env::new();
    let disk = env.path("disk.raw");
    std::fs::write(&disk, vec![0u8; 4096]).expect("write");
    let empty = path_with(&env, "empty", &[]);
    let cmd = env.command(
        &[
            "image-import",
            "--name",
            "x",
            "--file",
            disk.to_str().expect("utf-8"),
        ],
        None,
    );
    assert_one_line(
        &run(cmd, &empty),
        "qemu-img not found: install it with 'apt-get install qemu-utils'",
    );
    let images = env.json(&["image-list", "--format", "json"]);
    assert_eq!(
        images.as_array().map(Vec::len),
        Some(1),
        "only `blank`: {images}"
    );
}

#[test]
fn keypair_add_without_ssh_keygen() {
    let env = Env::new();
    let empty = path_with(&env, "empty", &[]);
    assert_one_line(
        &run(env.command(&["keypair-add", "k"], None), &empty),
        "ssh-keygen not found: install it with 'apt-get install openssh-client'",
    );
    assert_eq!(
        env.json(&["keypair-list", "--format", "json"]),
        serde_json::json!([])
    );
}

#[test]
fn boot_without_qemu_records_nothing() {
    let env = Env::new();
    let only_img = path_with(&env, "img", &["qemu-img"]);
    let boot = ["boot", "--image", "blank", "--flavor", "m1.tiny", "vm"];
    assert_one_line(
        &run(env.command(&boot, None), &only_img),
        "qemu-system-x86_64 not found: install it with 'apt-get install qemu-system-x86'",
    );
    no_instance(&env);
    // A --qemu path that is not there is named as given.
    let missing = env.path("no-such-qemu");
    assert_one_line(
        &run(env.command(&boot, Some(&missing)), &only_img),
        &format!(
            "{} not found: install it with 'apt-get install qemu-system-x86'",
            missing.display()
        ),
    );
    no_instance(&env);
}

/// `compute` with this networking mode (Env's commands use `plain`).
fn networked(env: &Env, mode: &str, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_compute"));
    c.arg("--state-dir")
        .arg(env.state())
        .args([
            "--accel",
            "tcg",
            "--network",
            mode,
            "--cidr",
            "10.99.0.0/24",
        ])
        .args(extra)
        .args(["boot", "--image", "blank", "--flavor", "m1.tiny", "vm"]);
    c
}

#[test]
fn each_networking_mode_names_its_own_missing_tools() {
    let env = Env::new();
    let qemu = path_with(&env, "qemu", &["qemu-img", "qemu-system-x86_64"]);
    assert_one_line(
        &run(networked(&env, "user", &[]), &qemu),
        "ip not found: install it with 'apt-get install iproute2'",
    );
    assert_one_line(
        &run(networked(&env, "bridge", &[]), &qemu),
        "nft not found: install it with 'apt-get install nftables'",
    );
    let tools = path_with(
        &env,
        "tools",
        &["qemu-img", "qemu-system-x86_64", "ip", "nsenter", "setsid"],
    );
    let server = env.path("no-metadata-server");
    let flag = ["--metadata-server", server.to_str().expect("utf-8")];
    assert_one_line(
        &run(networked(&env, "user", &flag), &tools),
        &format!(
            "{} not found: build it with 'cargo build -p metadata-server' (compute looks \
             beside itself, then on PATH) or name it with --metadata-server",
            server.display()
        ),
    );
    no_instance(&env);
}
