//! Shared test helpers: instance documents, rendered trees, drive images built with
//! the real tools (genisoimage, mkfs.vfat, mcopy), and running the agent binary with
//! a hang guard. A missing tool fails the test loudly.
#![allow(dead_code)]

pub mod service_double;

use serde_json::Value;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const AGENT: &str = env!("CARGO_BIN_EXE_guest-agent");
pub const MULTINIC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../compute/tests/fixtures/multinic.json"
);
pub const BASIC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../compute/tests/fixtures/basic.json"
);

/// The instance document of a fixture, to edit before rendering.
pub fn fixture(path: &str) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("fixture readable"))
        .expect("fixture is JSON")
}

pub fn instance(doc: &Value) -> compute::Instance {
    compute::Instance::from_json(&serde_json::to_vec(doc).expect("serialises"))
        .expect("valid instance")
}

/// Writes the config-drive tree of an instance (what `compute render` writes).
pub fn render_drive_tree(doc: &Value, out: &Path) {
    let tree = compute::render_drive(&instance(doc), &compute::Settings::default());
    for (rel, bytes) in tree {
        let p = out.join(rel);
        std::fs::create_dir_all(p.parent().expect("has parent")).expect("mkdir");
        std::fs::write(p, bytes).expect("write");
    }
}

pub fn run_tool(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {cmd:?} (is it installed? scripts/packages.txt): {e}")
    });
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `genisoimage` as Nova runs it, over a tree.
pub fn build_iso(tree: &Path, out: &Path) {
    run_tool(
        Command::new("genisoimage")
            .args(["-o"])
            .arg(out)
            .args([
                "-ldots",
                "-allow-lowercase",
                "-allow-multidot",
                "-l",
                "-quiet",
                "-J",
                "-r",
                "-V",
                "config-2",
            ])
            .arg(tree),
    );
}

/// A VFAT drive as Nova makes one: mkfs.vfat -n config-2, then mcopy the tree in.
pub fn build_vfat(tree: &Path, out: &Path) {
    run_tool(
        Command::new("mkfs.vfat")
            .args(["-n", "config-2", "-C"])
            .arg(out)
            .arg("16384"),
    );
    let mut mcopy = Command::new("mcopy");
    mcopy.args(["-s", "-i"]).arg(out);
    for e in std::fs::read_dir(tree).expect("tree") {
        mcopy.arg(e.expect("entry").path());
    }
    mcopy.arg("::/");
    run_tool(&mut mcopy);
}

/// Renders a document and builds an ISO drive of it in `dir`; returns the image.
pub fn iso_for(doc: &Value, dir: &Path, name: &str) -> PathBuf {
    edited_iso_for(doc, dir, name, |_| {})
}

/// [`iso_for`], with `edit` changing the rendered tree before the image is built.
pub fn edited_iso_for(doc: &Value, dir: &Path, name: &str, edit: impl FnOnce(&Path)) -> PathBuf {
    let tree = dir.join(format!("{name}-tree"));
    render_drive_tree(doc, &tree);
    edit(&tree);
    let iso = dir.join(format!("{name}.iso"));
    build_iso(&tree, &iso);
    iso
}

/// Runs the agent, killing it (and failing) if it runs past a generous guard: the
/// point is "no hang", not speed.
pub fn agent(args: &[&str]) -> Output {
    agent_in(None, args)
}

pub fn agent_in(netns: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, AGENT]);
            c
        }
        None => Command::new(AGENT),
    };
    guarded(cmd.args(args))
}

/// Runs a command with its output captured, killing it (and failing) if it runs
/// past a generous guard.
pub fn guarded(cmd: &mut Command) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?} (installed? scripts/packages.txt): {e}"));
    let start = Instant::now();
    loop {
        if child.try_wait().expect("wait").is_some() {
            return child.wait_with_output().expect("output");
        }
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("{cmd:?} hung (killed after 120 s)");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `guest-agent run --format json ...` and returns (exit code, report).
pub fn run_json(args: &[&str]) -> (i32, Value, String) {
    let mut all = vec!["run", "--format", "json"];
    all.extend_from_slice(args);
    let out = agent(&all);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "report is not JSON ({e}): {}\nstderr: {stderr}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    (out.status.code().unwrap_or(-1), report, stderr)
}

/// [`run_json`] with `--device DEVICE --root ROOT` and `extra`.
pub fn run_on(device: &Path, root: &Path, extra: &[&str]) -> (i32, Value, String) {
    let mut args = vec![
        "--device",
        device.to_str().expect("utf8"),
        "--root",
        root.to_str().expect("utf8"),
    ];
    args.extend_from_slice(extra);
    run_json(&args)
}

/// `guest-agent show --format json --device DEVICE`, which must succeed.
pub fn show_json(device: &Path) -> Value {
    let out = agent(&[
        "show",
        "--device",
        device.to_str().expect("utf8"),
        "--format",
        "json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("json")
}

/// The outcome of a step in a JSON report, and its detail lines.
pub fn step<'a>(report: &'a Value, name: &str) -> (&'a str, Vec<&'a str>) {
    let s = report["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["step"] == name)
        .unwrap_or_else(|| panic!("no step {name} in {report}"));
    let details = s["details"]
        .as_array()
        .expect("details")
        .iter()
        .map(|d| d.as_str().expect("str"))
        .collect();
    (s["outcome"].as_str().expect("outcome"), details)
}

pub fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .mode()
        & 0o7777
}

pub fn owner(p: &Path) -> (u32, u32) {
    let m = std::fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    (m.uid(), m.gid())
}

pub fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Every file under a folder, relative, sorted.
pub fn files_under(dir: &Path) -> Vec<String> {
    fn go(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            let ft = e.file_type().expect("type");
            if ft.is_dir() {
                go(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).expect("under").display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    go(dir, dir, &mut out);
    out.sort();
    out
}

/// A guest root with `/etc/passwd` naming `debian` (uid 1000) and an `/etc/hosts`.
pub fn guest_root(dir: &Path) -> PathBuf {
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("etc")).expect("mkdir");
    std::fs::create_dir_all(root.join("home/debian")).expect("mkdir");
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/bash\ndebian:x:1000:1000:Debian:/home/debian:/bin/bash\n",
    )
    .expect("passwd");
    std::fs::write(
        root.join("etc/shadow"),
        "root:*:19000:0:99999:7:::\ndebian:!:19000:0:99999:7:::\n",
    )
    .expect("shadow");
    std::fs::write(
        root.join("etc/hosts"),
        "127.0.0.1\tlocalhost\n127.0.1.1\told-name\n",
    )
    .expect("hosts");
    root
}

/// Checks a SHA-512 crypt hash against a password with `openssl passwd -6`.
pub fn crypt_matches(hash: &str, password: &str) -> bool {
    let salt = hash.split('$').nth(2).expect("salt");
    let out = Command::new("openssl")
        .args(["passwd", "-6", "-salt", salt, password])
        .output()
        .expect("openssl runs");
    assert!(out.status.success(), "openssl passwd failed");
    String::from_utf8_lossy(&out.stdout).trim() == hash
}
