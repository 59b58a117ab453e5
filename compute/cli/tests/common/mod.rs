//! The harness every test of the `compute` binary shares: a state folder in a temp
//! dir with a blank image imported, and ways to run the real binary in it.
// Each test file uses its own part of the harness.
#![allow(dead_code)]

pub mod http;
pub mod openstack;
pub mod shared;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    /// A fresh state folder holding one image, `blank` (a 16 MiB qcow2: QEMU runs it,
    /// nothing boots).
    pub fn new() -> Env {
        let env = Env {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        let disk = env.path("root.qcow2");
        let ok = Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2"])
            .arg(&disk)
            .arg("16M")
            .status();
        assert!(ok
            .expect("qemu-img: install qemu-utils (scripts/test does)")
            .success());
        env.ok(&[
            "image-import",
            "--name",
            "blank",
            "--file",
            disk.to_str().expect("utf-8"),
        ]);
        env
    }

    pub fn state(&self) -> PathBuf {
        self.path("state")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn command(&self, args: &[&str], qemu: Option<&Path>) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_compute"));
        c.arg("--state-dir")
            .arg(self.state())
            // Plain networking: these tests are about the CLI, not the metadata wiring.
            .args([
                "--accel",
                "tcg",
                "--network",
                "plain",
                "--cidr",
                "10.99.0.0/24",
            ]);
        if let Some(q) = qemu {
            c.arg("--qemu").arg(q);
        }
        c.args(args);
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, None)
    }

    /// Runs with another QEMU binary (a fake one, for faults that are QEMU's).
    pub fn run_with(&self, args: &[&str], qemu: Option<&Path>) -> Output {
        self.command(args, qemu).output().expect("run compute")
    }

    /// Runs and requires success; returns standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs and requires failure; returns standard error.
    pub fn err(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.status.success(), "{args:?} should fail");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        serde_json::from_str(&self.ok(args)).expect("json")
    }

    /// A shell script standing in for QEMU.
    pub fn fake_qemu(&self, body: &str) -> PathBuf {
        let path = self.path("fake-qemu");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }

    pub fn instance_dirs(&self) -> usize {
        std::fs::read_dir(self.state().join("instances"))
            .map(|d| d.count())
            .unwrap_or(0)
    }
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
