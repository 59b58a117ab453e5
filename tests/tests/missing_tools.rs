//! A missing tool, met by the demo's image builder (the `guest-image` example) or by
//! the scripts: exit status 1 and one line naming the tool and the command that
//! installs it; never a panic or a backtrace (RUST_BACKTRACE=1 is set, so a panic
//! would show one). PATH is a folder holding only the programs a test leaves in.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

/// The `guest-image` example's binary, built for this test's profile: `cargo test`
/// builds examples only as test harnesses, and cargo's lock on the target folder is
/// released while tests run.
fn guest_image() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("current exe");
        // target/<profile>/deps/<this test>
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>");
        let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => "dev",
            Some(other) => other,
        };
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(workspace())
            .args(["build", "--locked", "--quiet", "-p", "e2e"])
            .args(["--example", "guest-image", "--profile", profile])
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cargo build --example guest-image failed");
        profile_dir.join("examples").join("guest-image")
    })
    .clone()
}

/// A new folder in `dir` for PATH with only `programs` in it (symlinks to the real
/// ones).
fn path_with(dir: &Path, programs: &[&str]) -> PathBuf {
    let bin = tempfile::Builder::new()
        .prefix("bin")
        .tempdir_in(dir)
        .expect("mkdir")
        .keep();
    for p in programs {
        let real = compute_io::tool::find_program(p.as_ref())
            .unwrap_or_else(|| panic!("{p} is not installed (scripts/test installs it)"));
        std::os::unix::fs::symlink(real, bin.join(p)).expect("symlink");
    }
    bin
}

fn run(cmd: &mut Command, path: &Path) -> Output {
    cmd.env("PATH", path)
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("run")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Exit 1, and exactly `line` on standard error.
fn assert_one_line(out: &Output, line: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err, format!("{line}\n"));
    assert!(!err.contains("panicked") && !err.contains("backtrace"));
}

/// `guest-image build` with the demo's arguments; busybox-static's busybox stands in
/// for the static agent (any static binary does).
fn build(dir: &Path, ssh_server: Option<&Path>) -> Command {
    let mut c = Command::new(guest_image());
    c.args(["build", "--agent", "/bin/busybox", "--out"])
        .arg(dir.join("image"));
    if let Some(s) = ssh_server {
        c.arg("--ssh-server").arg(s);
    }
    c
}

#[test]
fn guest_image_without_qemu_img() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = path_with(dir.path(), &["modprobe"]);
    assert_one_line(
        &run(&mut build(dir.path(), None), &path),
        "guest-image: qemu-img not found: install it with 'apt-get install qemu-utils'",
    );
    assert!(!dir.path().join("image/root.qcow2").exists());
}

#[test]
fn guest_image_without_modprobe() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = path_with(dir.path(), &[]);
    assert_one_line(
        &run(&mut build(dir.path(), None), &path),
        "guest-image: modprobe not found: install it with 'apt-get install kmod'",
    );
}

#[test]
fn guest_image_without_the_ssh_server() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = path_with(dir.path(), &["modprobe", "qemu-img"]);
    let dropbear = dir.path().join("dropbear");
    assert_one_line(
        &run(&mut build(dir.path(), Some(&dropbear)), &path),
        &format!(
            "guest-image: {} not found: install it with 'apt-get install dropbear-bin'",
            dropbear.display()
        ),
    );
}

#[test]
fn guest_image_summary_of_a_garbled_report_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("console.log");
    let summary = |text: &str| {
        std::fs::write(&log, text).expect("write");
        let mut c = Command::new(guest_image());
        c.args(["summary", "--console"]).arg(&log);
        run(&mut c, &path_with(dir.path(), &[]))
    };
    // The markers are not there yet: exit 3, nothing said.
    let out = summary("booting...\r\n===GUEST-AGENT-BEGIN===\r\n=== exit\r\n0\r\n");
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
    // A report that is not JSON.
    let out = summary(
        "===GUEST-AGENT-BEGIN===\n=== exit\n0\n=== report\n{not json\n===GUEST-AGENT-END===\n",
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.starts_with(&format!(
            "guest-image: the agent's results in {}: the guest's report is not JSON: ",
            log.display()
        )),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// A script run with only bash, sh and dirname on PATH.
fn script(rel: &str, args: &[&str], dir: &Path) -> Output {
    let path = path_with(dir, &["bash", "sh", "dirname"]);
    run(Command::new(workspace().join(rel)).args(args), &path)
}

#[test]
fn check_tools_names_each_missing_tool_and_its_package() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = script("scripts/check-tools", &["qemu-img"], dir.path());
    assert_one_line(
        &out,
        "check-tools: qemu-img not found: install it with 'apt-get install qemu-utils' (or \
         run scripts/install-deps)",
    );
    let out = Command::new(workspace().join("scripts/check-tools"))
        .args(["qemu-img", "cargo"])
        .output()
        .expect("run");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
    let out = script("scripts/check-tools", &["no-such-tool"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no-such-tool is not in scripts/packages.txt"));
}

/// Each script checks its tools before it does anything: without cargo on PATH it
/// stops at once, with only check-tools' lines on standard error, cargo's among them.
#[test]
fn scripts_check_their_tools_up_front() {
    let scripts = [
        "scripts/demo",
        "scripts/test",
        "scripts/bench-metadata-server",
        "scripts/bench-relay",
        "scripts/bench-feed",
        "configdrive/benches/bench.sh",
        "guest-agent/benches/vs-cloud-init.sh",
    ];
    for s in scripts {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = script(s, &[], dir.path());
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{s}: {err}");
        assert!(
            err.lines().any(|l| l
                == "check-tools: cargo not found: install Rust with rustup (https://rustup.rs)"),
            "{s}: {err}"
        );
        for line in err.lines() {
            assert!(
                line.starts_with("check-tools: ") && line.contains(" not found: install "),
                "{s}: {line}"
            );
        }
        assert_eq!(String::from_utf8_lossy(&out.stdout), "", "{s}");
    }
}
