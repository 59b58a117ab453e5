//! Helpers shared by the integration tests: the fixture instances, building images
//! with the real CLI, and running outside tools, which must be installed (a missing
//! tool fails the test; `scripts/install-deps` installs them).

#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const UUID: &str = "2f1d4c3b-8a7e-4b6d-9c5f-0e1a2b3c4d5e";

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../compute/tests/fixtures")
        .join(name)
}

pub fn cli() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_configdrive"));
    c.env_remove("SOURCE_DATE_EPOCH");
    c
}

/// Runs a command; panics with its output unless it succeeds.
pub fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {cmd:?} (is it installed? scripts/install-deps): {e}")
    });
    assert!(
        out.status.success(),
        "{cmd:?} failed with {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn stdout(cmd: &mut Command) -> String {
    String::from_utf8_lossy(&run(cmd).stdout).into_owned()
}

/// Builds the multinic fixture drive with the CLI into `dir`, returning its path.
pub fn build(dir: &Path, format: &str, extra: &[&str]) -> PathBuf {
    let out = dir.join(format!("drive.{format}"));
    let mut c = cli();
    c.args(["build", "--instance"])
        .arg(fixture("multinic.json"))
        .args(["--format", format, "-o"])
        .arg(&out);
    c.args(extra);
    run(&mut c);
    out
}

/// What the guest should find: the rendered tree of the multinic fixture.
pub fn expected_tree() -> compute::metadata::DriveTree {
    let inst =
        compute::Instance::from_json(&std::fs::read(fixture("multinic.json")).unwrap()).unwrap();
    compute::render_drive(&inst, &compute::Settings::default())
}

/// Every file below `dir`, by relative path.
pub fn files_below(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

pub fn assert_same_tree(dir: &Path) {
    let want: std::collections::BTreeMap<String, Vec<u8>> = expected_tree()
        .into_iter()
        .map(|(k, v)| (k, v.to_vec()))
        .collect();
    let got = files_below(dir);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    assert!(got == want, "file contents differ from the rendered tree");
}
